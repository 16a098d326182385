"""np.linalg.cholesky in kernels (hpcad/frontend/linalg.py: a loop function inlined as a
kernel call): the factor equals numba.njit's (LAPACK's) to rounding, in float64 and
float32; its derivatives match central finite differences, forward against reverse, on
both backends; a matrix that is not positive definite, or not square, stops the kernel
with an error at the user's line, and other dtypes and ranks are refused there."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST, check_case, njit_of, on_backends
from tests.ad.kernels import Case


def factor_in_place(a):
    a[:] = np.linalg.cholesky(a) + np.triu(a, k=1)


@ad.kernel
def factor_loss(b, w):
    n = b.shape[0]
    low = np.linalg.cholesky(b @ b.T + 3.0 * np.eye(n))
    return np.sum(low * w) + low[n - 1, n - 1] ** 2


def _spd(rng, n, dtype=np.float64):
    m = rng.standard_normal((n, n))
    return (m @ m.T + n * np.eye(n)).astype(dtype)


@pytest.mark.parametrize("dtype, rtol, backend", [
    (np.float64, 1e-12, "interp"), (np.float32, 1e-5, "interp"),
    pytest.param(np.float64, 1e-12, "numba", marks=pytest.mark.slow)])
def test_the_factor_equals_numbas(backend, dtype, rtol):
    a = _spd(np.random.default_rng(4), 6, dtype)
    got, want = a.copy(), a.copy()
    ad.kernel(factor_in_place, backend=backend)(got)
    njit_of(factor_in_place)(want)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


CASES = [Case("factor_loss", factor_loss,
              lambda rng: (rng.standard_normal((4, 4)), rng.standard_normal((4, 4))))]


@on_backends(CASES, numba=("factor_loss",))
def test_derivatives_match_finite_differences(case, backend):
    check_case(case, backend)


def not_square(a):
    return np.sum(np.linalg.cholesky(a))


def integers(a):
    return np.sum(np.linalg.cholesky(a))


def stacked(a):
    return np.sum(np.linalg.cholesky(a))


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_a_matrix_that_is_not_positive_definite_stops_at_the_users_line(backend):
    a = -_spd(np.random.default_rng(5), 4)
    with pytest.raises(ad.KernelAssertionError, match="not positive definite") as info:
        ad.kernel(factor_in_place, backend=backend)(a)
    assert f"test_cholesky.py:{factor_in_place.__code__.co_firstlineno + 1}:" in str(info.value)
    with pytest.raises(ad.KernelAssertionError, match="not square"):
        ad.kernel(not_square, backend=backend)(np.ones((2, 3)))


@pytest.mark.parametrize("fn, arg, words", [
    (integers, np.eye(3, dtype=np.int64), "of a matrix of int64"),
    (stacked, np.ones((2, 3, 3)), "of a 3-D array")])
def test_other_dtypes_and_ranks_are_refused_at_their_line(fn, arg, words):
    with pytest.raises(ad.UnsupportedConstruct, match=words) as info:
        ad.kernel(fn, backend="interp")(arg)
    assert f"test_cholesky.py:{fn.__code__.co_firstlineno + 1}:" in str(info.value)
