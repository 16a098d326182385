"""Reference interpreter: `run_function(fn, args, module)` runs an IR function on Python and
NumPy values (f64/i64/i1 as float/int/bool, f32/i32 as NumPy scalars, arrays mutated in place)
and returns what its `func.return` gives; the oracle other backends are checked against.
Vector values (batched derivatives, `f64x8`) are NumPy arrays of their lanes, arrays of
vectors carry the lanes as a leading dimension. Each
run compiles the functions it reaches into closures over a register file (a list slot per SSA
value); nothing is cached across runs, as passes rewrite functions in place."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import operator
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ArgumentError, HpcadError, where
from ..ir.core import Block, Function, Module, Op, Value
from ..ir.dialects import MATH_BINARY, MATH_FUNCS, MPI_WHOLE_BUFFERS, join_arities
from ..ir.types import ScalarType, lanes, spoken
from ..progress import sweep
from . import semantics
from .interp_mpi import RUN, run_mpi
from .semantics import fault, fault_kind, wrap64

Step = Callable[[list], None]

# -- scalar semantics ----------------------------------------------------------------------

_INT64_MIN = -2 ** 63
# Finite doubles at or beyond this round to an infinite float32 (and NumPy warns on the cast).
_F32_OVERFLOW = 2.0 ** 128 - 2.0 ** 103


def _to_f32(x: float) -> np.float32:
    if -_F32_OVERFLOW < x < _F32_OVERFLOW:
        return np.float32(x)
    with np.errstate(all="ignore"):
        return np.float32(x)


def _wrap32(x: int) -> np.int32:
    """Two's-complement wrap to 32 bits, as the compiled code does on overflow."""
    return np.int32(((x + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000)


def _trunc(x) -> int:
    try:
        return int(x)
    except (ValueError, OverflowError):
        return _INT64_MIN  # what x86 (and so numba and NumPy's astype) gives for nan and inf


def _guarded(fast: Callable, ufunc) -> Callable:
    """`fast` (Python's operator or `math` function), with the float64 NumPy ufunc's IEEE
    answer (inf, nan) wherever Python raises instead."""
    def call(*xs):
        try:
            return fast(*xs)
        except (ArithmeticError, ValueError):
            with np.errstate(all="ignore"):
                return float(ufunc(*xs))
    return call


def _numpy32(ufunc) -> Callable:
    """A NumPy ufunc on float32 scalars: rare enough that it needs no Python fast path."""
    def call(*xs):
        with np.errstate(all="ignore"):
            return ufunc(*xs)
    return call


@functools.cache
def _libm() -> ctypes.CDLL | None:
    """The C math library, whose float32 functions (expf, logf, ...) numba's compiled code
    calls; None where it cannot be found."""
    names = ["libm.so.6"] if sys.platform.startswith("linux") else []
    names.append(ctypes.util.find_library("m") or "")
    for name in names:
        try:
            return ctypes.CDLL(name) if name else None
        except OSError:
            continue
    return None


@functools.cache
def _libm32_function(name: str, arity: int) -> Callable | None:
    """The C library's float32 function `name` + "f", None where there is none."""
    lib = _libm()
    fn = getattr(lib, name + "f", None) if lib is not None else None
    if fn is None:
        return None
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float] * arity
    return fn


def _libm32(name: str, fallback: Callable, arity: int = 1) -> Callable:
    """A float32 math function as numba computes it: the C library's float function (sinf,
    expf, powf, ...), whose last bit NumPy's float32 ufuncs often do not give; `fallback`
    where the library or the function is missing. The library is loaded at the first call."""
    def call(*xs):
        fn = _libm32_function(name, arity)
        if fn is None:
            return fallback(*xs)
        return np.float32(fn(*map(float, xs)))
    return call


def _as_f32(f64_op: Callable) -> Callable:
    # The double result of + - * / rounded once to single equals the single-precision IEEE
    # result (53 >= 2*24 + 2 bits), so float32 arithmetic can reuse the float64 rules.
    return lambda *xs: _to_f32(f64_op(*map(float, xs)))


def _as_i32(i64_op: Callable) -> Callable:
    return lambda *xs: _wrap32(i64_op(*map(int, xs)))


def _wrapped(exact: Callable) -> Callable:
    """An exact Python integer op, wrapped to int64 (backend/semantics.py)."""
    return lambda *xs: wrap64(exact(*xs))


def _min(a, b):
    return b if b < a else a


def _max(a, b):
    return b if b > a else a


# (a zero result keeps x's sign, as NumPy's and numba's: np.ceil(-0.5) is -0.0)
def _floor_f64(x: float) -> float:
    return math.copysign(float(math.floor(x)), x)


def _ceil_f64(x: float) -> float:
    return math.copysign(float(math.ceil(x)), x)


def _rint_f64(x: float) -> float:
    return math.copysign(float(round(x)), x)   # halves to even; inf and nan raise: np.rint


_MATH_FAST = {"abs": abs, "floor": _floor_f64, "ceil": _ceil_f64, "rint": _rint_f64}
_MATH_UFUNC = {"abs": "fabs", "atan": "arctan", "asin": "arcsin", "acos": "arccos",
               "atan2": "arctan2", "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh"}
# functions NumPy has no ufunc of (they never raise): math's, float32 rounded once
_MATH_ONLY = {"erf": math.erf, "erfc": math.erfc}
_MATH_NAMES = MATH_FUNCS + tuple(MATH_BINARY)


def _ufunc(name: str):
    return _MATH_ONLY.get(name) or getattr(np, _MATH_UFUNC.get(name, name))


_I64 = {name: _wrapped(fn) for name, fn in (
    ("arith.add", operator.add), ("arith.sub", operator.sub), ("arith.mul", operator.mul),
    ("arith.neg", operator.neg), ("math.abs", abs), ("arith.floordiv", operator.floordiv))}
_I64.update({"arith.mod": operator.mod, "arith.pow": semantics.ipow,
             "arith.shl": semantics.shl, "arith.shr": semantics.shr,
             "arith.bitand": operator.and_, "arith.bitor": operator.or_,
             "arith.bitxor": operator.xor})
_DIVIDING = ("arith.floordiv", "arith.mod", "arith.pow")   # integer ones can divide by zero
_F64 = {"arith.add": operator.add, "arith.sub": operator.sub, "arith.mul": operator.mul,
        "arith.neg": operator.neg,
        "arith.div": _guarded(operator.truediv, np.true_divide),
        "arith.floordiv": _guarded(operator.floordiv, np.floor_divide),
        "arith.mod": _guarded(operator.mod, np.mod),
        "arith.pow": _guarded(math.pow, np.power)}
_F64.update({f"math.{n}": _guarded(_MATH_FAST.get(n) or getattr(math, n), _ufunc(n))
             for n in _MATH_NAMES})
_F32 = {name: _as_f32(_F64[name])
        for name in ("arith.add", "arith.sub", "arith.mul", "arith.div")}
_F32.update({"arith.neg": operator.neg, "arith.floordiv": _numpy32(np.floor_divide),
             "arith.mod": _numpy32(np.mod),
             "arith.pow": _libm32("pow", _numpy32(np.power), 2)})
_F32.update({f"math.{n}": _numpy32(_ufunc(n)) for n in _MATH_NAMES})
_F32.update({f"math.{n}": _as_f32(fn) for n, fn in _MATH_ONLY.items()})
# the rest as numba's code computes them: the C library's float functions (exact ones, such
# as sqrt and floor, are NumPy's)
_F32.update({f"math.{n}": _libm32(n, _F32[f"math.{n}"], 2 if n in MATH_BINARY else 1)
             for n in _MATH_NAMES if n not in ("abs", "floor", "ceil", "rint", "sqrt")})


def _scalar_rules() -> dict[str, dict[str, Callable]]:
    """Typed scalar rules: op name -> result type name -> function of the operand values."""
    rules: dict[str, dict[str, Callable]] = defaultdict(dict)
    i32 = {name: _as_i32(fn) for name, fn in _I64.items()}
    for type_name, table in (("f64", _F64), ("f32", _F32), ("i64", _I64), ("i32", i32)):
        for name, fn in table.items():
            rules[name][type_name] = fn
    for type_name in ("f64", "f32", "i64", "i32", "i1"):
        rules["arith.min"][type_name] = _min
        rules["arith.max"][type_name] = _max
    rules["arith.and"]["i1"] = operator.and_  # on two bools & and | give bools
    rules["arith.or"]["i1"] = operator.or_
    rules["arith.not"]["i1"] = operator.not_
    return dict(rules)


SCALAR_RULES = _scalar_rules()

# Conversion to a scalar type's representation: arith.const, arith.cast and arguments.
_CONVERT = {"f64": float, "f32": lambda x: _to_f32(float(x)), "i64": _trunc,
            "i32": lambda x: _wrap32(_trunc(x)), "i1": bool}
_NUMPY_SCALARS = ("f32", "i32")  # loaded as NumPy scalars; their comparisons give np.bool_
_VECTOR_RULES = {"arith.add": np.add, "arith.sub": np.subtract, "arith.mul": np.multiply,
                 "arith.div": np.true_divide, "arith.neg": np.negative}


def _convert(t: ScalarType) -> Callable:
    """Conversion to t's representation; a vector's is a fresh array of its lanes."""
    if t.width == 1:
        return _CONVERT[t.name]
    shape, dtype = (t.width,), t.np_dtype
    return lambda x: np.array(np.broadcast_to(np.asarray(x, dtype), shape))


def _lane_index(t) -> tuple:
    """The index prefix selecting every lane of an array of t's elements (none for plain)."""
    return (slice(None),) if lanes(t) > 1 else ()


PREDICATES = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
               "gt": operator.gt, "ge": operator.ge}

