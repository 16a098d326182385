"""One semantics on both backends (backend/semantics.py): integers wrap like NumPy's int64 and
int32, shifts by any count give NumPy's answer, integer `//` `%` `**` by zero and float -> int
conversions that do not fit raise the same hpcad error with the same message, floats are IEEE,
and under HPCAD_BOUNDSCHECK=1 an index out of bounds raises IndexOutOfBounds on both, inside
prange loops too, in the primal and in derivatives. Each case runs on numba and on the
interpreter and is checked against NumPy's answer (or the expected error)."""
import numpy as np
import pytest

import hpcad as ad
from hpcad import (
    IndexOutOfBounds,
    IntegerConversionError,
    IntegerDivisionByZero,
    UnsupportedConstruct,
)

BACKENDS = ("interp", "numba")
I64_MIN, I64_MAX = -2 ** 63, 2 ** 63 - 1


def add(a, b):
    return a + b


def sub(a, b):
    return a - b


def mul(a, b):
    return a * b


def floordiv(a, b):
    return a // b


def mod(a, b):
    return a % b


def truediv(a, b):
    return a / b


def power(a, b):
    return a ** b


def shl(a, b):
    return a << b


def shr(a, b):
    return a >> b


def neg(a):
    return -a


def to_int(x):
    return int(x)


def product(a):
    p = a[0]
    for i in range(1, a.shape[0]):
        p = p * a[i]
    return p


def run(fn, args, backend):
    """("value", v) or ("error", class, message) of fn(*args) as a kernel on backend."""
    try:
        return ("value", ad.kernel(backend=backend)(fn)(*args))
    except Exception as e:   # noqa: BLE001 - the class is what is compared
        return ("error", type(e), str(e))


def numpy_answer(fn, args):
    """fn on NumPy fixed-width scalars (or arrays), overflow warnings silenced."""
    with np.errstate(all="ignore"):
        return fn(*args)


I64 = np.int64
WRAPPING = [(add, (I64_MAX, 1)), (sub, (I64_MIN, 1)), (mul, (I64_MAX, 3)), (neg, (I64_MIN,)),
            (mul, (3 ** 30, 3 ** 20)), (floordiv, (I64_MIN, -1)), (mod, (I64_MIN, -1)),
            (floordiv, (-7, 2)), (mod, (-7, 2)), (mod, (7, -2)), (floordiv, (7, -2)),
            (shl, (1, 63)), (shl, (1, 64)), (shl, (3, 100)), (shl, (3, -1)),
            (shr, (-8, 70)), (shr, (8, 70)), (shr, (-8, -1)), (shr, (-8, 1)),
            (add, (np.int32(2 ** 31 - 1), np.int32(1))), (mul, (np.int32(65536), np.int32(65536))),
            (shl, (np.int32(1), np.int32(31))), (shl, (np.int32(1), np.int32(40))),
            (floordiv, (np.int32(-2 ** 31), np.int32(-1)))]


@pytest.mark.parametrize("fn,args", WRAPPING, ids=lambda x: getattr(x, "__name__", str(x)))
@pytest.mark.parametrize("backend", BACKENDS)
def test_integers_wrap_like_numpy(fn, args, backend):
    """Scalar integer arithmetic is int64 for int32 operands too, as numba computes it
    (numba's integer ops are at least 64 bits wide): NumPy's int64 answer."""
    expected = numpy_answer(fn, tuple(np.int64(a) for a in args))
    kind, got = run(fn, args, backend)[:2]
    assert kind == "value", got
    assert int(got) == int(expected), (fn.__name__, args, got, expected)


def test_powers_wrap_modulo_2_to_the_64():
    expected = (3 ** 50 + 2 ** 63) % 2 ** 64 - 2 ** 63
    assert [run(power, (3, 50), b)[1] for b in BACKENDS] == [expected, expected]
    assert [run(power, (2, -1), b)[1] for b in BACKENDS] == [0, 0]   # 1 / 2 truncated


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_loop_products_wrap_like_numpy(dtype):
    """The elements of an int32 array are multiplied in int64, as numba does."""
    a = np.array([3 ** 10, 3 ** 10, 3 ** 10, 3 ** 10, 7], dtype)
    expected = int(np.multiply.reduce(a, dtype=np.int64))   # wraps at 2**64, not 2**32
    got = [int(run(product, (a,), b)[1]) for b in BACKENDS]
    assert got == [expected, expected]


def literal_operands(a):
    return a // 3 + 10 * (a % -4) + 100 * (a >> 2) + 1000 * (a << 3) + a ** 3


@pytest.mark.parametrize("a", [-(2 ** 62) - 5, -7, 0, 7, 2 ** 62 + 5])
def test_literal_operands_wrap_like_numpy(a):
    """A literal divisor, count or power needs no check in the compiled code."""
    expected = int(numpy_answer(literal_operands, (np.int64(a),)))
    assert [int(run(literal_operands, (a,), b)[1]) for b in BACKENDS] == [expected, expected]


