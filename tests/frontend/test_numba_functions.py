"""Kernels written for numba as they are: a `@numba.njit` helper called in a kernel is
inlined from its Python function, as another kernel is, and `hpcad.kernel(f)`, `ad.grad(f)`
of a `@numba.njit` function `f` take its Python function (parallel where numba's was). Values
against numba.njit of the same code, derivatives against central finite differences."""
import math

import numba
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import njit_of


@numba.njit
def lorenz_rhs(y, sigma, rho, beta, out):
    out[0] = sigma * (y[1] - y[0])
    out[1] = y[0] * (rho - y[2]) - y[1]
    out[2] = y[0] * y[1] - beta * y[2]


@numba.njit
def minmod(a, b):
    if a * b <= 0.0:
        return 0.0
    if abs(a) < abs(b):
        return a
    return b


def rk2_lorenz(y0, sigma, rho, beta, dt, nsteps):
    y = y0.copy()
    k1 = np.empty(3)
    k2 = np.empty(3)
    tmp = np.empty(3)
    for _ in range(nsteps):
        lorenz_rhs(y, sigma, rho, beta, k1)
        for i in range(3):
            tmp[i] = y[i] + dt * k1[i]
        lorenz_rhs(tmp, sigma, rho, beta, k2)
        for i in range(3):
            y[i] += 0.5 * dt * (k1[i] + k2[i])
    return y


def limited_slopes(u):
    n = u.shape[0]
    s = 0.0
    for i in range(n):
        s += minmod(u[i] - u[i - 1], u[(i + 1) % n] - u[i]) ** 2
    return s


@numba.njit
def njit_energy(x, w):
    e = 0.0
    for i in range(x.shape[0]):
        e += w[i] * math.exp(-x[i] * x[i])
    return e


@numba.njit(parallel=True)
def njit_parallel_sum(x):
    s = 0.0
    for i in numba.prange(x.shape[0]):
        s += math.sin(x[i]) * x[i]
    return s


def central_difference(f, args, k, v, h=1e-6):
    up, down = list(args), list(args)
    up[k] = args[k] + h * v
    down[k] = args[k] - h * v
    return (f(*up) - f(*down)) / (2 * h)


Y0 = np.array([1.0, 1.5, 2.0])
LORENZ = (Y0, 10.0, 28.0, 8.0 / 3.0, 0.01, 6)
U = np.array([0.3, 1.1, 0.4, -0.2, 0.9, 1.7, 0.05])


@pytest.mark.parametrize("fn, args", [(rk2_lorenz, LORENZ), (limited_slopes, (U,))],
                         ids=["rk2_lorenz", "limited_slopes"])
def test_a_kernel_calling_numba_functions_computes_numbas_values(fn, args):
    """Refused before ("calling `lorenz_rhs` is not supported"); now bitwise numba's."""
    expected = njit_of(fn)(*args)
    got = ad.kernel(fn, backend="interp")(*args)
    assert np.array_equal(got, expected) and np.asarray(got).dtype == np.asarray(expected).dtype


def test_derivatives_through_a_numba_helper_agree_with_finite_differences():
    """d y(T) / d (y0, rho) of the RK2 Lorenz steps, lorenz_rhs being @numba.njit: reverse
    and forward mode against central differences of numba.njit of the same code."""
    k = ad.kernel(rk2_lorenz, backend="interp")
    ref = njit_of(rk2_lorenz)
    rng = np.random.default_rng(5)
    w, v = rng.normal(size=3), rng.normal(size=3)
    out, vjp_fn = ad.vjp(k, *LORENZ)
    dy0, _, drho = vjp_fn(w)[:3]
    fd_y0 = w @ central_difference(ref, LORENZ, 0, v)
    fd_rho = w @ central_difference(ref, LORENZ, 2, 1.0)
    assert dy0 @ v == pytest.approx(fd_y0, rel=1e-7)
    assert drho == pytest.approx(fd_rho, rel=1e-7)
    _, tangent = ad.jvp(k, LORENZ, (v, None, 1.0, None, None, None))
    assert w @ tangent == pytest.approx(fd_y0 + fd_rho, rel=1e-7)


def test_slopes_limited_by_a_numba_helper_differentiate():
    """minmod is piecewise linear: away from its switches the gradient is central
    differences'."""
    g = ad.grad(ad.kernel(limited_slopes, backend="interp"))(U)
    fd = np.array([central_difference(limited_slopes, (U,), 0, e) for e in np.eye(U.size)])
    np.testing.assert_allclose(g, fd, rtol=1e-7)


def test_a_numba_function_is_a_kernel_of_its_python_function():
    """hpcad.kernel(f) and ad.grad(f) of a @numba.njit f failed with "'CPUDispatcher'
    object has no attribute '__globals__'"; they take f.py_func, and numba's
    parallel=True."""
    x, w = np.array([0.2, -0.7, 1.3]), np.array([1.0, 2.0, 0.5])
    k = ad.kernel(njit_energy, backend="interp")
    assert k.py_func is njit_energy.py_func and not k.parallel
    assert k(x, w) == njit_energy(x, w)
    gx = ad.grad(njit_energy, argnums=0, backend="interp")(x, w)
    np.testing.assert_allclose(gx, -2.0 * x * w * np.exp(-x * x), rtol=1e-14)
    p = ad.kernel(njit_parallel_sum, backend="interp")
    assert p.parallel
    assert ad.grad(p)(x) == pytest.approx(np.sin(x) + x * np.cos(x), rel=1e-14)


@numba.njit("float64(float64)")
def declared_square(x):
    return x * x


def squares_a_float(x):
    return declared_square(x[0]) + declared_square(2.5)


