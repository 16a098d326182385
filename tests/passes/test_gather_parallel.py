"""passes/gather_parallel.py: the adjoint stencils of parallel loops in gather form, so
that the reverse sweep of a time loop around parallel loops runs no more parallel regions
per step than the primal (heat 1-D: a copy back and a stencil, two; Jacobi 2-D: a sweep,
one, and its adjoint the gather, its zeroing deferred into the next step's gather,
passes/gather_deferred.py), with no two-colour chunks; and the gradient still agrees with the
serial kernel's on both backends."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.cli import default_activity
from hpcad.ir.printer import print_function
from hpcad.kernels import particles, stencils
from hpcad.passes.regions import regions_per_step
from tests.ad.harness import BACKENDS, relative_error

HEAT = (np.linspace(0.5, 1.5, 30), 0.2, 4)
JACOBI = (np.outer(np.linspace(0.1, 1.0, 9), np.linspace(0.3, 1.2, 8)),
          np.zeros((9, 8)), 3)
LJ = (particles.lattice(8), np.zeros((8, 3)), 1.0, 1.0)


def _specialization(kernel, args):
    return kernel.specialize(kernel.bind(args))


@pytest.mark.parametrize("kernel, args, reverse_regions", [
    (stencils.heat_prange, HEAT, 2), (stencils.jacobi_prange, JACOBI, 1),
    (particles.lj_forces_prange, LJ, 2)], ids=["heat", "jacobi", "lennard-jones"])
def test_reverse_sweep_runs_as_few_regions_per_step_as_the_primal(kernel, args,
                                                                  reverse_regions):
    spec = _specialization(kernel, args)
    grad = spec.derivative("reverse", default_activity(spec), True)
    primal = regions_per_step(spec.primal).primal
    # Lennard-Jones: one region of chunks and one adding the per-thread copies
    assert regions_per_step(grad).reverse == reverse_regions, print_function(grad)
    assert regions_per_step(grad).primal == primal
    ir = print_function(grad)
    assert "colored chunks" not in ir, ir


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("serial, parallel, args, activity", [
    (stencils.heat, stencils.heat_prange, HEAT, (ad.Duplicated, ad.Active, ad.Const)),
    (stencils.jacobi, stencils.jacobi_prange, JACOBI,
     (ad.Duplicated, ad.Duplicated, ad.Const))], ids=["heat", "jacobi"])
def test_gathered_gradient_matches_the_serial_kernel(serial, parallel, args, activity,
                                                     backend):
    def gradient(kernel):
        flat = []
        for a, act in zip(args, activity, strict=True):
            flat.append(a.copy() if isinstance(a, np.ndarray) else a)
            if act is ad.Duplicated:
                flat.append(np.zeros_like(a))
        out = ad.autodiff(kernel, activity=activity, backend=backend)(*flat)
        return [np.atleast_1d(out)] + [a for a in flat[1::2] if isinstance(a, np.ndarray)]
    for a, b in zip(gradient(parallel), gradient(serial), strict=True):
        assert relative_error(a, b) <= 1e-12


# A stencil read (u[i - 1]) through inner loops and a private scratch array per iteration
# (found by tests/generative): the adjoint loop's body is not simple, so its accumulations
# into d_u take another race-free form, never a gather whose recomputed terms would read the
# iteration's scratch array from outside the loop.

@ad.kernel
def scratch_rows(u):
    n = u.shape[0]
    s = 0.0
    tmp = np.zeros(n)
    for i in ad.prange(1, n - 1):
        scratch = np.zeros(3)
        for j in range(3):
            scratch[j] = u[i]
        acc = 0.0
        for j in range(3):
            acc += scratch[j] * u[i - 1]
        tmp[i] = acc
        s += u[i]
    for i in range(n):
        s += u[i] * u[i] + 0.25 * tmp[i] * tmp[i]
    return s


@ad.kernel
def scratch_rows_serial(u):
    n = u.shape[0]
    s = 0.0
    tmp = np.zeros(n)
    for i in range(1, n - 1):
        scratch = np.zeros(3)
        for j in range(3):
            scratch[j] = u[i]
        acc = 0.0
        for j in range(3):
            acc += scratch[j] * u[i - 1]
        tmp[i] = acc
        s += u[i]
    for i in range(n):
        s += u[i] * u[i] + 0.25 * tmp[i] * tmp[i]
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_parallel_body_with_inner_loops_and_scratch_is_not_gathered(backend):
    u = np.linspace(0.5, 1.5, 9)
    got = ad.grad(scratch_rows, backend=backend)(u)
    want = ad.grad(scratch_rows_serial, backend=backend)(u)
    assert relative_error(got, want) <= 1e-12
