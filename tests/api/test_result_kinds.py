"""Results without a derivative (an integer, a boolean, nothing) and directions or
cotangents of the wrong kind are ArgumentErrors, never a Jacobian of zeros or a crash."""
import numpy as np
import pytest

import hpcad as ad


@ad.kernel
def count(x):
    return x.shape[0]


@ad.kernel
def positive(x):
    return x[0] > 0.0


@ad.kernel
def clear(x):
    x[0] = 1.0


@ad.kernel
def sum_and_count(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
    return x.shape[0], s


@ad.kernel
def pair(x, a):
    out = np.empty_like(x)
    s = 0.0
    for i in range(x.shape[0]):
        out[i] = a * x[i] * x[i]
        s += x[i]
    return s, out


@ad.kernel
def scaled_sum(x, a):
    s = 0.0
    for i in range(x.shape[0]):
        s += a * a * x[i]
    return s


X = np.linspace(0.1, 1.0, 4)


@pytest.mark.parametrize("kernel", [count, positive, clear, sum_and_count])
@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_jacobian_of_no_float_result_is_refused(kernel, mode):
    with pytest.raises(ad.ArgumentError, match="jacobian needs kernel .* to return floats"):
        ad.jacobian(kernel, mode=mode, backend="interp")(X)


def test_cotangents_in_the_wrong_order():
    _, vjp_fn = ad.vjp(pair, X, 2.0, backend="interp")
    with pytest.raises(ad.ArgumentError, match="cotangent of a float result must be one real"):
        vjp_fn((np.ones(4), 1.0))
    dx, da = vjp_fn((1.0, np.ones(4)))   # d(sum x + sum a x^2): analytic
    np.testing.assert_allclose(dx, 1.0 + 4.0 * X, rtol=1e-12)
    assert da == pytest.approx(np.sum(X * X), rel=1e-12)


def test_a_tuple_with_an_integer_takes_a_cotangent_per_result_with_none():
    """vjp_fn of (count, sum) takes (None, g), as jvp returns (None, tangent), or the float
    result's alone, (g,); anything else says which form (it asked for seed=(s1, ..., s1))."""
    (n, s), vjp_fn = ad.vjp(sum_and_count, X, backend="interp")
    assert n == 4 and ad.jvp(sum_and_count, (X,), (X,), backend="interp")[1][0] is None
    np.testing.assert_array_equal(vjp_fn((None, 2.0))[0], np.full(4, 2.0))   # d(2 sum x)
    np.testing.assert_array_equal(vjp_fn((2.0,))[0], np.full(4, 2.0))
    for wrong, got in [((0, 2.0), "a tuple of 2"), (2.0, "float")]:
        with pytest.raises(ad.ArgumentError, match=rf"'sum_and_count' returns a tuple of 2 \(an "
                           rf"int64, a float64\) with 1 float value: pass a tuple of 1 "
                           rf"cotangent, one per float result, or one per result with None "
                           rf"for the others \(got {got}\)"):
            vjp_fn(wrong)


def test_array_tangent_of_a_float_is_refused():
    with pytest.raises(ad.ArgumentError, match="tangent of float 'a' must be one real number"):
        ad.jvp(pair, (X, 2.0), (X, np.ones(3)), backend="interp")


def test_array_direction_of_a_float_is_refused():
    with pytest.raises(ad.ArgumentError, match="direction for float 'a' must be one real"):
        ad.hvp(scaled_sum, argnums=1, backend="interp")(X, 2.0, np.ones(4))


@ad.kernel
def scaled_copy(x, a):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = a * x[i]
    return out


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_jacobian_of_size_zero(mode):
    """An argument or result of size 0: an empty Jacobian (was range()'s ValueError)."""
    z = np.zeros(0)
    assert ad.jacobian(scaled_sum, mode=mode, backend="interp")(z, 2.0).shape == (0,)
    assert ad.jacobian(scaled_copy, mode=mode, backend="interp")(z, 2.0).shape == (0, 0)
    assert ad.jacobian(scaled_copy, argnums=1, mode=mode, backend="interp")(z, 2.0).shape \
        == (0,)
    jac = ad.jacobian(scaled_copy, argnums=(0, 1), mode=mode, backend="interp")(X, 2.0)
    np.testing.assert_allclose(jac[0], 2.0 * np.eye(4), rtol=1e-12)   # analytic
    np.testing.assert_allclose(jac[1], X, rtol=1e-12)
