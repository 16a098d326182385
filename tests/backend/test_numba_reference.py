"""Values a numba user relies on: each kernel runs as `numba.njit` and as an hpcad kernel on
both backends, on copies of the same inputs, and the results must be equal (NaN equal to
NaN, arrays of the same dtype). Integers: numba's scalar integer arithmetic is 64 bits wide,
int32 operands included, while array expressions keep int32; float32 ** an integer stays
float32, and a scalar of a lower kind next to arrays takes their type. NaN: np.minimum and
np.maximum propagate it from either side, np.fmin and np.fmax drop it, np.sign(nan) is nan
(and np.sign(-0.0) is -0.0; rounding to a zero keeps the sign, as numba's). A float to a
constant integer power is numba's multiplications, not the C library's pow; float32 math
functions are the C library's float ones (expf), as numba's, not NumPy's float32 ufuncs.
Bool arrays: `m1 + m2` is their or, `m1 * m2` their and, `^` a bool. Numbers come back as
Python's int, float and bool on both backends, as numba's do."""
import math

import numba
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import njit_of

BACKENDS = ("interp", "numba")
NAN = math.nan


def i32_scalar_ops(a):
    x = a[0]
    y = a[1]
    return x + y, x - y, x * y, -x, x // y, x % y, x & y, x | y, x ^ y, pow(x, 2)


def i32_argument(x):
    return x * x


def i32_accumulate(a):
    s = a[0]
    for i in range(1, a.shape[0]):
        s = s * a[i] + a[i]
    return s


def narrow_numbers(a, x, m):
    return a[0], abs(a[1]), min(a[0], a[1]), x[0], x[0] * x[1], m[0]


def i32_store_wraps(a):
    for i in range(a.shape[0]):
        a[i] = a[i] * 3 + 7
    return a


def i32_arrays_stay_int32(a):
    return a + a, a * a[0], -a, np.square(a), np.power(a, a[1])


def f32_power(x):
    return x[0] ** 2, x[0] ** 3, pow(x[1], 2)


def f32_accumulate_powers(x):
    s = np.float32(0.0)
    for i in range(x.shape[0]):
        s += x[i] ** 2
    return s


def f32_times_int(x, k):
    return x * k


def f32_power_int(x, k):
    return x ** k


def i32_plus_bool(a, flag):
    return a + flag


def bool_arrays(m, k):
    both = m * m[::-1]
    either = m + m[::-1]
    return either, both, m ^ m[::-1], m + True, np.sum(m + m), m[0] ^ m[1], m[0] + m[1], \
        m * k


def any_all(x):
    m = x > 0.5
    return m.any(), m.all(), np.any(x), np.all(x), x[:0].any(), x[:0].all(), \
        np.any(x.reshape(2, 2) > 0.8)


def ufunc_operators(a):
    return np.mod(a, 3), np.remainder(a * 1.5, -2.0), np.floor_divide(a, 2), np.add(a, a), \
        np.multiply(a, 2.5), np.subtract(a[0], 1), np.true_divide(a, 2), np.negative(a)


def ufunc_comparisons(a, b):
    """np.less & co., zero suppression's `np.where(np.less(np.absolute(v), t), 0, v)`."""
    return np.where(np.less(np.absolute(a), 1.0), 0, a), np.less_equal(a, b), \
        np.greater(a, b[0]), np.greater_equal(a[1], b), np.equal(a, b), np.not_equal(a, 0.5)


def divmods(x, y):
    q, r = divmod(x, y)
    t = divmod(-7, 2)
    return q, r, t[0], t[1]


def nan_minmax(x, y):
    return np.minimum(x, y), np.maximum(x, y), np.fmin(x, y), np.fmax(x, y)


def nan_minmax_arrays(x, y):
    return np.minimum(x, y), np.maximum(x, y), np.fmin(x, y), np.fmax(x, y)


def builtin_minmax(x, y):
    return min(x, y), max(x, y)


def nan_sign(x):
    return np.sign(x)


def signed_zeros(x):
    return np.sign(x), np.ceil(x - 0.5), np.rint(x - 0.4), np.floor(x), round(x - 0.4, 0)


@numba.njit
def njit_cube(x):
    return x * x * x


def calls_njit_helper(a):
    s = 0.0
    for i in range(a.shape[0]):
        s += njit_cube(a[i]) - a[i]
    return s, njit_cube(a[0])


def array_literals(a, f, x):
    return np.array([a[0], a[1]]), np.array([f[0], 1.5]), np.array([a[0], f[0]]), \
        np.array([f[0], f[1]]), np.array([True, False]), np.array([True, 2]), \
        np.array([[x, 0.0], [1, x * x]]), np.array([1, 2], dtype=np.float32)