# -- compilation ---------------------------------------------------------------------------


class _Run:
    """One `run_function` call: its tape stacks (shared with the functions it calls) and the
    programs of the functions `func.call` reaches."""
    __slots__ = ("tapes", "entries", "bases", "module", "programs")

    def __init__(self, module: Module | None):
        self.tapes: defaultdict[int, list] = defaultdict(list)
        self.entries: defaultdict[int, dict] = defaultdict(dict)   # indexed slots
        self.bases: defaultdict[int, int] = defaultdict(int)
        self.module = module
        self.programs: dict[str, _Program] = {}

    def program(self, callee: str, op: Op) -> _Program:
        prog = self.programs.get(callee)
        if prog is None:
            if self.module is None or callee not in self.module.functions:
                raise HpcadError(f"func.call @{callee} ({where(op.loc)}): no such function "
                                 f"in the module given to run_function")
            prog = self.programs[callee] = _compile(self.module.functions[callee])
        return prog


class _Program:
    """A compiled function: the initial register file with its constants filled in, the
    argument and result slots, and the body's steps. Steps see only the register file, so
    slot 0 carries the `_Run` (tapes, callees)."""
    __slots__ = ("template", "params", "steps", "returns")

    def __init__(self, template: list, params: list[int], steps: tuple, returns: Callable):
        self.template, self.params, self.steps, self.returns = template, params, steps, returns

    def invoke(self, run: _Run, args: Sequence) -> tuple:
        r = self.template.copy()
        r[0] = run
        for k, v in zip(self.params, args):
            r[k] = v
        step = None
        try:
            for step in self.steps:
                step(r)
        except IndexError as e:
            raise _located(e, step, r) from None
        return self.returns(r)


