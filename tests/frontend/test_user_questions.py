"""Kernels users posted with numba (tests/frontend/user_question_kernels.py, each naming
where it came from), run as hpcad kernels: values against the plain Python function (and
numba.njit where NumPy's scalar types would differ from numba's, float32 and int32), on the
interpreter and, for a few, compiled with numba (their pranges threaded, against the serial
Python loop); derivatives against central finite differences along a random direction, and
jvp against vjp by the dot-product test. The races users asked about, and the constructs
numba takes that hpcad does not, are errors naming the kernel's line."""
import copy
import functools
import inspect

import numpy as np
import pytest

import hpcad as ad
from hpcad.errors import UnsupportedConstruct
from hpcad.passes.race import RaceError
from tests.ad.harness import njit_of, relative_error
from tests.frontend import user_question_kernels as uq

R = np.random.default_rng


def _normal(shape, seed=0, dtype=np.float64):
    return R(seed).standard_normal(shape).astype(dtype)


ARGS = {
    "sum_vector": lambda: (_normal(50),),
    "udt": lambda: (20,),
    "bug9518": lambda: (np.arange(10000).reshape((100, 100)) * 0.5, 0.0, 1.5, 2.5),
    "prange_sub": lambda: (7,),
    "neg_prange": lambda: (10,),
    "inner_array": lambda: (_normal(12),),
    "prange_maxmin": lambda: (_normal(12),),
    "prange_var": lambda: (_normal(12),),
    "red_init": lambda: (_normal(11), 3.0, 2.0),
    "rowsum_red": lambda: (_normal((5, 4)),),
    "parallel_f": lambda: (15,),
    "row_view": lambda: (6,),
    "assign": lambda: (_normal((20, 2)), _normal((3, 2), 1), np.zeros(20, dtype=np.int64)),
    "sort_rows": lambda: (_normal((3, 5)),),
    "wrap_counter": lambda: (_normal((10, 3)), np.full(10, 2.0)),
    "lap3d": lambda: (_normal((4, 5, 6)), np.zeros((4, 5, 6))),
    "flat_pairs": lambda: (_normal((3, 4)), np.zeros((3, 4))),
    "recurrence": lambda: (_normal(10), _normal(10, 1)),
    "coulomb": lambda: (_normal(6), _normal(6, 1), _normal(6, 2)),
    "mandel": lambda: (-0.5, 0.3, 100),
    "newton_sqrt": lambda: (2.0, 1.0, 1e-12, 100),
    "jacobi": lambda: (_normal(8), 1e-3, 50),
    "while_true": lambda: (np.array([1.0, 3.0]), 1e-12),
    "clip_all": lambda: (_normal(10), np.zeros(10), -0.5, 0.7),
    "halving": lambda: (32,),
    "bubble_sort": lambda: (_normal(9),),
    "insertion_sort": lambda: (_normal(9),),
    "last_index": lambda: (_normal(10), 0.5),
    "scalar_distance": lambda: (_normal((5, 3)), np.zeros((5, 5))),
    "f32_sum": lambda: tuple(_normal((4, 3, 5), k, np.float32) for k in range(3)),
    "four_d": lambda: (_normal((2, 3, 4, 5)), _normal(5, 1)),
    "heat2d": lambda: (_normal((6, 5)), 0.1, 3),
    "row_views": lambda: (_normal((3, 4)), np.zeros((3, 4))),
    "inner_func_nb": lambda: (np.zeros(8), 0.3 * _normal(8), 0.3 * _normal(8, 1)),
    "iterate_direct": lambda: (_normal(5), _normal(5, 1)),
    "iterate_rows": lambda: (_normal((4, 3)),),
    "reversed_loops": lambda: (_normal(7),),
    "block_cumsum": lambda: (_normal(10), np.zeros(10), 4),
    "aug_overlap": lambda: (_normal(6),),
    "shift_rows": lambda: (_normal((4, 3)),),
    "window_max": lambda: (_normal(10), 3, np.zeros(8)),
    "diff_cumsum": lambda: (_normal(6), 3),
    "matvec_rows": lambda: (_normal((4, 3)), _normal(3, 1), np.zeros(4)),
    "negdivmod": lambda: (np.array([-7, 7, -7, 7, -1, 0, 5]), np.array([2, -2, -2, 2, 3, -3, -5])),
    "float_divmod": lambda: (5.0 * _normal(9), -1.5),
    "int_ops": lambda: (7,),
    "periodic_shift": lambda: (_normal(7), -9),
    "roundings": lambda: (np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -2.7, 2.7]),),
    "masked_mean": lambda: (_normal(10), _normal(10, 1) > 0),
    "mask_sum": lambda: (_normal(20),),
    "int_mean": lambda: (np.arange(-5, 7),),
    "int32_acc": lambda: (np.arange(-50000, 50000, 7, dtype=np.int32),),
    "f32_literal": lambda: (_normal(10, 0, np.float32),),
    "mixed": lambda: (_normal(6, 0, np.float32), 3, _normal(2, 1)),
    "signs": lambda: (np.array([-3, 0, 2, -1]), np.array([-0.5, 0.0, 1.0, -0.0])),
    "prange_array_reduction": lambda: (_normal(50),),
    "two_d_array_reduction": lambda: (10,),
    "row_sums": lambda: (_normal((40, 3)), _normal(3, 1)),
    "view_reduction": lambda: (_normal(40), _normal(4, 1)),
    "int_into_float": lambda: (np.arange(-20, 20), _normal(40)),
}

