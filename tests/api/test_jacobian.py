"""jacobian in both modes against central finite differences; jvp/vjp structure for tuple
returns; autodiff's forward and reverse in-place conventions."""
import math

import numpy as np
import pytest

import hpcad as ad


@ad.kernel
def moments(x, p):
    m1 = 0.0
    m2 = 0.0
    for i in range(len(x)):
        m1 += math.sin(p * x[i])
        m2 += x[i] * x[i] * p
    return m1, m2


def _fd_jacobian(f, args, n, eps=1e-6):
    x = args[n]
    shape = np.shape(x)
    out = np.array(f.py_func(*args), dtype=float)
    jac = np.zeros(out.shape + shape)
    for idx in np.ndindex(*shape) if shape else [()]:
        plus, minus = [a.copy() if isinstance(a, np.ndarray) else a for a in args], \
            [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        if shape:
            plus[n][idx] += eps
            minus[n][idx] -= eps
        else:
            plus[n] += eps
            minus[n] -= eps
        col = (np.array(f.py_func(*plus)) - np.array(f.py_func(*minus))) / (2 * eps)
        jac[(Ellipsis,) + idx] = col
    return jac


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_jacobian_matches_fd(mode):
    x = np.linspace(0.1, 1.0, 5)
    jx, jp = ad.jacobian(moments, argnums=(0, 1), mode=mode)(x, 0.7)
    assert jx.shape == (2, 5) and jp.shape == (2,)
    np.testing.assert_allclose(jx, _fd_jacobian(moments, (x, 0.7), 0), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(jp, _fd_jacobian(moments, (x, 0.7), 1), rtol=1e-7, atol=1e-9)


def test_forward_autodiff_in_place_signature():
    x = np.linspace(0.1, 1.0, 5)
    df = ad.autodiff(moments, mode="forward", activity=(ad.Duplicated, ad.Dual))
    v = np.ones(5)
    out, dots = df(x, v, 0.7, 0.5)
    jx = _fd_jacobian(moments, (x, 0.7), 0)
    jp = _fd_jacobian(moments, (x, 0.7), 1)
    np.testing.assert_allclose(dots, jx @ v + jp * 0.5, rtol=1e-7)
    assert out == moments(x, 0.7)


def test_reverse_shadow_convention_for_output_array():
    @ad.kernel
    def square_into(y, x):
        for i in range(len(x)):
            y[i] = x[i] * x[i]

    x = np.array([1.0, 2.0, 3.0])
    dx = np.zeros(3)
    y = np.zeros(3)
    dy = np.array([1.0, 10.0, 100.0])   # cotangent of y's exit value
    df = ad.autodiff(square_into, activity=(ad.Duplicated, ad.Duplicated), ret=ad.Const)
    (out,) = df(y, dy, x, dx)
    assert out is None
    np.testing.assert_allclose(dx, 2 * x * np.array([1.0, 10.0, 100.0]))
    np.testing.assert_array_equal(dy, 0.0)   # a pure output's shadow is consumed
    np.testing.assert_array_equal(y, x * x)  # the primal ran


def test_read_only_input_shadow_accumulates():
    @ad.kernel
    def total(x):
        s = 0.0
        for i in range(len(x)):
            s += 3.0 * x[i]
        return s

    dx = np.ones(4)
    ad.autodiff(total, activity=(ad.Duplicated,))(np.ones(4), dx)
    np.testing.assert_array_equal(dx, 4.0)


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_reverse_autodiff_of_a_kernel_returning_nothing_needs_no_seed(backend):
    @ad.kernel
    def cube_into(y, x):
        for i in range(len(x)):
            y[i] = x[i] * x[i] * x[i]

    x = np.array([1.0, 2.0, 3.0])
    df = ad.autodiff(cube_into, activity=(ad.Duplicated, ad.Duplicated), backend=backend)
    for seed in ({}, {"seed": ()}):
        dx, y, dy = np.zeros(3), np.zeros(3), np.array([1.0, 10.0, 100.0])
        (out,) = df(y, dy, x, dx, **seed)
        assert out is None
        np.testing.assert_allclose(dx, 3 * x * x * np.array([1.0, 10.0, 100.0]))
    with pytest.raises(ad.ArgumentError, match="returns nothing, so there is nothing to seed"):
        df(np.zeros(3), np.ones(3), x, np.zeros(3), seed=1.0)


@ad.kernel
def partly_constant(x, w, q):
    """Three results: each depends on some of the arguments only (q on none)."""
    a = 0.0
    b = 0.0
    c = 0.0
    for i in range(len(x)):
        a += x[i] * x[i] * w[i]
        b += math.sin(x[i]) * x[(i + 1) % len(x)]
        c += w[i] * 2.0
    return a, b, c


@pytest.mark.parametrize("backend", ["interp", "numba"])
@pytest.mark.parametrize("batch", [None, 1, 3])
def test_jacobian_modes_agree_where_results_do_not_depend_on_an_argument(backend, batch):
    rng = np.random.default_rng(3)
    args = (rng.standard_normal(7), rng.standard_normal(7), 0.5)
    got = {mode: ad.jacobian(partly_constant, argnums=(0, 1, 2), mode=mode, batch=batch,
                             backend=backend)(*args) for mode in ("rev", "fwd")}
    for n in range(3):
        expected = _fd_jacobian(partly_constant, args, n)
        for mode in ("rev", "fwd"):
            np.testing.assert_allclose(got[mode][n], expected, rtol=1e-7, atol=1e-9,
                                       err_msg=f"mode {mode}, argument {n}")


@ad.kernel
def _scaled_squares(u, c):
    return u * u * c


def test_float32_jacobian_keeps_float32():
    """A Jacobian of float32 arrays is float32, as grad's, vjp's and jvp's results are (it
    was float64), and equals the analytic one."""
    u = np.linspace(0.1, 0.9, 4).astype(np.float32)
    for mode in ("rev", "fwd"):
        jac = ad.jacobian(_scaled_squares, mode=mode, backend="interp")(u, np.float32(0.5))
        assert jac.dtype == np.float32
        np.testing.assert_allclose(jac, np.diag(u), rtol=1e-6)