_RULES: dict[str, Callable[[_Compiler, Op], Step | None]] = {}
_TERMINATORS = ("scf.yield", "scf.condition", "func.return")


def _rule(*names: str):
    def register(fn):
        for n in names:
            _RULES[n] = fn
        return fn
    return register


def _gather(slots: Sequence[int]) -> Callable[[list], tuple]:
    if len(slots) == 1:
        k = slots[0]
        return lambda r: (r[k],)
    return operator.itemgetter(*slots) if slots else lambda r: ()


def _move(src: Sequence[int], dst: Sequence[int]) -> tuple:
    """Steps copying registers src -> dst all at once (a loop may yield its args swapped)."""
    pairs = [(s, d) for s, d in zip(src, dst) if s != d]
    if not pairs:
        return ()
    if len(pairs) == 1:
        (s, d), = pairs

        def move_one(r):
            r[d] = r[s]
        return (move_one,)
    get, dsts = _gather([s for s, _ in pairs]), [d for _, d in pairs]

    def move(r):
        for d, v in zip(dsts, get(r)):
            r[d] = v
    return (move,)


class _Compiler:
    def __init__(self):
        self.slots: dict[Value, int] = {}
        self.template: list = [None]

    def slot(self, v: Value) -> int:
        k = self.slots.get(v)
        if k is None:
            k = self.slots[v] = len(self.template)
            self.template.append(None)
        return k

    def slots_of(self, values: Sequence[Value]) -> list[int]:
        return [self.slot(v) for v in values]

    def block(self, block: Block) -> tuple:
        """The steps of a block's ops; its terminator is read by the op owning the block."""
        steps = []
        for op in block.ops:
            if op.name in _TERMINATORS:
                continue
            rule = _RULES.get(op.name)
            if rule is None:
                raise HpcadError(f"interpreter has no rule for '{op.name}' ({where(op.loc)})")
            step = rule(self, op)
            if step is not None:
                steps.append(step)
        return tuple(steps)


