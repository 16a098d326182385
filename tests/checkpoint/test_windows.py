"""Stencil windows (checkpoint/windows.py): a loop that reads u[i-1], u[i], u[i+1] of an
array it does not write saves one copy of the window instead of three loads per iteration;
the gradient matches finite differences and is bitwise the one of the plan that stores every
intermediate, under store-all, segments and revolve; a loop that writes the array it reads
gets no window."""

import numpy as np
import pytest

import hpcad as ad
from benchmarks.burgers import burgers

N, STEPS = 40, 6


@ad.kernel
def sweep_in_place(u, c, nsteps):
    n = u.shape[0]
    for t in range(nsteps):
        for i in range(1, n):
            u[i] = u[i] - c * u[i] * u[i - 1]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


def _args():
    return np.sin(np.linspace(0.0, 3.0, N)) + 0.1, 0.05, 0.2, STEPS


def _grad_and_tape(kernel, args, **policy):
    k = ad.checkpoint(kernel, **policy)
    g = ad.grad(k, argnums=tuple(range(len(args) - 1)))(*args)
    return g, sum(c.held_bytes()[0] for _, c in k.compiled.values())


@pytest.mark.parametrize("backend", ["numba", "interp"])
def test_window_gradient_matches_finite_differences(backend):
    ad.check_grad(burgers, *_args(), argnums=(0, 1, 2), backend=backend)


@pytest.mark.slow
def test_window_stores_one_value_per_element_and_step():
    g_window, tape = _grad_and_tape(burgers, _args())
    g_stored, tape_stored = _grad_and_tape(burgers, _args(), intermediates="store")
    assert tape == STEPS * N * 8          # the window u[0:n] per step
    assert tape_stored >= 3 * STEPS * (N - 2) * 8
    # equal up to the order of sums: the window's indexed reads let the reverse stencil
    # take gather form and its parameter sums be reassociated (passes/gather.py)
    for a, b in zip(g_window, g_stored, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    assert "save a window of u (offsets -1..1)" in ad.plan(burgers, *_args())


@pytest.mark.slow
@pytest.mark.parametrize("policy", [{"snapshots": 3}, {"snapshots": 2, "schedule": "revolve"}])
def test_window_under_checkpointing_equals_store_all(policy):
    ref, _ = _grad_and_tape(burgers, _args(), intermediates="store")
    for backend in ("numba", "interp"):
        got = ad.grad(ad.checkpoint(burgers, **policy), argnums=(0, 1, 2),
                      backend=backend)(*_args())
        for a, b in zip(got, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)


def test_loop_writing_the_array_it_reads_gets_no_window():
    args = (np.linspace(0.1, 0.9, N), 0.3, 3)
    assert "save a window" not in ad.plan(sweep_in_place, *args)
    for backend in ("numba", "interp"):
        ad.check_grad(sweep_in_place, *args, argnums=(0, 1), backend=backend)
