"""Bad inputs to the derivative API are ArgumentErrors naming the argument, raised before
anything runs."""
import math

import numpy as np
import pytest

import hpcad as ad


@ad.kernel
def scale_sum(u, alpha, n):
    s = 0.0
    for i in range(n):
        s += alpha * u[i] * u[i]
    return s


def _reverse():
    return ad.autodiff(scale_sum, mode="reverse", activity=(ad.Duplicated, ad.Active, ad.Const))


def test_wrong_shadow_shape():
    with pytest.raises(ad.ArgumentError, match="shadow of 'u' has shape"):
        _reverse()(np.ones(4), np.zeros(3), 2.0, 4)


def test_wrong_shadow_dtype():
    with pytest.raises(ad.ArgumentError, match="shadow of 'u' has dtype float32"):
        _reverse()(np.ones(4), np.zeros(4, dtype=np.float32), 2.0, 4)


def test_read_only_shadow():
    du = np.zeros(4)
    du.flags.writeable = False
    with pytest.raises(ad.ArgumentError, match="shadow of 'u' is read-only"):
        _reverse()(np.ones(4), du, 2.0, 4)


def test_shadow_aliasing_primal():
    u = np.ones(4)
    with pytest.raises(ad.ArgumentError, match="'u' and 'd_u' overlap"):
        _reverse()(u, u, 2.0, 4)


def test_wrong_activity_count():
    with pytest.raises(ad.ArgumentError, match="3 arguments .*2 activities"):
        ad.autodiff(scale_sum, activity=(ad.Duplicated, ad.Active))


def test_wrong_flat_argument_count():
    with pytest.raises(ad.ArgumentError, match=r"takes 4 arguments \(u, d_u, alpha, n\)"):
        _reverse()(np.ones(4), np.zeros(4), 2.0)


def test_active_array_is_rejected():
    df = ad.autodiff(scale_sum, activity=(ad.Active, ad.Active, ad.Const))
    with pytest.raises(ad.ArgumentError, match="'u' is Active but is not a float scalar"):
        df(np.ones(4), 2.0, 4)


def test_dual_in_reverse_mode_is_rejected():
    with pytest.raises(ad.ArgumentError, match="activity of 'alpha'.*use Active"):
        ad.autodiff(scale_sum, activity=(ad.Duplicated, ad.Dual, ad.Const))


def test_duplicated_int_array_is_rejected():
    @ad.kernel
    def count(idx):
        return float(idx[0])

    df = ad.autodiff(count, activity=(ad.Duplicated,))
    with pytest.raises(ad.ArgumentError, match="'idx' is Duplicated but is not a float array"):
        df(np.ones(3, dtype=np.int64), np.zeros(3, dtype=np.int64))


def test_grad_argnums_out_of_range():
    with pytest.raises(ad.ArgumentError, match="argnums 5 out of range"):
        ad.grad(scale_sum, argnums=5)(np.ones(4), 2.0, 4)


def test_grad_of_int_argument():
    with pytest.raises(ad.ArgumentError, match="'n': it is an int64"):
        ad.grad(scale_sum, argnums=2)(np.ones(4), 2.0, 4)


def test_jvp_tangent_shape():
    with pytest.raises(ad.ArgumentError, match="tangent for 'u' has shape"):
        ad.jvp(scale_sum, (np.ones(4), 2.0, 4), (np.ones(5), 1.0, None))


def test_unknown_backend():
    with pytest.raises(ad.ArgumentError, match="unknown backend 'cuda'"):
        ad.grad(scale_sum, backend="cuda")(np.ones(4), 2.0, 4)


def test_constant_array_receiving_active_values():
    @ad.kernel
    def through_buffer(x, buf):
        for i in range(len(buf)):
            buf[i] = x * i
        s = 0.0
        for i in range(len(buf)):
            s += buf[len(buf) - 1 - i] * 3.0   # read back in another order: not fusable
        return s

    df = ad.autodiff(through_buffer, activity=(ad.Active, ad.Const))
    with pytest.raises(ad.DifferentiationError, match="argument 'buf' is marked constant"):
        df(1.5, np.zeros(2))


@ad.kernel
def norm_of_squares(x):
    s = 0.0
    for i in range(len(x)):
        s += math.sqrt(x[i] * x[i])   # d/dx at 0: 0.5 / 0 * 0 = NaN
    return s


@ad.kernel
def cliff(x):
    y = x
    if x > 1.0:
        y = 1e308 * 10.0
    return y


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_check_grad_refuses_a_nan_gradient_naming_the_entry(backend):
    x = np.array([1.0, 0.0, 2.0])
    assert np.isnan(ad.grad(norm_of_squares, backend=backend)(x)[1])
    with pytest.raises(ad.GradientMismatch, match=r"gradient of 'norm_of_squares' w.r.t. "
                                                  r"'x' is not finite at index \(1,\)"):
        ad.check_grad(norm_of_squares, x, backend=backend)


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_check_grad_refuses_a_non_finite_finite_difference(backend):
    with pytest.raises(ad.GradientMismatch, match=r"finite difference along coordinate 0 of "
                                                  r"'cliff' w.r.t. 'x' is not finite"):
        ad.check_grad(cliff, 1.0 - 1e-7, backend=backend)