# -- rules: one compiler per op, returning its step (None when it needs no work at run time) --


def _scalar_step(c: _Compiler, op: Op) -> Step:
    t = op.results[0].type
    fn = SCALAR_RULES[op.name].get(t.name) if t.width == 1 else _vector_rule(op.name, t)
    if fn is None:
        raise HpcadError(f"interpreter has no rule for '{op.name}' on {t} ({where(op.loc)})")
    k, args = c.slot(op.results[0]), c.slots_of(op.operands)
    if t.name in semantics.BITS:
        if all(getattr(v.owner, "name", None) == "arith.const" for v in op.operands):
            semantics.check_literal(op.name, [int(c.template[a]) for a in args], t.name,
                                    op.loc)
        if op.name in _DIVIDING:
            fn = _zero_division_raised(fn, op)
    if len(args) == 1:
        a, = args

        def unary(r):
            r[k] = fn(r[a])
        return unary
    a, b = args

    def binary(r):
        r[k] = fn(r[a], r[b])
    return binary


_rule(*SCALAR_RULES)(_scalar_step)


def _zero_division_raised(fn: Callable, op: Op) -> Callable:
    def divide(a, b):
        try:
            return fn(a, b)
        except ZeroDivisionError:
            raise fault("division", op.loc) from None
    return divide


def _vector_rule(name: str, t: ScalarType) -> Callable | None:
    """Lane-wise arithmetic (derivatives are linear: + - * / and negation are all they use)."""
    ufunc, dtype = _VECTOR_RULES.get(name), t.np_dtype
    if ufunc is None:
        return None

    def lanewise(*xs):
        with np.errstate(all="ignore"):
            return ufunc(*xs, dtype=dtype) if len(xs) == 2 else ufunc(*xs).astype(dtype)
    return lanewise


@_rule("arith.const")
def _const(c: _Compiler, op: Op) -> None:
    # SSA: the slot is written by this op alone, so the value can sit in the template.
    c.template[c.slot(op.result)] = _convert(op.result.type)(op.attrs["value"])


@_rule("arith.cast")
def _cast(c: _Compiler, op: Op) -> Step:
    k, a, convert = c.slot(op.result), c.slot(op.operands[0]), _convert(op.result.type)
    src, dst = op.operands[0].type, op.result.type
    if src.is_float and dst.name in semantics.FLOAT_RANGE:
        def float_to_int(r):
            value = semantics.to_int(r[a], dst.name)
            if value is None:
                raise fault("cast", op.loc, type=spoken(dst))
            r[k] = convert(value)
        return float_to_int

    def cast(r):
        r[k] = convert(r[a])
    return cast


@_rule("arith.cmp")
def _cmp(c: _Compiler, op: Op) -> Step:
    k, (a, b) = c.slot(op.result), c.slots_of(op.operands)
    pred = PREDICATES[op.attrs["pred"]]
    if op.operands[0].type.name in _NUMPY_SCALARS:
        def cmp_numpy(r):
            r[k] = bool(pred(r[a], r[b]))
        return cmp_numpy

    def cmp(r):
        r[k] = pred(r[a], r[b])
    return cmp


@_rule("arith.select")
def _select(c: _Compiler, op: Op) -> Step:
    k, (cond, a, b) = c.slot(op.result), c.slots_of(op.operands)

    def select(r):
        r[k] = r[a] if r[cond] else r[b]
    return select