def huge_power(x):
    return x * 10 ** 30


def huger_power(x):
    return x * 10 ** 50      # (CPython does not fold it in the generated source)


def huge_product(x):
    return x * (1099511627776 * 1099511627776)


def huge_shift(x):
    return x * (3 << 63)


@pytest.mark.parametrize("fn", [huge_power, huger_power, huge_product, huge_shift],
                         ids=lambda f: f.__name__)
def test_a_literal_expression_too_large_is_refused_on_both(fn):
    """`10 ** 30` is most likely meant as a float: numba refuses the literal and the
    interpreter refuses it too, instead of wrapping it silently."""
    for backend in BACKENDS:
        kind, cls, message = run(fn, (1.0,), backend)
        assert cls is UnsupportedConstruct, (backend, kind, cls, message)
        assert message.startswith(f"{__file__}:{fn.__code__.co_firstlineno + 1}"), message


DIVIDING = [(floordiv, (7, 0)), (mod, (7, 0)), (floordiv, (np.int32(7), np.int32(0))),
            (mod, (-7, 0)), (power, (0, -1))]


@pytest.mark.parametrize("fn,args", DIVIDING, ids=lambda x: getattr(x, "__name__", str(x)))
def test_integer_division_by_zero_raises_the_same_error(fn, args):
    outcomes = [run(fn, args, b) for b in BACKENDS]
    line = fn.__code__.co_firstlineno + 1
    for kind, cls, message in outcomes:
        assert kind == "error" and cls is IntegerDivisionByZero, (kind, cls, message)
        assert message.startswith(f"{__file__}:{line}: integer division or modulo by zero")
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("args", [(7.0, 0.0), (-7.0, 0.0), (0.0, 0.0)])
@pytest.mark.parametrize("fn", [floordiv, mod, truediv], ids=lambda f: f.__name__)
def test_float_division_by_zero_is_ieee(fn, args):
    expected = numpy_answer(fn, tuple(np.float64(a) for a in args))
    for backend in BACKENDS:
        kind, got = run(fn, args, backend)[:2]
        assert kind == "value", got
        assert np.array_equal(np.float64(got), expected, equal_nan=True), (backend, got)


@pytest.mark.parametrize("x", [1e30, -1e30, float("nan"), float("inf"), 2.0 ** 63,
                               -2.0 ** 63 - 4096.0])
def test_float_to_int_out_of_range_raises_the_same_error(x):
    outcomes = [run(to_int, (x,), b) for b in BACKENDS]
    for kind, cls, message in outcomes:
        assert kind == "error" and cls is IntegerConversionError, (kind, cls, message)
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("x", [-2.0 ** 63, 2.0 ** 63 - 1024.0, -3.7, 3.7, -0.5])
def test_float_to_int_in_range_truncates(x):
    assert [run(to_int, (x,), b)[1] for b in BACKENDS] == [int(x), int(x)]


def divide_all(out, a, k):
    for i in ad.prange(a.shape[0]):
        out[i] = a[i] // k[i]


