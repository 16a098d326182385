"""Reductions written as numba users write them (np.sum, np.prod, np.min/max, np.argmin/
argmax, np.mean, np.average, np.var/np.std, np.linalg.norm, with axis= and as array
methods): the primal equals numba.njit of the same source (or NumPy's, where numba does not
compile the call), and the derivatives match central finite differences, forward against
reverse, on both backends; in a parallel=True kernel and inside a prange body too."""
import math

import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.ir.core import walk
from tests.ad.harness import (
    INTERP_FAST,
    as_outputs,
    check_case,
    njit_of,
    on_backends,
    relative_error,
)
from tests.ad.kernels import Case
from tests.frontend.construct_check import check_construct, run_on


def _vectors(n=7):
    return lambda rng: (rng.uniform(0.5, 1.5, n), rng.standard_normal(n))


def _matrix(shape=(4, 5)):
    return lambda rng: (rng.standard_normal(shape), rng.standard_normal(shape))


@ad.kernel
def sum_of_product(x, y):
    return np.sum(x * y) + x.sum() + np.sum(np.sin(y))


@ad.kernel
def prod_and_mean(x, y):
    return np.prod(x) + x.prod() * 0.5 + np.mean(x * y) + y.mean()


@ad.kernel
def extremes(x, y):
    return np.max(x * y) - np.min(x) + x.max() * 2.0 - (y - x).min() + np.amax(y) \
        + np.amin(x + y)


@ad.kernel
def extremes_2d(a, b):
    return np.max(a * b) + np.min(a) + a.max() - np.min(a - b)


@ad.kernel
def norms(x, a):
    return np.linalg.norm(x) + np.linalg.norm(a) + np.linalg.norm(x, 1) \
        + np.linalg.norm(x, np.inf) + np.linalg.norm(x * 2.0, 2)


@ad.kernel
def matrix_norms(a, b):
    return np.linalg.norm(a, 1) + np.linalg.norm(a * b, -1) + np.linalg.norm(a.T, np.inf) \
        + np.linalg.norm(a - b, ord=-np.inf)


@ad.kernel
def sums_along_axes(a, b):
    s0 = np.sum(a * b, axis=0)
    s1 = a.sum(axis=1)
    s2 = np.sum(a, -1)
    return np.sum(s0 * s0) + np.sum(s1 * np.cos(s2))


@ad.kernel
def arg_extremes(x, y):
    i = np.argmax(x * y)
    j = y.argmin()
    return x[i] * y[j] + np.argmin(x) + x.argmax() * 1.0


@ad.kernel
def args_along_axis(a, b):
    rows = np.argmax(a, axis=1)
    cols = np.argmin(a + b, axis=0)
    s = 0.0
    for k in range(a.shape[0]):
        s += a[k, rows[k]] * b[k, rows[k]]
    for k in range(a.shape[1]):
        s += a[cols[k], k]
    return s


@ad.kernel
def extremes_along_axis(a, b):
    mx = np.max(a * b, axis=1)
    mn = a.min(axis=0)
    return np.sum(mx * mx) + np.sum(np.sin(mn))


@ad.kernel
def means_and_products_along_axis(a, b):
    m = np.mean(a * b, axis=0)
    p = (1.0 + 0.1 * a).prod(axis=1)
    return np.sum(m * m) + np.sum(p)


@ad.kernel
def variances(a, b):
    rows = a.var(axis=1, ddof=1)
    cols = np.std(a * b, axis=0)
    return np.sum(rows * rows) + np.sum(cols) + np.var(a) + b.std(ddof=1) \
        + np.average(a, axis=-1)[1] + np.average(b) \
        + np.sum(np.var(a + b, 1) * np.std(a, -1, ddof=2))


@ad.kernel(parallel=True)
def parallel_reductions(a, b):
    s = np.sum(a * b)
    mx = np.max(a - b)
    mn = (a * a).min()
    rows = np.sum(a, axis=1)
    return s + mx * 2.0 - mn + np.sum(rows * rows) + np.mean(b) + np.prod(1.0 + 0.01 * a)


@ad.kernel
def reductions_in_prange(a, x):
    n = a.shape[0]
    out = np.zeros(n)
    for i in numba.prange(n):
        out[i] = np.sum(a[i] * x) + np.max(a[i]) * x[0]
    t = 0.0
    for i in range(n):
        t += out[i] * out[i]
    return t