@_rule("mem.alloc")
def _alloc(c: _Compiler, op: Op) -> Step:
    k, extents = c.slot(op.result), _gather(c.slots_of(op.operands))
    fill = op.attrs.get("fill", "zeros")
    if fill not in ("zeros", "empty"):
        raise HpcadError(f"mem.alloc fill '{fill}' is not zeros or empty ({where(op.loc)})")
    make, dtype = getattr(np, fill), op.result.type.dtype.np_dtype
    lead = (lanes(op.result.type),) if lanes(op.result.type) > 1 else ()

    if op.attrs.get("disk"):   # snapshots in a file (runtime/snapshots.py)
        from ..runtime.snapshots import buffer

        def alloc_on_disk(r):
            shape = extents(r)
            r[k] = buffer(math.prod(shape), dtype).reshape(shape)
        return alloc_on_disk

    def alloc(r):
        r[k] = make(lead + extents(r), dtype)
    return alloc


def _bounds_marked(rule: Callable[[_Compiler, Op], Step]) -> Callable:
    """A load or store rule whose step knows its op, array and index (`bounds`), so that
    the loop running it can tell which op NumPy's IndexError came from (_located)."""
    def marked_rule(c: _Compiler, op: Op) -> Step:
        step = rule(c, op)
        first = 1 if op.name == "mem.load" else 2
        step.bounds = (op, c.slot(op.operands[first - 1]),
                       _gather(c.slots_of(op.operands[first:])))
        return step
    return marked_rule


def _located(e: IndexError, step, r: list) -> Exception:
    """The IndexError a step raised as the hpcad error the numba backend raises under
    HPCAD_BOUNDSCHECK=1, naming the op's line, the index and the shape (a step's
    IndexError passes through the loops around it: each converts what it ran itself).
    Catching it in the loops, not in each load, keeps the steps free of a call."""
    if isinstance(e, HpcadError) or not hasattr(step, "bounds"):
        return e
    op, arr, index = step.bounds
    detail = f" (index {index(r)} into an array of shape {r[arr].shape})"
    return fault("index", op.loc, detail=detail)


@_rule("mem.load")
@_bounds_marked
def _load(c: _Compiler, op: Op) -> Step:
    k, a, idx = c.slot(op.result), c.slot(op.operands[0]), c.slots_of(op.operands[1:])
    if op.result.type.width > 1:
        index = _gather(idx)

        def load_lanes(r):
            r[k] = r[a][(slice(None),) + index(r)].copy()
        return load_lanes
    if op.result.type.name in _NUMPY_SCALARS:
        index = _gather(idx)

        def load_numpy(r):
            r[k] = r[a][index(r)]
        return load_numpy
    if len(idx) == 1:
        i, = idx

        def load_1d(r):
            r[k] = r[a].item(r[i])  # item() gives the Python scalar, unlike indexing
        return load_1d
    index = _gather(idx)

    def load(r):
        r[k] = r[a].item(*index(r))
    return load


@_rule("mem.store", "mem.accumulate")
@_bounds_marked
def _store(c: _Compiler, op: Op) -> Step:
    v, a, idx = c.slot(op.operands[0]), c.slot(op.operands[1]), c.slots_of(op.operands[2:])
    if lanes(op.operands[1].type) > 1:
        index = _gather(idx)
        if op.name == "mem.store":
            def store_lanes(r):
                r[a][(slice(None),) + index(r)] = r[v]
            return store_lanes

        def accumulate_lanes(r):
            r[a][(slice(None),) + index(r)] += r[v]
        return accumulate_lanes
    if len(idx) == 1:
        i, = idx
        if op.name == "mem.store":
            def store_1d(r):
                r[a][r[i]] = r[v]
            return store_1d

        def accumulate_1d(r):
            r[a][r[i]] += r[v]
        return accumulate_1d
    index = _gather(idx)
    if op.name == "mem.store":
        def store(r):
            r[a][index(r)] = r[v]
        return store

    def accumulate(r):
        r[a][index(r)] += r[v]
    return accumulate


@_rule("mem.shape")
def _shape(c: _Compiler, op: Op) -> Step:
    k, a = c.slot(op.result), c.slot(op.operands[0])
    axis = op.attrs["axis"] + len(_lane_index(op.operands[0].type))

    def shape(r):
        r[k] = r[a].shape[axis]
    return shape


