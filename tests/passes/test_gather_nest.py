"""Gather form of 2-D adjoint stencils (passes/gather_nest.py): the Jacobi gradient equals
the hand-written scatter adjoint (benchmarks/reference) at every size, the tiny ones whose
interior rows or columns are empty included; nests it must not rewrite stay correct."""

import numpy as np
import pytest

import hpcad as ad
from benchmarks.jacobi import jacobi
from benchmarks.reference.jacobi_adjoint import JacobiAdjoint
from hpcad.ir.core import walk


def _jacobi_args(n, m):
    x, y = np.linspace(0.0, 1.0, n), np.linspace(0.0, 1.0, m)
    u = np.sin(3.0 * x)[:, None] * np.cos(2.0 * y)[None, :] + 0.1
    return u, np.cos(u)


def _assert_matches_fd(f, arrays, grads, h=1e-6):
    """Each element of each gradient against a central difference of f(*arrays)."""
    for which, grad in enumerate(grads):
        for k in range(grad.size):
            plus, minus = [a.copy() for a in arrays], [a.copy() for a in arrays]
            plus[which].flat[k] += h
            minus[which].flat[k] -= h
            fd = (f(*plus) - f(*minus)) / (2 * h)
            assert grad.flat[k] == pytest.approx(fd, rel=1e-6, abs=1e-8), (which, k)


@pytest.mark.parametrize("backend", ["numba", "interp"])
@pytest.mark.parametrize("n,m", [(3, 3), (4, 5), (5, 4), (6, 7), (17, 20)])
@pytest.mark.parametrize("steps", [1, 2, 3])
def test_jacobi_gradient_equals_the_hand_written_adjoint(n, m, steps, backend):
    u, v = _jacobi_args(n, m)
    rev = ad.autodiff(jacobi, activity=(ad.Duplicated, ad.Duplicated, ad.Const),
                      backend=backend)
    du, dv = np.zeros_like(u), np.zeros_like(v)
    rev(u.copy(), du, v.copy(), dv, steps)
    hu, hv = np.zeros_like(u), np.zeros_like(v)
    JacobiAdjoint()(u.copy(), hu, v.copy(), hv, steps)
    np.testing.assert_allclose(du, hu, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dv, hv, rtol=1e-12, atol=1e-14)


def test_jacobi_reverse_gathers_and_outlines_its_interior():
    u, v = _jacobi_args(8, 8)
    fn = jacobi.specialize((u, v, 2)).derivative("reverse", ("dup", "dup", "const"), True)
    loops = [op for op in walk(fn.body) if op.name == "scf.for"]
    assert any(op.attrs.get("outline") for op in loops)
    # no scatter left: every accumulation is at the loop's own element (the seed's)
    from hpcad.ir.core import Block
    assert all(isinstance(v.owner, Block) for op in walk(fn.body)
               if op.name == "mem.accumulate" for v in op.operands[2:])


@ad.kernel
def weighted(u, w, nsteps):
    """A nonlinear 2-D stencil with a copy back; the weight w is read at (i, j + 1)."""
    n, m = u.shape
    tmp = np.zeros((n, m))
    for t in range(nsteps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                tmp[i, j] = u[i, j] * (u[i - 1, j] + w[i, j + 1] * u[i, j + 1]) \
                    - 0.1 * u[i + 1, j] * u[i, j - 1]
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                u[i, j] = tmp[i, j]
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += u[i, j] * u[i, j]
    return s


@pytest.mark.parametrize("backend", ["numba", "interp"])
@pytest.mark.parametrize("n,m", [(3, 4), (6, 5)])
def test_nonlinear_nest_matches_finite_differences(n, m, backend):
    u, _ = _jacobi_args(n, m)
    u = 0.5 * u
    w = np.linspace(0.5, 1.5, n * m).reshape(n, m)
    rev = ad.autodiff(weighted, activity=(ad.Duplicated, ad.Duplicated, ad.Const),
                      backend=backend)
    du, dw = np.zeros_like(u), np.zeros_like(w)
    rev(u.copy(), du, w.copy(), dw, 2)
    _assert_matches_fd(lambda a, b: weighted.py_func(a, b, 2), (u, w), (du, dw))


@ad.kernel
def varcoef(u, v, w, nsteps):
    """Jacobi with coefficients read from a constant array, one of them a row up."""
    n, m = u.shape
    for step in range(nsteps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                v[i, j] = w[i, j] * (u[i - 1, j] + 2.0 * u[i + 1, j]) \
                    + w[i - 1, j] * u[i, j - 1] - 0.3 * u[i, j + 1]
        u, v = v, u
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += u[i, j] * u[i, j]
    return s


@pytest.mark.parametrize("backend", ["numba", "interp"])
@pytest.mark.parametrize("n,m", [(3, 3), (4, 6), (7, 5)])
def test_gathered_nest_with_loaded_coefficients_matches_finite_differences(n, m, backend):
    u, v = _jacobi_args(n, m)
    w = np.linspace(0.5, 1.5, n * m).reshape(n, m)
    fn = varcoef.specialize((u, v, w, 3)).derivative(
        "reverse", ("dup", "dup", "const", "const"), True)
    assert any(op.attrs.get("outline") for op in walk(fn.body) if op.name == "scf.for")
    rev = ad.autodiff(varcoef, activity=(ad.Duplicated, ad.Duplicated, ad.Const, ad.Const),
                      backend=backend)
    du, dv = np.zeros_like(u), np.zeros_like(v)
    rev(u.copy(), du, v.copy(), dv, w, 3)
    _assert_matches_fd(lambda a, b: varcoef.py_func(a, b, w, 3), (u, v), (du, dv))
