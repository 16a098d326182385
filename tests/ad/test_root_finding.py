"""Derivatives through root finders written as QuantEcon writes them (a `for` loop with
`break` once the step is below a tolerance): Newton's iterations carry the implicit
derivative dx*/dp = -f_p / f_x of the root of x**3 - p, forward and reverse, checked against
that formula; bisection, which only the signs of f steer, has derivative 0, and one Newton
step after it gives the implicit derivative (README: Derivatives where a function has a
kink)."""
import numpy as np
import pytest

import hpcad as ad


@ad.kernel
def f(x, p):
    return x ** 3 - p


@ad.kernel
def f_x(x, p):
    return 3.0 * x ** 2


def newton(x0, p, tol=1.48e-8, maxiter=50):
    p0 = 1.0 * x0
    root = p0
    for _ in range(maxiter):
        fval = f(p0, p)
        if fval == 0:
            root = p0
            break
        root = p0 - fval / f_x(p0, p)
        if abs(root - p0) < tol:
            break
        p0 = root
    return root


@ad.kernel
def bisect(a, b, p, xtol=2e-12, maxiter=100):
    xa, xb = a * 1.0, b * 1.0
    fa = f(xa, p)
    dm = xb - xa
    root = xa
    for _ in range(maxiter):
        dm *= 0.5
        xm = xa + dm
        fm = f(xm, p)
        if fm * fa >= 0:
            xa = xm
        if fm == 0 or abs(dm) < xtol:
            root = xm
            break
    return root


def bisect_then_newton(a, b, p):
    x = bisect(a, b, p)
    return x - f(x, p) / f_x(x, p)


@pytest.mark.parametrize("p", [2.0, 0.7])
def test_newton_carries_the_implicit_derivative(p):
    x = ad.kernel(newton, backend="interp")(1.0, p)
    assert x == pytest.approx(np.cbrt(p), rel=1e-12)
    implicit = 1.0 / (3.0 * x * x)      # -f_p / f_x with f_p = -1
    assert ad.grad(newton, argnums=1, backend="interp")(1.0, p) == pytest.approx(implicit,
                                                                                rel=1e-9)
    _, tangent = ad.jvp(newton, (1.0, p), (0.0, 1.0), backend="interp")
    assert tangent == pytest.approx(implicit, rel=1e-9)


@pytest.mark.parametrize("p", [2.0, 0.7])
def test_bisection_is_a_step_function_and_a_newton_step_ends_it(p):
    assert ad.grad(bisect, argnums=2, backend="interp")(0.0, 2.0, p) == 0.0
    x = ad.kernel(bisect_then_newton, backend="interp")(0.0, 2.0, p)
    assert x == pytest.approx(np.cbrt(p), rel=1e-12)
    got = ad.grad(bisect_then_newton, argnums=2, backend="interp")(0.0, 2.0, p)
    assert got == pytest.approx(1.0 / (3.0 * x * x), rel=1e-9)
