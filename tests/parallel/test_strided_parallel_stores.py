"""A parallel loop storing at k * i + c (k >= 1), each element by its own iteration, is race
free (passes/race.py: _strided_owner): array statements into strided slices under
`@kernel(parallel=True)` (`B[::2] = B[::2] * c`, `B[1::3] = ...`, rows of a prange's
`B[i, ::2] = ...`) were refused as races of hpcad's own loops. Values against the plain
Python function, gradients against central differences; a loop whose iterations do meet
(`out[2 * i]` and `out[i]`) is still refused. So is a store at c - k * i (_reversed_owner:
a reversed view written in place, `r = B[::-1]; r *= c`, a flip, `B[n - 1 - i]` in a prange),
which was refused (also a slice with explicit bounds: `t[2:1:-1] *= c`, whose index at
the last iteration is min(1, n - 1) + 1), unless an iteration's index can go below 0
(`B[n - 2 - i]` over range(n) meets iteration 0 at B[-1]) or the loop's length is not tied
to the index."""
import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.passes.race import RaceError
from tests.ad.harness import BACKENDS, on_numba


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


def reversed_in_place(B, c):
    r = B[::-1]
    r *= 1.0 + c * np.tanh(B[::-1] * r)
    q = np.flip(B[1:])
    q[:] = q * c + 0.5 * q * q
    t = B[::-2]
    t *= 1.0 + c * np.sin(t)
    B[-2::-3] = B[-2::-3] * c + 0.25
    return np.sum(B * B * B)


def reversed_prange(B, c):
    n = B.shape[0]
    for i in numba.prange(n):
        B[n - 1 - i] = B[n - 1 - i] * c + 0.3 * B[n - 1 - i] ** 2
    for i in numba.prange(1, n + 1):
        B[n - i] += c * B[n - i] ** 3
    return np.sum(B * B * B)


def reversed_past_the_start(B, c):
    n = B.shape[0]
    for i in numba.prange(n):
        B[n - 2 - i] = B[n - 2 - i] * c      # i = n - 1 stores B[-1], iteration 0's element
    return np.sum(B)


def reversed_over_another_length(B, m, c):
    n = B.shape[0]
    for i in numba.prange(m):
        B[n - 1 - i] = B[n - 1 - i] * c     # m > n: indices below 0
    return np.sum(B)


def reversed_strided_too_far(B, c):
    n = B.shape[0]
    for i in numba.prange((n + 3) // 2):
        B[n - 1 - 2 * i] = B[n - 1 - 2 * i] * c    # the last i stores below 0
    return np.sum(B)


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


def reversed_with_bounds(B, c):
    """Reversed slices with explicit bounds: from min(2, n - 1) down to above min(1, n - 1)
    (the lengths are differences of clipped bounds, the index at the last element one of
    them plus 1)."""
    t = B * 1.0
    t[2:1:-1] *= c
    t[-2:1:-1] = t[-2:1:-1] * c + 0.5
    t[7:0:-3] *= 1.0 + c * np.sin(t[7:0:-3])
    return np.sum(t * t * B)


CASES = [(every_other, (11,)), (strided_rows, (4, 7)), (reversed_in_place, (9,)),
         (reversed_prange, (8,)), (reversed_with_bounds, (9,))]
# The cases numba compiles (harness.ALL_KERNELS: all), at 2 threads where NUMBA_NUM_THREADS
# says so: strided stores in a prange and in hpcad's own parallel loops (strided_rows) and
# reversed ones, views and flips written in place (reversed_in_place). Together they run every
# line of the numba backend's code generation, and call every function in the generated
# code, that all five do (`python -m tests.numba_cover "tests.parallel.
# test_strided_parallel_stores:[Case(f.__name__, ad.kernel(f, parallel=True), lambda rng,
# s=s: (rng.standard_normal(s), 0.7)) for f, s in CASES]"`, Case from tests.ad.kernels);
# the others run on the interpreter, where the race check that accepts them is the same.
ON_NUMBA = ("strided_rows", "reversed_in_place")


@pytest.mark.parametrize("fn, shape, backend", [
    pytest.param(fn, shape, backend, id=f"{fn.__name__}-{backend}")
    for fn, shape in CASES for backend in BACKENDS
    if backend == "interp" or on_numba(fn.__name__, ON_NUMBA)])
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


def test_reversed_stores_below_zero_or_past_the_loop_still_race():
    with pytest.raises(RaceError, match="race on array 'B'"):
        ad.kernel(reversed_past_the_start, backend="interp")(np.ones(8), 0.5)
    with pytest.raises(RaceError, match="race on array 'B'"):
        ad.kernel(reversed_over_another_length, backend="interp")(np.ones(8), 10, 0.5)
    with pytest.raises(RaceError, match="race on array 'B'"):
        ad.kernel(reversed_strided_too_far, backend="interp")(np.ones(8), 0.5)
