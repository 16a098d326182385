"""Integer semantics both backends follow, and the errors they raise when an integer op has
no answer: fixed-width two's-complement wraparound like NumPy's int64/int32 (shifts by a
count outside [0, 64) give 0, or -1 for a negative number shifted right, as NumPy's do);
integer division and modulo by zero, a float converted to an integer it does not fit, a
range() step of zero and a failed `rt.assert` (the kernel's `assert`) raise. Floats are IEEE
(division by zero gives inf or nan).
`fault(kind, loc)` is the error the interpreter raises; the numba backend raises the same
class with the same message (numba/faults.py)."""
from __future__ import annotations

import operator

import numpy as np

from ..errors import (
    RAISED,
    HpcadError,
    IndexOutOfBounds,
    IntegerConversionError,
    IntegerDivisionByZero,
    KernelAssertionError,
    UnsupportedConstruct,
    where,
)

I64_MIN, I64_MAX = -2 ** 63, 2 ** 63 - 1
BITS = {"i64": 64, "i32": 32}
# the open interval of the floats that truncate to a value of the integer type (its ends: the
# doubles next to its range)
FLOAT_RANGE = {"i64": (-2.0 ** 63 - 2048.0, 2.0 ** 63), "i32": (-2.0 ** 31 - 1.0, 2.0 ** 31)}

FAULTS: dict[str, tuple[type, str]] = {
    "division": (IntegerDivisionByZero,
                 "integer division or modulo by zero (`a // b` or `a % b` with b == 0, or 0 "
                 "to a negative power); make the divisor non-zero, or divide floats (float "
                 "division by zero gives inf or nan)"),
    "cast": (IntegerConversionError,
             "a float converted to {type} is nan, infinite or outside the integer's "
             "range; check the value before converting (math.isfinite), or keep it a float"),
    "step": (HpcadError, "range() step must not be zero; give the loop a non-zero step"),
    "index": (IndexOutOfBounds,
              "an array index is out of bounds{detail}; check the index (negative indices "
              "count from the end, down to -length)"),
    "assert": (KernelAssertionError, "{what}"),   # rt.assert: its message
    "order": (UnsupportedConstruct,
              "an MPI buffer is a Fortran-ordered array (an argument made with "
              "np.asfortranarray or order='F', or a transpose a.T): mpi4py sends such an "
              "array's memory in the order it lies in, numba-mpi and hpcad in index order, "
              "so the program's answer would depend on which; pass a C-ordered array "
              "(np.ascontiguousarray(a) before the call, a.copy() in the kernel)"),
    "alias": (UnsupportedConstruct,
              "the send and receive buffers of a Sendrecv share elements (the same array "
              "twice, or overlapping slices of one array): MPI requires them to be "
              "disjoint, and how much of the message is read before it is overwritten "
              "depends on the MPI library and the message size; use "
              "comm.Sendrecv_replace(buf, ...) to send and receive in one buffer, or receive "
              "into a separate array"),
}
# `raise SomeError("message")` in a kernel: a fault of kind "raise SomeError"
FAULTS.update({f"raise {cls.__name__}": (raised, "{what}") for cls, raised in RAISED.items()})


def fortran_ordered(a) -> bool:
    """Whether an MPI buffer's memory order differs from its index order, so that mpi4py
    (memory order) and numba-mpi (index order) would send its elements differently: an array
    of two or more axes that is Fortran- but not C-contiguous."""
    return a.ndim >= 2 and a.flags.f_contiguous and not a.flags.c_contiguous


