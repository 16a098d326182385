"""np.interp in kernels (hpcad/frontend/library.py: a loop function inlined as a kernel call):
values equal numba.njit's (NumPy's algorithm) at points inside, outside and on the samples,
with repeated sample points, one sample, NaN and infinite points, integer arrays; the
derivatives in x, xp and fp match central finite differences, forward against reverse, on
both backends, in a prange body and a parallel=True kernel too; samples of other lengths
stop the kernel at the user's line."""
import numba
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST, check_case, njit_of, on_backends
from tests.ad.kernels import Case


def at_points(x, xp, fp):
    return np.interp(x, xp, fp)


def at_numbers(t, xp, fp):
    return np.interp(t, xp, fp) + 2.0 * np.interp(t * 0.5 - 1.0, xp, fp)


_RNG = np.random.default_rng(0)
_XP = np.sort(_RNG.uniform(0.0, 10.0, 8))
SAMPLES = {
    "increasing": (_XP, _RNG.standard_normal(8)),
    "repeated": (np.array([1.0, 2.0, 2.0, 3.0]), np.array([0.0, 1.0, 5.0, 2.0])),
    "one": (np.array([3.0]), np.array([7.0])),
    "integers": (np.arange(5), np.arange(5) ** 2),
}
POINTS = np.concatenate([_RNG.uniform(-2.0, 12.0, 12), _XP, [1.0, 2.0, 3.0],
                         [np.nan, -np.inf, np.inf]])


@pytest.mark.parametrize("name, backend", [
    *((name, "interp") for name in sorted(SAMPLES)),
    *(pytest.param(name, "numba", marks=pytest.mark.slow) for name in ("increasing", "one"))])
def test_values_equal_numbas(name, backend):
    xp, fp = SAMPLES[name]
    got = ad.kernel(at_points, backend=backend)(POINTS, xp, fp)
    np.testing.assert_array_equal(got, njit_of(at_points)(POINTS, xp, fp))
    for t in (0.3, 2.0, float(_XP[2]), 20.0, -1.0):
        assert ad.kernel(at_numbers, backend=backend)(t, xp, fp) == \
            njit_of(at_numbers)(t, xp, fp)


@ad.kernel
def table_loss(x, xp, fp, c):
    y = np.interp(x, xp, fp)
    return np.sum(y * y) + np.interp(c, xp, fp) * c


@ad.kernel(parallel=True)
def parallel_lookups(x, xp, fp):
    s = 0.0
    for i in numba.prange(x.shape[0]):
        s += np.interp(x[i], xp, fp) ** 2
    return s + np.sum(np.interp(x, xp, fp * fp))


def _tables(rng):
    xp = np.sort(rng.uniform(0.0, 10.0, 9))
    return rng.uniform(0.5, 9.5, 7), xp, rng.standard_normal(9)


CASES = [Case("table_loss", table_loss, lambda rng: (*_tables(rng), 4.3)),
         Case("parallel_lookups", parallel_lookups, _tables)]


# numba compiles the serial case (the parallel one's code is the same loops in a prange body,
# which tests/parallel compiles)
@on_backends(CASES, numba=("table_loss",))
def test_derivatives_match_finite_differences(case, backend):
    check_case(case, backend)


@pytest.mark.parametrize("backend", INTERP_FAST)
@pytest.mark.parametrize("xp, fp", [(np.arange(3.0), np.ones(4)), (np.zeros(0), np.zeros(0))])
def test_samples_of_other_lengths_stop_at_the_users_line(backend, xp, fp):
    with pytest.raises(ad.KernelAssertionError, match="np.interp: the sample points") as info:
        ad.kernel(at_points, backend=backend)(np.ones(2), xp, fp)
    assert f"test_interp.py:{at_points.__code__.co_firstlineno + 1}:" in str(info.value)


def with_left(x, xp, fp):
    return np.interp(x, xp, fp, left=0.0)


def of_a_matrix(x, xp, fp):
    return np.interp(x, xp, fp)


@pytest.mark.parametrize("fn, x, words", [
    (with_left, np.ones(3), "np.interp with left="),
    (of_a_matrix, np.ones((2, 2)), "np.interp at a 2-D array of points")])
def test_what_is_not_supported_is_refused_at_its_line(fn, x, words):
    with pytest.raises(ad.UnsupportedConstruct, match=words) as info:
        ad.kernel(fn, backend="interp")(x, np.arange(3.0), np.arange(3.0))
    assert f"test_interp.py:{fn.__code__.co_firstlineno + 1}:" in str(info.value)