@_rule("mem.view")
def _view(c: _Compiler, op: Op) -> Step:
    arr, out, dims = c.slot(op.operands[0]), c.slot(op.result), op.attrs["dims"]
    bounds = c.slots_of(op.operands[1:])
    lead = _lane_index(op.operands[0].type)

    def view(r):   # a 't' slice: from first by step to the end, then its first `length`
        it = iter(bounds)
        key, cut = list(lead), list(lead)
        for d in dims:
            if d == "s":
                key.append(slice(r[next(it)], r[next(it)]))
                cut.append(slice(None))
            elif d == "t":
                key.append(slice(r[next(it)], None, r[next(it)]))
                cut.append(slice(None, r[next(it)]))
            else:
                key.append(r[next(it)])
        r[out] = r[arr][tuple(key)]
        if "t" in dims:
            r[out] = r[out][tuple(cut)]
    return view


@_rule("mem.reshape")
def _reshape(c: _Compiler, op: Op) -> Step:
    arr, out, dims = c.slot(op.operands[0]), c.slot(op.result), c.slots_of(op.operands[1:])
    lead = len(_lane_index(op.operands[0].type))   # an array of vectors: lanes first

    def reshape(r):   # a view, never a copy (NumPy raises where it would need one)
        shape = r[arr].shape[:lead] + tuple(r[d] for d in dims)
        r[out] = r[arr].reshape(shape, copy=False)
    return reshape


@_rule("mem.bitcast")
def _bitcast(c: _Compiler, op: Op) -> Step:
    arr, out, dtype = c.slot(op.operands[0]), c.slot(op.result), op.result.type.dtype.np_dtype

    def bitcast(r):
        r[out] = r[arr].view(dtype)
    return bitcast


@_rule("vec.extract")
def _extract(c: _Compiler, op: Op) -> Step:
    k, (v, lane), convert = c.slot(op.result), c.slots_of(op.operands), _convert(op.result.type)

    def extract(r):
        r[k] = convert(r[v][r[lane]])
    return extract


@_rule("vec.insert")
def _insert(c: _Compiler, op: Op) -> Step:
    k, (v, x, lane) = c.slot(op.result), c.slots_of(op.operands)

    def insert(r):
        out = r[v].copy()   # SSA: the operand vector keeps its lanes
        out[r[lane]] = r[x]
        r[k] = out
    return insert


@_rule("vec.lane")
def _lane(c: _Compiler, op: Op) -> Step:
    k, (arr, lane) = c.slot(op.result), c.slots_of(op.operands)

    def lane_view(r):
        r[k] = r[arr][r[lane]]   # the lanes are the leading dimension here
    return lane_view


def _mpi(c: _Compiler, op: Op) -> Step:
    args = _gather(c.slots_of(op.operands))
    outs = c.slots_of(op.results)
    width = lanes(op.operands[0].type) if op.operands else 1
    if op.name[4:] in MPI_WHOLE_BUFFERS and width > 1:
        # these place each rank's buffer whole: one message per lane keeps lanes apart
        def run(values):
            for w in range(width):
                run_mpi(op, [v[w] if isinstance(v, np.ndarray) else v for v in values])
    else:
        def run(values):
            return run_mpi(op, values)

    def mpi(r):
        value = run(list(args(r)))
        if len(outs) == 1:
            r[outs[0]] = value
        else:
            for k, v in zip(outs, value or ()):
                r[k] = v
    return mpi


for _name in RUN:   # every call the interpreter runs (interp_mpi.py)
    _RULES[f"mpi.{_name}"] = _mpi


@_rule("mem.fill")
def _fill(c: _Compiler, op: Op) -> Step:
    value, arr = c.slots_of(op.operands)
    if op.operands[0].type.width > 1:   # a vector fills its lanes' planes
        trailing = (slice(None),) + (None,) * op.operands[1].type.ndim

        def fill_lanes(r):
            r[arr][...] = r[value][trailing]
        return fill_lanes

    def fill(r):
        r[arr][...] = r[value]
    return fill


