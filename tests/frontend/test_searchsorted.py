"""np.searchsorted(a, v, side=) in kernels (hpcad/frontend/library.py), as numba has it: the
index of a number or of each element of a vector in a sorted vector, equal to numba.njit's
of the same source (ties, NaN in the array and as the value, infinities, an integer array,
an empty array, both sides, side given by position); a Markov chain's path drawn from
uniforms with it (QuantEcon's `_generate_sample_paths`); a piecewise-linear interpolation
that finds its interval with it differentiates through the values (central differences);
what numba's does not take is refused at its line."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.errors import UnsupportedConstruct
from tests.ad.harness import njit_of


def left(a, v):
    return np.searchsorted(a, v)


def right(a, v):
    return np.searchsorted(a, v, side="right")


def right_by_position(a, v):
    return np.searchsorted(a, v, "right")


ARRAYS = [np.array([]), np.array([1.0]), np.array([0.1, 0.4, 0.4, 0.4, 0.9]),
          np.array([0.0, 1.0, np.nan, np.nan]), np.arange(17.0), np.array([1, 3, 3, 7])]
VALUES = [-1.0, 0.0, 0.1, 0.4, 0.5, 0.9, 1.0, 3.0, 7.0, 20.0, np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("fn", [left, right, right_by_position])
def test_indices_equal_numbas(fn):
    k = ad.kernel(fn, backend="interp")
    want_fn = njit_of(fn)
    for a in ARRAYS:
        for v in VALUES:
            assert k(a, v) == want_fn(a, v), (a, v)
        vs = np.array(VALUES)
        got = k(a, vs)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want_fn(a, vs))


def sample_paths(cdfs, init, uniforms, out):
    reps, length = out.shape
    n = cdfs.shape[0]
    for i in range(reps):
        out[i, 0] = init[i]
        for t in range(length - 1):
            k = np.searchsorted(cdfs[out[i, t]], uniforms[i, t], side="right")
            if k == n:
                k = np.searchsorted(cdfs[out[i, t]], cdfs[out[i, t], n - 1], side="left")
            out[i, t + 1] = k


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
def test_markov_paths_equal_numbas(backend):
    rng = np.random.default_rng(4)
    p = rng.uniform(0.0, 1.0, (4, 4))
    p[1, 3] = 0.0
    cdfs = np.cumsum(p / p.sum(axis=1)[:, None], axis=1)
    init = np.array([0, 1, 3])
    uniforms = rng.uniform(0.0, 1.0, (3, 30))
    uniforms[0, 0] = 1.0   # past every row's last value: the last state with probability
    got = np.zeros((3, 31), np.int64)
    want = np.zeros((3, 31), np.int64)
    ad.kernel(sample_paths, backend=backend)(cdfs, init, uniforms, got)
    njit_of(sample_paths)(cdfs, init, uniforms, want)
    np.testing.assert_array_equal(got, want)


def linear_on_grid(grid, values, x):
    s = 0.0
    for xi in x:
        j = np.searchsorted(grid, xi, side="right") - 1
        j = min(max(j, 0), grid.shape[0] - 2)
        w = (xi - grid[j]) / (grid[j + 1] - grid[j])
        s += (1.0 - w) * values[j] + w * values[j + 1]
    return s * s


def test_interval_found_by_it_differentiates_through_the_values():
    grid = np.array([0.0, 0.5, 1.5, 2.0, 3.5])
    values = np.array([1.0, -0.5, 2.0, 0.3, 1.1])
    x = np.array([0.2, 0.7, 1.9, 3.0, 1.2])
    g_grid, g_values, g_x = ad.grad(linear_on_grid, argnums=(0, 1, 2), backend="interp")(
        grid, values, x)
    for arg, g in ((0, g_grid), (1, g_values), (2, g_x)):
        args = [grid, values, x]
        fd = np.zeros(args[arg].shape)
        for i in range(fd.size):
            hi = [a.copy() for a in args]
            lo = [a.copy() for a in args]
            hi[arg][i] += 1e-6
            lo[arg][i] -= 1e-6
            fd[i] = (linear_on_grid(*hi) - linear_on_grid(*lo)) / 2e-6
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def with_sorter(a, v):
    return np.searchsorted(a, v, sorter=np.arange(a.shape[0]))


def side_variable(a, v, s):
    return np.searchsorted(a, v, side=s)


def of_a_matrix(a, v):
    return np.searchsorted(a, v)


@pytest.mark.parametrize("fn, args, words", [
    (with_sorter, (np.arange(3.0), 1.0), "sorter="),
    (side_variable, (np.arange(3.0), 1.0, 1), "side that is not 'left' or 'right'"),
    (of_a_matrix, (np.zeros((2, 2)), 1.0), "2-D array"),
])
def test_refused_at_its_line(fn, args, words):
    with pytest.raises(UnsupportedConstruct, match=words) as e:
        ad.kernel(fn, backend="interp")(*args)
    assert "test_searchsorted.py" in str(e.value)
