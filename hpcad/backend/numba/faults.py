"""Integer ops and checked indices in generated code, with the interpreter's semantics
(backend/semantics.py): shifts by any count give NumPy's answer; `//`, `%`, `**` by zero,
float -> int conversions that do not fit, range() steps of zero, and (under
HPCAD_BOUNDSCHECK=1) the indices of loads and stores go through small inlined helpers,
which raise the interpreter's error (class and message, naming the kernel line: the cache
key covers the generated source) through `_fault`. Inside a prange loop they record its
code in the one-element array `_faults` instead, checked after the outermost parallel loop
on the calling thread: numba loses an exception raised on a worker thread (the call returns
as if nothing happened), and a raise in a prange body stops it being parallel."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...ir.core import Op
from ...ir.types import ArrayType, lanes, spoken
from ..semantics import FAULTS, FLOAT_RANGE, fault_message, literal_overflow
from .cache import boundscheck

if TYPE_CHECKING:
    from .writer import Writer

NAMES = {"_shl", "_shr", "_floordiv", "_mod", "_ipow", "_to_i64", "_to_i32", "_index",
         "_nonzero_step", "_report", "_fault", "_new_faults", "_check_faults"}

HELPERS = '''

@njit(inline="always", **OPTIONS)
def _shl(a, b):
    """a << b as NumPy computes it: 0 for a count outside [0, 64)."""
    return np.int64(a) << np.int64(b) if 0 <= b < 64 else np.int64(0)


@njit(inline="always", **OPTIONS)
def _shr(a, b):
    """a >> b as NumPy computes it: the sign's fill for a count outside [0, 64)."""
    if 0 <= b < 64:
        return np.int64(a) >> np.int64(b)
    return np.int64(-1) if a < 0 else np.int64(0)


@njit(inline="always", **OPTIONS)
def _report(code, faults):
    """Outside prange loops (faults is None) raise the error of code, inside record it.
    (code is a constant where the kernel calls this: as np.int64, `_fault` compiles once,
    where numba would compile it again for each constant.)"""
    if faults is None:
        _fault(np.int64(code))
    else:
        faults[0] = code


@njit(inline="always", **OPTIONS)
def _floordiv(a, b, code, faults):
    """a // b wrapped to int64 (numba gives 0 for INT64_MIN // -1)."""
    if b == 0:
        _report(code, faults)
        return a - a
    return -a if b == -1 else a // b


@njit(inline="always", **OPTIONS)
def _mod(a, b, code, faults):
    if b == 0:
        _report(code, faults)
        return a - a
    return a % b


@njit(inline="always", **OPTIONS)
def _ipow(a, b, code, faults):
    if a == 0 and b < 0:
        _report(code, faults)
        return a - a
    return a ** b


@njit(inline="always", **OPTIONS)
def _to_i64(x, code, faults):
    if not ({i64[0]!r} < x < {i64[1]!r}):   # nan fails too
        _report(code, faults)
        return np.int64(0)
    return np.int64(x)


@njit(inline="always", **OPTIONS)
def _to_i32(x, code, faults):
    if not ({i32[0]!r} < x < {i32[1]!r}):
        _report(code, faults)
        return np.int32(0)
    return np.int32(x)


@njit(inline="always", **OPTIONS)
def _index(i, n, code, faults):
    """i as numba indexes (negative from the end), or 0 and a fault when it is outside."""
    j = i + n if i < 0 else i
    if j < 0 or j >= n:
        _report(code, faults)
        return 0
    return j


@njit(inline="always", **OPTIONS)
def _nonzero_step(step, code, faults):
    if step == 0:
        _report(code, faults)


# `_faults` is made and read in functions of their own: made by np.zeros in the kernel, a
# prange's writes to it (in a call) went unseen by the test after the loop
@njit(**INNER_OPTIONS)
def _new_faults():
    return np.zeros(1, np.int64)


@njit(**INNER_OPTIONS)
def _check_faults(faults):
    if faults[0] != 0:
        _fault(faults[0])
