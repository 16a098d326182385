"""np.sort, np.argsort, a.sort(), a.argsort() and np.median of vectors in kernels
(hpcad/frontend/library.py: a merge sort of indices written with loops, inlined): values equal
numba.njit's (ties, NaN, integers, empty vectors), derivatives match central finite
differences, forward against reverse, on both backends, inside a prange too; an argsort
whose order equal elements would decide stops at its line; other forms are refused there."""
import numba
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import check_case, njit_of, on_backends
from tests.ad.kernels import Case


def weighted_sorted(x):
    y = np.sort(x)
    s = 0.0
    for k in range(y.shape[0]):
        s += (k + 1) * y[k]
    return s


def by_order(x):
    o = np.argsort(x, kind="mergesort")
    return o, x[o[0]] * 5.0 + x[o[-1]]


def sorted_in_place(x):
    y = x.copy()
    y.sort()
    return y


def medians(x):
    return np.median(x), np.median(x[1:])


def method_order(x):
    return x.argsort(kind="stable")


RNG = np.random.default_rng(4)
VECTORS = {"random": RNG.standard_normal(11), "ties": np.array([2.0, 1.0, 2.0, 0.5, 1.0, 2.0]),
           "nan": np.array([1.0, np.nan, -0.5, 3.0, np.nan]), "ints": RNG.integers(-3, 4, 9),
           "one": np.array([0.25]), "empty": np.empty(0)}


# numba compiles the two that generate what the others do not: the order with its tie
# check and an in-place store (every function is the same merge sort of indices)
@pytest.mark.parametrize("fn, backend", [
    *((fn, "interp") for fn in (np.sort, by_order, sorted_in_place, medians, method_order)),
    *(pytest.param(fn, "numba", marks=pytest.mark.slow) for fn in (by_order, sorted_in_place))],
    ids=["sort", "argsort", "a.sort", "median", "a.argsort", "argsort-numba", "a.sort-numba"])
def test_values_equal_numbas(backend, fn):
    if fn is np.sort:
        def fn(x):
            return np.sort(x)
    for name, x in VECTORS.items():
        if fn is by_order and x.size == 0:
            continue   # x[o[0]] of nothing
        got, expected = ad.kernel(fn, backend=backend)(x.copy()), njit_of(fn)(x.copy())
        if fn is medians and name == "nan":
            expected = (np.nan, np.nan)   # NumPy's; numba's median skips a NaN (1.0, 1.25)
        for g, e in zip(*(np.atleast_1d(*v) if not isinstance(v, tuple) else v
                          for v in (got, expected)), strict=True):
            np.testing.assert_array_equal(g, e, err_msg=name)
            assert np.asarray(g).dtype == np.asarray(e).dtype, name


def default_order(x):
    o = np.argsort(x)
    return x[o[1]]


def test_a_default_argsort_of_equal_elements_stops_at_its_line():
    """NumPy's and numba's default (quicksort) order equal elements as their algorithm
    falls; hpcad's merge sort keeps their order, which would differ silently from numba's:
    distinct elements give numba's order, equal ones stop the kernel."""
    k = ad.kernel(default_order, backend="interp")
    x = np.array([0.3, -1.0, 2.0, 0.1])
    assert k(x) == njit_of(default_order)(x)
    with pytest.raises(ad.KernelAssertionError, match=r"test_sort.py:\d+: np.argsort: two "
                       r"elements are equal.*kind=\"mergesort\""):
        k(np.array([0.3, 1.0, 0.3]))


@ad.kernel
def sorted_weights(x, w):
    y = np.sort(x * w)
    o = np.argsort(x, kind="mergesort")
    s = 0.0
    for k in range(y.shape[0]):
        s += (k + 1.5) * y[k] + x[o[k]] * w[k]
    return s + np.median(x) ** 2


@ad.kernel(parallel=True)
def row_medians(a, out):
    for i in numba.prange(a.shape[0]):
        r = np.sort(a[i])
        out[i] = r[0] * r[-1] + np.median(a[i])
    return np.sum(out * out)


CASES = [Case("sorted_weights", sorted_weights,
              lambda rng: (rng.standard_normal(9), rng.standard_normal(9))),
         Case("row_medians", row_medians,
              lambda rng: (rng.standard_normal((4, 6)), np.zeros(4)))]


@on_backends(CASES, numba=("sorted_weights",))
def test_derivatives_match_finite_differences(case, backend):
    """Away from ties the sort is a permutation: its derivative moves each element's
    adjoint to the element's place (the merge sort's comparisons carry none)."""
    check_case(case, backend)


def sort_2d(a):
    return np.sort(a)


def sort_axis(x):
    return np.sort(x, axis=None)


def sort_kind(x):
    return np.argsort(x, kind="introsort")


def median_2d(a):
    return np.median(a)


@pytest.mark.parametrize("fn, arg, words", [
    (sort_2d, np.ones((2, 3)), r"np.sort of a 2-D array.*sort each row as a vector"),
    (sort_axis, np.ones(3), r"np.sort with axis=None"),
    (sort_kind, np.ones(3), r"np.argsort with kind='introsort'.*mergesort"),
    (median_2d, np.ones((2, 3)), r"np.median of a 2-D array")],
    ids=["2-D", "axis", "kind", "median 2-D"])
def test_other_forms_are_refused_at_their_line(fn, arg, words):
    with pytest.raises(ad.UnsupportedConstruct, match=r"test_sort.py:\d+: .*" + words):
        ad.kernel(fn, backend="interp")(arg)
