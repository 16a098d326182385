"""np.histogram(a, bins, range=) in kernels (hpcad/frontend/construct.py), as numba has it:
counts and edges equal numba.njit's of the same source (NaNs skipped, the largest element
in the last bin, an integer or 2-D array, a range that leaves elements out), in serial and
parallel=True kernels; the edges differentiate through the array's extremes and the counts
are constants (central finite differences of a loss using both); what numba's does not take
is refused at its line."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import njit_of


def counts_and_edges(a, n):
    return np.histogram(a, n)


def in_range(a, n, lo, hi):
    counts, edges = np.histogram(a, bins=n, range=(lo, hi))
    return counts, edges


ARRAYS = {
    "normal": np.random.default_rng(0).standard_normal(40),
    "nan_and_ties": np.array([1.0, np.nan, 2.0, 3.0, 3.0, 1.0]),
    "all_equal": np.array([2.0, 2.0, 2.0]),
    "integers": np.random.default_rng(1).integers(-5, 9, 30),
    "matrix": np.random.default_rng(2).standard_normal((5, 6)),
}


@pytest.mark.parametrize("name, backend", [
    *((name, "interp") for name in sorted(ARRAYS)),
    *(pytest.param(name, "numba", marks=pytest.mark.slow)
      for name in ("nan_and_ties", "integers", "matrix"))])
def test_counts_and_edges_equal_numbas(name, backend):
    a = ARRAYS[name]
    for fn, args in ((counts_and_edges, (a, 7)), (in_range, (a, 4, -1.0, 2.0))):
        got = ad.kernel(fn, backend=backend)(*args)
        want = njit_of(fn)(*args)
        assert got[0].dtype == want[0].dtype and np.array_equal(got[0], want[0]), (got, want)
        np.testing.assert_array_equal(got[1], want[1])


@ad.kernel(parallel=True)
def parallel_weighted(x, w):
    counts, edges = np.histogram(x, 5)
    centers = 0.5 * (edges[1:] + edges[:-1])
    return np.sum(counts * centers * w) + np.sum(x * x)


def _central(fn, args, k, v, h=1e-6):
    plus, minus = list(args), list(args)
    plus[k], minus[k] = args[k] + h * v, args[k] - h * v
    return (fn(*plus) - fn(*minus)) / (2 * h)


@pytest.mark.parametrize("backend", ["interp"])   # (numba: the primal tests above)
def test_edges_differentiate_and_counts_are_constants(backend):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(30), rng.standard_normal(5)
    assert parallel_weighted.py_func(x, w) == pytest.approx(
        ad.kernel(parallel_weighted.py_func, parallel=True, backend=backend)(x, w), rel=1e-13)
    gx, gw = ad.grad(parallel_weighted, argnums=(0, 1), backend=backend)(x, w)
    for k, g in ((0, gx), (1, gw)):
        v = rng.standard_normal(g.shape)
        fd = _central(parallel_weighted.py_func, (x, w), k, v)
        assert float(np.dot(g, v)) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def weighted(a, w):
    return np.histogram(a, 4, weights=w)


def edges_given(a, e):
    return np.histogram(a, e)


def density(a):
    return np.histogram(a, 4, density=True)


@pytest.mark.parametrize("fn, words", [
    (weighted, "the keyword `weights=` of np.histogram"),
    (edges_given, "np.histogram with bins that are not a count"),
    (density, "the keyword `density=` of np.histogram")])
def test_what_numbas_histogram_does_not_take_is_refused_at_its_line(fn, words):
    with pytest.raises(ad.UnsupportedConstruct, match=words) as info:
        ad.kernel(fn, backend="interp")(np.ones(4), np.ones(4)) if fn is not density else \
            ad.kernel(fn, backend="interp")(np.ones(4))
    assert f"test_histogram.py:{fn.__code__.co_firstlineno + 1}:" in str(info.value)


@pytest.mark.parametrize("a, n, words", [
    (np.ones(3), 0, "a count of bins that is not positive"),
    (np.zeros(0), 3, "the array is empty, or all NaN")])
def test_bad_counts_and_empty_arrays_raise(a, n, words):
    with pytest.raises(ad.KernelAssertionError, match=words):
        ad.kernel(counts_and_edges, backend="interp")(a, n)
