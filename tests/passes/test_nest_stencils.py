"""The 3-D heat stencil and the two coupled 2-D fields (hpcad/kernels/stencils3d.py) take
gather form (passes/gather_nest.py) and their gradients match central finite differences
on both backends, at sizes whose interiors are empty, thin and wide."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.ir.core import Block, walk
from hpcad.kernels.stencils3d import coupled, heat3d

D, C = ad.Duplicated, ad.Const


@ad.kernel
def reacting(u, v, un, vn, nsteps):
    """coupled with a product term: the reverse reads u and v from the tape, whose slots
    passes/tape.py indexes over the whole nest, so the gather may recompute them."""
    n, m = u.shape
    for _ in range(nsteps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                un[i, j] = u[i, j] + 0.1 * (u[i - 1, j] + u[i + 1, j] - 2.0 * u[i, j]) \
                    + 0.05 * v[i, j + 1] - 0.2 * u[i, j] * v[i, j - 1]
                vn[i, j] = v[i, j] + 0.1 * (v[i, j - 1] + v[i, j + 1] - 2.0 * v[i, j]) \
                    - 0.05 * u[i + 1, j] * v[i, j]
        u, un = un, u
        v, vn = vn, v
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += u[i, j] * u[i, j] + v[i, j] * v[i, j]
    return s


def _field(shape, phase=0.0):
    grids = np.meshgrid(*[np.linspace(0.0, 1.0, n) for n in shape], indexing="ij")
    return np.sin(3.0 * grids[0] + phase) * np.cos(sum(grids[1:])) + 0.1


def _fd_check(kernel, arrays, steps, backend, h=1e-6):
    """Each element of the gradient w.r.t. each array against a central difference."""
    activity = (D,) * len(arrays) + (C,)
    rev = ad.autodiff(kernel, activity=activity, backend=backend)
    shadows = [np.zeros_like(a) for a in arrays]
    flat = [x for a, d in zip(arrays, shadows, strict=True) for x in (a.copy(), d)]
    rev(*flat, steps)
    def f(xs):
        return kernel(*[x.copy() for x in xs], steps)
    for which, grad in enumerate(shadows):
        for k in range(grad.size):
            plus, minus = [a.copy() for a in arrays], [a.copy() for a in arrays]
            plus[which].flat[k] += h
            minus[which].flat[k] -= h
            fd = (f(plus) - f(minus)) / (2 * h)
            assert grad.flat[k] == pytest.approx(fd, rel=1e-6, abs=1e-8), (which, k)


def _scatters_left(kernel, args, activity):
    """Accumulations at an index other than the loop variables of their own loops."""
    fn = kernel.specialize(args).derivative("reverse", activity, True)
    return [op for op in walk(fn.body) if op.name == "mem.accumulate"
            and not all(isinstance(v.owner, Block) for v in op.operands[2:])]


@pytest.mark.parametrize("backend", ["numba", "interp"])
@pytest.mark.parametrize("shape", [(3, 3, 3), (4, 5, 3), (6, 5, 7)])
def test_heat3d_gradient_matches_finite_differences(shape, backend):
    u = _field(shape)
    _fd_check(heat3d, [u, np.cos(u)], 2, backend)


@pytest.mark.parametrize("backend", ["numba", "interp"])
@pytest.mark.parametrize("shape", [(3, 3), (4, 6), (7, 5)])
@pytest.mark.parametrize("kernel", [coupled, reacting])
def test_coupled_gradient_matches_finite_differences(kernel, shape, backend):
    u, v = _field(shape), _field(shape, 0.5)
    _fd_check(kernel, [u, v, np.cos(u), np.sin(v)], 2, backend)


def test_heat3d_and_coupled_reverse_sweeps_gather():
    u = _field((6, 6, 6))
    assert not _scatters_left(heat3d, (u, u.copy(), 2), ("dup", "dup", "const"))
    w = _field((6, 6))
    for kernel in (coupled, reacting):
        assert not _scatters_left(kernel, (w, w.copy(), w.copy(), w.copy(), 2),
                                  ("dup",) * 4 + ("const",))
