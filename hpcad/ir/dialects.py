"""The op registry: one declarative row per op of the `arith`, `math`, `mem`, `linalg`, `vec`,
`scf`, `func`, `tape` and `rt` dialects, naming its effects, its regions and the type rule the
verifier checks.

Effects: "pure" ops may be folded, CSE'd, hoisted and deleted; "read"/"write" touch array
memory; "tape" ops save and restore values for the reverse sweep; "control" ops own regions;
"io" ops talk to the user (never deleted or moved, touch no memory)."""
from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

from .core import Block, Builder, Function, Op, Value, walk
from .types import ArrayType, OpaqueType, ScalarType, Type, element, f64, i1, i64

AttrCheck = Callable[[Any], bool]            # an attribute's value -> whether it is valid
OpCheck = Callable[["Op"], "str | None"]     # an op -> an error message, or None


@dataclass(frozen=True)
class OpSpec:
    """An op's declaration. `operands` names its operands in order (a last name starting
    with `*` takes all the rest); `reads` and `writes` name the operands whose array memory
    the op reads and writes (ir/effects.py answers every pass's "what does this op read or
    write?" from them alone); `attrs` the attributes it may carry, each with its check."""
    name: str
    effect: str = "pure"   # pure | read | write | alloc | tape | comm | io | control | terminator
    regions: int = 0               # how many (-1: any number, one per task)
    check: OpCheck | None = None  # (op) -> error string or None
    operands: tuple[str, ...] = ()
    results: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    attrs: tuple[str, ...] = ()
    region_names: tuple[str, ...] = ()


OPS: dict[str, OpSpec] = {}


def _is(*types: type) -> AttrCheck:
    return lambda v: isinstance(v, types)


_integer = _is(numbers.Integral)


def _one_of(*values: object) -> AttrCheck:
    return lambda v: v in values


def _positions(v: object) -> bool:
    return isinstance(v, str) and all(k.isdigit() for k in v.split(",") if k)


# Every attribute an op may carry, with what its value must be. An op declares the ones it
# takes (`attrs` of its OpSpec); the verifier refuses any other, and a value that fails
# its check, so a pass cannot invent an attribute that no other stage knows about.
ATTRIBUTES: dict[str, AttrCheck] = {
    "value": _is(numbers.Number, bool),        # arith.const
    "pred": _one_of("eq", "ne", "lt", "le", "gt", "ge"),
    "axis": _integer,                      # mem.shape
    "dims": _is(str),                      # mem.view: 's', 't' (slices), 'i' (index) per axis
    "fill": _one_of("zeros", "empty", "ones"),   # mem.alloc: initial contents
    "arena": _is(bool),                    # mem.alloc: kept between calls (numba backend)
    "disk": _is(bool),                     # mem.alloc: in a file (runtime/snapshots.py)
    "scratch": _is(bool),                  # mem.alloc: a scratch adjoint (ad/reverse.py)
    "atomic": _is(bool),                   # mem.accumulate: racy, made atomic (passes/race.py)
    "private": _is(bool),                  # mem.accumulate: racy, into per-thread copies (race.py)
    "reverse": _is(bool),                  # loops: the range, backwards
    "reductions": _is(str),                # par.parallel_for: one kind per carried value
    "allow_races": _is(bool),              # par.parallel_for: the user's promise
    "race_free": _is(str),                 # par.parallel_for: how (passes/coloring.py)
    "outline": _is(bool),                  # loops: compiled on their own (passes/fusion.py)
    "sums": _one_of("any order"),          # loops: sums the backend may reassociate
    "arity": _is(str),                     # par.join: results per task
    "callee": _is(str),                    # func.call
    "custom": _is(str),                    # func.call: the kernel whose rules apply
    "writes": _positions,                  # func.call: the arguments it writes
    "outs": _integer,                      # func.call: results before the residuals
    "flops": _is(numbers.Number),              # func.call: cost of calling it again
    "repeatable": _is(bool),               # func.call: may be called again in reverse
    "op": _is(str),                        # mpi reductions: sum/max/min
    "slot": _integer,                      # tape ops
    "what": _is(str),                      # rt.progress: the title; rt.assert: the message
    "raises": _is(str),                    # rt.assert of a `raise`: the class's name
    "transpose_a": _is(bool),              # linalg.matmul: the first operand, transposed
    "transpose_b": _is(bool),              # linalg.matmul: the second operand, transposed
}


def check_attributes(op: Op) -> str | None:
    """An error message when op carries an attribute its declaration does not name, or
    one whose value is not what the attribute takes; else None."""
    declared = OPS[op.name].attrs
    for name, value in op.attrs.items():
        if name not in declared:
            return f"attribute '{name}' is not declared for this op " \
                   f"(it takes: {', '.join(declared) or 'none'})"
        if not ATTRIBUTES[name](value):
            return f"attribute '{name}' has a bad value {value!r}"
    return None


def _def(name: str, effect: str = "pure", regions: tuple[str, ...] = (),
         check: OpCheck | None = None, operands: tuple[str, ...] = (),
         results: tuple[str, ...] = ("result",), reads: tuple[str, ...] = (),
         writes: tuple[str, ...] = (), attrs: tuple[str, ...] = ()) -> None:
    """regions: their names (a last `*name`: any number of them)."""
    assert set(attrs) <= set(ATTRIBUTES), attrs
    count = -1 if regions and regions[-1].startswith("*") else len(regions)
    OPS[name] = OpSpec(name, effect, count, check, tuple(operands), tuple(results),
                       tuple(reads), tuple(writes), tuple(attrs), tuple(regions))