def _linear_in_alpha(x, alpha, n):
    s = 0.0
    for t in range(n):
        for i in range(x.shape[0]):
            s += alpha * x[i] * x[i]
    return s


def test_an_integer_where_a_derivative_is_asked_for_says_to_pass_a_float():
    """alpha=1 (an int, as numba users often pass it) with argnums naming it was refused as
    'it is i64, not a float scalar or float array'; it says what to pass, and that gives the
    derivative."""
    k = ad.kernel(_linear_in_alpha, backend="interp")
    x = np.array([1.0, 2.0])
    with pytest.raises(ad.ArgumentError, match=r"'alpha': it is an int64, not a float scalar or "
                                               r"float array; pass it as a float "
                                               r"\(alpha=1.0, not 1\)"):
        ad.grad(k, argnums=1)(x, 1, 2)
    with pytest.raises(ad.ArgumentError, match=r"pass a float array \(x.astype\(np.float64\)\)"):
        ad.grad(k, argnums=0)(np.array([1, 2]), 1.0, 2)
    with pytest.raises(ad.ArgumentError, match=r"its tangent must be None \(or pass it as a "
                                               r"float \(alpha=1.0, not 1\)\)"):
        ad.jvp(k, (x, 1, 2), (None, 1.0, None))
    assert ad.grad(k, argnums=1)(x, 1.0, 2) == pytest.approx(2 * np.sum(x * x))


@ad.kernel
def scale_in_place(x, a):
    for i in range(x.shape[0]):
        x[i] = a * x[i]


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_writing_a_read_only_array_is_named(backend):
    """(was numba's typing error, or NumPy's 'assignment destination is read-only')"""
    k = ad.kernel(scale_in_place.py_func, backend=backend)
    x = np.ones(3)
    k(x, 2.0)                                   # a writable one first: its fast paths
    np.testing.assert_array_equal(x, 2.0)
    x.setflags(write=False)
    for _ in range(2):
        with pytest.raises(ad.ArgumentError, match="writes its argument 'x', which is a "
                                                   "read-only array"):
            k(x, 2.0)
    dx = ad.grad(scale_sum)(x, 2.0, 3)          # a derivative copies what it writes
    np.testing.assert_allclose(dx, 2.0 * 2.0 * x)


def test_empty_argnums_and_no_float_argument_are_refused():
    """argnums=() (and check_grad of a kernel without a float argument, whose default is
    every float argument) raised Python's SyntaxError from the result picker."""
    u = np.ones(3)
    for call in (lambda: ad.grad(scale_sum, argnums=(), backend="interp")(u, 2.0, 3),
                 lambda: ad.jacobian(scale_sum, argnums=(), backend="interp")(u, 2.0, 3),
                 lambda: ad.hvp(scale_sum, argnums=(), backend="interp")(u, 2.0, 3, ())):
        with pytest.raises(ad.ArgumentError, match=r"argnums=\(\) names no argument of "
                                                   r"kernel 'scale_sum'"):
            call()
    with pytest.raises(ad.ArgumentError, match="check_grad: kernel 'scale_sum' has no float "
                                               r"argument to differentiate \(u, alpha, n\)"):
        ad.check_grad(scale_sum, np.ones(3, dtype=np.int64), 2, 3, backend="interp")


def test_argnums_that_are_not_positions_say_so():
    """A name, a float or None was 'out of range', which they are not."""
    for argnums in ("alpha", 1.0, None, (0, "alpha")):
        with pytest.raises(ad.ArgumentError, match=r"argument positions are ints \(0 for 'u' "
                                                   r"of kernel 'scale_sum'\)"):
            ad.grad(scale_sum, argnums=argnums, backend="interp")(np.ones(3), 2.0, 3)


def test_hvp_of_several_arguments_takes_a_tuple_of_directions():
    """A float direction was Python's TypeError (len() of a float), an array of another
    length 'n arguments to differentiate but m directions'."""
    hvp_fn = ad.hvp(scale_sum, argnums=(0, 1), backend="interp")
    for v in (1.0, np.ones(3)):
        with pytest.raises(ad.ArgumentError, match=r"hvp with argnums=\(0, 1\) takes a tuple of "
                                                   r"directions, one per argument \(u, alpha\)"):
            hvp_fn(np.ones(3), 2.0, 3, v)
    hu, halpha = hvp_fn(np.ones(3), 2.0, 3, (np.ones(3), 1.0))   # f = alpha sum u^2: analytic
    np.testing.assert_allclose(hu, 2 * 2.0 * np.ones(3) + 2 * np.ones(3), rtol=1e-15)
    assert halpha == pytest.approx(2 * 3.0, rel=1e-15)
