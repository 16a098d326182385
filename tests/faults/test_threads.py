"""One derivative called from several Python threads at once: the compiled code releases the
GIL, so each call in flight must have tape and snapshot buffers of its own. 4 threads x
1,000 gradient calls, each thread with its own input, must all be bitwise the serial result
(a shared buffer shows as a few percent of wrong gradients), and a single thread still reuses
one set of buffers across calls."""
import math
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import hpcad as ad

THREADS, CALLS, N, STEPS = 4, 1000, 24, 12


@ad.kernel
def nonlinear_steps(u, rate, nsteps):
    """A time loop whose steps save values for the reverse sweep (sin, exp of the state)."""
    n = u.shape[0]
    loss = 0.0
    for step in range(nsteps):
        for i in range(n):
            u[i] = u[i] + rate * math.sin(u[i]) * math.exp(-u[i] * u[i])
    for i in range(n):
        loss += u[i] * u[i]
    return loss


@ad.kernel
def parallel_steps(u, rate, nsteps):
    """The same loop with a parallel inner loop (each iteration saves into its own block)."""
    n = u.shape[0]
    loss = 0.0
    for step in range(nsteps):
        for i in ad.prange(n):
            u[i] = u[i] + rate * math.sin(u[i]) * math.exp(-u[i] * u[i])
    for i in range(n):
        loss += u[i] * u[i]
    return loss


# (kernel, argnums): the prange kernel's derivative in `rate` is a parallel sum, whose last
# bit depends on how numba's threads group it even in one thread, so only its array gradient
# is compared bitwise
KERNELS = {
    "tape": (nonlinear_steps, (0, 1)),
    "snapshots": (ad.checkpoint(nonlinear_steps, budget=N * 8 * 4), (0, 1)),  # an arena
    "prange": (parallel_steps, (0,)),
}


def _inputs(seed: int) -> tuple:
    u = np.random.default_rng(seed).uniform(-1.5, 1.5, N)
    return u, 0.3 + 0.01 * seed, STEPS


def _gradient(g, seed: int) -> np.ndarray:
    return np.hstack(g(*_inputs(seed)))


def wrong_calls(case: str, backend: str, calls: int) -> list[int]:
    """How many of `calls` gradient calls in each of THREADS threads, started together and
    each with its own input, differ from that input's serial gradient."""
    k, argnums = KERNELS[case]
    g = ad.grad(k, argnums=argnums, backend=backend)
    serial = {t: _gradient(g, t) for t in range(THREADS)}
    wrong = [0] * THREADS
    start = threading.Barrier(THREADS)

    def work(t):
        start.wait()
        for _ in range(calls):
            wrong[t] += not np.array_equal(_gradient(g, t), serial[t])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return wrong


@pytest.mark.parametrize("case, backend", [
    pytest.param(case, backend, marks=pytest.mark.slow)
    if backend == "numba" and case != "tape" else (case, backend)
    for case in sorted(KERNELS) for backend in ("numba", "interp")])
def test_concurrent_gradients_are_bitwise_the_serial_ones(case, backend):
    calls = CALLS if backend == "numba" else 10
    assert wrong_calls(case, backend, calls) == [0] * THREADS, \
        f"wrong gradients per thread (of {calls} calls each)"
    if case == "snapshots":
        assert KERNELS[case][0].last_policy.snapshots is not None


def test_parallel_kernels_take_turns_on_the_workqueue_layer():
    """numba's workqueue layer aborts the process when two parallel regions run at once:
    concurrent calls of a prange derivative wait for each other instead."""
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue", NUMBA_NUM_THREADS="2")
    done = subprocess.run([sys.executable, __file__, "prange", "50"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split() == ["workqueue", "0", "0", "0", "0"]


TAPE_BYTES = 3 * STEPS * N * 8   # sin, exp and the state saved per element and step


def _compiled_gradient(k):
    (compiled,) = [c for fn, c in k.compiled.values() if fn.name.endswith(".rev")]
    return compiled


def test_one_thread_reuses_one_set_of_buffers():
    k = ad.kernel(nonlinear_steps.py_func)
    g = ad.grad(k, argnums=(0, 1))
    g(*_inputs(0))
    compiled = _compiled_gradient(k)
    pointers = [t.ctypes.data for t in compiled.tapes]
    for seed in range(5):
        g(*_inputs(seed))
    assert [t.ctypes.data for t in compiled.tapes] == pointers
    assert compiled.held_bytes() == (TAPE_BYTES, 0)


def test_held_bytes_count_every_set_of_buffers():
    """After concurrent calls the function holds a set per call that ran at once, and says
    so (memory reports and budgets read held_bytes)."""
    k = ad.kernel(nonlinear_steps.py_func)
    g = ad.grad(k, argnums=(0, 1))
    g(*_inputs(0))
    compiled = _compiled_gradient(k)
    with compiled.buffers.checkout():   # a call in flight holds the first call's set
        g(*_inputs(1))                  # so this one makes a set of its own
        assert compiled.held_bytes() == (TAPE_BYTES, 0)
    assert compiled.held_bytes() == (2 * TAPE_BYTES, 0)
    g(*_inputs(2))
    assert compiled.held_bytes() == (2 * TAPE_BYTES, 0)


if __name__ == "__main__":
    import numba
    wrong = wrong_calls(sys.argv[1], "numba", int(sys.argv[2]))
    print(numba.threading_layer(), *wrong)
