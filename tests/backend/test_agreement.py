"""The numba backend agrees with the reference interpreter on every test kernel: primal
value, forward tangent and reverse cotangents, to 1e-12 relative (float32 kernels: to a few
float32 ulps, since libm's float32 functions and NumPy's may round differently)."""

import numpy as np
import pytest

import hpcad as ad  # noqa: E402
from tests.ad.harness import as_cotangent, case_rng, random_direction, relative_error
from tests.ad.kernels import CASES


def _tolerance(args) -> float:
    f32 = any(isinstance(a, (np.ndarray, np.floating)) and np.dtype(a.dtype) == np.float32
              for a in args)
    return 1e-6 if f32 else 1e-12


def _flatten(values):
    out = []
    for v in values if isinstance(values, tuple) else (values,):
        if v is not None:
            out.append(np.ravel(np.asarray(v, dtype=np.float64)))
    return np.concatenate(out) if out else np.zeros(0)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_numba_agrees_with_interpreter(case):
    rng = case_rng(case)
    args = case.make_args(rng)
    tangents = random_direction(rng, args)
    tol = _tolerance(args)
    results = {}
    for backend in ("interp", "numba"):
        out, tout = ad.jvp(case.kernel, args, tangents, backend=backend)
        _, pullback = ad.vjp(case.kernel, *args, backend=backend)
        weights = np.linspace(0.5, 1.5, len(out) if isinstance(out, tuple) else 1)
        cots = pullback(as_cotangent(out, weights))
        results[backend] = (_flatten(out), _flatten(tout), _flatten(cots))
    for name, a, b in zip(("primal", "tangent", "cotangent"), results["interp"],
                          results["numba"], strict=True):
        assert relative_error(a, b) <= tol, f"{case.name} {name}: {relative_error(a, b):.2e}"


LANE_OPS = """func @lanes(%g: f64x3, %d: f64x3[:,::1], %k: i64) -> (f64, f64x3) {
  %c0 = arith.const {value = 0} : i64
  %x = vec.extract %g, %k : f64
  %row = vec.lane %d, %k : f64[:,:]
  %old = mem.load %row, %c0, %c0 : f64
  %sum = arith.add %old, %x : f64
  mem.store %sum, %row, %c0, %c0
  %y = vec.insert %g, %sum, %k : f64x3
  func.return %old, %y
}
"""


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_lane_ops_read_and_write_one_lane(backend):
    """vec.extract, vec.lane (a view: writes reach the array of vectors) and vec.insert
    (a new vector; its operand keeps its lanes) against NumPy."""
    from hpcad.backend import interp
    from hpcad.backend.numba import compile_function
    from hpcad.ir import parse_function
    fn = parse_function(LANE_OPS)
    g, d = np.array([1.0, 2.0, 3.0]), np.arange(24.0).reshape(3, 2, 4)
    want_d = d.copy()
    want_d[1, 0, 0] += g[1]
    run = interp.run_function if backend == "interp" else \
        lambda f, args: compile_function(f)(*args)
    old, y = run(fn, [g, d, 1])
    assert old == 8.0
    np.testing.assert_array_equal(y, [1.0, 10.0, 3.0])
    np.testing.assert_array_equal(g, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(d, want_d)