CASES = [
    Case("sum_of_product", sum_of_product, _vectors()),
    Case("prod_and_mean", prod_and_mean, _vectors()),
    Case("extremes", extremes, _vectors()),
    Case("extremes_2d", extremes_2d, _matrix()),
    Case("norms", norms, lambda rng: (rng.standard_normal(6), rng.standard_normal((3, 4)))),
    Case("sums_along_axes", sums_along_axes, _matrix()),
    Case("matrix_norms", matrix_norms, _matrix()),
    Case("arg_extremes", arg_extremes, _vectors()),
    Case("args_along_axis", args_along_axis, _matrix()),
    Case("reductions_in_prange", reductions_in_prange,
         lambda rng: (rng.standard_normal((5, 6)), rng.standard_normal(6))),
]
# what numba.njit does not compile (min/max/mean/prod with axis=, a parallel=True kernel's
# decorator): the primal is checked against the plain NumPy function instead
NUMPY_CASES = [
    Case("extremes_along_axis", extremes_along_axis, _matrix()),
    Case("means_and_products_along_axis", means_and_products_along_axis, _matrix()),
    Case("variances", variances, _matrix()),
    Case("parallel_reductions", parallel_reductions, _matrix((6, 5))),
]


# The cases numba compiles (harness.ALL_KERNELS: all): with the kept numba cases of the other
# width-1 derivative tests they run every line of the numba backend's code generation, and
# call every function in the generated code, that all the cases do (tests/numba_cases.py,
# `python -m tests.numba_cover "tests.numba_cases:cases()"`): sums of expressions
# (sum_of_product), parallel sum, min and max reductions (parallel_reductions). Reductions in
# a prange body, sums along axes and norms generate nothing those and the kept cases of
# tests/parallel, test_construct and test_kernels do not; all run on the interpreter.
ON_NUMBA = ("sum_of_product", "parallel_reductions")


@on_backends(CASES, fast_on_numba=("sum_of_product",), numba=ON_NUMBA)
def test_reduction_matches_numba_and_finite_differences(case, backend):
    check_construct(case, backend)


@on_backends(NUMPY_CASES, numba=ON_NUMBA)
def test_reduction_matches_numpy_and_finite_differences(case, backend):
    args = case.make_args(np.random.default_rng(3))
    got = as_outputs(run_on(case.kernel, backend, args))
    assert relative_error(got, as_outputs(case.kernel.py_func(*args))) <= 1e-12
    check_case(case, backend)


def test_parallel_kernel_reduces_in_parallel_loops():
    """np.sum and np.max over a whole array are parallel reductions in parallel=True."""
    a = np.ones((3, 4))
    spec = parallel_reductions.specialize(parallel_reductions.bind((a, a)))
    kinds = [op.attrs["reductions"] for op in walk(spec.primal.body)
             if op.name == "par.parallel_for" and op.results]
    assert "add" in ",".join(kinds) and "max" in ",".join(kinds) and \
        "min" in ",".join(kinds), kinds


@ad.kernel
def nan_extremes(x):
    return np.max(x), np.min(x), np.argmax(x) * 1.0, np.argmin(x) * 1.0


@pytest.mark.parametrize("backend", INTERP_FAST)
@pytest.mark.parametrize("values", [[1.0, math.nan, 3.0, math.nan], [math.nan, 2.0, 0.5],
                                    [2.0, 5.0, 5.0, -1.0, -1.0], [-math.inf, 1.0, math.inf]])
def test_nan_and_ties_follow_numba(values, backend):
    """A NaN anywhere is the min/max, the first NaN the argmin/argmax; ties: the first."""
    x = np.array(values)
    got = run_on(nan_extremes, backend, (x,))
    expected = njit_of(nan_extremes.py_func)(x)
    np.testing.assert_array_equal(np.array(got), np.array(expected))


@ad.kernel
def max_of_ties(x):
    return np.max(x * x)


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_gradient_of_a_tied_max_goes_to_the_first(backend):
    x = np.array([1.0, -2.0, 2.0, 0.5])
    g = ad.grad(max_of_ties, backend=backend)(x)
    np.testing.assert_array_equal(g, [0.0, -4.0, 0.0, 0.0])


def keepdims(a):
    return np.sum(np.sum(a, axis=0, keepdims=True))


def matrix_two_norm(a):
    return np.linalg.norm(a, 2)


def vector_minus_one_norm(a):
    return np.linalg.norm(a, -1)


def each_matrix_norm(a):
    return np.linalg.norm(a, 1), np.linalg.norm(a, -1), np.linalg.norm(a, np.inf), \
        np.linalg.norm(a, -np.inf)


