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
            "budget": lambda k: ad.checkpoint(k, budget=300)}   # (below the whole tape)
U0 = np.linspace(0.5, 1.5, 5)
W0 = np.linspace(0.2, 0.9, 5)


def _reverse(k, backend):
    df = ad.autodiff(k, activity=(ad.Duplicated, ad.Duplicated, ad.Active, ad.Const),
                     backend=backend)
    u, w, du, dw = U0.copy(), W0.copy(), np.zeros(5), np.zeros(5)
    loss, da = df(u, du, w, dw, 0.2, 4)
    return loss, da, du, dw, u, w


# every policy on both kernels on the interpreter; on numba (a derivative compiled per policy)
# each policy on one kernel, two on each
ON_NUMBA = {("read_then_rewritten", "segments"), ("read_then_rewritten", "lean"),
            ("state_rewritten", "revolve"), ("state_rewritten", "budget")}


@pytest.mark.parametrize("name, policy, backend", [
    (name, policy, "interp") for name in sorted(KERNELS) for policy in sorted(POLICIES)] + [
    pytest.param(name, policy, "numba", marks=pytest.mark.slow) for name, policy in
    sorted(ON_NUMBA)])
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


@ad.kernel
def heat_kappa_rewritten(u, kappa, nsteps):
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] + kappa[i] * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    for i in range(n):
        kappa[i] = kappa[i] * 3.0 + u[i]
    s = 0.0
    for i in range(n):
        s += u[i] ** 2 + kappa[i] * u[i]
    return s


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
def test_restarting_steps_read_the_loop_end_values(backend):
    """Each step reversed from its restored state reads kappa, which a later op rescales:
    the restart schedule is allowed (kappa holds its loop-end values during the loop's
    reverse; it was NotRestartable) and gives the store-all adjoints."""
    u0, k0 = np.linspace(0.5, 1.5, 8), np.linspace(0.05, 0.2, 8)
    kinds = (ad.Duplicated, ad.Duplicated, ad.Const)

    def reverse(k):
        u, kappa, du, dk = u0.copy(), k0.copy(), np.zeros(8), np.zeros(8)
        loss = ad.autodiff(k, activity=kinds, backend=backend)(u, du, kappa, dk, 7)
        return loss, du, dk, u, kappa

    ref = reverse(ad.kernel(heat_kappa_rewritten.py_func))
    got = reverse(ad.checkpoint(ad.kernel(heat_kappa_rewritten.py_func), snapshots=2,
                                schedule="restart"))
    assert got[0] == ref[0]
    for a, b in zip(got[1:], ref[1:], strict=True):
        np.testing.assert_array_equal(a, b)
    d = np.random.default_rng(4).standard_normal(8)
    h = 1e-6
    fd = (heat_kappa_rewritten.py_func(u0.copy(), k0 + h * d, 7)
          - heat_kappa_rewritten.py_func(u0.copy(), k0 - h * d, 7)) / (2 * h)
    assert float(ref[2] @ d) == pytest.approx(fd, rel=1e-7)


@pytest.mark.slow
def test_the_budget_counts_the_copies_of_arrays_rewritten_after_the_loop():
    """Checkpointing keeps two copies of w (rewritten after the loop): the budget left them
    out, and the memory held went over it by their bytes (12000 for a budget of 8712 at
    n = 300); the estimate counts them now, and the tape and arena fit every budget, with
    the store-all gradient."""
    rng = np.random.default_rng(3)
    u0, w0 = rng.uniform(0.5, 1.5, 300), rng.uniform(0.2, 0.9, 300)
    kinds = (ad.Duplicated, ad.Duplicated, ad.Active, ad.Const)

    def reverse(k):
        u, w, du, dw = u0.copy(), w0.copy(), np.zeros(300), np.zeros(300)
        loss, da = ad.autodiff(k, activity=kinds, backend="numba")(u, du, w, dw, 0.2, 40)
        return loss, da, du, dw, u, w

    k = ad.kernel(read_then_rewritten.py_func)
    ref = reverse(k)
    store_all = sum(sum(c.held_bytes()) for _, c in k.compiled.values())
    checkpointed = 0
    for fraction in (0.3, 0.1, 0.05, 0.035):
        budget = int(fraction * store_all)
        k = ad.checkpoint(ad.kernel(read_then_rewritten.py_func), budget=budget)
        try:
            got = reverse(k)
        except ad.HpcadError as e:
            assert "below the least this gradient needs" in str(e)
            continue
        checkpointed += k.last_policy.plan.checkpoints
        held = sum(sum(c.held_bytes()) for _, c in k.compiled.values())
        assert held <= budget, (fraction, k.last_policy.plan.describe(), held, budget)
        assert got[0] == ref[0] and got[1] == ref[1]
        for a, b in zip(got[2:], ref[2:], strict=True):
            np.testing.assert_array_equal(a, b)
    assert checkpointed >= 3