@_rule("mem.copy")
def _copy(c: _Compiler, op: Op) -> Step:
    src, dst = c.slots_of(op.operands)

    def copy(r):
        r[dst][...] = r[src]
    return copy


@_rule("mem.add_into")
def _add_into(c: _Compiler, op: Op) -> Step:
    src, dst = c.slots_of(op.operands)

    def add_into(r):
        r[dst] += r[src]
    return add_into


def _lane_of(t, transpose: bool = False) -> Callable:
    """lane w of an operand of a linalg op (a plain array is the same in every lane),
    transposed if asked."""
    if lanes(t) > 1:
        return (lambda x, w: x[w].T) if transpose else (lambda x, w: x[w])
    return (lambda x, w: x.T) if transpose else (lambda x, w: x)


@_rule("linalg.matmul", "linalg.outer")
def _linalg(c: _Compiler, op: Op) -> Step:
    a, b, out = c.slots_of(op.operands)
    product = np.matmul if op.name == "linalg.matmul" else np.outer
    lane_a = _lane_of(op.operands[0].type, op.attrs.get("transpose_a", False))
    lane_b = _lane_of(op.operands[1].type, op.attrs.get("transpose_b", False))
    width = lanes(op.operands[2].type)

    def linalg(r):
        if width == 1:
            r[out][...] = product(lane_a(r[a], 0), lane_b(r[b], 0))
            return
        for w in range(width):
            r[out][w] = product(lane_a(r[a], w), lane_b(r[b], w))
    return linalg


@_rule("mpi.world")
def _world(c: _Compiler, op: Op) -> Step:
    out = c.slot(op.result)

    def world(r):
        from mpi4py import MPI
        r[out] = MPI.COMM_WORLD
    return world


@_rule("tape.push")
def _push(c: _Compiler, op: Op) -> Step:
    v, tape = c.slot(op.operands[0]), op.attrs["slot"]
    if len(op.operands) == 2:    # entry k of the slot's current segment (parallel loops)
        k = c.slot(op.operands[1])

        def put(r):
            run = r[0]
            run.entries[tape][run.bases[tape] + r[k]] = r[v]
        return put

    def push(r):
        r[0].tapes[tape].append(r[v])
    return push


@_rule("tape.pop")
def _pop(c: _Compiler, op: Op) -> Step:
    k, tape = c.slot(op.result), op.attrs["slot"]
    if op.operands:
        entry = c.slot(op.operands[0])

        def get(r):
            run = r[0]
            try:
                r[k] = run.entries[tape][run.bases[tape] + r[entry]]
            except KeyError:
                raise HpcadError(f"internal error: tape slot {tape} read at an entry never "
                                 f"written ({where(op.loc)})") from None
        return get

    def pop(r):
        stack = r[0].tapes[tape]
        if not stack:
            raise HpcadError(f"internal error: tape slot {tape} popped while empty "
                             f"({where(op.loc)}); the reverse sweep pops more than was pushed")
        r[k] = stack.pop()
    return pop


@_rule("tape.advance", "tape.retreat")
def _move_base(c: _Compiler, op: Op) -> Step:
    n, tape = c.slot(op.operands[0]), op.attrs["slot"]
    sign = 1 if op.name == "tape.advance" else -1

    def move(r):
        r[0].bases[tape] += sign * r[n]
    return move


@_rule("tape.reserve")
def _reserve(c: _Compiler, op: Op) -> Step:
    return lambda r: None     # indexed entries live in a dict: always room


@_rule("rt.progress")
def _progress(c: _Compiler, op: Op) -> Step:
    done, total, what = c.slot(op.operands[0]), c.slot(op.operands[1]), op.attrs["what"]
    return lambda r: sweep(int(r[done]), int(r[total]), what)


@_rule("rt.assert")
def _assert(c: _Compiler, op: Op) -> Step:
    cond, what = c.slot(op.operands[0]), op.attrs["what"]
    kind = fault_kind(op)

    def check(r):
        if not r[cond]:
            raise fault(kind, op.loc, what=what)
    return check