# numba's scalar types, not NumPy's: float32 * a Python float is float64, int32 * int32 int64
NUMBA_REFERENCE = ("f32_sum", "int32_acc", "f32_literal", "mixed")
# compiled with numba (seconds each: tests/slow_tests.txt): prange reductions (two of them, one
# written s = s - e; an int one under an if), two pranges with a nested loop and a continue,
# a prange with locals per iteration and an int array written;
# an array reduction of floats, one of ints, one into a named view
ON_NUMBA = ("bug9518", "udt", "parallel_f", "assign", "row_sums", "two_d_array_reduction",
            "view_reduction")

DERIVATIVES = {   # the arguments differentiated; the others are held constant
    "sum_vector": (0,), "inner_array": (0,), "prange_maxmin": (0,), "prange_var": (0,),
    "rowsum_red": (0,), "assign": (0, 1), "sort_rows": (0,), "wrap_counter": (0,),
    "lap3d": (0,), "recurrence": (0, 1), "coulomb": (0, 1, 2), "newton_sqrt": (0,),
    "jacobi": (0,), "while_true": (0,), "clip_all": (0,), "bubble_sort": (0,),
    "insertion_sort": (0,), "last_index": (0,), "four_d": (0, 1), "heat2d": (0, 1),
    "row_views": (0,), "inner_func_nb": (1, 2), "iterate_direct": (0, 1),
    "iterate_rows": (0,), "reversed_loops": (0,), "block_cumsum": (0,), "aug_overlap": (0,),
    "shift_rows": (0,), "window_max": (0,), "diff_cumsum": (0,), "matvec_rows": (0, 1),
    "float_divmod": (0,), "periodic_shift": (0,), "masked_mean": (0,), "mask_sum": (0,),
    "prange_array_reduction": (0,), "row_sums": (0, 1), "view_reduction": (0, 1),
    "int_into_float": (1,),
}


def _outputs(ret, args) -> list:
    """What a call gives back: its returns, then every array argument as it left it."""
    rets = ret if isinstance(ret, tuple) else (ret,)
    return [np.asarray(v, dtype=np.float64) for v in rets] + \
        [np.asarray(a, dtype=np.float64) for a in args if isinstance(a, np.ndarray)]


def _call(fn, args) -> list:
    fresh = copy.deepcopy(args)
    return _outputs(fn(*fresh), fresh)


def _assert_same(name: str, got: list, expected: list, rtol: float) -> None:
    assert len(got) == len(expected), name
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape, f"{name}: output {k} has shape {g.shape}, not {e.shape}"
        err = relative_error(g, e)
        assert err <= rtol, f"{name}: output {k} {g} != {e} (relative error {err:.2e})"


def _reference(name: str) -> list:
    kernel = getattr(uq, name)
    plain = njit_of(kernel.py_func) if name in NUMBA_REFERENCE else kernel.py_func
    return _call(plain, ARGS[name]())