def operand_named(op: Op, name: str) -> list[Value]:
    """The operands of op declared under `name` (the rest of them for a `*name`)."""
    for k, declared in enumerate(OPS[op.name].operands):
        if declared == name:
            return [op.operands[k]] if k < len(op.operands) else []
        if declared == "*" + name:
            return list(op.operands[k:])
    raise KeyError(f"{op.name} declares no operand '{name}'")


def _nary(n: int, same_result: bool = True) -> OpCheck:
    def check(op: Op) -> str | None:
        if len(op.operands) != n or len(op.results) != 1:
            return f"expects {n} operands and 1 result"
        scalars = [v.type for v in op.operands if isinstance(v.type, ScalarType)]
        if len(scalars) != n:
            return "operands must be scalars"
        # a vector (batched derivative) combines with plain scalars of its element type:
        # the scalar applies to every lane
        ts = {ScalarType(t.name) for t in scalars}
        widths = {t.width for t in scalars} - {1}
        if len(ts) != 1 or len(widths) > 1:
            return f"operand types differ: {', '.join(str(t) for t in scalars)}"
        t = max(scalars, key=lambda t: t.width)
        if same_result and op.results[0].type != t:
            return f"result type {op.results[0].type} != operand type {t}"
        return None
    return check


def _bool_nary(n: int) -> OpCheck:
    def check(op: Op) -> str | None:
        if len(op.operands) != n or any(v.type != i1 for v in op.operands + op.results):
            return f"expects {n} i1 operands and an i1 result"
        return None
    return check


def _check_const(op: Op) -> str | None:
    if op.operands or len(op.results) != 1 or "value" not in op.attrs:
        return "expects no operands, one result and a value attribute"
    return None


def _check_cmp(op: Op) -> str | None:
    err = _nary(2, same_result=False)(op)
    if err:
        return err
    if op.results[0].type != i1 or op.attrs.get("pred") not in ("eq", "ne", "lt", "le", "gt", "ge"):
        return "expects an i1 result and pred in eq/ne/lt/le/gt/ge"
    return None


def _check_select(op: Op) -> str | None:
    if len(op.operands) != 3 or op.operands[0].type != i1:
        return "expects (i1, T, T)"
    if not (op.operands[1].type == op.operands[2].type == op.results[0].type):
        return "branch and result types differ"
    return None


def _int_nary(n: int) -> OpCheck:
    def check(op: Op) -> str | None:
        err = _nary(n)(op)
        first = op.operands[0].type
        if err is None and not (isinstance(first, ScalarType) and first.is_int):
            return "bit operations need integer operands"
        return err
    return check


def _check_cast(op: Op) -> str | None:
    if len(op.operands) != 1 or not isinstance(op.operands[0].type, ScalarType) \
            or not isinstance(op.results[0].type, ScalarType):
        return "expects one scalar operand and a scalar result"
    return None


def _indexed_array(op: Op, first: int) -> ArrayType | str:
    """The type of the array operand `first`, indexed by the operands after it; or the error."""
    arr = op.operands[first]
    if not isinstance(arr.type, ArrayType):
        return f"operand {first} must be an array, got {arr.type}"
    idx = op.operands[first + 1:]
    if len(idx) != arr.type.ndim or any(v.type != i64 for v in idx):
        return f"needs {arr.type.ndim} i64 indices for {arr.type}"
    return arr.type


def _check_load(op: Op) -> str | None:
    t = _indexed_array(op, 0)
    if isinstance(t, str):
        return t
    return None if op.results[0].type == t.dtype else "result type must be the array's dtype"


def _fits(value_type: Type, dtype: ScalarType) -> bool:
    """Whether a value of value_type may be written into elements of dtype: the same type,
    or a plain scalar written to every lane of a vector element."""
    return value_type == dtype or (isinstance(value_type, ScalarType) and value_type.width == 1
                                   and value_type == ScalarType(dtype.name))


def _check_store(op: Op) -> str | None:
    t = _indexed_array(op, 1)
    if isinstance(t, str):
        return t
    return None if _fits(op.operands[0].type, t.dtype) else \
        "stored value must have the array's dtype"


def _check_alloc(op: Op) -> str | None:
    t = op.results[0].type
    if not isinstance(t, ArrayType) or len(op.operands) != t.ndim:
        return "needs one i64 extent per dimension"
    return None


def _check_view(op: Op) -> str | None:
    dims = op.attrs.get("dims", "")
    arr = op.operands[0].type if op.operands else None
    t = op.results[0].type if op.results else None
    if not isinstance(arr, ArrayType) or len(dims) != arr.ndim or set(dims) - {"s", "t", "i"}:
        return "expects an array and a dims attribute of 's'/'t'/'i' per dimension"
    if len(op.operands) != 1 + 2 * dims.count("s") + 3 * dims.count("t") + dims.count("i") \
            or any(v.type != i64 for v in op.operands[1:]):
        return "expects i64 (lo, hi) per 's' slice, (first, step, length) per 't' slice " \
               "and an i64 index per indexed dimension"
    slices = dims.count("s") + dims.count("t")
    if not isinstance(t, ArrayType) or t.dtype != arr.dtype or t.ndim != slices:
        return "result must be an array of the same dtype with one dimension per slice"
    return None


def view_axis_bounds(view: Op, axis: int) -> tuple[Value, ...] | None:
    """What gives the length of a mem.view's result axis `axis`: (lo, hi) for an 's' slice
    (hpcad makes every view within its base, or empty with hi = lo: frontend/arrays.py
    `slice_axis`, so the length is hi - lo), (length,) for a 't' slice; None past the last
    axis."""
    bounds, kept = iter(view.operands[1:]), -1
    for d in view.attrs["dims"]:
        parts = tuple(next(bounds) for _ in range({"i": 1, "s": 2, "t": 3}[d]))
        if d != "i":
            kept += 1
            if kept == axis:
                return parts if d == "s" else parts[2:]
    return None