def squares_an_int(n):
    return declared_square(n)


def test_a_numba_function_with_declared_types_takes_only_those():
    """numba converts the arguments of a function compiled for declared signatures (an int
    2**40 squared as a float is 2**80); the inlined Python code would square the int, wrapping
    at 2**64. Arguments of the declared types are inlined, others refused naming the call."""
    x = np.array([1.5])
    assert ad.kernel(squares_a_float, backend="interp")(x) == njit_of(squares_a_float)(x)
    with pytest.raises(ad.UnsupportedConstruct, match=r"test_numba_functions.py:\d+: calling "
                       r"the @numba.njit function `declared_square`, compiled for declared "
                       r"signatures only, with arguments of other types \(an int64\)"):
        ad.kernel(squares_an_int, backend="interp")(2 ** 40)


def numba_typed(x):
    n = x.shape[0]
    a = np.zeros(n, dtype=numba.float32)
    b = np.empty(n, numba.types.float64)
    k = np.zeros(2, dtype=numba.int64)
    s = 0.0
    for i in range(n):
        a[i] = x[i]
        b[i] = numba.float64(i) * x[i]
        k[0] += numba.int64(x[i] * 3.0)
        s += numba.float32(x[i]) * x[i]
    return np.sum(a) + np.sum(b * b) + k[0] + s


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
def test_numbas_scalar_types_convert_and_name_dtypes(backend):
    """`numba.float64(i)` and `np.zeros(n, dtype=numba.float32)`, as numba's own code writes
    them, were refused ("calling `numba.float64` is not supported"); they are numba's values
    (float32 rounding included), and the gradient is the analytic one (the conversions pass
    the derivative on, the integer part carries none)."""
    x = np.array([0.3, 0.5, 0.9, 1.2])
    got = ad.kernel(numba_typed, backend=backend)(x)
    assert got == njit_of(numba_typed)(x)
    g = ad.grad(ad.kernel(numba_typed, backend=backend))(x)
    i = np.arange(x.size)
    x32 = x.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(g, 1.0 + 2.0 * i * i * x + x32 + x, rtol=1e-7)


def dtypes_by_name(x):
    """PyLops's Kirchhoff kernels write `(trav / dt).astype("int32")`."""
    n = x.shape[0]
    k = (x * 3.0).astype("int32")
    a = np.zeros(n, dtype="float32")
    b = np.empty(n, "f8")
    for i in range(n):
        a[i] = x[i] * k[i]
        b[i] = x[i] - k[i]
    return np.sum(a) + np.sum(b * b) + np.sum(k)


def test_a_dtype_named_by_a_string_is_numpys():
    """`a.astype("int32")`, `np.zeros(n, dtype="float32")`, `np.empty(n, "f8")`: numba takes
    a string NumPy reads as a dtype; hpcad refused it ("a string is not supported"). Values
    against numba.njit (the float32 rounding and int32 truncation included), the gradient
    against the analytic one (the conversions to int carry none)."""
    x = np.array([0.3, 0.5, 0.9, 1.2])
    kernel = ad.kernel(dtypes_by_name, backend="interp")
    assert kernel(x) == njit_of(dtypes_by_name)(x)
    k = np.trunc(3.0 * x)
    np.testing.assert_allclose(ad.grad(kernel)(x), k + 2.0 * (x - k), rtol=1e-7)


def test_a_string_that_names_no_supported_dtype_is_refused():
    def complex_zeros(x):
        a = np.zeros(3, dtype="complex128")
        return x + a[0].real

    with pytest.raises(ad.UnsupportedConstruct, match=r"test_numba_functions.py:\d+: the dtype "
                       r"'complex128' is not supported.*float64, float32"):
        ad.kernel(complex_zeros, backend="interp")(1.0)


def spray_like(m, sigma, alpha, out):
    """PyLops's plane-wave sprayer names its dtype `ftype = sigma.dtype.type` and converts
    with it (`ftype(alpha)`, `m.dtype.type(0.0)`)."""
    nz, nx = m.shape
    ftype = sigma.dtype.type
    alpha = ftype(alpha)
    for z0 in range(nz):
        for x0 in range(nx):
            if m[z0, x0] == m.dtype.type(0.0):
                continue
            amp = ftype(1.0)
            if z0 % 2 == 0:
                ftype = m.dtype.type
            out[z0, x0] += amp * alpha * m[z0, x0] * ftype(sigma[z0, x0])


def test_an_arrays_dtype_type_converts_and_is_held_in_a_variable():
    """`a.dtype.type` is NumPy's scalar type of the array (hpcad refused `the attribute
    type`, then binding it to a variable); called, it converts as np.float32(x) does (float32
    rounding against numba.njit), also rebound on a branch to the same type. The derivative
    in m is the product's, analytic."""
    rng = np.random.default_rng(3)
    m = rng.standard_normal((3, 4)).astype(np.float32)
    sigma = rng.uniform(0.5, 1.5, (3, 4)).astype(np.float32)
    got, ref = np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float32)
    ad.kernel(spray_like, backend="interp")(m, sigma, 0.7, got)
    njit_of(spray_like)(m, sigma, 0.7, ref)
    np.testing.assert_array_equal(got, ref)
    m64, sigma64 = m.astype(np.float64), sigma.astype(np.float64)

    def loss(m, sigma):
        out = np.zeros((3, 4))
        spray_like(m, sigma, 0.7, out)
        return np.sum(out)
    g = ad.grad(ad.kernel(loss, backend="interp"))(m64, sigma64)
    np.testing.assert_allclose(g, 0.7 * sigma64, rtol=1e-12)
