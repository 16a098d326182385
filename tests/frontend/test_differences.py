"""np.diff and np.roll in kernels (hpcad/frontend/construct.py: read lazily, as the slices
`a[1:] - a[:-1]` and through a wrapped index), and elements of array expressions: the
primal equals numba.njit of the same source (NumPy's where numba has no `axis=`), the
derivatives match central finite differences, forward against reverse, on both backends;
stores into the array they read see its old values, as NumPy's new arrays do."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST, as_outputs, check_case, on_backends, relative_error
from tests.ad.kernels import Case
from tests.frontend.construct_check import check_construct, run_on


@ad.kernel
def differences(u, w):
    d = np.diff(u)
    second = np.diff(u, 2)
    return np.sum(d * d) + np.sum(second * w[:-2]) + np.sum(np.sin(np.diff(u * w))) \
        + np.diff(w)[0] * d.shape[0]


@ad.kernel
def rolls(u, w, k):
    r = np.roll(u, 1)
    return np.sum(r * w) + np.sum(np.roll(u, -2) * u * u) + np.sum(np.roll(u * w, k) * u) \
        + np.roll(w, 3)[0]


@ad.kernel
def matrix_differences(a, b):
    rows = np.diff(a, axis=0)
    cols = np.diff(a)
    return np.sum(rows * rows) + np.sum(np.cos(cols) * b[:, 1:]) \
        + np.sum(np.diff(a * b, 2, axis=1)) + np.sum(np.roll(a, 1, axis=1) * b) \
        + np.sum(np.roll(b, -1, axis=0) * a * a)


@ad.kernel(parallel=True)
def parallel_shifts(u, w):
    d = np.diff(u)
    r = np.roll(u, 2) * w
    return np.sum(d * d * w[1:]) + np.sum(r * r)


@ad.kernel
def elements_of_expressions(u, w, k):
    """Elements of expressions read where they are needed: indices from the end, a
    variable index that is negative, two axes."""
    outer = u[:, np.newaxis] * np.sin(w[np.newaxis, :])
    return (u * w)[k] + np.diff(u)[-1] + outer[k + 1, -2] + np.roll(u, 2)[k] * w[0] \
        + (u + 1.0)[2]


@ad.kernel
def slices_of_expressions(a, w):
    """Slices, rows and masks of array expressions (harris's `(I[1:, :] - I[:-1, :])[:, 1:]`),
    NumPy's temporaries, also in a loop."""
    m, n = a.shape
    dx = (a[1:, :] - a[:m - 1, :])[:, 1:]
    dy = (a[:, 1:] - a[:, :n - 1])[1:, :]
    s = np.sum(dx * dy) + np.sum((a * w[0])[1]) + np.sum(np.exp(a[0])[a[0] > 0.0]) \
        + np.sum(np.diff(a)[::2, 1:] * w[1])
    for k in range(2):
        s += np.sum((a * w[k])[k:, ::-1] * a[k:, :])
    return s


def _two_vectors_and_shift(rng):
    return rng.standard_normal(7), rng.standard_normal(7), 9


CASES = [
    Case("differences", differences, lambda rng: (rng.standard_normal(7),
                                                   rng.standard_normal(7))),
    Case("rolls", rolls, _two_vectors_and_shift),
    Case("elements_of_expressions", elements_of_expressions,
         lambda rng: (rng.standard_normal(6), rng.standard_normal(6), -3)),
    Case("slices_of_expressions", slices_of_expressions,
         lambda rng: (rng.standard_normal((5, 4)), rng.standard_normal(2))),
]
# numba's np.diff and np.roll take no axis: these compare with NumPy
NUMPY_CASES = [
    Case("matrix_differences", matrix_differences,
         lambda rng: (rng.standard_normal((4, 5)), rng.standard_normal((4, 5)))),
    Case("parallel_shifts", parallel_shifts,
         lambda rng: (rng.standard_normal(8), rng.standard_normal(8))),
]


# The cases numba compiles (harness.ALL_KERNELS: all): slices_of_expressions, the one case
# of the width-1 derivative tests whose tape grows while it is written (numba tape.py's
# `_grow` of a tape sized at run time); np.diff and np.roll otherwise lower to loops over
# slices whose numba code the kept numba cases of the other width-1 derivative tests
# generate (tests/numba_cases.py, `python -m tests.numba_cover "tests.numba_cases:cases()"`).
# Every case runs on the interpreter against numba.njit.
ON_NUMBA = ("slices_of_expressions",)


@on_backends(CASES, fast_on_numba=(), numba=ON_NUMBA)
def test_differences_and_rolls_match_numba_and_finite_differences(case, backend):
    check_construct(case, backend)


# (numba: rolls above; the parallel loops are those tests/parallel compiles)
@on_backends(NUMPY_CASES, numba=())
def test_along_axes_and_in_parallel_match_numpy_and_finite_differences(case, backend):
    args = case.make_args(np.random.default_rng(5))
    got = as_outputs(run_on(case.kernel, backend, args))
    assert relative_error(got, as_outputs(case.kernel.py_func(*args))) <= 1e-12
    check_case(case, backend)


def store_back(u, v, k):
    u[1:] = np.diff(u)
    v[:] = np.roll(v, k)
    u[:-1] += np.roll(u[1:], 1)


@pytest.mark.parametrize("backend", INTERP_FAST)
@pytest.mark.parametrize("k", [1, -3, 11, 0])
def test_a_store_into_the_array_read_sees_its_old_values(backend, k):
    """NumPy computes np.diff and np.roll into new arrays before the store: the store may not
    read elements it has already written."""
    u, v = np.arange(6.0) ** 2, np.arange(5.0)
    want_u, want_v = u.copy(), v.copy()
    store_back(want_u, want_v, k)
    ad.kernel(store_back, backend=backend)(u, v, k)
    np.testing.assert_array_equal(u, want_u)
    np.testing.assert_array_equal(v, want_v)


def short(u, k):
    return np.sum(np.diff(u)) + np.sum(np.diff(u, 3)) + np.sum(np.roll(u, k)) + \
        np.diff(u).shape[0] + np.roll(u, k).shape[0]


@pytest.mark.parametrize("backend", INTERP_FAST)
@pytest.mark.parametrize("n", [0, 1, 2])
def test_short_and_empty_arrays(backend, n):
    """A difference of an axis of at most one element is empty (of three: for n=3); a roll
    of an empty array is empty."""
    u = np.arange(1.0, n + 1.0)
    assert ad.kernel(short, backend=backend)(u, 5) == short(u, 5)


def diff_of_bools(u):
    return np.sum(np.diff(u > 0.0))


def roll_without_axis(a):
    return np.sum(np.roll(a, 1))


def diff_of_order_zero(u):
    return np.sum(np.diff(u, 0))


def roll_by_a_float(u):
    return np.sum(np.roll(u, 1.5))


@pytest.mark.parametrize("fn, words", [
    (diff_of_bools, "np.diff of a boolean array"),
    (roll_without_axis, "np.roll of a 2-D array without an axis"),
    (diff_of_order_zero, "np.diff with an order n that is not an integer literal of at least 1"),
    (roll_by_a_float, "a shift of np.roll that is not an integer")])
def test_what_is_not_supported_is_refused_at_its_line(fn, words):
    arg = np.ones((3, 3)) if fn is roll_without_axis else np.ones(4)
    with pytest.raises(ad.UnsupportedConstruct, match=words) as info:
        ad.kernel(fn, backend="interp")(arg)
    assert f"test_differences.py:{fn.__code__.co_firstlineno + 1}:" in str(info.value)