def _check_reshape(op: Op) -> str | None:
    arr = op.operands[0].type if op.operands else None
    t = op.results[0].type if len(op.results) == 1 else None
    if not isinstance(arr, ArrayType) or arr.layout != "C":
        return "expects a C-contiguous array to reshape"
    if not isinstance(t, ArrayType) or t.dtype != arr.dtype or t.layout != "C" \
            or t.ndim != len(op.operands) - 1 or any(v.type != i64 for v in op.operands[1:]):
        return "expects one i64 extent (-1: inferred) per dimension of a C-contiguous result " \
               "of the array's dtype"
    return None


def _check_bitcast(op: Op) -> str | None:
    src = op.operands[0].type if len(op.operands) == 1 else None
    t = op.results[0].type if len(op.results) == 1 else None
    if not isinstance(src, ArrayType) or not isinstance(t, ArrayType) or src.ndim != t.ndim \
            or src.layout != t.layout or src.dtype.bits != t.dtype.bits or src.dtype.is_bool:
        return "expects an array and a result array of the same rank, layout and bit width"
    return None


def _check_shape(op: Op) -> str | None:
    if not isinstance(op.operands[0].type, ArrayType) or op.results[0].type != i64:
        return "expects an array operand and an i64 result"
    if not 0 <= op.attrs.get("axis", -1) < op.operands[0].type.ndim:
        return "axis out of range"
    return None


def _check_for(op: Op) -> str | None:
    if len(op.operands) < 3 or any(v.type != i64 for v in op.operands[:3]):
        return "expects i64 lb, ub, step, then iter_args"
    body = op.regions[0]
    inits = op.operands[3:]
    if len(body.args) != 1 + len(inits) or body.args[0].type != i64:
        return "body must take the induction variable then one arg per iter_arg"
    return _check_carried(op, inits, body.args[1:], [body])


def _check_while(op: Op) -> str | None:
    before, after = op.regions
    inits = op.operands
    if [a.type for a in before.args] != [v.type for v in inits]:
        return "before-region args must match the inits"
    cond = before.terminator
    if cond is None or cond.name != "scf.condition" or cond.operands[0].type != i1:
        return "before region must end in scf.condition with an i1 first operand"
    if [v.type for v in cond.operands[1:]] != [a.type for a in after.args]:
        return "scf.condition values must match the after-region args"
    if [r.type for r in op.results] != [a.type for a in after.args]:
        return "results must match the after-region args"
    return _check_carried(op, inits, before.args, [after])


def _check_carried(op: Op, inits: list[Value], args: list[Value],
                   bodies: list[Block]) -> str | None:
    if [v.type for v in inits] != [a.type for a in args]:
        return "iter_arg types differ from their inits"
    if [r.type for r in op.results] != [v.type for v in inits]:
        return "result types differ from the iter_args"
    for b in bodies:
        term = b.terminator
        if term is None or term.name != "scf.yield":
            return "region must end in scf.yield"
        if [v.type for v in term.operands] != [v.type for v in inits]:
            return "scf.yield types differ from the iter_args"
    return None


REDUCTIONS = ("add", "mul", "min", "max")


def reduction_kinds(op: Op) -> list[str]:
    text = op.attrs.get("reductions", "")
    return text.split(",") if text else []


def _check_parallel_for(op: Op) -> str | None:
    err = _check_for(op)
    if err:
        return err
    kinds = reduction_kinds(op)
    if len(kinds) != len(op.results) or any(k not in REDUCTIONS for k in kinds):
        return f"needs one reduction kind ({'/'.join(REDUCTIONS)}) per carried value"
    return None


def unit_step(loop: Op) -> bool:
    """Whether a loop's step is the constant 1."""
    step = loop.operands[2].owner
    return getattr(step, "name", None) == "arith.const" and step.attrs["value"] == 1


MEMORY_ACCESSES = ("mem.load", "mem.store", "mem.accumulate")
# ops whose result is a view of their first operand's memory (writes through it reach it)
VIEWS = ("mem.view", "mem.reshape", "mem.bitcast", "vec.lane")


def accessed_array(op: Op) -> Value:
    """The array a mem.load, mem.store or mem.accumulate reads or writes."""
    return op.operands[0] if op.name == "mem.load" else op.operands[1]


def access_index(op: Op) -> tuple[Value, ...]:
    """The index tuple of a mem.load, mem.store or mem.accumulate."""
    return tuple(op.operands[1:] if op.name == "mem.load" else op.operands[2:])


def plain_body(loop: Op, tape_ops: tuple[str, ...] = ()) -> bool:
    """Whether a loop's body has no nested regions and holds only pure ops, memory accesses
    and the tape ops named in `tape_ops` when indexed (an indexed push or pop does not move
    the tape position)."""
    for op in loop.regions[0].ops[:-1]:
        if op.regions:
            return False
        if op.name in tape_ops and len(op.operands) == (2 if op.name == "tape.push" else 1):
            continue
        if not (is_pure(op) or op.name in MEMORY_ACCESSES):
            return False
    return True


def in_parallel(op: Op) -> bool:
    """Whether op runs inside a parallel loop or task (an op of the `par` dialect encloses
    it)."""
    block = op.parent
    while block is not None and block.parent is not None:
        if block.parent.dialect == "par":
            return True
        block = block.parent.parent
    return False


def offset_along(idx: tuple[Value, ...], iv: Value,
                 local: set[Value]) -> tuple[int, int, tuple[Value, ...]] | None:
    """(position, c, the other indices) when exactly one index of idx is iv + c and none of
    the others is in `local` (values defined in the loop: they must be loop-invariant)."""
    along = [(d, c) for d, c in ((d, iv_offset(v, iv)) for d, v in enumerate(idx))
             if c is not None]
    if len(along) != 1:
        return None
    d, c = along[0]
    rest = tuple(v for e, v in enumerate(idx) if e != d)
    return None if any(v in local for v in rest) else (d, c, rest)


