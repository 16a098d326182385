"""Tape sizes computed from loop bounds the caller controls: where the numba backend sizes a
tape before its loops run, from a bound on each loop's trips, a product past 2**63 bytes is a
MemoryError naming the loops' file:line and the counts, never a short buffer the kernel then
writes past (it wrapped around to a few entries and the process died of SIGSEGV). The
interpreter keeps its tape in lists that grow, so it needs no size and gives the answer.
Run as a script, this file takes a gradient (`kernel backend sizes...`) in a process of its
own, so that a crash fails the test instead of killing pytest."""
import inspect
import math
import subprocess
import sys

import numpy as np
import pytest

import hpcad as ad

# inner loop range(max(i, m - k), m): k trips, but only `m` is known before the loops run,
# so the tape is sized for n x m entries; 3 x M wraps around to 2 in int64 arithmetic
M = (2**64 + 2) // 3
K = 200_000


@ad.kernel
def windowed_sum(x, n, m, k):
    s = 0.0
    for i in range(n):
        for j in range(max(i, m - k), m):
            s = s + math.sin(s * x[0] + x[1])
    return s


@ad.kernel
def sparse_rows(x, y, m):
    """Each parallel iteration saves values in an inner loop of m trips: its block of the
    tape is sized m, the tape 3 x m (`tape.reserve`, checkpoint/tape.py)."""
    for i in ad.prange(x.shape[0]):
        for j in range(m):
            if j < 2:
                y[i] = y[i] + math.sin(x[i] * y[i])
    s = 0.0
    for i in range(x.shape[0]):
        s += y[i]
    return s


def gradient(name: str, backend: str, *sizes: int) -> np.ndarray:
    if name == "windowed_sum":
        return ad.grad(windowed_sum, argnums=0, backend=backend)(np.array([0.25, 0.5]), *sizes)
    x, y = np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0])
    return ad.grad(sparse_rows, argnums=0, backend=backend)(x, y, *sizes)


def _run(name: str, *sizes: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, __file__, name, "numba", *map(str, sizes)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("kernel", "sizes"), [(windowed_sum, (3, M, K)), (sparse_rows, (M,))])
@pytest.mark.slow
def test_overflowing_tape_size_is_a_memory_error_on_numba(kernel, sizes):
    done = _run(kernel.__name__, *sizes)
    assert done.returncode == 1, f"exit {done.returncode}: {done.stderr[-2000:]}"
    source, first = inspect.getsourcelines(kernel.py_func)
    line = next(first + n for n, text in enumerate(source) if "for i in" in text)
    assert "MemoryError" in done.stderr
    assert f"test_tape_sizes.py:{line}: the tape" in done.stderr
    assert f"3 x {M} entries of 8 bytes" in done.stderr


def test_interpreter_runs_the_same_loops_without_a_tape_size():
    """The same iterations (3 x 200 trips) with a bound that overflows and one that does
    not: the interpreter's gradient does not depend on the bound, and is the numba one's."""
    k = 200
    small = gradient("windowed_sum", "numba", 3, k + 5, k)
    assert np.array_equal(gradient("windowed_sum", "interp", 3, M, k), small)
    h, x = 1e-6, np.array([0.25, 0.5])
    fd = [(windowed_sum(x + h * e, 3, k + 5, k) - windowed_sum(x - h * e, 3, k + 5, k)) / (2 * h)
          for e in np.eye(2)]
    np.testing.assert_allclose(small, fd, rtol=1e-6)


if __name__ == "__main__":
    print(gradient(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])))
