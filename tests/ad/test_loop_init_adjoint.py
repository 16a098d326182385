"""A loop-carried value started from a float that the loop body also reads (`s = a`, then
`s += x[i] * a`): its gradient has both parts, the one reaching the start (ds/da = 1) and
the one the body sums (sum x[i]). Reverse mode put the body's part over the start's (the
adjoint of a value the loop reads was assigned after the carried adjoints were added to
the loop's start values): grad(a) was sum(x), not 1 + sum(x), for serial, parallel, while
and checkpointed (segments, revolve) loops, on both backends."""
import math

import numba
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import BACKENDS


def started_serial(x, a):
    s = a
    for i in range(x.shape[0]):
        s += x[i] * a
    return s * s


def started_parallel(x, a):
    s = a
    for i in numba.prange(x.shape[0]):
        s += x[i] * a
    return s * s


def started_while(x, a):
    s = a
    i = 0
    while i < x.shape[0]:
        s += x[i] * a
        i += 1
    return s * s


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("body", [started_serial, started_parallel, started_while])
def test_a_sum_started_from_a_value_its_loop_reads(backend, body):
    x, a = np.linspace(0.5, 1.0, 5), 0.3
    k = ad.kernel(body, backend=backend)
    gx, ga = ad.grad(k, argnums=(0, 1))(x, a)
    s = a * (1.0 + x.sum())
    np.testing.assert_allclose(ga, 2.0 * s * (1.0 + x.sum()), rtol=1e-12)
    np.testing.assert_allclose(gx, 2.0 * s * a * np.ones_like(x), rtol=1e-12)


def relaxed(u, a, steps):
    """A time loop carrying a sum started from a, which each step also reads."""
    s = a
    for t in range(steps):
        for i in range(u.shape[0]):
            u[i] = u[i] * 0.9 + a * math.sin(u[i])
        s += a * u[0] * u[0]
    return s


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("policy", [("store_all", "segments"), (2, "segments"),
                                    (2, "revolve")])
def test_a_time_loop_sum_started_from_a_value_it_reads(backend, policy):
    snapshots, schedule = policy
    k = ad.checkpoint(ad.kernel(relaxed, backend=backend), snapshots, schedule=schedule)
    u0, a, steps, h = np.linspace(0.2, 0.6, 4), 0.3, 5, 1e-6
    ga = ad.grad(k, argnums=1)(u0.copy(), a, steps)
    want = (relaxed(u0.copy(), a + h, steps) - relaxed(u0.copy(), a - h, steps)) / (2 * h)
    np.testing.assert_allclose(ga, want, rtol=1e-7)
