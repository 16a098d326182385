"""An array a kernel writes, passed again as another argument (`smooth(u, u, alpha)` for a
kernel writing its second argument): hpcad compiles and differentiates array arguments as
distinct buffers (loop fusion and load forwarding assume it), so such a call would compute
another function than the Python one. The kernel call and every derivative refuse it, on
the first call and on a later (fast-path) one; the same array passed twice and only read
stays allowed, with the right gradient, and so do two strided views of one array that share
no element (vjp and jacobian alike)."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import BACKENDS


@ad.kernel
def smooth(u, out, alpha):
    for i in range(1, u.shape[0] - 1):
        out[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
    s = 0.0
    for i in range(u.shape[0]):
        s += out[i] * out[i]
    return s


@ad.kernel
def dot(x, y):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * y[i] * y[i]
    return s


U = np.linspace(0.0, 1.0, 8) ** 2
OVERLAP = "'out' and 'u' of kernel 'smooth' overlap in memory and the kernel writes 'out'"


def _calls(backend):
    return {
        "grad": lambda u, out: ad.grad(smooth, argnums=2, backend=backend)(u, out, 0.3),
        "value_and_grad": lambda u, out: ad.value_and_grad(smooth, argnums=(0, 2),
                                                           backend=backend)(u, out, 0.3),
        "jvp": lambda u, out: ad.jvp(smooth, (u, out, 0.3), (None, None, 1.0),
                                     backend=backend),
        "grad_and_hvp": lambda u, out: ad.grad_and_hvp(smooth, argnums=2,
                                                       backend=backend)(u, out, 0.3, 1.0),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("call", ["grad", "value_and_grad", "jvp", "grad_and_hvp"])
def test_a_written_array_passed_as_another_argument_is_refused(call, backend):
    run = _calls(backend)[call]
    run(U.copy(), np.zeros_like(U))          # distinct arrays: fine (and a fast path next)
    for out in (U, U[::-1]):                 # the same memory, or an overlapping view of it
        u = U.copy()
        with pytest.raises(ad.ArgumentError, match=OVERLAP):
            run(u, u if out is U else u[::-1])
        assert np.array_equal(u, U)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_same_array_passed_twice_and_only_read_is_differentiated(backend):
    x = np.array([0.5, -1.0, 2.0])
    for _ in range(2):   # the full path, then the fast one
        g = ad.grad(dot, argnums=(0, 1), backend=backend)(x, x)
        np.testing.assert_allclose(g[0], x * x, rtol=1e-14)
        np.testing.assert_allclose(g[1], 2 * x * x, rtol=1e-14)


def test_vjp_and_jacobian_take_an_array_read_twice_and_refuse_one_written():
    """They refused the same array passed twice and only read (which grad, jvp and hvp
    take) with a message naming neither kernel nor write."""
    x = np.array([0.5, -1.0, 2.0])
    dx, dy = ad.vjp(dot, x, x, backend="interp")[1](1.0)
    np.testing.assert_allclose(dx, x * x, rtol=1e-14)   # analytic
    np.testing.assert_allclose(dy, 2 * x * x, rtol=1e-14)
    for mode in ("rev", "fwd"):
        jx, jy = ad.jacobian(dot, argnums=(0, 1), mode=mode, backend="interp")(x, x)
        np.testing.assert_allclose(jx, x * x, rtol=1e-14)
        np.testing.assert_allclose(jy, 2 * x * x, rtol=1e-14)
    u = U.copy()
    with pytest.raises(ad.ArgumentError, match=OVERLAP):
        ad.vjp(smooth, u, u[::-1], 0.3, backend="interp")
    with pytest.raises(ad.ArgumentError, match=OVERLAP):
        ad.jacobian(smooth, argnums=2, backend="interp")(u, u, 0.3)


@ad.kernel
def update_then_read(a, b):
    for i in range(a.shape[0]):
        b[i] = b[i] * 0.5 + a[i] ** 2
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_kernel_call_with_a_written_array_passed_twice_is_refused(backend):
    """The loops are fused and a[i] is loaded once, before the store to b[i]: called as
    f(z, z) the value would be 43.0 for Python's 137.5 (the second loop reads the updated
    z)."""
    k = ad.kernel(update_then_read.py_func, backend=backend)
    x = np.array([1.0, 2.0, 3.0])
    assert k(x.copy(), x.copy()) == update_then_read.py_func(x.copy(), x.copy())
    for _ in range(2):   # the full path, then the fast one
        for pair in (lambda z: (z, z), lambda z: (z[:-1], z[1:])):
            z = np.arange(1.0, 9.0)
            with pytest.raises(ad.ArgumentError, match="'b' and 'a' of kernel "
                               "'update_then_read' overlap in memory and the kernel writes 'b'"):
                k(*pair(z))
            assert np.array_equal(z, np.arange(1.0, 9.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_strided_views_of_one_array_that_share_no_element_are_apart(backend):
    k = ad.kernel(update_then_read.py_func, backend=backend)
    for _ in range(2):
        z, zp = np.arange(10.0), np.arange(10.0)
        assert k(z[::2], z[1::2]) == update_then_read.py_func(zp[::2], zp[1::2])
        np.testing.assert_array_equal(z, zp)
        g = ad.grad(k, argnums=0)(z[::2], z[1::2])
        np.testing.assert_allclose(g, 0.5 * z[1::2] + 3.0 * z[::2] ** 2, rtol=1e-14)