def integer_powers(x):
    out = np.empty((x.shape[0], 7))
    for i in range(x.shape[0]):
        v = x[i]
        n = 3
        out[i, 0] = v ** 3
        out[i, 1] = v ** 4
        out[i, 2] = v ** -2
        out[i, 3] = v ** 9
        out[i, 4] = pow(v, 5)
        out[i, 5] = v ** 0 + v ** 1
        out[i, 6] = v ** n
    return out


def f32_integer_powers(x):
    return x[0] ** 3, x[1] ** -3, x[2] ** 5, x[3] ** 2


def f32_math(x, y):
    out = np.empty((x.shape[0], 9), np.float32)
    for i in range(x.shape[0]):
        v, w = x[i], y[i]
        out[i, 0] = math.exp(v)
        out[i, 1] = math.log(w)
        out[i, 2] = math.tanh(v)
        out[i, 3] = math.sin(v) + math.cos(w)
        out[i, 4] = math.atan2(v, w)
        out[i, 5] = w ** v
        out[i, 6] = math.erf(v)
        out[i, 7] = math.log1p(w) + math.expm1(v)
        out[i, 8] = math.sqrt(w)
    return out


CASES = [
    (i32_scalar_ops, (np.array([100000, -30000], np.int32),)),
    (i32_scalar_ops, (np.array([2 ** 31 - 1, 2 ** 31 - 1], np.int32),)),
    (i32_argument, (np.int32(100000),)),
    (i32_accumulate, (np.array([65536, 65536, 3, 2 ** 31 - 1], np.int32),)),
    (narrow_numbers, (np.array([7, -3], np.int32), np.array([1.1, 3.3], np.float32),
                       np.array([True, False]))),
    (i32_store_wraps, (np.array([2 ** 31 - 1, -5, 2 ** 30], np.int32),)),
    (i32_arrays_stay_int32, (np.array([2 ** 30, 5, -2 ** 31], np.int32),)),
    (f32_power, (np.array([1.1, 1.3], np.float32),)),
    (f32_accumulate_powers, (np.linspace(0.0, 1.0, 100).astype(np.float32),)),
    (f32_times_int, (np.array([1.1, 2.2], np.float32), 3)),
    (f32_power_int, (np.array([1.1, 2.2], np.float32), 3)),
    (i32_plus_bool, (np.array([7, -3], np.int32), True)),
    (bool_arrays, (np.array([True, False, False]), 3)),
    (any_all, (np.array([0.1, 0.7, 0.9, 0.0]),)),
    (any_all, (np.array([0.6, 0.7, 0.9, NAN]),)),
    (ufunc_operators, (np.array([7, -7], np.int32),)),
    (ufunc_operators, (np.array([7.5, -7.25]),)),
    (ufunc_comparisons, (np.array([0.5, -7.25, 2.0, np.nan]), np.array([0.5, 1.0, -3.0, 2.0]))),
    (divmods, (-7, 2)),
    (divmods, (-7.5, 2.0)),
    (nan_minmax, (1.0, NAN)),
    (nan_minmax, (NAN, 1.0)),
    (nan_minmax, (NAN, NAN)),
    (nan_minmax, (-1.0, 2.0)),
    (nan_minmax_arrays, (np.array([1.0, NAN, NAN, 2.0]), np.array([NAN, 1.0, NAN, -2.0]))),
    (builtin_minmax, (1.0, NAN)),
    (builtin_minmax, (NAN, 1.0)),
    (nan_sign, (NAN,)),
    (nan_sign, (np.array([NAN, -2.0, 0.0, 3.0]),)),
    (signed_zeros, (-0.0,)),
    (signed_zeros, (0.0,)),
    (nan_sign, (np.array([-0.0, 0.0]),)),
    (calls_njit_helper, (np.array([0.5, -1.25, 3.0]),)),
    (array_literals, (np.array([3, -4], np.int32), np.array([1.5, 2.5], np.float32), 0.75)),
    (integer_powers, (np.linspace(0.05, 3.0, 40),)),
    (f32_integer_powers, (np.array([1.1, 0.7, 1.3, 2.9], np.float32),)),
    (f32_math, (np.linspace(-2.0, 2.0, 40).astype(np.float32),
                np.linspace(0.1, 3.0, 40).astype(np.float32))),
]


def copies(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def assert_same(got, expected, what):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected), (what, got, expected)
        for k, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_same(g, e, f"{what}[{k}]")
    elif isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == expected.dtype, \
            (what, got, expected)
        assert np.array_equal(got, expected, equal_nan=True), (what, got, expected)
        assert np.array_equal(np.signbit(got), np.signbit(expected)), (what, got, expected)
    else:
        assert type(got) is type(expected), (what, got, expected)   # int, float, bool
        assert got == expected or math.isnan(got) and math.isnan(expected), \
            (what, got, expected)
        assert np.signbit(got) == np.signbit(expected), (what, got, expected)   # -0.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn,args", CASES, ids=lambda x: getattr(x, "__name__", ""))