def sum_update(loop: Op, k: int) -> Op | None:
    """The add that updates the loop's k-th carried value when that value is a float sum
    (each iteration adds one value to it, which is all it is used for); else None."""
    body = loop.regions[0]
    arg, new = body.args[1 + k], body.ops[-1].operands[k]
    add = new.owner
    if not (isinstance(add, Op) and add.name == "arith.add" and arg in add.operands
            and isinstance(arg.type, ScalarType) and arg.type.name in ("f64", "f32")):
        return None
    uses = [o for o in walk(body) if arg in o.operands]
    if uses == [add] and add.operands.count(arg) == 1 and \
            [o for o in walk(body) if new in o.operands] == [body.ops[-1]]:
        return add
    return None


def iv_offset(index: Value, iv: Value) -> int | None:
    """c when index is iv + c (or iv - c, or iv itself) for a constant c, else None."""
    if index is iv:
        return 0
    op = index.owner
    if not isinstance(op, Op) or op.name not in ("arith.add", "arith.sub") \
            or iv not in op.operands:
        return None
    other = op.operands[1] if op.operands[0] is iv else op.operands[0]
    const = other.owner
    if not isinstance(const, Op) or const.name != "arith.const":
        return None
    c: int = const.attrs["value"]
    if op.name == "arith.sub":
        return -c if op.operands[0] is iv else None
    return c


def offsets_along(ops: list[Op], iv: Value, local: set[Value]) -> dict[Op, int] | None:
    """{access: c} when every access (load, store, accumulate) indexes its array at iv + c
    along one position, with the same loop-invariant indices elsewhere; None otherwise."""
    shape, out = None, {}
    for op in ops:
        found = offset_along(access_index(op), iv, local)
        if found is None or shape not in (None, (found[0], found[2])):
            return None
        shape, out[op] = (found[0], found[2]), found[1]
    return out


def defined_in(body: Block) -> set[Value]:
    """The values a block defines: its ops' results and its arguments."""
    return {r for op in body.ops for r in op.results} | set(body.args)


def shifted(b: Builder, v: Value, c: int) -> Value:
    """v + c, built at b (v itself for c = 0): the form iv_offset reads."""
    if c == 0:
        return v
    return b.op1("arith.add", [v, b.op1("arith.const", [], i64, {"value": c})], i64)


def before(b: Builder, v: Value, c: int) -> Value:
    """v - c, built at b (v itself for c = 0)."""
    if c == 0:
        return v
    return b.op1("arith.sub", [v, b.op1("arith.const", [], i64, {"value": c})], i64)


def join_arities(op: Op) -> list[int]:
    return [int(k) for k in op.attrs.get("arity", "").split(",") if k]


def _check_join(op: Op) -> str | None:
    arity = join_arities(op)
    if len(arity) != len(op.regions) or sum(arity) != len(op.results):
        return "arity attribute must give each task's number of results"
    start = 0
    for region, n in zip(op.regions, arity, strict=True):
        term = region.terminator
        if term is None or term.name != "scf.yield":
            return "every task must end in scf.yield"
        if [v.type for v in term.operands] != [r.type for r in op.results[start:start + n]]:
            return "a task's yield does not match its results"
        start += n
    return None


def _check_if(op: Op) -> str | None:
    if len(op.operands) != 1 or op.operands[0].type != i1:
        return "expects one i1 condition"
    for b in op.regions:
        term = b.terminator
        if term is None or term.name != "scf.yield":
            return "both regions must end in scf.yield"
        if [v.type for v in term.operands] != [r.type for r in op.results]:
            return "scf.yield types differ from the results"
    return None


def _check_push(op: Op) -> str | None:
    """push %v {slot}: onto the slot's stack; push %v, %k {slot}: entry k of its segment."""
    if "slot" not in op.attrs or len(op.operands) not in (1, 2) \
            or (len(op.operands) == 2 and op.operands[1].type != i64):
        return "expects a value, an optional i64 entry and a slot"
    return None


def _check_pop(op: Op) -> str | None:
    if "slot" not in op.attrs or len(op.results) != 1 or len(op.operands) > 1 \
            or (op.operands and op.operands[0].type != i64):
        return "expects an optional i64 entry, a slot and one result"
    return None


def _check_move(op: Op) -> str | None:
    if "slot" not in op.attrs or len(op.operands) != 1 or op.operands[0].type != i64:
        return "expects an i64 entry count and a slot"
    return None


_def("arith.const", check=_check_const, attrs=("value",))
for _n in ("add", "sub", "mul", "div", "floordiv", "mod", "pow", "min", "max"):
    _def(f"arith.{_n}", check=_nary(2), operands=("lhs", "rhs"))
_def("arith.neg", check=_nary(1), operands=("operand",))
_def("arith.cmp", check=_check_cmp, operands=("lhs", "rhs"), attrs=("pred",))
_def("arith.select", check=_check_select, operands=("condition", "if_true", "if_false"))
_def("arith.cast", check=_check_cast, operands=("operand",))
_def("arith.and", check=_bool_nary(2), operands=("lhs", "rhs"))
_def("arith.or", check=_bool_nary(2), operands=("lhs", "rhs"))
_def("arith.not", check=_bool_nary(1), operands=("operand",))
for _n in ("shl", "shr", "bitand", "bitor", "bitxor"):   # integers: << >> & | ^
    _def(f"arith.{_n}", check=_int_nary(2), operands=("lhs", "rhs"))

