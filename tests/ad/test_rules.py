"""Rows of the partials table (ad/rules/arith.py) at the edges of their domain: a rule must give
the one-sided derivative where the function has one, never a NaN or inf from a branch the
answer does not need."""
import math

import numpy as np
import pytest

import hpcad as ad

BACKENDS = ["interp", "numba"]


@ad.kernel
def sum_of_powers(x, p):
    s = 0.0
    for i in range(len(x)):
        s += x[i] ** p
    return s


def _with_zero():
    return np.array([0.0, 0.5, 1.5, 0.0, 2.0])


def _dp_exact(x, p):
    """d/dp sum(x**p) = sum(log(x) x**p), each x == 0 contributing 0 (p > 0)."""
    return sum(math.log(v) * v ** p for v in x if v != 0.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("p", [0.5, 2.0, 3.0])
def test_pow_exponent_derivative_at_zero_base_is_zero_in_reverse_mode(backend, p):
    x = _with_zero()
    dx, dp = ad.grad(sum_of_powers, argnums=(0, 1), backend=backend)(x, p)
    assert dp == pytest.approx(_dp_exact(x, p), rel=1e-12)
    fd = (sum_of_powers.py_func(x, p + 1e-6) - sum_of_powers.py_func(x, p - 1e-6)) / 2e-6
    assert dp == pytest.approx(fd, rel=1e-6)
    nonzero = x != 0.0
    np.testing.assert_allclose(dx[nonzero], p * x[nonzero] ** (p - 1), rtol=1e-12)
    if p >= 1.0:   # d/dx x**p at x == 0 is defined: p * 0**(p-1)
        np.testing.assert_array_equal(dx[~nonzero], p * 0.0 ** (p - 1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("p", [0.5, 2.0])
def test_pow_exponent_derivative_at_zero_base_is_zero_in_forward_mode(backend, p):
    x = _with_zero()
    _, dot = ad.jvp(sum_of_powers, (x, p), (None, 1.0), backend=backend)
    assert dot == pytest.approx(_dp_exact(x, p), rel=1e-12)
    df = ad.autodiff(sum_of_powers, mode="forward", activity=(ad.Const, ad.Dual),
                     backend=backend)
    _, dot = df(x, p, 1.0)
    assert dot == pytest.approx(_dp_exact(x, p), rel=1e-12)
