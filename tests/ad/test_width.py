"""Batched derivatives (width W): on every serial test kernel, forward and reverse results
at W in {1, 3, 8} equal W separate unbatched calls (width_check.py), on both backends; the
batched IR keeps W as a vector type (one copy of the derivative code) and round-trips;
shadow-width errors name the argument."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.backend.numba.codegen import generate
from hpcad.backend.numba.lane_layout import lane_layout
from hpcad.ir.core import walk
from hpcad.ir.lanes import lane_outer_loops, lane_work
from hpcad.ir.parser import parse_module
from hpcad.ir.printer import print_function, print_module
from tests.ad.harness import BACKENDS, SLOW, case_rng, on_numba
from tests.ad.kernels import CASES
from tests.ad.width_check import check_forward, check_reverse

CASE_BY_NAME = {case.name: case for case in CASES}
# The kernels whose batched derivatives numba compiles, at W=1 and W=3 (the check compiles
# width 1 too): together they run every line of the numba backend's code generation, and
# call every function in the generated code, that all the kernels here do at W=3 or W=8
# (`python -m tests.numba_cover tests.ad.test_width:CASES --widths 3`): lanes first over
# rows (heat), math functions and integer ops (math_functions), guarded division
# (gather_repeated), a data-dependent step (data_dependent_step), break and continue
# (break_continue), float32 lanes (float32_inplace_relax), pow's guard (powers), rebound
# arrays (jacobi2d_swap), an integer index cast (scatter_into_argument). Vectors carried
# through while loops (exp_series_while) generate nothing these and the lane cases of
# tests/parallel/test_width_parallel.py and tests/ad/test_linalg.py do not (numba_cover
# --widths 1 3 --only derivatives over the three files' cases). The others run on the
# interpreter (HPCAD_ALL_KERNELS=1: numba).
ON_NUMBA = ("heat1d_explicit", "math_functions", "gather_repeated", "data_dependent_step",
            "break_continue", "float32_inplace_relax", "powers", "jacobi2d_swap",
            "scatter_into_argument")
# the numba source at W=8 differs from W=3's only in the sizes it allocates (the lane loops
# run to a run-time width): numba runs the heat kernel at W=8
NUMBA_W8 = ("heat1d_explicit",)


def _runs():
    for case in CASES:
        for width in (1, 3, 8):
            for backend in BACKENDS:
                if backend == "numba" and not on_numba(
                        case.name, NUMBA_W8 if width == 8 else ON_NUMBA):
                    continue
                yield pytest.param(case, width, backend, id=f"{case.name}-W{width}-{backend}",
                                   marks=() if _fast(case.name, width, backend) else SLOW)


def _fast(name: str, width: int, backend: str) -> bool:
    """The fast tier: every kernel at W=1 and W=3 on the interpreter, and numba at W=3 on the
    heat kernel (numba compiles every kernel, width and mode: seconds apiece)."""
    if backend == "numba":
        return width == 3 and name == "heat1d_explicit"
    return width in (1, 3)


@pytest.mark.parametrize("case,width,backend", list(_runs()))
def test_batched_equals_separate_calls(case, width, backend):
    rng = case_rng(case)
    args = case.make_args(rng)
    check_forward(case.kernel, args, width, backend, rng)
    check_reverse(case.kernel, args, width, backend, rng)


def test_width_is_a_vector_type_not_copies_of_the_code():
    heat = CASE_BY_NAME["heat1d_explicit"].kernel
    spec = heat.specialize((np.zeros(4), 0.1, 2))
    one = spec.derivative("reverse", ("dup", "active", "const"), True)
    eight = spec.derivative("reverse", ("dup", "active", "const"), True, width=8)
    text = print_function(eight)
    assert "%d_u: f64x8[::1]" in text and "%seed: f64x8" in text
    assert _op_counts(eight) == _op_counts(one)   # the same code (constants aside)
    text = print_function(spec.derivative("reverse", ("dup", "active", "const"), True,
                                          width=8))
    assert "%d_u: f64x8[::1]" in text and "%seed: f64x8" in text
    module = parse_module(text)
    assert print_module(module).strip() == text.strip()


def _numba_source(case_name: str, args: tuple, activity: tuple, width: int) -> str:
    spec = CASE_BY_NAME[case_name].kernel.specialize(args)
    fn = spec.derivative("reverse", activity, True, width=width)
    return generate(fn, "f")[0]


def test_reverse_stencil_runs_one_lane_at_a_time():
    """The reverse sweep over the time steps runs lane-outer (ir/lanes.py): each lane over
    its own contiguous row of the (W, n) shadow, which the caller's array is, with no copy,
    from the same tape position; its stored values are carried in registers as at width 1.
    Results: every lane equal to its own width-1 call, at n large enough for the gather
    loop to run many iterations."""
    source = _numba_source("heat1d_explicit", (np.zeros(64), 0.2, 3),
                           ("dup", "active", "const"), 3)
    assert "d_u_lanes" not in source and "d_u_row" in source
    assert "tp_0 = start" in source      # each lane pops the tape from the same place
    assert "_loop" in source    # the sum of alpha's adjoint, reassociated, as at width 1
    rng = np.random.default_rng(5)
    args = (rng.uniform(0.5, 1.5, 300), 0.21, 9)
    check_reverse(CASE_BY_NAME["heat1d_explicit"].kernel, args, 3, "numba", rng)
    check_reverse(CASE_BY_NAME["heat1d_explicit"].kernel, args, 8, "numba", rng)


def test_lanes_stay_inner_where_a_loop_cannot_run_one_lane_at_a_time():
    """GMM's adjoint does much scalar work beside its lane work (0.32 ops per lane op,
    which a lane-outer loop would repeat per lane: it ran 2x slower so), so no loop runs
    lane-outer: every loop keeps its lanes inner, and arrays of vectors their lanes last."""
    args = CASE_BY_NAME["gmm_objective"].make_args(np.random.default_rng(0))
    activity = ("dup", "dup", "dup") + ("const",) * (len(args) - 3)
    spec = CASE_BY_NAME["gmm_objective"].kernel.specialize(args)
    fn = spec.derivative("reverse", activity, True, width=3)
    assert "_row" not in generate(fn, "f")[0]
    assert lane_layout(fn).lanes_last


def test_which_loops_run_one_lane_at_a_time():
    """ir/lanes.lane_work: lane ops with pure scalar work qualify; a scalar store (state
    a second lane would see changed) does not, and then no loop runs lane-outer, since the
    arrays of vectors it streams over keep their lanes last."""
    f = parse_module("""