# rint: to the nearest integer, halves to even (Python's and numba's round)
MATH_FUNCS = ("sin", "cos", "tan", "exp", "log", "log1p", "expm1", "sqrt", "tanh", "abs",
              "floor", "ceil", "atan", "asin", "acos", "sinh", "cosh", "log10", "log2",
              "erf", "erfc", "rint", "asinh", "acosh", "atanh")
for _n in MATH_FUNCS:
    _def(f"math.{_n}", check=_nary(1), operands=("x",))
MATH_BINARY = {"atan2": ("y", "x"), "hypot": ("x", "y")}   # name -> its operands
for _n, _operands in MATH_BINARY.items():
    _def(f"math.{_n}", check=_nary(2), operands=_operands)

_def("mem.alloc", "alloc", check=_check_alloc, operands=("*extent",),
     attrs=("fill", "arena", "disk", "scratch"))
_def("mem.load", "read", check=_check_load, operands=("array", "*index"), reads=("array",))
_def("mem.store", "write", check=_check_store, operands=("value", "array", "*index"),
     results=(), writes=("array",))
_def("mem.accumulate", "write", check=_check_store, operands=("value", "array", "*index"),
     results=(), reads=("array",), writes=("array",), attrs=("atomic", "private"))
_def("mem.shape", check=_check_shape, operands=("array",), attrs=("axis",))
# a[lo:hi, j], a[::-2]: NumPy basic slicing, per axis 's' a unit-step slice (lo, hi), 't' a
# slice with a step (first, step, length: elements first, first + step, ...), 'i' an index
_def("mem.view", check=_check_view, operands=("array", "*bounds"), attrs=("dims",))
# a.reshape(n, m): the same elements of a C-contiguous array in C order, other extents
_def("mem.reshape", check=_check_reshape, operands=("array", "*extent"))
# a.view(np.int32): the same bytes, another dtype
_def("mem.bitcast", check=_check_bitcast, operands=("array",))


def _check_fill(op: Op) -> str | None:
    arr = op.operands[1].type if len(op.operands) == 2 else None
    if not isinstance(arr, ArrayType) or not _fits(op.operands[0].type, arr.dtype):
        return "expects (value, array) with the array's dtype"
    return None


def _check_add_into(op: Op) -> str | None:
    arrays = [v.type for v in op.operands if isinstance(v.type, ArrayType)]
    if len(op.operands) != 2 or len(arrays) != 2 or arrays[0].dtype != arrays[1].dtype \
            or arrays[0].ndim != arrays[1].ndim:
        return "expects (source, destination) arrays of one dtype and rank"
    return None


_def("mem.fill", "write", check=_check_fill, operands=("value", "array"), results=(),
     writes=("array",))          # every element = value
_def("mem.copy", "write", check=_check_add_into, operands=("source", "destination"),
     results=(), reads=("source",), writes=("destination",))   # destination = source
_def("mem.add_into", "write", check=_check_add_into, operands=("source", "destination"),
     results=(), reads=("source", "destination"), writes=("destination",))   # dest += source

def _check_linalg(op: Op, ranks: set[tuple[int, ...]]) -> str | None:
    """Three array operands of one float type (two read, one written), of `ranks`; the
    written one carries the lanes of the others (one vector width at most)."""
    arrays = [v.type for v in op.operands if isinstance(v.type, ArrayType)]
    if len(op.operands) != 3 or len(arrays) != 3 or op.results:
        return "expects three arrays (two read, one written) and no result"
    if len({t.dtype.name for t in arrays}) != 1 or not arrays[0].dtype.is_float:
        return "expects arrays of one float type"
    if tuple(t.ndim for t in arrays) not in ranks:
        return f"expects ranks {' or '.join(str(r) for r in sorted(ranks))}"
    widths = {t.dtype.width for t in arrays}
    if len(widths - {1}) > 1 or arrays[2].dtype.width != max(widths):
        return "the result must carry the lanes of its operands, of one width"
    return None


def _check_matmul(op: Op) -> str | None:
    err = _check_linalg(op, {(2, 2, 2), (2, 1, 1), (1, 2, 1)})
    ranks = [v.type.ndim if isinstance(v.type, ArrayType) else 0 for v in op.operands]
    if err is None and (op.attrs.get("transpose_a") and ranks[0] != 2
                        or op.attrs.get("transpose_b") and ranks[1] != 2):
        return "only a 2-D operand may be transposed"
    return err


def _check_outer(op: Op) -> str | None:
    return _check_linalg(op, {(1, 1, 2)})


# matrix products in destination-passing style (ad/rules/linalg.py, backend/numba/linalg.py):
# out = op(a) @ op(b), op the transpose where its flag says, a 1-D operand a vector (a
# row on the left, a column on the right); out[i, j] = x[i] * y[j]. An operand of vectors
# (batched derivatives) gives one product per lane, a plain operand the same in each lane.
_def("linalg.matmul", "write", check=_check_matmul, operands=("a", "b", "out"), results=(),
     reads=("a", "b"), writes=("out",), attrs=("transpose_a", "transpose_b"))
_def("linalg.outer", "write", check=_check_outer, operands=("x", "y", "out"), results=(),
     reads=("x", "y"), writes=("out",))


def _is_vector(t: Type | None) -> TypeGuard[ScalarType]:
    return isinstance(t, ScalarType) and t.width > 1


def _check_extract(op: Op) -> str | None:
    t = op.operands[0].type if op.operands else None
    if len(op.operands) != 2 or len(op.results) != 1 or not _is_vector(t) \
            or op.operands[1].type != i64:
        return "expects (vector, i64 lane) and one result"
    if op.results[0].type != element(t):
        return "result must be one lane of the vector (its element type)"
    return None