def test_division_by_zero_inside_prange_raises_on_the_calling_thread():
    """numba loses an exception raised on a prange worker thread: the zero divisor sits in
    the last iteration, which a worker runs, and the error still reaches the caller."""
    n = 4096
    a, k = np.arange(n, dtype=np.int64), np.ones(n, np.int64)
    k[-1] = 0
    for backend in BACKENDS:
        for _ in range(5):
            kind, cls, message = run(divide_all, (np.zeros(n, np.int64), a, k), backend)
            assert cls is IntegerDivisionByZero, (backend, kind, cls, message)
    k[-1] = 3
    for backend in BACKENDS:
        out = np.zeros(n, np.int64)
        ad.kernel(backend=backend)(divide_all)(out, a, k)
        assert np.array_equal(out, a // k)


def weighted(u, k):
    s = 0.0
    for i in range(u.shape[0]):
        s += u[i] * u[i] * (i // k)
    return s


def test_division_by_zero_in_a_derivative_raises_the_same_error():
    u = np.linspace(0.5, 1.5, 8)
    outcomes = []
    for backend in BACKENDS:
        with pytest.raises(IntegerDivisionByZero) as caught:
            ad.grad(ad.kernel(weighted), argnums=0, backend=backend)(u, 0)
        outcomes.append(str(caught.value))
        expected = 2 * u * (np.arange(8) // 3)   # the gradient, by hand
        got = ad.grad(ad.kernel(weighted), argnums=0, backend=backend)(u, 3)
        assert np.allclose(got, expected, rtol=1e-14)
    assert outcomes[0] == outcomes[1]


def stepped_sum(u, step):
    s = 0.0
    for i in range(0, u.shape[0], step):
        s += u[i]
    return s


def stepped_parallel(out, u, step):
    for i in ad.prange(0, u.shape[0], step, allow_races=True):   # race-free for step > 0
        out[i] = 2.0 * u[i]


def stepped_rows(out, u, step):
    for i in ad.prange(u.shape[0]):
        for j in range(0, u.shape[1], step):
            out[i, j] = 2.0 * u[i, j]


@pytest.mark.parametrize("fn", [stepped_sum, stepped_parallel, stepped_rows],
                         ids=lambda f: f.__name__)
def test_a_zero_range_step_raises_the_same_error(fn):
    """numba's range raises ValueError (lost inside a prange) and its prange of a zero step
    ran no iteration; both backends now raise the interpreter's error."""
    u = np.linspace(0.5, 1.5, 4096).reshape(64, 64) if fn is stepped_rows \
        else np.linspace(0.5, 1.5, 4096)
    args = (u, 0) if fn is stepped_sum else (np.zeros_like(u), u, 0)
    outcomes = [run(fn, args, b) for b in BACKENDS]
    for kind, cls, message in outcomes:
        assert kind == "error" and "range() step must not be zero" in message, outcomes
    assert outcomes[0] == outcomes[1]


# -- bounds (HPCAD_BOUNDSCHECK=1) -------------------------------------------------------------

def read_shifted(u, shift):
    s = 0.0
    for i in range(u.shape[0]):
        s += u[i + shift] * u[i]
    return s


def write_shifted(out, u, shift):
    for i in range(u.shape[0]):
        out[i + shift] = 2.0 * u[i]
    s = 0.0
    for i in range(out.shape[0]):
        s += out[i] * out[i]
    return s


def read_shifted_parallel(out, u, shift):
    for i in ad.prange(u.shape[0]):
        out[i] = 2.0 * u[i + shift]
    s = 0.0
    for i in range(out.shape[0]):
        s += out[i] * out[i]
    return s


def write_shifted_parallel(out, u, shift):
    for i in ad.prange(u.shape[0], allow_races=True):   # a shift of 0 does not race
        out[i + shift] = 2.0 * u[i]
    s = 0.0
    for i in range(out.shape[0]):
        s += out[i] * out[i]
    return s


N = 4096
BOUNDS = [read_shifted, write_shifted, read_shifted_parallel, write_shifted_parallel]


def bounds_args(fn, shift):
    u = np.linspace(0.5, 1.5, N)
    return (u, shift) if fn is read_shifted else (np.zeros(N), u, shift)


def bounds_outcome(fn, shift, backend, derivative):
    """("value", v) or ("error", class, message) of fn or its gradient (wrt u)."""
    args = bounds_args(fn, shift)
    wrt = 0 if fn is read_shifted else 1
    try:
        if derivative:
            return ("value", ad.grad(ad.kernel(fn), argnums=wrt, backend=backend)(*args))
        return ("value", ad.kernel(backend=backend)(fn)(*args))
    except Exception as e:   # noqa: BLE001 - the class is what is compared
        return ("error", type(e), str(e))


@pytest.fixture
def checked(monkeypatch):
    monkeypatch.setenv("HPCAD_BOUNDSCHECK", "1")


# (a racing prange is not differentiated; read_shifted_parallel's reverse writes out of bounds)
CASES = [(fn, derivative) for fn in BOUNDS for derivative in (False, True)
         if not (derivative and fn is write_shifted_parallel)]


@pytest.mark.parametrize("shift", [1, -N - 1], ids=["one-past-the-end", "below--n"])
@pytest.mark.parametrize("fn,derivative", CASES,
                         ids=[f"{f.__name__}-{'gradient' if d else 'primal'}" for f, d in CASES])
def test_out_of_bounds_raises_the_same_error(fn, derivative, shift, checked):
    """One index out of bounds (the last iteration's, or the first's), read or written, in a
    serial or a prange loop: IndexOutOfBounds naming the same line on both backends."""
    for _ in range(5 if "parallel" in fn.__name__ else 1):   # a lost error shows by chance
        outcomes = [bounds_outcome(fn, shift, b, derivative) for b in BACKENDS]
        for kind, cls, message in outcomes:
            assert kind == "error" and cls is IndexOutOfBounds, (kind, cls, message)
        assert outcomes[0][2].split(":")[:2] == outcomes[1][2].split(":")[:2], outcomes
        assert outcomes[1][2].split(":")[0] == __file__


@pytest.mark.parametrize("fn,derivative", CASES,
                         ids=[f"{f.__name__}-{'gradient' if d else 'primal'}" for f, d in CASES])
def test_negative_indices_wrap_like_numpy(fn, derivative, checked):
    """An index down to -length counts from the end on both backends, checked or not."""
    results = [bounds_outcome(fn, -1, b, derivative) for b in BACKENDS]
    assert all(kind == "value" for kind, *_ in results), results
    assert np.allclose(results[0][1], results[1][1], rtol=1e-14, atol=0)
    u = np.linspace(0.5, 1.5, N)
    if fn is read_shifted and not derivative:
        assert results[0][1] == pytest.approx(float(np.dot(np.roll(u, 1), u)), rel=1e-13)