func @f(%a: f64x4[::1], %b: f64[::1], %v: f64x4) -> () {
  %0 = arith.const {value = 0} : i64
  %1 = arith.const {value = 1} : i64
  %n = mem.shape %b {axis = 0} : i64
  scf.for %0, %n, %1 {
  ^(%i: i64):
    %x = mem.load %a, %i : f64x4
    %y = arith.mul %x, %v : f64x4
    mem.store %y, %a, %i
    scf.yield
  }
  scf.for %0, %n, %1 {
  ^(%i.1: i64):
    %z = mem.load %b, %i.1 : f64
    mem.store %z, %b, %i.1
    %x.1 = mem.load %a, %i.1 : f64x4
    mem.store %x.1, %a, %i.1
    scf.yield
  }
  func.return
}
""").main
    loops = [op for op in walk(f.body) if op.name == "scf.for"]
    assert lane_work(loops[0]) == (3, 0)
    assert lane_work(loops[1]) is None
    assert lane_outer_loops(f.body) == set()    # the second loop streams over %a
    loops[1].regions[0].ops[:2] = []
    assert lane_outer_loops(f.body) == set(loops)


def _op_counts(fn) -> dict:
    counts: dict = {}
    for op in walk(fn.body):
        if op.name != "arith.const":
            counts[op.name] = counts.get(op.name, 0) + 1
    return counts


def _heat():
    return CASE_BY_NAME["heat1d_explicit"].kernel


def test_shadow_without_the_width_axis_is_an_error():
    df = ad.autodiff(_heat(), mode="reverse", activity=(ad.Duplicated, ad.Active, ad.Const),
                     width=3)
    u = np.ones(5)
    with pytest.raises(ad.ArgumentError, match=r"shadow of 'u' has shape \(5,\), expected "
                                               r"\(3, 5\)"):
        df(u, np.zeros(5), 0.1, 2)


def test_shadow_of_another_width_is_an_error():
    df = ad.autodiff(_heat(), mode="forward", activity=(ad.Duplicated, ad.Dual, ad.Const),
                     width=3)
    with pytest.raises(ad.ArgumentError, match="width 3"):
        df(np.ones(5), np.zeros((4, 5)), 0.1, np.zeros(3), 2)


def test_dual_tangent_must_have_width_entries():
    df = ad.autodiff(_heat(), mode="forward", activity=(ad.Duplicated, ad.Dual, ad.Const),
                     width=3)
    with pytest.raises(ad.ArgumentError, match=r"tangent of 'alpha' at width 3"):
        df(np.ones(5), np.zeros((3, 5)), 0.1, 1.0, 2)


def test_seed_must_have_width_entries():
    df = ad.autodiff(_heat(), mode="reverse", activity=(ad.Duplicated, ad.Active, ad.Const),
                     width=3)
    with pytest.raises(ad.ArgumentError, match="length-3"):
        df(np.ones(5), np.zeros((3, 5)), 0.1, 2, seed=np.ones(2))


@pytest.mark.parametrize("width", [0, -2, 2.5, True])
def test_width_must_be_a_positive_int(width):
    with pytest.raises(ad.ArgumentError, match="width must be a positive int"):
        ad.autodiff(_heat(), mode="reverse", activity=(ad.Duplicated, ad.Active, ad.Const),
                    width=width)


def test_scalar_seed_applies_to_every_direction():
    heat = _heat()
    u = np.linspace(0.0, 1.0, 6)
    df = ad.autodiff(heat, mode="reverse", activity=(ad.Duplicated, ad.Active, ad.Const),
                     width=2, backend="interp")
    shadows = np.zeros((2, 6))
    _, dalpha = df(u.copy(), shadows, 0.2, 3, seed=2.0)
    g = ad.grad(heat, argnums=(0, 1), backend="interp")(u, 0.2, 3)
    assert np.allclose(shadows, 2.0 * g[0], rtol=1e-13, atol=0)
    assert np.allclose(dalpha, 2.0 * g[1], rtol=1e-13, atol=0)