@functools.cache
def _on(name: str, backend: str):
    """The kernel `name` of user_question_kernels, running on `backend`."""
    return ad.kernel(getattr(uq, name).py_func, backend=backend)


@pytest.mark.parametrize("name", list(ARGS))
def test_values_on_the_interpreter(name):
    got = _call(_on(name, "interp"), ARGS[name]())
    _assert_same(name, got, _reference(name), 1e-6 if name in NUMBA_REFERENCE else 1e-12)


@pytest.mark.parametrize("name", ON_NUMBA)
def test_values_compiled_with_numba(name):
    """The numba backend's threaded pranges against the serial Python loop, and against
    numba.njit of the same source."""
    got = _call(_on(name, "numba"), ARGS[name]())
    _assert_same(name, got, _reference(name), 1e-12)
    _assert_same(name, got, _call(njit_of(getattr(uq, name).py_func), ARGS[name]()), 1e-12)


def _tangents(args, argnums, rng) -> tuple:
    """A random direction on the arguments argnums, zero on the other float arguments."""
    def tangent(k, a):
        if isinstance(a, np.ndarray):
            return rng.standard_normal(a.shape) if k in argnums else \
                (np.zeros(a.shape) if a.dtype.kind == "f" else None)
        if isinstance(a, float):
            return float(rng.standard_normal()) if k in argnums else 0.0
        return None
    return tuple(tangent(k, a) for k, a in enumerate(args))


def _moved(args, v, h) -> list:
    return [copy.deepcopy(a) if t is None else a + h * t for a, t in zip(args, v)]


@pytest.mark.parametrize("name", list(DERIVATIVES))
def test_derivatives_on_the_interpreter(name):
    """<w, J v> three ways: central differences of the plain function, ad.jvp along v, and
    <v, J^T w> from ad.vjp, for a random cotangent w of the kernel's returns."""
    kernel, args = getattr(uq, name), ARGS[name]()
    rng = R(11)
    v = _tangents(args, DERIVATIVES[name], rng)
    returns = _outputs(kernel.py_func(*copy.deepcopy(args)), ())
    w = [rng.standard_normal(r.shape) for r in returns]
    h = 1e-6

    def weighted(outs):
        return sum(float(np.sum(wk * o)) for wk, o in zip(w, outs))
    fd = (weighted(_outputs(kernel.py_func(*_moved(args, v, h)), ())) -
          weighted(_outputs(kernel.py_func(*_moved(args, v, -h)), ()))) / (2 * h)
    _, jv = ad.jvp(kernel, tuple(copy.deepcopy(args)), v, backend="interp")
    forward = weighted(_outputs(jv, ()))
    _, vjp_fn = ad.vjp(kernel, *copy.deepcopy(args), backend="interp")
    cotangent = tuple(wk if wk.shape else float(wk) for wk in w)
    adjoints = vjp_fn(cotangent if len(cotangent) > 1 else cotangent[0])
    reverse = sum(float(np.sum(adjoints[k] * v[k])) for k in DERIVATIVES[name])
    assert relative_error(forward, fd) <= 1e-6, f"{name}: jvp {forward} vs FD {fd}"
    assert relative_error(reverse, forward) <= 1e-10, f"{name}: vjp {reverse} vs jvp {forward}"


REFUSED = {   # kernel: (error, the text of the line it names, words of the message)
    # races the users asked about: numba runs them and gives a different answer each run
    "prange_wrong_result": (RaceError, "y[:] += x[i]", "race on array 'y'"),
    "prange_race_y0": (RaceError, "y[:] = y[0] + x[i]", "race on array 'y'"),
    "prange_histogram": (RaceError, "hist[k] += 1", "race on array 'hist'"),
    "prange_argmax": (UnsupportedConstruct, "for i in prange", "'best' carried across"),
    "if_max": (UnsupportedConstruct, "for i in prange", "'m' carried across"),
    "not_a_reduction": (UnsupportedConstruct, "for i in prange", "'s' carried across"),
    "ifloordiv": (UnsupportedConstruct, "for i in prange", "'acc' carried across"),
    # numba takes these; hpcad refuses them (see the README's parallel kernels)
    "div_red": (UnsupportedConstruct, "for i in prange", "'c' carried across"),
    "detect_positive_split": (RaceError, "is_positive[j] = 0", "race on array 'is_positive'"),
    "uses_globals": (UnsupportedConstruct, "W_GLOBAL[i % 3]", "pass its values"),
    "mandel_c": (UnsupportedConstruct, "complex(x, y)", "calling `complex`"),
    # array reductions hpcad does not make: the order would matter, or the rounding
    "product_array_reduction": (UnsupportedConstruct, "acc *= x[i]", "only += and -="),
    "f32_wider": (UnsupportedConstruct, "acc += x[i]", "float64 values into a float32"),
    "read_inside": (RaceError, "for i in prange", "race on array 'acc'"),
}

