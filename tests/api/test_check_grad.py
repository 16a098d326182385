"""ad.check_grad's finite differences are of the kernel itself (the function grad
differentiates), run on the gradient's backend, and its arguments come one per parameter in
order, keyword-only ones too: a keyword-only parameter, integer arithmetic that wraps as
int64, a kernel called inside on overlapping slices and argnums given as a list are checked
against analytic gradients, and a wrong custom rule still fails."""
import math

import numpy as np
import pytest

import hpcad as ad
from hpcad.testing import taylor_test


@ad.kernel
def damped(u, a, *, c=0.5):
    s = 0.0
    for i in range(u.shape[0]):
        s += a * u[i] ** 2 + c * math.sin(u[i])
    return s


def test_a_keyword_only_parameter_is_passed_by_name():
    u = np.array([0.3, -0.4, 0.9])
    du, da, dc = ad.grad(damped, argnums=(0, 1, 2), backend="interp")(u, 0.7, c=0.25)
    np.testing.assert_allclose(du, 2 * 0.7 * u + 0.25 * np.cos(u), rtol=1e-14)
    np.testing.assert_allclose(dc, np.sin(u).sum(), rtol=1e-14)
    assert ad.check_grad(damped, u, 0.7, 0.25, backend="interp") < 1e-7
    assert min(taylor_test(damped, (u, 0.7, 0.25), backend="interp").rates) > 1.9


@ad.kernel
def hashed(n, x):
    h = n * 6364136223846793005 + 1442695040888963407   # wraps around as int64
    return x * ((h >> 33) % 7)


def test_finite_differences_are_of_the_kernel_not_its_python_function():
    with np.errstate(over="ignore"):   # NumPy wraps as the kernel does (6; Python ints: 5)
        factor = float((np.int64(12345) * np.int64(6364136223846793005)
                        + np.int64(1442695040888963407) >> np.int64(33)) % 7)
    value, dx = ad.value_and_grad(hashed, argnums=1, backend="interp")(12345, 1.0)
    assert (value, dx) == (factor, factor) and factor != hashed.py_func(12345, 1.0)
    assert ad.check_grad(hashed, 12345, 1.0, backend="interp") < 1e-7


@ad.kernel
def axpy_into(dst, src, a):
    for i in range(dst.shape[0]):
        dst[i] = a * src[i] + dst[i]
    return dst[dst.shape[0] - 1]


@ad.kernel
def running(u, a):
    return axpy_into(u[1:], u[:-1], a) * u[0]   # each step reads the one before


def test_a_kernel_called_on_overlapping_slices_inside():
    u = np.array([0.5, -1.0, 2.0])
    # u1' = u1 + a u0, u2' = u2 + a u1' = u2 + a u1 + a^2 u0; result u2' u0
    a = 0.7
    want = np.array([u[2] + a * u[1] + 2 * a * a * u[0], a * u[0], u[0]])
    np.testing.assert_allclose(ad.grad(running, backend="interp")(u, a), want, rtol=1e-14)
    assert ad.check_grad(running, u, a, argnums=[0, 1], backend="interp") < 1e-7


@ad.custom_vjp
@ad.kernel
def square(x):
    return x * x


@ad.kernel
def square_fwd(x):
    return x * x, x


@ad.kernel
def square_bwd(x, r, g):
    return 3.0 * r * g   # wrong on purpose: 2 x is right


square.defvjp(square_fwd, square_bwd)


@ad.kernel
def squares(u):
    s = 0.0
    for i in range(u.shape[0]):
        s += square(u[i])
    return s


def test_a_wrong_custom_rule_still_fails():
    with pytest.raises(ad.GradientMismatch, match="w.r.t. 'u' disagrees"):
        ad.check_grad(squares, np.array([0.3, -0.4]), backend="interp")


@ad.kernel
def update_and_norm(dst, src, a):
    for i in range(dst.shape[0]):
        dst[i] = a * src[i] + dst[i] * src[i]
    return np.sum(dst * dst)


def test_float32_arguments_get_a_step_and_tolerance_of_their_precision():
    """A right float32 gradient passes at the defaults (a float32 result's rounding swamped
    a step of 1e-6: relative errors of 0.5 on a right gradient), and a wrong rule still
    fails in float32."""
    u = np.linspace(0.1, 0.9, 6).astype(np.float32)
    assert ad.check_grad(update_and_norm, u, 2 * u, 0.7, backend="interp") < 1e-2
    with pytest.raises(ad.GradientMismatch, match="w.r.t. 'u' disagrees"):
        ad.check_grad(squares, u[:3], backend="interp")