@pytest.mark.parametrize("a", [
    np.array([[1.0, -2.0, 0.5], [3.0, 4.0, -0.25]]), np.ones((3, 4), np.float32),
    np.zeros((0, 3)), np.array([[math.nan, 1.0], [2.0, 3.0]]),
    np.array([[math.nan, 1.0], [math.nan, 3.0]])],
    ids=["float64", "float32", "empty", "nan", "nan-column"])
def test_matrix_norms_of_each_order_equal_numbas(a):
    """ord=1/-1: the largest/smallest column sum of |a|, np.inf/-np.inf: row sums, float64;
    0 for an empty matrix and a NaN sum passed over, as numba's (NumPy raises or gives NaN)."""
    got = ad.kernel(each_matrix_norm, backend="interp")(a)
    np.testing.assert_array_equal(np.array(got), np.array(njit_of(each_matrix_norm)(a)))


def variable_ddof(a, k):
    return np.var(a, ddof=k)


def weighted_average(a, w):
    return np.average(a, weights=w)


def axis_out_of_bounds(a):
    return np.sum(a, axis=2)


def variable_axis(a, k):
    return np.sum(np.sum(a, axis=k))


@pytest.mark.parametrize("fn, args, fragment", [
    (keepdims, (np.ones((2, 3)),), "keepdims"),
    (matrix_two_norm, (np.ones((2, 3)),), "ord=2 of a 2-D array"),
    (vector_minus_one_norm, (np.ones(3),), "ord=-1 of a 1-D array"),
    (axis_out_of_bounds, (np.ones((2, 3)),), "axis 2 is out of bounds"),
    (variable_axis, (np.ones((2, 3)), 1), "integer literal"),
    (variable_ddof, (np.ones((2, 3)), 1), "ddof= that is not a non-negative integer literal"),
    (weighted_average, (np.ones(3), np.ones(3)), "np.sum(a * w) / np.sum(w)"),
])
def test_unsupported_reductions_are_refused_clearly(fn, args, fragment):
    with pytest.raises((ad.UnsupportedConstruct, ad.KernelTypeError)) as info:
        ad.kernel(fn, backend="interp")(*args)
    assert fragment in str(info.value) and "test_reductions.py:" in str(info.value)


def too_few_for_ddof(x):
    return np.var(x, ddof=1) + np.std(x[:3], axis=0, ddof=3)[0]


def test_variance_with_too_few_elements_is_nan_as_numpys():
    x = np.ones((1, 2))
    with pytest.warns(RuntimeWarning):
        assert math.isnan(too_few_for_ddof(x))
    assert math.isnan(ad.kernel(too_few_for_ddof, backend="interp")(x))


def max_of_empty(x):
    return np.max(x[2:2])


def argmin_of_empty_rows(a):
    return np.sum(np.argmin(a[:, 1:1], axis=1))


@pytest.mark.parametrize("fn, x", [(max_of_empty, np.ones(4)),
                                   (argmin_of_empty_rows, np.ones((2, 3)))])
@pytest.mark.parametrize("backend", INTERP_FAST)
def test_extreme_of_an_empty_array_raises_as_numpy_does(fn, x, backend):
    with pytest.raises(ad.KernelAssertionError) as info:
        ad.kernel(fn, backend=backend)(x)
    assert "of an empty array" in str(info.value) and "test_reductions.py:" in str(info.value)


@ad.kernel
def dot_by_sum(x, y):
    return np.sum(x * y) + (x - y).max() + np.linalg.norm(x * y)


def test_reducing_an_expression_allocates_no_temporary():
    x = np.ones(5)
    spec = dot_by_sum.specialize(dot_by_sum.bind((x, x)))
    assert not [op for op in walk(spec.primal.body) if op.name == "mem.alloc"]
    assert dot_by_sum(np.arange(3.0), np.ones(3)) == pytest.approx(3.0 + 1.0 + 5 ** 0.5)


@ad.kernel
def integer_and_boolean_reductions(x, k):
    r = np.arange(k)
    return np.sum(x > 0.0) + np.max(x > 0.5) * 10 + np.prod(r + 1) + r.max() - np.min(r) \
        + np.argmax(x > 0.0) + np.mean(r) + np.sum(np.arange(k))


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_integer_and_boolean_reductions_match_numba(backend):
    x = np.array([-1.0, 0.3, 0.7, -0.2, 2.0])
    got = run_on(integer_and_boolean_reductions, backend, (x, 5))
    assert got == njit_of(integer_and_boolean_reductions.py_func)(x, 5)
