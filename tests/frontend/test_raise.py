"""`raise ValueError("message")` in a kernel, as numba raises it (QuantEcon's root finders
and quadrature rules check their arguments so): the kernel stops where the statement runs,
with an error that is both the class raised (a ValueError, so `except ValueError` catches
it as it catches numba's) and an hpcad error naming the kernel's file:line; a kernel whose
raise does not run returns numba's values; derivatives stop too; inside a prange loop the
error comes after the loop. Other raises are refused at their line."""
import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.errors import HpcadError, KernelRaise, UnsupportedConstruct
from tests.ad.harness import njit_of


def trapezoid_weights(n, a, b):
    if n < 2:
        raise ValueError("n must be at least two")
    nodes = np.linspace(a, b, n)
    dx = nodes[1] - nodes[0]
    weights = dx * np.ones(n)
    weights[0] *= 0.5
    weights[-1] *= 0.5
    return np.sum(weights * np.exp(-nodes * nodes))


def newton(x0, p, maxiter=50):
    x = x0
    converged = False
    for _ in range(maxiter):
        step = (x ** 3 - p) / (3.0 * x ** 2)
        x -= step
        if abs(step) < 1e-12:
            converged = True
            break
    if not converged:
        raise RuntimeError("Failed to converge")
    return x


def in_prange(a):
    out = np.empty_like(a)
    for i in numba.prange(a.shape[0]):
        if a[i] < 0.0:
            raise ZeroDivisionError
        out[i] = np.sqrt(a[i])
    return np.sum(out)


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
def test_raises_the_class_numba_raises_at_the_users_line(backend):
    k = ad.kernel(trapezoid_weights, backend=backend)
    assert k(11, -1.0, 2.0) == pytest.approx(njit_of(trapezoid_weights)(11, -1.0, 2.0),
                                             rel=1e-14)
    with pytest.raises(ValueError, match="n must be at least two") as e:
        k(1, -1.0, 2.0)
    with pytest.raises(ValueError, match="n must be at least two"):
        njit_of(trapezoid_weights)(1, -1.0, 2.0)
    assert isinstance(e.value, KernelRaise) and isinstance(e.value, HpcadError)
    assert "test_raise.py:" in str(e.value)


def test_derivatives_stop_where_the_primal_raises():
    dp = ad.grad(newton, argnums=1, backend="interp")(1.0, 2.0)
    assert dp == pytest.approx(1.0 / (3.0 * 2.0 ** (2.0 / 3.0)), rel=1e-10)
    with pytest.raises(RuntimeError, match="Failed to converge"):
        ad.grad(newton, argnums=1, backend="interp")(1.0, 2.0, 2)
    with pytest.raises(RuntimeError, match="Failed to converge"):
        ad.jvp(newton, (1.0, 2.0, 2), (0.0, 1.0, None), backend="interp")


def test_a_raise_in_a_prange_loop_stops_the_kernel():
    k = ad.kernel(in_prange, backend="interp")
    assert k(np.array([1.0, 4.0])) == 3.0
    with pytest.raises(ZeroDivisionError, match="raise ZeroDivisionError"):
        k(np.array([1.0, -4.0]))


class MyError(Exception):
    pass


def own_class(a):
    if a[0] < 0:
        raise MyError("negative")
    return a[0]


def formatted(a):
    if a[0] < 0:
        raise ValueError("negative: " + "a")
    return a[0]


def chained(a):
    if a[0] < 0:
        raise ValueError("negative") from None
    return a[0]


@pytest.mark.parametrize("fn", [own_class, formatted, chained])
def test_other_raises_are_refused_at_their_line(fn):
    with pytest.raises(UnsupportedConstruct, match="a `raise` of other than") as e:
        ad.kernel(fn, backend="interp")(np.array([1.0]))
    assert "test_raise.py" in str(e.value)