def buffers_overlap(a, b) -> bool:
    """Whether two MPI buffers share an element: the test of a Sendrecv's send and receive
    buffers, which MPI requires to be disjoint. Views whose byte ranges do not meet are
    disjoint; otherwise each element of `a` is looked up in `b`, whose axes, sorted by
    stride, decompose an address greedily (as any slice of a C- or Fortran-ordered array's
    do: each stride exceeds the span of the axes with smaller ones). Buffers of different
    item sizes, or a `b` whose strides do not nest, count as overlapping where their ranges
    meet."""
    if a.size == 0 or b.size == 0:
        return False
    a_lo = a_hi = a.ctypes.data
    for k in range(a.ndim):
        a_lo += min((a.shape[k] - 1) * a.strides[k], 0)
        a_hi += max((a.shape[k] - 1) * a.strides[k], 0)
    b_lo = b_hi = b.ctypes.data
    for k in range(b.ndim):
        b_lo += min((b.shape[k] - 1) * b.strides[k], 0)
        b_hi += max((b.shape[k] - 1) * b.strides[k], 0)
    if not (a_lo < b_hi + b.itemsize and b_lo < a_hi + a.itemsize):
        return False
    if a.itemsize != b.itemsize:
        return True
    # b's axes by decreasing stride, each as (count, positive stride) from its lowest address
    counts = np.zeros(b.ndim, np.int64)
    strides = np.zeros(b.ndim, np.int64)
    used = np.zeros(b.ndim, np.bool_)
    for k in range(b.ndim):
        best = -1
        for m in range(b.ndim):
            best = m if not used[m] and (best < 0 or abs(b.strides[m]) > abs(
                b.strides[best])) else best
        used[best] = True
        counts[k] = b.shape[best]
        strides[k] = abs(b.strides[best])
    inner = b.itemsize
    for k in range(b.ndim - 1, -1, -1):
        if counts[k] > 1 and strides[k] < inner:
            return True   # (strides that do not nest: no greedy decomposition)
        inner += (counts[k] - 1) * strides[k]
    for idx in np.ndindex(a.shape):
        address = a.ctypes.data
        for k in range(a.ndim):
            address += idx[k] * a.strides[k]
        rest = address - b_lo
        for k in range(b.ndim):
            step = rest // strides[k] if strides[k] > 0 else 0
            step = min(max(step, 0), counts[k] - 1)
            rest -= step * strides[k]
        if rest == 0:
            return True
    return False


def fault_kind(op) -> str:
    """The fault of a failed `rt.assert`: "assert", or "raise C" for a kernel's `raise C`."""
    raises = op.attrs.get("raises")
    return "assert" if raises is None else f"raise {raises}"


def fault_message(kind: str, loc, **fill) -> str:
    return f"{where(loc)}: " + FAULTS[kind][1].format(**fill)


def fault(kind: str, loc, **fill) -> HpcadError:
    """The error of a `kind` fault at kernel location `loc`."""
    return FAULTS[kind][0](fault_message(kind, loc, **fill))


def wrap64(x: int) -> int:
    """x modulo 2**64 as a signed int64, as the compiled code computes."""
    if I64_MIN <= x <= I64_MAX:
        return x
    return ((x - I64_MIN) & 0xFFFF_FFFF_FFFF_FFFF) + I64_MIN


def shl(a: int, b: int) -> int:
    return wrap64(a << b) if 0 <= b < 64 else 0


def shr(a: int, b: int) -> int:
    return a >> b if 0 <= b < 64 else (-1 if a < 0 else 0)


def floordiv(a: int, b: int) -> int:
    return wrap64(a // b)   # b == 0 raises ZeroDivisionError: the rule turns it into a fault


def ipow(a: int, b: int) -> int:
    """a ** b in int64: modular for b >= 0; 1 / a**-b truncated toward zero for b < 0, as
    numba computes it."""
    if b >= 0:
        return wrap64(pow(a, b, 2 ** 64))
    if a == 0:
        raise ZeroDivisionError("0 cannot be raised to a negative power")
    return a ** -b if a in (1, -1) else 0


def to_int(x, type_name: str) -> int | None:
    """int(x) for a float x that fits type_name, else None (nan, inf, out of range)."""
    low, high = FLOAT_RANGE[type_name]
    return int(x) if low < x < high else None


# ops on literals that Python computes exactly, where numba refuses a result too large
_EXACT = {"arith.add": ("+", operator.add), "arith.sub": ("-", operator.sub),
          "arith.mul": ("*", operator.mul), "arith.pow": ("**", operator.pow),
          "arith.shl": ("<<", operator.lshift)}


def literal_overflow(name: str, values: list, type_name: str) -> int | None:
    """The exact value of an integer op on literals when it does not fit its type (2**bits
    standing in for a power too large to compute), else None."""
    bits = BITS[type_name]
    if name not in _EXACT or len(values) != 2:
        return None
    a, b = values
    if name == "arith.shl" and not 0 <= b < bits or name == "arith.pow" and b < 0:
        return None     # NumPy's 0, or a truncated 1 / a**-b: they fit
    if name == "arith.pow" and abs(a) >= 2 and b >= bits:
        return 2 ** bits
    value = _EXACT[name][1](a, b)
    return None if -2 ** (bits - 1) <= value < 2 ** (bits - 1) else value


def check_literal(name: str, values: list, type_name: str, loc) -> None:
    """Refuse an integer op on literals whose exact value does not fit its type (`10**30`
    is most likely meant as a float: wrapping it would be a silent wrong answer; the numba
    backend writes the exact value, which numba refuses)."""
    if literal_overflow(name, values, type_name) is not None:
        raise UnsupportedConstruct(
            f"{where(loc)}: {values[0]} {_EXACT[name][0]} {values[1]} does not fit in "
            f"{type_name} (integers wrap around); write it as a float (e.g. 1e30) if that "
            f"is meant")