def test_the_same_values_as_numba(fn, args, backend):
    expected_args = copies(args)
    expected = njit_of(fn)(*expected_args)
    got_args = copies(args)
    got = ad.kernel(fn, backend=backend)(*got_args)
    assert_same(got, expected, fn.__name__)
    for k, (g, e) in enumerate(zip(got_args, expected_args, strict=True)):
        assert_same(g, e, f"{fn.__name__} argument {k}")


def maximum_loss(x, y):
    return np.sum(np.maximum(x, y) * np.fmin(x, 2.0 * y) + np.sign(x) * y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_aware_minmax_keeps_its_derivative(backend):
    """Away from NaN the select that np.maximum and np.fmin add changes no derivative:
    reverse mode against central differences (no ties among the points)."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=8), rng.normal(size=8)
    gx, gy = ad.grad(ad.kernel(maximum_loss, backend=backend), argnums=(0, 1))(x, y)
    h = 1e-6
    for arr, g, k in ((x, gx, 0), (y, gy, 1)):
        fd = np.empty_like(arr)
        for i in range(arr.size):
            up, down = [x.copy(), y.copy()], [x.copy(), y.copy()]
            up[k][i] += h
            down[k][i] -= h
            fd[i] = (maximum_loss(*up) - maximum_loss(*down)) / (2 * h)
        assert np.allclose(g, fd, rtol=1e-6, atol=1e-8), (k, g, fd)


def power_loss(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] ** 3 + x[i] ** -2 + 0.5 * x[i] ** 4
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_powers_differentiate(backend):
    """x ** n of a constant n is multiplications (numba's order): the derivative is n x^(n-1)
    in reverse and forward mode."""
    x = np.array([0.3, -1.7, 2.2, 0.9])
    k = ad.kernel(power_loss, backend=backend)
    expected = 3.0 * x ** 2 - 2.0 * x ** -3.0 + 2.0 * x ** 3
    np.testing.assert_allclose(ad.grad(k)(x), expected, rtol=1e-14)
    v = np.array([1.0, -0.5, 0.25, 2.0])
    assert ad.jvp(k, (x,), (v,))[1] == pytest.approx(expected @ v, rel=1e-14)


def conversions(a):
    return a.astype(np.int32), a.astype(np.float32), (a * 2.0).astype(np.int64), \
        a.astype(np.bool_), a[::-1].astype(a.dtype)


def astype_loss(x):
    y = x.astype(np.float32)
    return np.sum(y * y) + np.sum(x.astype(np.int64))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("a", [np.array([-1.7, 2.5, 0.0, 3.9]),
                               np.array([[-7, 2], [0, 5]], np.int32), np.array([True, False])],
                         ids=["f64", "i32", "bool"])
def test_astype_converts_as_numba(a, backend):
    """a.astype(dtype): a new array of the converted elements (floats to integers truncate
    toward zero), against numba.njit."""
    assert_same(ad.kernel(conversions, backend=backend)(a.copy()), njit_of(conversions)(a),
                "astype")


@pytest.mark.parametrize("backend", BACKENDS)
def test_astype_differentiates_through_float_conversions(backend):
    """d/dx of sum(float32(x)**2) + sum(int64(x)): 2 float32(x), the integer part adding 0."""
    x = np.array([0.3, -1.2, 2.7])
    g = ad.grad(ad.kernel(astype_loss, backend=backend))(x)
    assert np.allclose(g, 2.0 * x, rtol=1e-6), g


def rounding(x):
    return (np.round(x), np.round(x, 1), np.around(x, decimals=2), np.round(x, -1),
            np.trunc(x), math.trunc(x), ~math.trunc(x))


def rounding_arrays(a):
    return np.round(a * 0.25, 1), np.round(a), np.trunc(a * -1.5), ~a, ~(a > 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("x", [2.5, -2.5, 0.15, -0.45, -0.3, 125.0])
def test_np_round_trunc_and_invert_as_numba(x, backend):
    assert_same(ad.kernel(rounding, backend=backend)(x), njit_of(rounding)(x), "rounding")
    a = np.array([5, -3, 7], np.int32)
    assert_same(ad.kernel(rounding_arrays, backend=backend)(a),
                njit_of(rounding_arrays)(a), "rounding_arrays")


def rounded_loss(x):
    return np.sum(np.round(x, 1) + np.trunc(x) + x * x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rounding_has_derivative_zero(backend):
    x = np.array([0.37, -1.21, 2.5])
    assert np.allclose(ad.grad(ad.kernel(rounded_loss, backend=backend))(x), 2.0 * x)


def sign_plus_line(x):
    return np.sign(x) + 2.0 * x


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("x", [0.0, -0.0, 1.5])
def test_sign_has_derivative_zero_at_zero_too(x, backend):
    """np.sign keeps a zero's sign through x * 0.0, which adds nothing to the derivative."""
    k = ad.kernel(sign_plus_line, backend=backend)
    assert ad.grad(k)(x) == 2.0
    assert ad.jvp(k, (x,), (1.0,))[1] == 2.0