def _check_insert(op: Op) -> str | None:
    t = op.operands[0].type if op.operands else None
    if len(op.operands) != 3 or len(op.results) != 1 or not _is_vector(t) \
            or op.operands[2].type != i64:
        return "expects (vector, scalar, i64 lane) and one result"
    if op.operands[1].type != element(t) or op.results[0].type != t:
        return "the scalar must be the vector's element type, the result the vector's type"
    return None


def _check_lane(op: Op) -> str | None:
    arr = op.operands[0].type if len(op.operands) == 2 else None
    if not isinstance(arr, ArrayType) or not _is_vector(arr.dtype) or op.operands[1].type != i64 \
            or len(op.results) != 1:
        return "expects (array of vectors, i64 lane) and one result"
    if op.results[0].type != ArrayType(element(arr.dtype), arr.ndim, "A"):
        return "result must be an array of the element type, same rank, layout A"
    return None


# one lane of batched derivatives (ad/custom.py calls a rule once per direction):
# lane w of a vector (a scalar); the vector with lane w replaced; lane w of an array of
# vectors (a strided view)
_def("vec.extract", check=_check_extract, operands=("vector", "lane"))
_def("vec.insert", check=_check_insert, operands=("vector", "scalar", "lane"))
_def("vec.lane", check=_check_lane, operands=("array", "lane"))


_def("scf.for", "control", ("body",), _check_for, operands=("lb", "ub", "step", "*init"),
     results=("*carried",), attrs=("reverse", "outline", "sums"))
_def("scf.while", "control", ("before", "after"), _check_while, operands=("*init",),
     results=("*carried",))
_def("scf.if", "control", ("then", "else"), _check_if, operands=("condition",),
     results=("*merged",))
_def("scf.yield", "terminator", operands=("*value",), results=())
_def("scf.condition", "terminator", operands=("condition", "*value"), results=())

# mpi: operands in this order, then the communicator. Buffers are arrays (or views).
MPI_OPERANDS = {
    "sendrecv": ("sendbuf", "dest", "sendtag", "recvbuf", "source", "recvtag"),
    "send": ("buf", "dest", "tag"),
    "recv": ("buf", "source", "tag"),
    "isend": ("buf", "dest", "tag"),
    "irecv": ("buf", "source", "tag"),
    "allreduce": ("sendbuf", "recvbuf"),
    "reduce": ("sendbuf", "recvbuf", "root"),
    "bcast": ("buf", "root"),
    "gather": ("sendbuf", "recvbuf", "root"),
    "scatter": ("sendbuf", "recvbuf", "root"),
    "allgather": ("sendbuf", "recvbuf"),
    "alltoall": ("sendbuf", "recvbuf"),
    "allreduce_scalar": ("sendobj",),
    "barrier": (),
    "cart_shift": ("direction", "disp"),
    "rank": (),
    "size": (),
    # counts and displacements: 1-D integer arrays, one entry per rank, in elements of the
    # buffer's dtype (also for buffers of several dimensions: they count in C order)
    "gatherv": ("sendbuf", "recvbuf", "recvcounts", "recvdispls", "root"),
    "scatterv": ("sendbuf", "recvbuf", "sendcounts", "senddispls", "root"),
    "allgatherv": ("sendbuf", "recvbuf", "recvcounts", "recvdispls"),
    "alltoallv": ("sendbuf", "recvbuf", "sendcounts", "senddispls", "recvcounts", "recvdispls"),
    "reduce_scatter": ("sendbuf", "recvbuf", "recvcounts"),
    "reduce_scatter_block": ("sendbuf", "recvbuf"),

    # per element, the lowest rank holding the op=max|min extremum (recvbuf: i64); the array
    # MAX/MIN reductions are this and a SUM of the owners' elements (frontend/mpi_reductions)
    "owner": ("sendbuf", "recvbuf"),

    "iallreduce": ("sendbuf", "recvbuf"),
    "ibcast": ("buf", "root"),
    "ireduce": ("sendbuf", "recvbuf", "root"),
    "iallgather": ("sendbuf", "recvbuf"),
    "neighbor_alltoall": ("sendbuf", "recvbuf"),
    "neighbor_allgather": ("sendbuf", "recvbuf"),
    "cart_coords": ("rank",),
    "cart_topo": (),
    "cart_ndim": (),
    "wtime": (),
}
MPI_REDUCTIONS = ("sum", "max", "min")
# what a call makes the same on every rank of its communicator (passes/replication.py): the
# operand buffer it receives identical values into, or "result" for its scalar results
MPI_REPLICATES = {
    "allreduce": "recvbuf",
    "allgather": "recvbuf",
    "bcast": "buf",
    "allreduce_scalar": "result",
    "size": "result",
    "allgatherv": "recvbuf",

    "owner": "recvbuf",

    # (written at the request's wait: passes/replication.py sees the wait as the call)
    "iallreduce": "recvbuf",
    "iallgather": "recvbuf",
    "ibcast": "buf",
    "cart_ndim": "result",
}
# which calls' messages may match one another's on other ranks (a send here is a receive
# there); a call not named matches only calls of its own name. Ranks in different branches
# may reach different calls of one kind: passes/activity.py gives all their float buffers
# one derivative status, so that every rank posts the same derivative messages
MPI_MATCHES = {"send": "p2p", "recv": "p2p", "isend": "p2p", "irecv": "p2p", "sendrecv": "p2p"}
# calls that place each rank's buffer whole in a larger one (at an offset by rank or by
# neighbour): with width-W tangents (lanes) the backends send one message per lane, which
# keeps the lanes apart
MPI_WHOLE_BUFFERS = ("gather", "scatter", "allgather", "alltoall", "neighbor_alltoall",
                     "neighbor_allgather")
