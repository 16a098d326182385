"""A time loop that allocates arrays inside its body (`tmp = np.zeros(n)` in every step, or
the scratch buffers hpcad's own lowerings make there) is checkpointed: those arrays are new
in every step, so they are no state to snapshot."""
import warnings

import numpy as np
import pytest

import hpcad as ad


@ad.kernel
def heat_fresh(u, alpha, nsteps):
    n = u.shape[0]
    for t in range(nsteps):
        tmp = np.zeros(n)
        for i in range(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1]) * (1.0 + 0.1 * u[i])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(n):
        s += u[i] ** 2
    return s


ARGS = (np.sin(np.linspace(0.0, 3.0, 12)) + 0.5, 0.2, 9)

POLICIES = {
    "segments": lambda k: ad.checkpoint(k, snapshots=3),
    "revolve": lambda k: ad.checkpoint(k, snapshots=2, schedule="revolve"),
    "restart": lambda k: ad.checkpoint(k, snapshots=2, schedule="restart"),
    "budget": lambda k: ad.checkpoint(k, budget=300),
}


def _grad(k, backend):
    return ad.grad(k, argnums=(0, 1), backend=backend)(ARGS[0].copy(), *ARGS[1:])


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_fresh_step_arrays_are_checkpointed(policy, backend):
    """Checkpointed (no 'no time loop' warning, a budget below the store-all tape is met) and
    bitwise the store-all gradient, which agrees with finite differences."""
    ref = _grad(heat_fresh, backend)
    d = np.random.default_rng(3).standard_normal(12)
    h = 1e-6
    fd = (heat_fresh.py_func(ARGS[0] + h * d, *ARGS[1:])
          - heat_fresh.py_func(ARGS[0] - h * d, *ARGS[1:])) / (2 * h)
    assert abs(float(ref[0] @ d) - fd) <= 1e-7 * max(1.0, abs(fd))
    k = POLICIES[policy](ad.kernel(heat_fresh.py_func))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ad.HpcadWarning)
        got = _grad(k, backend)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1] == ref[1]
    if policy == "budget":
        assert k.last_policy.plan.checkpoints
