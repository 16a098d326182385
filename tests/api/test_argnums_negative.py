"""A negative argnum counts from the end of the kernel's parameters; JAX counts it from the
end of the positional arguments passed. Where a call passes fewer positionally (the rest by
keyword or default) the two name different arguments, and the derivative would silently be
with respect to another one: refused."""
import numpy as np
import pytest

import hpcad as ad


@ad.kernel
def weighted(x, a, b=1.0):
    s = 0.0
    for i in range(x.shape[0]):
        s += a * b * x[i] * x[i]
    return s


X = np.linspace(0.1, 1.0, 5)


def test_all_positional_counts_from_the_last_parameter():
    # d/db of a * b * sum(x^2) is a * sum(x^2); d/da is b * sum(x^2)
    g = ad.grad(weighted, argnums=-1, backend="interp")(X, 0.7, 2.0)
    assert g == pytest.approx(0.7 * np.sum(X * X), rel=1e-12)
    ga = ad.grad(weighted, argnums=-2, backend="interp")(X, 0.7, 2.0)
    assert ga == pytest.approx(2.0 * np.sum(X * X), rel=1e-12)


@pytest.mark.parametrize("transform", [ad.grad, ad.value_and_grad])
def test_default_filled_in_is_refused(transform):
    with pytest.raises(ad.ArgumentError, match=r"could mean 'b' \(the parameter\) or 'a'"):
        transform(weighted, argnums=-1, backend="interp")(X, 0.7)


def test_keyword_is_refused():
    with pytest.raises(ad.ArgumentError, match=r"argnums \(0, -1\): a negative position"):
        ad.grad(weighted, argnums=(0, -1), backend="interp")(X, 0.7, b=2.0)


def test_positive_argnums_with_defaults_still_work():
    g = ad.grad(weighted, argnums=1, backend="interp")(X, 0.7)
    assert g == pytest.approx(np.sum(X * X), rel=1e-12)


def test_jacobian_and_hvp_refuse_too():
    with pytest.raises(ad.ArgumentError, match="negative position"):
        ad.jacobian(weighted, argnums=-1, backend="interp")(X, 0.7)
    with pytest.raises(ad.ArgumentError, match="negative position"):
        ad.hvp(weighted, argnums=-1, backend="interp")(X, 0.7, 1.0)
    # all parameters passed: -1 is b; H_bb of a * b * sum(x^2) is 0
    assert ad.hvp(weighted, argnums=-1, backend="interp")(X, 0.7, 2.0, 1.0) == 0.0


@ad.kernel
def inner_default(x, a):
    return ad.grad(weighted, argnums=-1)(x, a)


@ad.kernel
def inner_full(x, a):
    return ad.grad(weighted, argnums=-1)(x, a, 2.0)


def test_nested_default_filled_in_is_refused():
    with pytest.raises(ad.HpcadError, match=r"argnums -1 \(counting from the end\)"):
        inner_default(X, 0.7)


def test_nested_all_positional_counts_from_the_last_parameter():
    assert inner_full(X, 0.7) == pytest.approx(0.7 * np.sum(X * X), rel=1e-12)


def test_jacobian_and_hvp_take_keywords():
    """As grad does (they raised Python's TypeError); analytic values of a * b * sum(x^2)."""
    jac = ad.jacobian(weighted, argnums=(0, 1), backend="interp")(X, 0.7, b=2.0)
    np.testing.assert_allclose(jac[0], 2.0 * 0.7 * 2.0 * X, rtol=1e-12)
    assert jac[1] == pytest.approx(2.0 * np.sum(X * X), rel=1e-12)
    hv = ad.hvp(weighted, backend="interp")(X, np.ones(5), a=0.7, b=2.0)
    np.testing.assert_allclose(hv, np.full(5, 2.0 * 0.7 * 2.0), rtol=1e-12)
    value, _, hv_a = ad.grad_and_hvp(weighted, argnums=1, backend="interp")(X, 0.7, 1.0, b=2.0)
    assert value == pytest.approx(0.7 * 2.0 * np.sum(X * X), rel=1e-12)
    assert hv_a == 0.0   # linear in a


def test_argnums_as_list_and_numpy_integers():
    """As JAX takes them (a list was 'out of range', a NumPy integer too)."""
    expected = (2.0 * 0.7 * 2.0 * X, 2.0 * np.sum(X * X))   # analytic
    for argnums in ([0, 1], (np.int64(0), np.int32(1)), range(2)):
        got = ad.grad(weighted, argnums=argnums, backend="interp")(X, 0.7, 2.0)
        assert isinstance(got, tuple) and len(got) == 2
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-12)
        assert got[1] == pytest.approx(expected[1], rel=1e-12)
    assert ad.grad(weighted, argnums=np.int64(1), backend="interp")(X, 0.7, 2.0) == \
        pytest.approx(expected[1], rel=1e-12)
    jac = ad.jacobian(weighted, argnums=[1], backend="interp")(X, 0.7, 2.0)
    assert jac[0] == pytest.approx(expected[1], rel=1e-12)
    hv = ad.hvp(weighted, argnums=np.int64(0), backend="interp")(X, 0.7, 2.0, np.ones(5))
    np.testing.assert_allclose(hv, np.full(5, 2.0 * 0.7 * 2.0), rtol=1e-12)
