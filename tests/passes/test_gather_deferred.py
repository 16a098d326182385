"""passes/gather_deferred.py: the zeroing that ends a parallel Jacobi step's adjoint runs in
the next step's gather (one parallel region per reverse step, as the primal), and once after
the time loop; gradients against central finite differences of the plain Python function
on both backends (every step count parity, none, one), numba's threads against each other
and against the serial kernel, and kernels where the deferral must not happen."""
import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.cli import default_activity
from hpcad.ir.printer import print_function
from hpcad.kernels import stencils
from hpcad.passes.regions import regions_per_step
from tests.ad.harness import BACKENDS, relative_error


def _grid(n: int, m: int) -> np.ndarray:
    return np.outer(np.linspace(0.1, 1.0, n), np.linspace(0.3, 1.2, m)) + 0.05


def _reverse(kernel, args):
    spec = kernel.specialize(kernel.bind(args))
    return spec.derivative("reverse", default_activity(spec), True)


def _reverse_regions(kernel, args) -> tuple[int, str]:
    grad = _reverse(kernel, args)
    return regions_per_step(grad).reverse, print_function(grad)


def _fd_gradient(kernel, args: tuple, positions: tuple[int, ...], h: float = 1e-6) -> list:
    """Central differences of the plain Python function, element by element."""
    out = []
    for p in positions:
        g = np.zeros_like(args[p])
        for e in np.ndindex(args[p].shape):
            value = []
            for sign in (1.0, -1.0):
                moved = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
                moved[p][e] += sign * h
                value.append(kernel.py_func(*moved))
            g[e] = (value[0] - value[1]) / (2.0 * h)
        out.append(g)
    return out


def test_jacobi_reverse_step_runs_one_region_and_zeroes_after_the_loop():
    grad = _reverse(stencils.jacobi_prange, (_grid(9, 8), np.zeros((9, 8)), 3))
    assert regions_per_step(grad).reverse == 1, print_function(grad)
    after = [op for op in grad.body.ops if op.name == "scf.if"
             and any(o.name == "par.parallel_for" for o in op.regions[0].ops)]
    assert len(after) == 1, print_function(grad)


# The loss reads both buffers, so the adjoint of each is non-zero before the reverse sweep:
# the first reverse step's gather must read its target, and no step must zero it.

@ad.kernel
def jacobi_both(u, v, nsteps):
    n, m = u.shape
    for step in range(nsteps):
        for i in ad.prange(1, n - 1):
            for j in range(1, m - 1):
                v[i, j] = 0.25 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1])
        u, v = v, u
    s = 0.0
    for i in ad.prange(n):
        for j in range(m):
            s += u[i, j] * u[i, j] + 0.5 * v[i, j] * v[i, j] * v[i, j]
    return s


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("nsteps", [0, 1, 2, 3])
@pytest.mark.parametrize("kernel", [stencils.jacobi_prange, jacobi_both],
                         ids=["jacobi", "both-buffers"])
def test_deferred_zeroing_gradient_matches_finite_differences(kernel, nsteps, backend):
    u, v = _grid(7, 6), _grid(7, 6)[::-1].copy() * 0.5
    got = ad.grad(kernel, argnums=(0, 1), backend=backend)(u, v, nsteps)
    want = _fd_gradient(kernel, (u, v, nsteps), (0, 1))
    for g, w in zip(got, want, strict=True):
        assert relative_error(g, w) <= 1e-7


def test_gradient_is_the_same_at_one_and_two_threads_and_serially():
    u, v = _grid(40, 33), _grid(40, 33) * 0.7
    top = numba.config.NUMBA_NUM_THREADS
    grads = {}
    for t in sorted({1, min(2, top)}):
        numba.set_num_threads(t)
        try:
            grads[t] = ad.grad(stencils.jacobi_prange, argnums=(0, 1), backend="numba")(u, v, 5)
        finally:
            numba.set_num_threads(top)
    serial = ad.grad(stencils.jacobi, argnums=(0, 1), backend="numba")(u, v, 5)
    for t, g in grads.items():
        for a, b in zip(g, grads[1], strict=True):
            assert np.array_equal(a, b), t
        for a, b in zip(g, serial, strict=True):
            assert relative_error(a, b) <= 1e-12


# A step that also reads u after the sweep: the reverse step accumulates into d_u outside the
# sweep's adjoint, before the gather would read d_u as zero; the zeroing must stay in the step.

