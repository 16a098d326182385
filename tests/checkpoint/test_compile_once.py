"""A memory budget plans a snapshot count per problem size, and the count is a run-time
argument of the compiled derivative (checkpoint/plan.py): a gradient taken at five sizes,
each planned with a different snapshot count, compiles its derivative once, and each
gradient is the central finite difference of the loss."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.backend import numba as numba_backend
from hpcad.kernels.stencils import heat_misfit

BUDGET = 60_000   # bytes: segments with 2 to 8 snapshots over these sizes
SIZES = [(32, 400), (40, 500), (48, 600), (56, 700), (64, 800)]   # (cells, steps)


def _compilations() -> int:
    """numba builds so far: compiled now or loaded from the disk cache (not counting
    generated code this process has already loaded)."""
    return numba_backend.STATS["compiled"] + numba_backend.STATS["loaded"]


def _check_against_finite_differences(grads, args) -> None:
    u, target, alpha, steps = args
    direction = np.random.default_rng(len(u)).standard_normal(len(u))
    h = 1e-6

    def loss(du: float, da: float) -> float:
        return heat_misfit.py_func(u + du * direction, target, alpha + da, steps)

    along_u = (loss(h, 0.0) - loss(-h, 0.0)) / (2 * h)
    along_alpha = (loss(0.0, h) - loss(0.0, -h)) / (2 * h)
    assert float(np.dot(grads[0], direction)) == pytest.approx(along_u, rel=1e-6)
    assert grads[1] == pytest.approx(along_alpha, rel=1e-6)


@pytest.mark.parametrize("backend", ["numba", "interp"])
@pytest.mark.parametrize("how", ["checkpoint", "environment"])
def test_five_sizes_compile_the_derivative_once(backend, how, monkeypatch):
    monkeypatch.delenv("HPCAD_MEMORY_BUDGET", raising=False)
    if how == "environment":
        monkeypatch.setenv("HPCAD_MEMORY_BUDGET", str(BUDGET))
        k = ad.kernel(heat_misfit.py_func)
    else:
        k = ad.checkpoint(ad.kernel(heat_misfit.py_func), budget=BUDGET)
    before = _compilations()
    counts = []
    for cells, steps in SIZES:
        u0 = np.sin(np.linspace(0.0, 3.0, cells)) + 0.1
        args = (u0, np.linspace(0.0, 0.5, cells), 0.3, steps)
        grads = ad.grad(k, argnums=(0, 2), backend=backend)(u0.copy(), *args[1:])
        counts.append(k.last_policy.snapshots)
        _check_against_finite_differences(grads, args)
    assert None not in counts and len(set(counts)) == len(SIZES), counts
    if backend == "numba":   # one compiled function (numba compiled it, or loaded it)
        assert len(k.compiled) == 1
        assert _compilations() - before <= 1