@_rule("scf.for", "par.parallel_for")
def _for(c: _Compiler, op: Op) -> Step:
    """A parallel loop runs its iterations in order: one valid schedule of a race-free
    loop, and the reference the compiled backend is checked against."""
    lb, ub, stride = c.slots_of(op.operands[:3])
    body = op.regions[0]
    iv, carried = c.slot(body.args[0]), c.slots_of(body.args[1:])
    enter = _move(c.slots_of(op.operands[3:]), carried)
    steps = c.block(body) + _move(c.slots_of(body.terminator.operands), carried)
    leave = _move(carried, c.slots_of(op.results))
    order = reversed if op.attrs.get("reverse") else iter  # reverse: the same range, backwards

    def for_(r):
        if r[stride] == 0:
            raise fault("step", op.loc)
        for step in enter:
            step(r)
        step = None
        try:
            for i in order(range(r[lb], r[ub], r[stride])):
                r[iv] = i
                for step in steps:
                    step(r)
        except IndexError as e:
            raise _located(e, step, r) from None
        for step in leave:
            step(r)
    return for_


@_rule("scf.while")
def _while(c: _Compiler, op: Op) -> Step:
    before, after = op.regions
    current = c.slots_of(before.args)
    condition = before.terminator
    cond, passed = c.slot(condition.operands[0]), c.slots_of(condition.operands[1:])
    enter = _move(c.slots_of(op.operands), current)
    test = c.block(before)
    body = (_move(passed, c.slots_of(after.args)) + c.block(after)
            + _move(c.slots_of(after.terminator.operands), current))
    leave = _move(passed, c.slots_of(op.results))

    def while_(r):
        for step in enter:
            step(r)
        step = None
        try:
            while True:
                for step in test:
                    step(r)
                if not r[cond]:
                    break
                for step in body:
                    step(r)
        except IndexError as e:
            raise _located(e, step, r) from None
        for step in leave:
            step(r)
    return while_


@_rule("scf.if")
def _if(c: _Compiler, op: Op) -> Step:
    cond, results = c.slot(op.operands[0]), c.slots_of(op.results)
    then, else_ = (c.block(b) + _move(c.slots_of(b.terminator.operands), results)
                   for b in op.regions)

    def if_(r):
        step = None
        try:
            for step in (then if r[cond] else else_):
                step(r)
        except IndexError as e:
            raise _located(e, step, r) from None
    return if_


@_rule("par.join")
def _join(c: _Compiler, op: Op) -> Step:
    """Tasks run one after the other, in order: one valid schedule of race-free tasks."""
    steps = []
    start = 0
    for region, n in zip(op.regions, join_arities(op)):
        steps += c.block(region) + _move(c.slots_of(region.terminator.operands),
                                         c.slots_of(op.results[start:start + n]))
        start += n
    steps = tuple(steps)

    def join(r):
        step = None
        try:
            for step in steps:
                step(r)
        except IndexError as e:
            raise _located(e, step, r) from None
    return join


@_rule("func.call")
def _call(c: _Compiler, op: Op) -> Step:
    callee, args, results = op.attrs["callee"], _gather(c.slots_of(op.operands)), \
        c.slots_of(op.results)

    def call(r):
        run = r[0]
        for k, v in zip(results, run.program(callee, op).invoke(run, args(r))):
            r[k] = v
    return call


# -- entry point ---------------------------------------------------------------------------


def _compile(fn: Function) -> _Program:
    c = _Compiler()
    params = c.slots_of(fn.args)
    steps = c.block(fn.body)
    return _Program(c.template, params, steps, _gather(c.slots_of(fn.body.terminator.operands)))


def run_function(fn: Function, args: Sequence, module: Module | None = None) -> tuple:
    """Run `fn` on `args` (scalars are converted to their type's representation, arrays and
    opaque values are passed as they are) and return the values of its `func.return`.
    `module` resolves `func.call`; tape stacks start empty on each call. Numbers come back
    as Python's (a float32 or int32 one too), as numba returns them."""
    if len(args) != len(fn.args):
        raise ArgumentError(f"@{fn.name} takes {len(fn.args)} arguments "
                            f"({', '.join(fn.arg_names)}), got {len(args)}")
    values = [_convert(p.type)(a) if isinstance(p.type, ScalarType) else a
              for p, a in zip(fn.args, args)]
    out = _compile(fn).invoke(_Run(module), values)
    return tuple(v.item() if isinstance(v, np.generic) else v for v in out)