'''.format(i64=FLOAT_RANGE["i64"], i32=FLOAT_RANGE["i32"])

_GUARDED = {"arith.floordiv": "_floordiv", "arith.mod": "_mod", "arith.pow": "_ipow"}
_SHIFTS = {"arith.shl": "_shl", "arith.shr": "_shr"}
_INTS = ("i64", "i32")


def constant(v):
    """The value of an `arith.const` operand, else None."""
    return v.owner.attrs["value"] if getattr(v.owner, "name", None) == "arith.const" else None


def plain(op: Op) -> bool:
    """Whether an integer op needs no helper: a literal divisor other than 0 and -1, a
    literal count in [0, width), a literal power >= 0 (numba wraps it as the helper would; an
    all-literal expression too large for int64 is refused by numba, and the interpreter
    refuses it too)."""
    b = constant(op.operands[1])
    if b is None:
        return False
    if op.name in ("arith.floordiv", "arith.mod"):
        return b not in (0, -1)
    if op.name in _SHIFTS:
        return 0 <= b < (32 if op.results[0].type.name == "i32" else 64)
    return b >= 0


def outermost_parallel(op: Op) -> Op:
    """The outermost parallel loop or join around op, else op itself."""
    found, block = op, op.parent
    while block is not None and block.parent is not None:
        if block.parent.dialect == "par":
            found = block.parent
        block = block.parent.parent
    return found


def fault_args(w: Writer, op: Op, kind: str, **fill) -> str:
    """`code, faults` for a helper: a new code for a `kind` fault (backend/semantics.py)
    at op, and where it goes: None (raise) or `_faults`, checked after the outermost
    parallel loop around op."""
    w.uses_integer_ops = True
    w.faults.append((FAULTS[kind][0].__name__, fault_message(kind, op.loc, **fill)))
    anchor = outermost_parallel(op)
    if anchor is op:
        return f"{len(w.faults)}, None"
    w.fault_checks.add(anchor)
    return f"{len(w.faults)}, _faults"


def integer_op(w: Writer, op: Op, a: list[str]) -> str | None:
    """The text of an integer op with a helper (backend/semantics.py), else None; an op
    on literals too large for its type is its exact value, which numba refuses (as
    CPython folds `10**30`, not `10**50`)."""
    t = op.results[0].type.name
    if t not in _INTS:
        return None
    values = [constant(v) for v in op.operands]
    if None not in values and (big := literal_overflow(op.name, values, t)) is not None:
        return str(big)
    if op.name not in (*_SHIFTS, *_GUARDED) or plain(op):
        return None
    if op.name in _SHIFTS:
        w.uses_integer_ops = True
        return f"{_SHIFTS[op.name]}({a[0]}, {a[1]})"
    return f"{_GUARDED[op.name]}({a[0]}, {a[1]}, {fault_args(w, op, 'division')})"


def integer_cast(w: Writer, op: Op, x: str) -> str | None:
    """A float -> int conversion, checked; None for other casts."""
    src, dst = op.operands[0].type, op.results[0].type
    if not (src.is_float and dst.name in _INTS):
        return None
    return f"_to_{dst.name}({x}, {fault_args(w, op, 'cast', type=spoken(dst))})"


def checked_index(w: Writer, op: Op | None, arr: str, k: int, index: str) -> str:
    """Index k of arr, checked by a helper under HPCAD_BOUNDSCHECK=1: the error then
    names op's line, and inside a prange loop it is not lost (numba's own check raises
    on the worker thread)."""
    if op is None or not boundscheck():
        return index
    where = fault_args(w, op, "index", detail=" (checked because HPCAD_BOUNDSCHECK=1; "
                          "backend='interp' shows the index and the array's shape)")
    return f"_index({index}, {arr}.shape[{k}], {where})"


def check_step(w: Writer, op: Op, depth: int) -> None:
    """Before a loop whose step is not a literal: a zero step is the interpreter's error
    (numba's range raises a ValueError, lost inside a prange; its prange of _trips runs
    no iteration)."""
    if op.name not in ("scf.for", "par.parallel_for") \
            or constant(op.operands[2]) not in (None, 0):
        return
    w.emit(depth, f"_nonzero_step({w.ref(op.operands[2])}, "
                  f"{fault_args(w, op, 'step')})")


def check_faults(w: Writer, op: Op, depth: int) -> None:
    if op in w.fault_checks:
        w.emit(depth, "_check_faults(_faults)")


def fault_lines(w: Writer) -> list[str]:
    return ["    _faults = _new_faults()"] if w.fault_checks else []


def fault_prelude(w: Writer) -> str:
    """The helpers, and `_fault`, which raises the error of a code."""
    if not w.uses_integer_ops:
        return ""
    if not w.faults:
        return HELPERS
    classes = sorted({cls for cls, _ in w.faults})
    raises = "".join(f"    if code == {code}:\n        raise {cls}({message!r})\n"
                     for code, (cls, message) in enumerate(w.faults, 1))
    return (f"from hpcad.errors import {', '.join(classes)}\n" + HELPERS
            + f"\n\n@njit(**INNER_OPTIONS)\ndef _fault(code):\n{raises}")


def check_memory_order(w: Writer, op: Op, depth: int) -> None:
    """Before an MPI call, each buffer of two or more axes not known to be C-contiguous is
    checked where the call runs: a Fortran-ordered one stops the kernel
    (semantics.fortran_ordered; the interpreter checks the same)."""
    for v in op.operands:
        t = v.type
        if isinstance(t, ArrayType) and t.ndim >= 2 and t.layout != "C" and lanes(t) == 1:
            w.emit(depth, f"hpcad_mpi.memory_order({w.ref(v)}, "
                          f"{fault_message('order', op.loc or w.fn.loc)!r})")


def check_disjoint(w: Writer, op: Op, depth: int) -> None:
    """Before a Sendrecv of a primal, its send and receive buffers are checked where the call
    runs: overlapping ones stop the kernel (semantics.buffers_overlap; the interpreter checks
    the same)."""
    if op.name == "mpi.sendrecv" and lanes(op.operands[0].type) == 1:
        send, dest, recv, source = (w.ref(op.operands[k]) for k in (0, 1, 3, 4))
        w.emit(depth, f"hpcad_mpi.disjoint({send}, {dest}, {recv}, {source}, "
                      f"{fault_message('alias', op.loc or w.fn.loc)!r})")