# what a call sums over the ranks when its op is sum: the operand each rank contributes its
# share (partial) through (passes/replication.py); a new sum reduction adds its row
MPI_SUMS = {"allreduce": "sendbuf", "allreduce_scalar": "sendobj", "reduce": "sendbuf",
            "iallreduce": "sendbuf", "ireduce": "sendbuf", "reduce_scatter": "sendbuf",
            "reduce_scatter_block": "sendbuf"}
# sendrecv's i64: the received message's tag (0 where the source is PROC_NULL), which its
# derivatives' messages travel with, so that none is received with ANY_TAG
_MPI_RESULTS = {"allreduce_scalar": "operand", "rank": "i64", "size": "i64", "cart_shift": "i64x2",
                "sendrecv": "i64",
                "isend": "request", "irecv": "request",
                "iallreduce": "request", "ibcast": "request", "ireduce": "request",
                "iallgather": "request",
                "cart_ndim": "i64", "wtime": "f64", "cart_coords": "dims", "cart_topo": "dims3"}


# operands of the v-form collectives that are integer arrays the call reads (counts and
# displacements per rank)
_MPI_INDEX_ARRAYS = ("counts", "displs")


def cart_ndim(t: Type) -> int | None:
    """The number of dimensions of a Cartesian communicator's type (`!cart2`: a
    communicator made by Create_cart, typed by frontend/signature.py), else None."""
    if isinstance(t, OpaqueType) and t.name.startswith("cart") and t.name[4:].isdigit():
        return int(t.name[4:])
    return None


def _topology_results(want: str, op: Op) -> list[ScalarType]:
    """wtime's f64; Get_coords' one i64 per dimension, Get_topo's three per dimension
    (dims, periods, coords)."""
    n = cart_ndim(op.operands[-1].type) or 0
    return {"f64": [f64], "dims": [i64] * n, "dims3": [i64] * (3 * n)}[want]


def _check_mpi(op: Op) -> str | None:
    kind = op.name.split(".", 1)[1]
    names = MPI_OPERANDS[kind]
    if len(op.operands) != len(names) + 1 or not isinstance(op.operands[-1].type, OpaqueType):
        return f"expects ({', '.join(names + ('comm',))})"
    for name, v in zip(names, op.operands[:-1], strict=True):
        buffer = name.endswith("buf")
        if name.endswith(_MPI_INDEX_ARRAYS):
            t = v.type
            if not isinstance(t, ArrayType) or t.ndim != 1 or not t.dtype.is_int:
                return f"operand '{name}' must be a 1-D integer array"
            continue
        if buffer != isinstance(v.type, ArrayType):
            return f"operand '{name}' must be {'an array' if buffer else 'a scalar'}"
        if not buffer and name != "sendobj" and v.type != i64:
            return f"operand '{name}' must be i64"
    if "op" in op.attrs and op.attrs["op"] not in MPI_REDUCTIONS:
        return f"op must be one of {MPI_REDUCTIONS}"
    want = _MPI_RESULTS.get(kind)
    got = [r.type for r in op.results]
    if want is None and got or want == "i64" and got != [i64] or \
            want == "operand" and got != [op.operands[0].type] or \
            want == "request" and got != [OpaqueType("request")] or \
            want == "i64x2" and got != [i64, i64] or \
            want in ("f64", "dims", "dims3") and got != _topology_results(want, op):
        return "wrong result"
    return None


def _check_wait(op: Op) -> str | None:
    if len(op.operands) != 1 or op.operands[0].type != OpaqueType("request") or op.results:
        return "expects one request"
    return None


_MPI_SENDS = ("send", "isend", "bcast",      # ops whose `buf` is read (bcast: on the root)
              "ibcast")
_MPI_RECEIVES = ("recv", "irecv", "bcast",   # ops whose `buf` is written (an irecv's until
                 "ibcast")                   # its wait, which writes it too: ir/effects.py)


