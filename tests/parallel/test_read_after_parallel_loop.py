"""A value read straight after a parallel loop (`return v[0] + v[n // 2]`) sees what the
loop wrote. numba's parfor pass judged a prange body's writes by its item stores only, and
the numba backend runs loop bodies as calls (outlined chunks), so it moved the parallel
loop below the read: the read returned the array's old value, silently (numba backend only;
backend/numba/intrinsics.py: parallel_fence)."""
import numba
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import BACKENDS


def two_loops_then_read(u, v):
    n = u.shape[0]
    out = np.zeros(n)
    for i in numba.prange(n):
        out[i] = u[i] * u[i]
    for i in numba.prange(1, n - 1):
        v[i] = out[i - 1] + 2.0 * out[i + 1]
    return v[1] + v[n // 2]


def overwrite_then_read(u, c):
    t = u * c
    u[:] = t + 1.0
    return u[0] * u[1]


def shifted_then_read(u, c):
    u[1:] = u[:-1] * c
    return u[1]


CASES = [(two_loops_then_read, False, 2), (overwrite_then_read, True, 1),
         (shifted_then_read, True, 1)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn, parallel, n_arrays", CASES, ids=[c[0].__name__ for c in CASES])
def test_a_read_after_a_parallel_loop_sees_its_writes(fn, parallel, n_arrays, backend):
    u = np.linspace(0.5, 2.0, 1001)
    args = (u, np.zeros_like(u)) if n_arrays == 2 else (u, 1.5)
    got = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
    expected = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
    k = ad.kernel(fn, parallel=parallel, backend=backend)
    assert k(*got) == pytest.approx(fn(*expected), rel=1e-14)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True)
               if isinstance(a, np.ndarray))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_of_a_read_after_a_parallel_loop(backend):
    u = np.linspace(0.5, 2.0, 41)
    k = ad.kernel(two_loops_then_read, backend=backend)
    g = ad.grad(k)(u, np.zeros_like(u))
    expected = np.zeros_like(u)
    n = u.size
    for i in (1, n // 2):          # v[i] = u[i-1]^2 + 2 u[i+1]^2
        expected[i - 1] += 2.0 * u[i - 1]
        expected[i + 1] += 4.0 * u[i + 1]
    assert np.allclose(g, expected, rtol=1e-13)
