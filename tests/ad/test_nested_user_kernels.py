"""Nested AD on kernels written as a user writes them (not the shapes of test_nested.py):
an inner kernel that writes its scratch argument through a view of it, whose caller reads
that argument afterwards. Inputs of a derivative taken in a kernel are never modified, as
in the Python API; checked against analytic formulas on both backends."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.errors import UnsupportedConstruct
from tests.ad.harness import BACKENDS
from tests.api.test_aliased_arguments import (
    smooth,  # writes out: smooth(v, v, alpha) updates v in place
)


@ad.kernel
def cube_sum_via_view(x, work):
    """sum(x**3), with x**2 kept in work[1:] (written through a view of work)."""
    w = work[1:]
    for i in range(x.shape[0]):
        w[i] = x[i] * x[i]
    s = 0.0
    for i in range(x.shape[0]):
        s += w[i] * x[i]
    return s


@ad.kernel
def grad_then_read_work(x, work):
    g = ad.grad(cube_sum_via_view)(x, work)
    t = 0.0
    for i in range(x.shape[0]):
        t += g[i] * work[i + 1]
    return t


@ad.kernel
def jvp_then_read_work(x, work, dx):
    _, d = ad.jvp(cube_sum_via_view, (x, work), (dx, None))
    return d * work[1] + work[2]


@ad.kernel
def vjp_then_read_work(x, work):
    _, pullback = ad.vjp(cube_sum_via_view, x, work)
    g = pullback(1.0)[0]
    return g[0] * work[1] + work[2]


X = np.array([0.3, -1.2, 0.8, 1.5, -0.4])
WORK = np.arange(6.0)


def _kernel(k, backend):
    return ad.kernel(k.py_func, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_in_a_kernel_leaves_an_argument_written_through_a_view_alone(backend):
    work = WORK.copy()
    value = _kernel(grad_then_read_work, backend)(X, work)
    assert value == pytest.approx(np.sum(3 * X**2 * WORK[1:]), rel=1e-13)
    assert np.array_equal(work, WORK)
    dx, dwork = ad.grad(grad_then_read_work, argnums=(0, 1), backend=backend)(X, WORK.copy())
    np.testing.assert_allclose(dx, 6 * X * WORK[1:], rtol=1e-13)
    np.testing.assert_allclose(dwork, np.r_[0.0, 3 * X**2], rtol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_jvp_and_vjp_in_a_kernel_leave_an_argument_written_through_a_view_alone(backend):
    dx = np.array([1.0, 0.5, -2.0, 0.25, 3.0])
    expected = np.sum(3 * X**2 * dx) * WORK[1] + WORK[2]
    assert _kernel(jvp_then_read_work, backend)(X, WORK.copy(), dx) == \
        pytest.approx(expected, rel=1e-13)
    assert _kernel(vjp_then_read_work, backend)(X, WORK.copy()) == \
        pytest.approx(3 * X[0]**2 * WORK[1] + WORK[2], rel=1e-13)


@ad.kernel
def grad_of_an_in_place_call(u, alpha):
    v = u.copy()
    return ad.grad(smooth, argnums=2)(v, v, alpha)


@ad.kernel
def jvp_of_an_in_place_call(u, alpha):
    v = u.copy()
    return ad.jvp(smooth, (v, v[0:], alpha), (None, None, 1.0))[1]


@ad.kernel
def vjp_of_an_in_place_call(u, alpha):
    v = u.copy()
    _, pullback = ad.vjp(smooth, v, v, alpha)
    return pullback(1.0)[2]


@pytest.mark.parametrize("kernel", [grad_of_an_in_place_call, jvp_of_an_in_place_call,
                                    vjp_of_an_in_place_call])
def test_a_derivative_of_an_in_place_call_in_a_kernel_is_refused(kernel):
    """The call updates v in place; its derivative would take u and out as distinct
    copies (d/dalpha 0.158 where the in-place call's is 0.313): refused, as in Python."""
    with pytest.raises(UnsupportedConstruct, match="argument 'out', which it writes, is the "
                                                   "same array as .* 'u'.*u.copy()"):
        ad.kernel(kernel.py_func, backend="interp")(np.linspace(0.0, 1.0, 8) ** 2, 0.3)


@ad.kernel
def half_sum_of_squares(a, lo, hi):
    r = 0.0
    for i in range(lo, hi):
        r += a[i] * a[i]
    return r


@ad.kernel
def product_of_halves(u, w):
    """Two fork-join tasks read u: the adjoint's tasks add into d_u atomically."""
    n = u.shape[0]
    h1 = ad.spawn(half_sum_of_squares, u, 0, n // 2)
    h2 = ad.spawn(half_sum_of_squares, u, n // 2, n)
    return ad.sync(h1) * ad.sync(h2) + w[0]


@ad.kernel
def sum_of_fork_join_gradient(u, w):
    return np.sum(ad.grad(product_of_halves)(u, w))


def _sum_of_gradient(u):
    a, b = np.sum(u[:2] ** 2), np.sum(u[2:] ** 2)
    return np.sum(np.r_[2 * u[:2] * b, 2 * u[2:] * a])


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_of_a_fork_join_kernel_in_a_kernel(backend):
    """The inner gradient's atomic adds are race-free: no RaceError (it said 'tasks of this
    fork-join race on array g'); the value and both modes over it match the analytic ones."""
    u, w = np.array([0.5, 1.0, -0.3, 0.8]), np.array([0.2, -0.7, 1.1, 0.4])
    assert _kernel(sum_of_fork_join_gradient, backend)(u, w) == \
        pytest.approx(_sum_of_gradient(u), rel=1e-14)
    a, b = np.sum(u[:2] ** 2), np.sum(u[2:] ** 2)
    s1, s2 = np.sum(u[:2]), np.sum(u[2:])
    expected = np.r_[2 * b + 4 * u[:2] * s2, 2 * a + 4 * u[2:] * s1]
    for mode in ("fwd", "rev"):
        got = ad.jacobian(sum_of_fork_join_gradient, mode=mode, backend=backend)(u, w)
        np.testing.assert_allclose(got, expected, rtol=1e-13)
