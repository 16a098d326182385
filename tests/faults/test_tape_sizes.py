"""Tape sizes computed from loop bounds the caller controls: where the numba backend sizes a
tape before its loops run, from a bound on each loop's trips, a product past 2**63 bytes is a
MemoryError naming the loops' file:line and the counts, never a short buffer the kernel then
writes past (it wrapped around to a few entries and the process died of SIGSEGV). The
interpreter keeps its tape in lists that grow, so it needs no size and gives the answer.
Run as a script, this file takes a gradient (`backend n m k`) in a process of its own, so
that a crash fails the test instead of killing pytest."""
import math
import subprocess
import sys

import numpy as np

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


def gradient(backend: str, n: int, m: int, k: int) -> np.ndarray:
    g = ad.grad(windowed_sum, argnums=0, backend=backend)
    return g(np.array([0.25, 0.5]), n, m, k)


def _run(backend: str, n: int, m: int, k: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, __file__, backend, str(n), str(m), str(k)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_overflowing_tape_size_is_a_memory_error_on_numba():
    done = _run("numba", 3, M, K)
    assert done.returncode == 1, f"exit {done.returncode}: {done.stderr[-2000:]}"
    line = windowed_sum.py_func.__code__.co_firstlineno + 3    # the outer loop (after @, def, s =)
    assert "MemoryError" in done.stderr
    assert f"test_tape_sizes.py:{line}: the tape" in done.stderr
    assert f"3 x {M} entries of 8 bytes" in done.stderr


def test_interpreter_runs_the_same_loops_without_a_tape_size():
    """The same iterations (3 x 200 trips) with a bound that overflows and one that does
    not: the interpreter's gradient does not depend on the bound, and is the numba one's."""
    k = 200
    small = gradient("numba", 3, k + 5, k)
    assert np.array_equal(gradient("interp", 3, M, k), small)
    h, x = 1e-6, np.array([0.25, 0.5])
    fd = [(windowed_sum(x + h * e, 3, k + 5, k) - windowed_sum(x - h * e, 3, k + 5, k)) / (2 * h)
          for e in np.eye(2)]
    np.testing.assert_allclose(small, fd, rtol=1e-6)


if __name__ == "__main__":
    print(gradient(sys.argv[1], *map(int, sys.argv[2:])))
