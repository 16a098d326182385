"""A parallel loop storing at k * i + c (k >= 1), each element by its own iteration, is race
free (passes/race.py: _strided_owner): array statements into strided slices under
`@kernel(parallel=True)` (`B[::2] = B[::2] * c`, `B[1::3] = ...`, rows of a prange's
`B[i, ::2] = ...`) were refused as races of hpcad's own loops. Values against the plain
Python function, gradients against central differences; a loop whose iterations do meet
(`out[2 * i]` and `out[i]`) is still refused."""
import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.passes.race import RaceError
from tests.ad.harness import BACKENDS


def every_other(B, c):
    B[::2] = B[::2] * c
    B[1::3] = B[1::3] * c + 1.0
    return np.sum(B * B)


def strided_rows(A, c):
    B = A.copy()
    for i in numba.prange(B.shape[0]):
        B[i, ::2] = B[i, ::2] * c
        B[i, 1::2] += 0.5
    return np.sum(B * B)


def meeting(x, out):
    for i in numba.prange(x.shape[0] // 2):
        out[2 * i] = x[i]
        out[i] = x[i] * 2.0
    return np.sum(out)


def fd_gradient(f, x, c, h=1e-6):
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (f(x + e, c) - f(x - e, c)) / (2 * h)
    return g


CASES = [(every_other, (11,)), (strided_rows, (4, 7))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn, shape", CASES, ids=[f.__name__ for f, _ in CASES])
def test_strided_stores_of_own_elements_run_in_parallel(fn, shape, backend):
    x = np.random.default_rng(5).standard_normal(shape)
    k = ad.kernel(fn, parallel=True, backend=backend)
    got, expected = x.copy(), x.copy()
    assert k(got, 0.7) == pytest.approx(fn(expected, 0.7), rel=1e-13)
    assert np.allclose(got, expected, rtol=1e-15)
    g = ad.grad(k)(x, 0.7)
    assert np.allclose(g, fd_gradient(fn, x, 0.7), rtol=1e-6, atol=1e-8)


def test_iterations_meeting_at_a_strided_store_still_race():
    with pytest.raises(RaceError, match="race on array 'out'"):
        ad.kernel(meeting, backend="interp")(np.ones(8), np.zeros(8))