REFUSED_ARGS = {
    "prange_wrong_result": (np.ones(50),), "prange_race_y0": (np.ones(50),),
    "prange_histogram": (_normal(100), -2.0, 2.0, 8), "prange_argmax": (_normal(12),),
    "if_max": (_normal(12),), "not_a_reduction": (_normal(5),), "ifloordiv": (4,),
    "div_red": (10,),
    "detect_positive_split": (_normal(20), np.zeros(20), 20), "uses_globals": (_normal(8),),
    "mandel_c": (-0.5, 0.3, 100), "product_array_reduction": (_normal(10),),
    "f32_wider": (_normal(10),), "read_inside": (_normal(10),),
}


def _line_of(kernel, text: str) -> str:
    """file:line of the first line of the kernel's body that holds text."""
    lines, first = inspect.getsourcelines(kernel.py_func)
    k = next(k for k, line in enumerate(lines) if k > 1 and text in line)
    return f"{inspect.getsourcefile(kernel.py_func)}:{first + k}"


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_at_the_line(name):
    error, text, words = REFUSED[name]
    kernel = _on(name, "interp")
    with pytest.raises(error) as caught:
        kernel(*copy.deepcopy(REFUSED_ARGS[name]))
    message = str(caught.value)
    assert _line_of(kernel, text) in message and words in message, message


def test_product_reduction_has_no_derivative():
    """A prange's p *= e runs (test_values_on_the_interpreter[red_init]) but has no
    derivative: an error at its loop's line that says what to write instead."""
    kernel = uq.red_init
    with pytest.raises(ad.DifferentiationError) as caught:
        ad.grad(kernel, argnums=0, backend="interp")(*ARGS["red_init"]())
    message = str(caught.value)
    assert _line_of(kernel, "for i in prange") in message, message
    assert "sum of logarithms" in message, message


def test_hessian_of_an_array_reduction_compiled_with_numba():
    """Forward over reverse of an array reduction: the tangents of the reverse derivative's
    primal accumulations go into per-thread copies too (they raced on `acc`'s tangent, 9-80%
    off at 2 threads). loss = sum_k (w_k^2 S_k)^2, S_k = sum_i a[i, k]: H = diag(12 w^2 S^2)."""
    rng = R(1)
    a, w, v = rng.standard_normal((100000, 3)) / 300, rng.standard_normal(3), \
        rng.standard_normal(3)
    hv = ad.hvp(uq.squared_weighted_sums, argnums=1, backend="numba")(a, w, v)
    expected = 12.0 * w ** 2 * a.sum(axis=0) ** 2 * v
    assert relative_error(hv, expected) <= 1e-10, f"{hv} != {expected}"


@pytest.mark.parametrize("batch", [1, 3])
def test_forward_jacobian_of_an_array_reduction_compiled_with_numba(batch):
    """The tangents of an array reduction, one direction at a time (per-thread copies) and
    three at once (atomic adds): acc = sum_i a[i] * w has the Jacobian diag(sum_i a[i])."""
    a, w = R(2).standard_normal((100000, 3)), R(3).standard_normal(3)
    jac = ad.jacobian(uq.weighted_sums, argnums=1, mode="fwd", batch=batch,
                      backend="numba")(a, w)
    expected = np.diag(a.sum(axis=0))
    assert relative_error(jac, expected) <= 1e-10, f"{jac} != {expected}"
