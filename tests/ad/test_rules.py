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


@ad.kernel
def distances_off_the_diagonal(p, w):
    """Pairwise distances whose zero diagonal is overwritten before use (numpy-benchmarks'
    periodic_dist, numba-examples' Lennard-Jones): sqrt's partial is infinite there, but the
    overwritten elements have no effect on the result."""
    diff = p[:, np.newaxis] - p[np.newaxis, :]
    d = np.sqrt(diff * diff + 0.0 * w)
    d[d == 0.0] = -1.0
    s = np.sum(d * w)
    t = 0.0
    for i in range(p.shape[0]):   # scalar code: sqrt, acos and atan2 at their singular points
        t += math.sqrt(p[i] - p[i]) * 0.0 + math.acos(1.0 + 0.0 * p[i]) * 0.0 \
            + math.atan2(0.0 * p[i], 0.0) * 0.0
    return s + t


def _distances_exact(p, w):
    """d/dp_k of sum_ij |p_i - p_j| w_ij over i != j."""
    sign = np.sign(p[:, None] - p[None, :])
    return np.sum(sign * w, axis=1) - np.sum(sign * w, axis=0)


@pytest.mark.parametrize("backend", [BACKENDS[0], pytest.param("numba", marks=pytest.mark.slow)])
def test_a_zero_adjoint_through_an_infinite_partial_adds_nothing(backend):
    """A result with zero adjoint (or an operand with zero tangent) at sqrt(0), acos(1) or
    atan2(0, 0) contributes 0, not NaN (0 * inf), in both modes; d/dw of the overwritten
    diagonal is 0."""
    p, w = np.array([0.3, -1.2, 2.0, 0.7]), np.random.default_rng(3).standard_normal((4, 4))
    dp, dw = ad.grad(distances_off_the_diagonal, argnums=(0, 1), backend=backend)(p, w)
    np.testing.assert_allclose(dp, _distances_exact(p, w), rtol=1e-12)
    want_dw = np.abs(p[:, None] - p[None, :])
    np.fill_diagonal(want_dw, -1.0)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-12)
    v = np.array([1.0, -0.5, 0.25, 2.0])
    _, dot = ad.jvp(distances_off_the_diagonal, (p, w), (v, None), backend=backend)
    assert dot == pytest.approx(float(_distances_exact(p, w) @ v), rel=1e-12)


@ad.kernel
def root_at_zero(x):
    return math.sqrt(x[0]) + x[1]


def test_sqrt_at_zero_with_an_adjoint_is_still_infinite():
    """Where the adjoint arriving at sqrt(0) is not zero, the derivative stays infinite
    (README: derivatives where a function has a kink)."""
    g = ad.grad(root_at_zero, backend="interp")(np.array([0.0, 1.0]))
    assert math.isinf(g[0]) and g[1] == 1.0
