"""A checkpointed time loop uses an array that an op after the loop writes: the reverse sweep
runs the loop's steps again after that write. It used to read the later values (a wrong
gradient) and the loop's state ended with its values at the loop's end; the array now holds
its values at the loop's end during the loop's reverse and its final values after it."""
import math
import warnings

import numpy as np
import pytest

import hpcad as ad


@ad.kernel
def read_then_rewritten(u, w, alpha, nsteps):
    n = u.shape[0]
    for t in range(nsteps):
        for i in range(n):
            u[i] = u[i] + alpha * w[i] * math.cos(u[i])
    for i in range(n):
        w[i] = w[i] * u[i]
    s = 0.0
    for i in range(n):
        s += w[i] ** 2 + u[i]
    return s


@ad.kernel
def state_rewritten(u, w, alpha, nsteps):
    n = u.shape[0]
    for t in range(nsteps):
        for i in range(n):
            u[i] = u[i] + alpha * w[i] * math.cos(u[i])
    w[0] = 5.0
    for i in range(n):
        u[i] = u[i] * u[i] + 1.0
    s = 0.0
    for i in range(n):
        s += u[i] ** 2 * w[i]
    return s


KERNELS = {"read_then_rewritten": read_then_rewritten, "state_rewritten": state_rewritten}
POLICIES = {"segments": lambda k: ad.checkpoint(k, snapshots=2),
            "revolve": lambda k: ad.checkpoint(k, snapshots=2, schedule="revolve"),
            "lean": lambda k: ad.checkpoint(k, "recompute_all"),
            "budget": lambda k: ad.checkpoint(k, budget=200)}
U0 = np.linspace(0.5, 1.5, 5)
W0 = np.linspace(0.2, 0.9, 5)


def _reverse(k, backend):
    df = ad.autodiff(k, activity=(ad.Duplicated, ad.Duplicated, ad.Active, ad.Const),
                     backend=backend)
    u, w, du, dw = U0.copy(), W0.copy(), np.zeros(5), np.zeros(5)
    loss, da = df(u, du, w, dw, 0.2, 4)
    return loss, da, du, dw, u, w


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_loop_rewritten_after_is_checkpointed_right(name, policy, backend):
    """Checkpointed (no warning), bitwise the store-all adjoints, which agree with finite
    differences, and the arrays end with the primal's final values."""
    kernel = KERNELS[name]
    ref = _reverse(ad.kernel(kernel.py_func), backend)
    h = 1e-6
    fd = (kernel.py_func(U0.copy(), W0.copy(), 0.2 + h, 4)
          - kernel.py_func(U0.copy(), W0.copy(), 0.2 - h, 4)) / (2 * h)
    assert ref[1] == pytest.approx(fd, rel=1e-7)
    u, w = U0.copy(), W0.copy()
    kernel.py_func(u, w, 0.2, 4)
    np.testing.assert_array_equal(ref[4], u)
    np.testing.assert_array_equal(ref[5], w)
    k = POLICIES[policy](ad.kernel(kernel.py_func))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ad.HpcadWarning)
        got = _reverse(k, backend)
    if policy == "budget":
        assert k.last_policy.plan.checkpoints
    assert got[0] == ref[0] and got[1] == ref[1]
    for a, b in zip(got[2:], ref[2:], strict=True):   # adjoints, then the final arrays
        np.testing.assert_array_equal(a, b)