@ad.kernel
def jacobi_probe_u(u, v, nsteps):
    n, m = u.shape
    s = 0.0
    for step in range(nsteps):
        for i in ad.prange(1, n - 1):
            for j in range(1, m - 1):
                v[i, j] = 0.25 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1])
        s += u[2, 2] * u[2, 2]
        u, v = v, u
    for i in range(n):
        for j in range(m):
            s += u[i, j] * u[i, j]
    return s


# A step that also reads v after the sweep: its adjoint touches d_v only, which the zeroing
# covers anyway, so the zeroing is deferred and the gradient is unchanged.

@ad.kernel
def jacobi_probe_v(u, v, nsteps):
    n, m = u.shape
    s = 0.0
    for step in range(nsteps):
        for i in ad.prange(1, n - 1):
            for j in range(1, m - 1):
                v[i, j] = 0.25 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1])
        s += v[2, 2] * v[2, 2]
        u, v = v, u
    for i in range(n):
        for j in range(m):
            s += u[i, j] * u[i, j]
    return s


@pytest.mark.parametrize("kernel, deferred", [
    (jacobi_both, True), (jacobi_probe_u, False), (jacobi_probe_v, True)],
    ids=["both-buffers", "reads-u", "reads-v"])
def test_deferral_only_where_nothing_else_touches_the_gathered_adjoint(kernel, deferred):
    count, ir = _reverse_regions(kernel, (_grid(9, 8), np.zeros((9, 8)), 3))
    assert count == (1 if deferred else 2), ir


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", [jacobi_probe_u, jacobi_probe_v], ids=["reads-u", "reads-v"])
def test_probed_step_gradient_matches_finite_differences(kernel, backend):
    u, v = _grid(7, 6), _grid(7, 6) * 0.5
    got = ad.grad(kernel, argnums=(0, 1), backend=backend)(u, v, 3)
    want = _fd_gradient(kernel, (u, v, 3), (0, 1))
    for g, w in zip(got, want, strict=True):
        assert relative_error(g, w) <= 1e-7


# A sweep whose adjoint reaches only up-left neighbours: the gather stores no element of the
# last rows and columns of the zeroed domain, so those elements cannot read as zero in it;
# the zeroing must stay in the step.

@ad.kernel
def diagonal_shift(u, v, nsteps):
    n, m = u.shape
    for step in range(nsteps):
        for i in ad.prange(2, n):
            for j in range(2, m):
                v[i, j] = 0.5 * u[i - 1, j - 1] + 0.25 * u[i - 2, j - 2]
        u, v = v, u
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += u[i, j] * u[i, j] + v[i, j] * v[i, j]
    return s


def test_no_deferral_where_the_gather_misses_part_of_the_zeroed_domain():
    count, ir = _reverse_regions(diagonal_shift, (_grid(9, 8), np.zeros((9, 8)), 3))
    assert count == 2, ir


@pytest.mark.parametrize("backend", BACKENDS)
def test_diagonal_shift_gradient_matches_finite_differences(backend):
    u, v = _grid(7, 6), _grid(7, 6) * 0.5
    got = ad.grad(diagonal_shift, argnums=(0, 1), backend=backend)(u, v, 3)
    want = _fd_gradient(diagonal_shift, (u, v, 3), (0, 1))
    for g, w in zip(got, want, strict=True):
        assert relative_error(g, w) <= 1e-7


# One dimension (passes/gather.py's single-loop gather): the same deferral.

@ad.kernel
def smooth_1d(u, v, nsteps):
    n = u.shape[0]
    for step in range(nsteps):
        for i in ad.prange(1, n - 1):
            v[i] = u[i] + 0.2 * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        u, v = v, u
    s = 0.0
    for i in range(n):
        s += u[i] * u[i] + v[i] * v[i] * v[i]
    return s


def test_one_dimensional_sweep_defers_its_zeroing_too():
    u = np.linspace(0.5, 1.5, 12)
    count, ir = _reverse_regions(smooth_1d, (u, u[::-1].copy(), 4))
    assert count == 1, ir


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("nsteps", [0, 1, 4])
def test_one_dimensional_gradient_matches_finite_differences(nsteps, backend):
    u = np.linspace(0.5, 1.5, 12)
    v = 0.5 * u[::-1].copy()
    got = ad.grad(smooth_1d, argnums=(0, 1), backend=backend)(u, v, nsteps)
    want = _fd_gradient(smooth_1d, (u, v, nsteps), (0, 1))
    for g, w in zip(got, want, strict=True):
        assert relative_error(g, w) <= 1e-7