def _mpi_effects(kind: str, names: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    reads = [n for n in names if n == "sendbuf" or (n == "buf" and kind in _MPI_SENDS)
             or n.endswith(_MPI_INDEX_ARRAYS)]
    writes = [n for n in names if n == "recvbuf" or (n == "buf" and kind in _MPI_RECEIVES)]
    return tuple(reads), tuple(writes)


for _kind, _names in MPI_OPERANDS.items():
    _reads, _writes = _mpi_effects(_kind, _names)
    _def(f"mpi.{_kind}", "comm", check=_check_mpi, operands=_names + ("comm",),
         results=("*result",), reads=_reads, writes=_writes, attrs=("op",))
_def("mpi.world", "pure")   # MPI.COMM_WORLD (numba-mpi calls use it implicitly)
# a wait completes its request's call: it reads what an isend reads, writes what an irecv
# writes (the request names that call's buffer: ir/effects.py)
_def("mpi.wait", "comm", check=_check_wait, operands=("request",), results=(),
     reads=("request",), writes=("request",))

_def("par.parallel_for", "control", ("body",), _check_parallel_for,
     operands=("lb", "ub", "step", "*init"), results=("*reduced",),
     attrs=("reductions", "reverse", "allow_races", "race_free", "outline", "sums"))
_def("par.join", "control", ("*task",), _check_join, results=("*yielded",), attrs=("arity",))

# a call reads and writes the arrays it is given; its `writes` attribute (the positions,
# comma-separated) narrows what it writes, for calls kept for custom rules (ad/custom.py)
_def("func.call", "control", operands=("*args",), results=("*result",), reads=("args",),
     writes=("args",), attrs=("callee", "writes", "repeatable", "custom", "outs", "flops"))
_def("func.return", "terminator", operands=("*value",), results=())

_def("tape.push", "tape", check=_check_push, operands=("value", "*entry"), results=(),
     attrs=("slot",))
_def("tape.pop", "tape", check=_check_pop, operands=("*entry",), attrs=("slot",))
_def("tape.advance", "tape", check=_check_move, operands=("entries",), results=(),
     attrs=("slot",))   # the next segment starts n entries on
_def("tape.retreat", "tape", check=_check_move, operands=("entries",), results=(),
     attrs=("slot",))   # back to the previous segment
_def("tape.reserve", "tape", check=_check_move, operands=("entries",), results=(),
     attrs=("slot",))   # room for n entries from the position on


def _check_progress(op: Op) -> str | None:
    if len(op.operands) != 2 or any(v.type != i64 for v in op.operands) or op.results \
            or not isinstance(op.attrs.get("what"), str):
        return "expects (done: i64, total: i64) and a string 'what'"
    return None


# done of total units of a long step: the progress bar of hpcad.progress.sweep
_def("rt.progress", "io", check=_check_progress, operands=("done", "total"), results=(),
     attrs=("what",))


def _check_assert(op: Op) -> str | None:
    if len(op.operands) != 1 or op.operands[0].type != i1 or op.results \
            or not isinstance(op.attrs.get("what"), str):
        return "expects one i1 condition and a string 'what'"
    return None


# stop the kernel with a KernelAssertionError saying `what` (at the op's file:line) unless
# the condition holds: `assert` and the frontend's runtime checks (shapes that must agree);
# with `raises` (a built-in exception's name: a kernel's `raise`), the error of that class
# (errors.RAISED)
_def("rt.assert", "io", check=_check_assert, operands=("condition",), results=(),
     attrs=("what", "raises"))


def spec(name: str) -> OpSpec:
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op '{name}'") from None


def is_pure(op: Op) -> bool:
    return OPS[op.name].effect == "pure"


def int_const(v: Value) -> int | None:
    """The value of an integer constant, else None."""
    op = v.owner
    if isinstance(op, Op) and op.name == "arith.const" and isinstance(op.attrs["value"], int) \
            and not isinstance(op.attrs["value"], bool):
        return op.attrs["value"]
    return None


def _positive_const(v: Value) -> int | None:
    c = int_const(v)
    return c if c is not None and c > 0 else None


def _low_const(op: Op, low: dict[Value, int]) -> int | None:
    value = op.attrs["value"]
    return value if isinstance(value, int) else None


def _low_add(op: Op, low: dict[Value, int]) -> int | None:
    a, b = op.operands[:2]
    return low[a] + low[b] if a in low and b in low else None


def _low_sub(op: Op, low: dict[Value, int]) -> int | None:
    a, b = op.operands[:2]
    c = int_const(b)
    return low[a] - c if a in low and c is not None else None


def _low_mul(op: Op, low: dict[Value, int]) -> int | None:
    a, b = op.operands[:2]
    return low[a] * low[b] if low.get(a, -1) >= 0 and low.get(b, -1) >= 0 else None


def _low_mod(op: Op, low: dict[Value, int]) -> int | None:
    return 0 if _positive_const(op.operands[1]) is not None else None


def _low_floordiv(op: Op, low: dict[Value, int]) -> int | None:
    a, divisor = op.operands[0], _positive_const(op.operands[1])
    return low[a] // divisor if low.get(a, -1) >= 0 and divisor is not None else None


def _low_max(op: Op, low: dict[Value, int]) -> int | None:
    known = [low[v] for v in op.operands if v in low]
    return max(known) if known else None


def _low_min(op: Op, low: dict[Value, int]) -> int | None:
    a, b = op.operands[:2]
    return min(low[a], low[b]) if a in low and b in low else None


# op -> the lower bound of its result, from those of its operands (None: not known)
_LOWER_BOUNDS: dict[str, Callable[[Op, dict[Value, int]], int | None]] = {
    "arith.const": _low_const, "mem.shape": lambda op, low: 0, "arith.add": _low_add,
    "arith.sub": _low_sub, "arith.mul": _low_mul, "arith.mod": _low_mod,
    "arith.floordiv": _low_floordiv, "arith.max": _low_max, "arith.min": _low_min,
}


def lower_bound_rule(op: Op, low: dict[Value, int]) -> int | None:
    """The lower bound of op's integer result from the known ones of its operands, by the
    rule lower_bounds applies (None: no rule, or not known)."""
    rule = _LOWER_BOUNDS.get(op.name)
    return rule(op, low) if rule is not None else None


def _bound_loop_variable(loop: Op, low: dict[Value, int]) -> None:
    lb, ub, step = loop.operands[:3]
    c = int_const(step)
    if c is not None and c > 0 and lb in low:
        low[loop.regions[0].args[0]] = low[lb]
    elif c is not None and c < 0 and ub in low:
        low[loop.regions[0].args[0]] = low[ub] + 1


def _is_integer(v: Value) -> bool:
    return isinstance(v.type, ScalarType) and v.type.name in ("i64", "i32")


def lower_bounds(fn: Function) -> dict[Value, int]:
    """Known lower bounds of integer values (constants, shapes, range() variables and simple
    arithmetic on them), enough to prove most array indices non-negative (the numba
    backend indexes those unsigned; loop passes rely on `iv + c` naming element iv + c,
    which a negative index, counted from the end, does not)."""
    low: dict[Value, int] = {}

    def visit(block: Block) -> None:
        for op in block.ops:
            rule = _LOWER_BOUNDS.get(op.name)
            got = rule(op, low) if rule is not None else None
            if op.name == "scf.for":
                _bound_loop_variable(op, low)
            if got is not None and op.results and _is_integer(op.results[0]):
                low[op.results[0]] = got
            for r in op.regions:
                visit(r)

    visit(fn.body)
    return low
