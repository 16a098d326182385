"""np.tile and np.repeat in kernels (hpcad/frontend/construct.py: read lazily, through an
index modulo a's lengths and an index divided by the count): the primal equals numba.njit
of the same source for np.repeat, NumPy's for np.tile and `axis=` (numba has neither),
the derivatives match central
finite differences, forward against reverse, on both backends; a store into the array they
read sees its old values; a negative count stops the kernel, as NumPy raises."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST, as_outputs, check_case, on_backends, relative_error
from tests.ad.kernels import Case
from tests.frontend.construct_check import check_construct, run_on


@ad.kernel
def repeats(x, a, n):
    r = np.repeat(x, 3)
    w = np.repeat(a * a, n)          # a 2-D array's elements in C order
    return np.sum(r * np.cos(r)) + np.sum(w * x[0]) + np.repeat(x, n)[n + 1] * x[1]


@ad.kernel
def tiles(x, a, n):
    t = np.tile(x, (n, 1))           # rows of x: pairwise differences with its transpose
    d = t - t.T
    return np.sum(d * d) + np.sum(np.tile(a, 2) ** 2) + np.tile(x, 2)[5] \
        + np.sum(np.tile(a, (2, 1, 3)) * a[0, 1]) + np.sum(np.tile(a * x[:3], (n, 1)))


@ad.kernel
def along_axes(a, x):
    q = np.repeat(a, 2, axis=1)
    p = np.repeat(a, 3, axis=0)
    s = np.repeat(a, 2, -1)
    return np.sum(np.sin(q) * np.tile(x, (2, 2))) + np.sum(p * p * p) + np.sum(s[:, ::2] * a)


def _vector_matrix_count(rng):
    return rng.standard_normal(4), rng.standard_normal((2, 3)), 4


CASES = [Case("repeats", repeats, _vector_matrix_count)]
# numba has no np.tile, and its np.repeat takes no axis: these compare with NumPy
NUMPY_CASES = [Case("tiles", tiles, _vector_matrix_count),
               Case("along_axes", along_axes,
                    lambda rng: (rng.standard_normal((2, 3)), rng.standard_normal(3)))]


@on_backends(CASES, numba=("repeats",))
def test_tile_and_repeat_match_numba_and_finite_differences(case, backend):
    check_construct(case, backend)


@on_backends(NUMPY_CASES, numba=())
def test_tile_and_repeat_along_an_axis_match_numpy_and_finite_differences(case, backend):
    args = case.make_args(np.random.default_rng(5))
    got = as_outputs(run_on(case.kernel, backend, args))
    assert relative_error(got, as_outputs(case.kernel.py_func(*args))) <= 1e-12
    check_case(case, backend)


def store_back(u, n):
    u[:] = np.repeat(u[:2], n)
    u[1:] = np.tile(u[:-1], 1)
    y = np.empty(u.shape[0] * (1 + n))
    y[0:u.shape[0]] = u
    y[u.shape[0]:] = np.repeat(u, n)
    return y


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_a_store_into_the_array_read_sees_its_old_values(backend):
    u = np.arange(4.0) ** 2
    want = u.copy()
    y = store_back(want, 2)
    np.testing.assert_array_equal(ad.kernel(store_back, backend=backend)(u, 2), y)
    np.testing.assert_array_equal(u, want)


def counts(x, n, m):
    return np.sum(np.tile(x, (n, 2))) + np.repeat(x, m).shape[0]


@pytest.mark.parametrize("n, m", [(0, 0), (2, 0), (0, 3)])
def test_zero_counts_give_empty_arrays(n, m):
    x = np.arange(3.0)
    assert ad.kernel(counts, backend="interp")(x, n, m) == counts(x, n, m)


@pytest.mark.parametrize("n, m", [(-1, 1), (1, -2)])
def test_a_negative_count_stops_the_kernel(n, m):
    with pytest.raises(ValueError):
        counts(np.ones(3), n, m)
    with pytest.raises(ad.KernelAssertionError, match="negative count of repetitions") as info:
        ad.kernel(counts, backend="interp")(np.ones(3), n, m)
    assert f"test_tile_repeat.py:{counts.__code__.co_firstlineno + 1}:" in str(info.value)


def per_element_counts(x, r):
    return np.sum(np.repeat(x, r))


def float_reps(x):
    return np.sum(np.tile(x, 1.5))


@pytest.mark.parametrize("fn, args, words", [
    (per_element_counts, (np.ones(3), np.array([1, 2, 3])), "np.repeat with a count per element"),
    (float_reps, (np.ones(3),), "repetitions of np.tile that are not integers")])
def test_other_forms_are_refused_at_their_line(fn, args, words):
    with pytest.raises(ad.UnsupportedConstruct, match=words) as info:
        ad.kernel(fn, backend="interp")(*args)
    assert f"test_tile_repeat.py:{fn.__code__.co_firstlineno + 1}:" in str(info.value)
