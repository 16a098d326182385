"""IR -> readable Python source for numba.njit. Each SSA value becomes a local named after
the kernel's variable; loop-carried values share one local; constants are inlined. The tape
is one typed buffer per slot with a position counter, allocated before the outermost loop
that fills it, sized from the loops' trip counts when they are known there (otherwise it
grows by doubling), and passed in and out so that a caller can reuse it across calls."""
from __future__ import annotations

from ...errors import where
from ...ir.core import Block, Function, Op, Value
from ...ir.dialects import MATH_BINARY, MATH_FUNCS
from ...ir.types import ScalarType, lanes
from ..semantics import fault_kind
from . import faults, linalg, mpi_codegen, parallel, tape, vector
from .cache import boundscheck
from .common import NP_TYPES, without_terminator
from .rules import rule
from .vector import is_vector
from .writer import Writer

# the modules whose rules (rules.py) the writer needs besides this one's
RULE_MODULES = (tape, parallel, mpi_codegen, vector, linalg)

_BINARY = {"arith.add": "+", "arith.sub": "-", "arith.mul": "*", "arith.div": "/",
           "arith.floordiv": "//", "arith.mod": "%", "arith.pow": "**", "arith.shl": "<<",
           "arith.shr": ">>", "arith.bitand": "&", "arith.bitor": "|", "arith.bitxor": "^"}
# value ops written as one expression of their operands {0}, {1}, ...
_FORMS = {**{name: f"{{0}} {symbol} {{1}}" for name, symbol in _BINARY.items()},
          "arith.neg": "-{0}", "arith.min": "{1} if {1} < {0} else {0}",
          "arith.max": "{1} if {1} > {0} else {0}", "arith.select": "{1} if {0} else {2}"}
# on two bools `&` and `|` give the bool of `and` and `or`, as one instruction: `and` and `or`
# branch (Python's short circuit), and numba types, lowers and LLVM optimizes the blocks of
# every branch (the guards of an adjoint stencil's edge loops are most of them)
_LOGIC = {"arith.and": "{0} & {1}", "arith.or": "{0} | {1}", "arith.not": "not {0}"}
_CMP = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_MATH = {"floor": "np.floor", "ceil": "np.ceil", "abs": "abs", "rint": "np.rint"}

# No `cache=True` below: cache.py gives each function of a generated module numba's cache
# itself, in the verified cache entry (numba's own cache would load unverified pickles).

# rt.progress: an object-mode block in a function of its own, which holds the GIL (the
# kernels are nogil); numba compiles the block in each process at its first call. What the
# sweep is goes in as its index in _PROGRESS (an np.int64: numba would compile the function
# again for each constant string or number).
PROGRESS = """from numba import objmode
from hpcad.progress import sweep as _sweep


@njit
def _progress(done, total, what):
    with objmode():
        _sweep(done, total, _PROGRESS[what])
"""

# mem.alloc {arena, disk}: a buffer backed by a mapped file (runtime/snapshots.py), made in
# Python through an object-mode block of its own, one function per element type
DISK = """from numba import objmode
from hpcad.runtime.snapshots import buffer as _disk_buffer
"""
DISK_BUFFER = """

@njit
def _disk_{name}(size):
    with objmode(out="{name}[::1]"):
        out = _disk_buffer(size, "{name}")
    return out
"""

PRELUDE = '''import math
import numpy as np
from numba import njit, prange
from numba.core.cpu import ParallelOptions

from hpcad.backend.numba.intrinsics import add_any_order, atomic_add, parallel_fence
from hpcad.backend.numba.helpers import buffer_size as _buffer_size, empty as _empty, \
    grow as _grow, inferred_extent as _inferred_extent, zeros as _zeros

# no C-callable wrapper (numba makes one for first-class function use, which hpcad has not);
# functions only generated code calls need no wrapper for Python callers either: both cost
# compile time and nothing at run time
OPTIONS = dict(error_model="numpy", nogil=True, boundscheck={boundscheck},
               no_cfunc_wrapper=True)
INNER_OPTIONS = dict(OPTIONS, no_cpython_wrapper=True)
# numba's parallel options: hpcad writes every parallel loop as a prange itself (from
# par.parallel_for, the regions fenced apart) and leaves no work to numba's other conversions,
# which then cost only compile time: NumPy calls (np.zeros would become a parallel fill, a
# gufunc compiled of its own), slice stores, stencils, functools.reduce, comprehensions, and
# the fusion of adjacent parallel loops (the fences already stop it). An instance, not a dict:
# numba empties a dict of options as it reads it, at each compile of the function.
PARALLEL = ParallelOptions(dict(prange=True, numpy=False, setitem=False, stencil=False,
                                reduction=False, comprehension=False, inplace_binop=False,
                                fusion=False))


@njit(inline="always", **OPTIONS)
def _trips(lb, ub, step):
    """len(range(lb, ub, step))"""
    n = (ub - lb + step - (1 if step > 0 else -1)) // step
    return n if n > 0 else 0

'''


# a generated function with parallel loops (the backend starts numba's threads for it)
PARALLEL_DECORATOR = "@njit(parallel=PARALLEL, **OPTIONS)"


def source(w: Writer) -> str:
    params = [vector.parameter(w, a) for a in w.fn.args] + \
        [s.buffer for s in w.slots + w.arena]
    if w.uses_mpi:
        params.append("mpi_handles")
    if w.width > 1:
        params.append("_lanes")      # the width, at run time (vector.py)
    if w.parallel and (w.width > 1 or parallel.uses_chunks(w.fn, w.width)):
        params.append("_nthreads")   # per-thread rows, copies or chunks (parallel.py)
    w.emit(0, PARALLEL_DECORATOR if w.parallel else "@njit(**OPTIONS)")
    w.emit(0, f"def {w.py_name}({', '.join(params)}):")
    start = len(w.lines)
    w.block(w.fn.body, 1)
    w.lines[start:start] = vector.storage_lines(w) + vector.block_buffer_lines(w) + \
        vector.private_in(w) + faults.fault_lines(w)
    prelude = PRELUDE.format(boundscheck=boundscheck()) + (
        "from hpcad.backend.numba import mpi as hpcad_mpi\n" if w.uses_mpi else "")
    if w.width > 1 and w.parallel:
        prelude += "from numba import get_thread_id\n"
    if w.progress_whats:
        prelude += PROGRESS + f"\n_PROGRESS = {tuple(w.progress_whats)!r}\n"
    prelude += faults.fault_prelude(w)
    disk = sorted({op.results[0].type.dtype.name for op in w.arena_of
                   if op.attrs.get("disk")})
    if disk:
        prelude += DISK + "".join(DISK_BUFFER.format(name=NP_TYPES[t].removeprefix("np."))
                                  for t in disk)
    if w.buffer_whats:   # tape.buffer_size: what each sized buffer is for
        prelude += f"\n_BUFFERS = {tuple(w.buffer_whats)!r}\n"
    lines = w.outlined + w.lines
    first = (prelude + "\n\n").count("\n") + 1
    w.line_locs = {first + k: line.loc for k, line in enumerate(lines)
                   if getattr(line, "loc", None)}
    return prelude + "\n\n" + "\n".join(lines) + "\n"


@rule("arith.const")
def arith_const(w: Writer, op: Op, depth: int) -> None:
    """Nothing: constants are written inline where they are used (Writer.ref)."""


@rule(*_FORMS, *_LOGIC, "arith.cmp", "arith.cast",
      *(f"math.{n}" for n in (*MATH_FUNCS, *MATH_BINARY)), "mem.load", "mem.shape")
def write_value(w: Writer, op: Op, depth: int) -> None:
    """An op computing one value from its operands: `x = <expression>`, or nothing where
    the value is folded into its user's expression (fold)."""
    text = expression(w, op)
    if fold(w, op):
        w.folded[op.results[0]] = f"({text})"
        return
    w.emit(depth, f"{vector.target(w, op.results[0])} = {text}")


# integer ops that faults.integer_op may write through a helper reporting a fault
_CHECKED = ("arith.floordiv", "arith.mod", "arith.pow", "arith.shl", "arith.shr")
# ops written by write_value whose text names each operand once (min and max name one twice)
_ONCE = {*_BINARY, "arith.neg", "arith.select", *_LOGIC, "arith.cmp", "arith.cast",
         "mem.load", *(f"math.{n}" for n in (*MATH_FUNCS, *MATH_BINARY))}


def fold(w: Writer, op: Op) -> bool:
    """Whether op's value is written inside the expression of its one user instead of as a
    local of its own: numba types and lowers each statement, and a local costs one more
    (an assignment) than a part of an expression. So where the value is a scalar computed
    without reading memory or raising (arithmetic, comparisons, logic, casts, math; not an
    integer op or cast checked through a helper, nor a sum reassociated), has one use, by
    an op of the same block (evaluated later in the same iteration: never moved into a
    loop) that is a value op naming it once (_ONCE), a store or plain accumulation, or an
    if's condition; not the values a body passes on (computed at the end of a loop's body,
    the next value of a recurrence kept LLVM from vectorizing it). Its operands still hold
    the values they held at op then: a local is reassigned only where its own op (a loop's
    or an if's results), or the end of its body, is. Not in a function with vectors or
    parallel loops (their writers keep each value a local)."""
    if w.width > 1 or w.parallel or op.name in ("mem.load", "arith.min", "arith.max") \
            or op in w.any_order or len(op.results) != 1 or is_vector(op.results[0]):
        return False
    users = w.users.get(op.results[0], [])
    if len(users) != 1 or users[0].parent is not op.parent:
        return False
    user = users[0]
    if not (user.name in _ONCE or user.name in ("mem.store", "mem.accumulate")
            and not user.attrs or user.name == "scf.if" and user.operands[0] is op.results[0]):
        return False
    t = op.results[0].type
    if not isinstance(t, ScalarType):
        return False
    if op.name == "arith.cast":
        return not (op.operands[0].type.is_float and not t.is_float and not t.is_bool)
    return t.is_float or t.is_bool or op.name not in _CHECKED


def expression(w: Writer, op: Op) -> str:
    """The Python expression of a value op; arithmetic narrowed to 32 bits where its type
    is (narrow)."""
    a = [w.ref(v) for v in op.operands]
    t = op.results[0].type
    if op in w.any_order:
        return narrow(f"add_any_order({a[0]}, {a[1]})", t)
    integer = faults.integer_op(w, op, a)
    if integer is not None:
        return narrow(integer, t)
    if op.name in _FORMS:
        return narrow(_FORMS[op.name].format(*a), t)
    if op.dialect == "math":
        fn = op.name.split(".", 1)[1]
        return narrow(f"{_MATH.get(fn, 'math.' + fn)}({', '.join(a)})", t)
    return typed_expression(w, op, a)


def typed_expression(w: Writer, op: Op, a: list[str]) -> str:
    """Comparisons, logic, casts, loads and shapes: already of their result's type."""
    name = op.name
    if name == "arith.cmp":
        return f"{a[0]} {_CMP[op.attrs['pred']]} {a[1]}"
    if name in _LOGIC:
        return _LOGIC[name].format(*a)
    if name == "arith.cast":
        return faults.integer_cast(w, op, a[0]) or cast(a[0], op.operands[0].type,
                                                         op.results[0].type)
    if name == "mem.load":
        return element(w, op.operands[0], op.operands[1:])
    if name == "mem.shape":   # arrays of vectors hold a lanes axis too (vector.py)
        axis = op.attrs["axis"]
        if lanes(op.operands[0].type) > 1:
            axis = vector.lane_axis(w, axis)
        return f"{a[0]}.shape[{axis}]"
    raise AssertionError(f"value() is registered for '{name}' but cannot write it")


@rule("mem.alloc")
def mem_alloc(w: Writer, op, depth):
    t = op.results[0].type
    if op in w.arena_of:
        buf, size = w.arena_of[op].buffer, w.fresh("arena_size")
        dims = [w.ref(v) for v in op.operands]
        what = f"{where(op.loc)}: the snapshots of the checkpointed loop here need"
        counts = [(0, v, 1) for v in op.operands]
        w.emit(depth, f"{size} = {tape.buffer_size(w, counts, t.dtype, what)}")
        w.emit(depth, f"if {buf}.shape[0] < {size}:")
        np_type = NP_TYPES[t.dtype.name]
        w.emit(depth + 1, f"{buf} = _disk_{np_type.removeprefix('np.')}({size})"
               if op.attrs.get("disk") else f"{buf} = _empty({size}, {np_type})")
        w.emit(depth, f"{w.name(op.results[0])} = {buf}[:{size}].reshape(("
                      f"{', '.join(dims)},))")
        return
    # through helpers.py's functions (compiled once per machine), except in a parallel
    # function: numba's parfor passes turn np.zeros into a parallel loop and know the shape
    fill = "zeros" if op.attrs.get("fill") == "zeros" else "empty"
    fill = f"np.{fill}" if w.parallel else f"_{fill}"
    dims = [w.ref(v) for v in op.operands]
    dims = ", ".join(vector.with_lane(w, dims, str(lanes(t))) if lanes(t) > 1 else dims)
    w.emit(depth, f"{w.name(op.results[0])} = {fill}(({dims},), "
                  f"{NP_TYPES[t.dtype.name]})")


def element(w: Writer, arr: Value, idx: list[Value]) -> str:
    """`a[i, j]`; an index proven non-negative is passed as unsigned, which spares numba's
    negative-index wraparound branch (it keeps loops from vectorizing)."""
    parts = []
    for k, v in enumerate(idx):
        text = w.ref(v)
        checked = faults.checked_index(w, w.writing, w.ref(arr), k, text) \
            if lanes(arr.type) == 1 and arr not in w.rows else text
        if checked != text:
            parts.append(checked)
            continue
        # (outside outlined loops an index whose bound is 0 stays signed, as the plain
        # range() variables it is computed from: mixing the two slowed loops down)
        low = w.lower.get(v, -1) if w.in_outlined else w.lower.get(v) or -1
        if (w.in_outlined or v not in w.plain_ivs) and low >= 0 \
                and not text.isdigit():
            text = f"np.uint64({text})"
        parts.append(text)
    if arr in w.rows:      # a lane-outer loop's row of an array of vectors
        return f"{w.rows[arr]}[{', '.join(parts)}]"
    if lanes(arr.type) > 1:
        parts = vector.with_lane(w, parts, w.lane)
    return f"{w.ref(arr)}[{', '.join(parts)}]"


@rule("mem.view")
def mem_view(w: Writer, op, depth):
    """A 't' slice (first, step, length) is a[first::step] cut to its first `length`."""
    it = iter(w.ref(v) for v in op.operands[1:])
    parts, cut = [], []
    for d in op.attrs["dims"]:
        if d == "s":
            parts.append(f"{next(it)}:{next(it)}")
            cut.append(":")
        elif d == "t":
            parts.append(f"{next(it)}::{next(it)}")
            cut.append(f":{next(it)}")
        else:
            parts.append(next(it))
    if lanes(op.operands[0].type) > 1:
        parts, cut = vector.with_lane(w, parts, ":"), vector.with_lane(w, cut, ":")
        while len(parts) > 1 and parts[-1] == ":" and "t" not in op.attrs["dims"]:
            parts.pop()   # x[a:b] of a C array is typed C by numba, x[a:b, :] is not
    tail = f"[{', '.join(cut)}]" if "t" in op.attrs["dims"] else ""
    w.emit(depth, f"{w.name(op.results[0])} = {w.ref(op.operands[0])}"
                  f"[{', '.join(parts)}]{tail}")


@rule("mem.reshape")
def mem_reshape(w: Writer, op, depth):
    """An extent that may be negative (NumPy's -1: inferred) is given as the inferred one
    (helpers.inferred_extent), in every function: numba's parallel array analysis takes the
    tuple passed to reshape as the result's shape, a -1 included."""
    arr = w.ref(op.operands[0])
    dims = [w.ref(v) for v in op.operands[1:]]
    negative = {d for d, v in zip(dims, op.operands[1:])
                if not d.isdigit() and w.lower.get(v, -1) < 0}
    if lanes(op.operands[0].type) > 1:
        dims = vector.with_lane(w, dims, str(lanes(op.operands[0].type)))
    if negative:
        inferred = w.fresh("extent")
        w.emit(depth, f"{inferred} = _inferred_extent({arr}.size, ({', '.join(dims)},))")
        dims = [inferred if d == "-1" else f"({d} if {d} >= 0 else {inferred})"
                if d in negative else d for d in dims]
    w.emit(depth, f"{w.name(op.results[0])} = {arr}.reshape(({', '.join(dims)},))")


@rule("mem.bitcast")
def mem_bitcast(w: Writer, op, depth):
    dtype = NP_TYPES[op.results[0].type.dtype.name]
    w.emit(depth, f"{w.name(op.results[0])} = {w.ref(op.operands[0])}.view({dtype})")


def elementwise(w: Writer, arr: Value, depth: int, body) -> None:
    """Nested loops over every element of arr (and lane: the last index of an array of
    vectors, or the first, see vector.py); body(index text) writes the statement."""
    idx = [w.fresh(f"e{k}") for k in range(arr.type.ndim + (lanes(arr.type) > 1))]
    for k, name in enumerate(idx):
        w.emit(depth + k, f"for {name} in range({w.ref(arr)}.shape[{k}]):")
    w.emit(depth + len(idx), body(", ".join(idx)))


@rule("mem.fill")
def mem_fill(w: Writer, op, depth):
    value, arr = op.operands
    fill = w.ref(value)
    lane = 0 if vector.lanes_first(w) else -1
    elementwise(w, arr, depth, lambda i: f"{w.ref(arr)}[{i}] = " + (
      f"{fill}[{i.split(', ')[lane]}]" if is_vector(value) else fill))


@rule("mem.copy")
def mem_copy(w: Writer, op, depth):
    src, dst = op.operands
    elementwise(w, dst, depth, lambda i: f"{w.ref(dst)}[{i}] = {w.ref(src)}[{i}]")


@rule("mem.add_into")
def mem_add_into(w: Writer, op, depth):
    src, dst = op.operands
    elementwise(w, dst, depth, lambda i: f"{w.ref(dst)}[{i}] += {w.ref(src)}[{i}]")


@rule("mem.store")
def mem_store(w: Writer, op, depth):
    w.emit(depth, f"{element(w, op.operands[1], op.operands[2:])} = "
                  f"{w.ref(op.operands[0])}")


@rule("mem.accumulate")
def mem_accumulate(w: Writer, op, depth):
    if op.attrs.get("private"):
        parallel.private_accumulate(w, op, depth)
        return
    if op.attrs.get("atomic"):
        idx = [w.ref(v) for v in op.operands[2:]]
        if lanes(op.operands[1].type) == 1:
            arr = w.ref(op.operands[1])
            idx = [faults.checked_index(w, op, arr, k, i) for k, i in enumerate(idx)]
        else:
            idx = vector.with_lane(w, idx, w.lane)
        index = idx[0] if len(idx) == 1 else f"({', '.join(idx)},)"
        w.emit(depth, f"atomic_add({w.ref(op.operands[1])}, {index}, "
                      f"{w.ref(op.operands[0])})")
        return
    w.emit(depth, f"{element(w, op.operands[1], op.operands[2:])} += "
                  f"{w.ref(op.operands[0])}")


@rule("scf.for")
def scf_for(w: Writer, op, depth):
    if not w.in_outlined and w.outlines(op):
        w.outline_loop(op, depth)
        return
    if op in w.outer:
        vector.write_lane_outer(w, op, depth)
        return
    if op in w.blocked:
        vector.write_blocked(w, op, depth)
        return
    if w.share_loop(op, depth):
        return
    w.write_for(op, depth, vector.carried_names(w, op.results))


@rule("scf.while")
def scf_while(w: Writer, op, depth):
    before, after = op.regions
    cond = before.ops[-1]
    current = vector.carried_names(w, op.results)
    for a, var in zip(before.args, current, strict=True):
        w.names[a] = var
    forwards_args = list(cond.operands[1:]) == list(before.args)
    for a, var in zip(after.args, current, strict=True):
        w.names[a] = var if forwards_args else vector.carried_names(w, [a])[0]
    w.assign(depth, current, [w.ref(v) for v in op.operands])
    w.emit(depth, "while True:")
    w.block(without_terminator(before), depth + 1)
    if not forwards_args:
        w.assign(depth + 1, [w.name(a) for a in after.args],
                 [w.ref(v) for v in cond.operands[1:]])
    w.emit(depth + 1, f"if not ({w.ref(cond.operands[0])}):")
    if not forwards_args:
        w.assign(depth + 2, current, [w.name(a) for a in after.args])
    w.emit(depth + 2, "break")
    w.region_body(after, depth + 1, current)


@rule("scf.if")
def scf_if(w: Writer, op, depth):
    """A branch that only passes values on becomes the assignment of its numbers before the
    `if`: numba's parfor pass finds a cycle of copies in an `else:` that only copies a loop's
    carried values, inside a prange with a reduction, and fails to compile it. Its vectors
    (lane buffers, which the other branch may still read) are copied in the branch."""
    results = vector.carried_names(w, op.results)
    cond = w.ref(op.operands[0])
    then_body, else_body = op.regions
    passing = passing_branch(w, op)
    if passing is not None:
        passed = [w.ref(v) for v in passing.ops[-1].operands]
        lanes = [is_vector(r) for r in op.results]
        w.assign(depth, [t for t, v in zip(results, lanes) if not v],
                 [x for x, v in zip(passed, lanes) if not v])
        other = then_body if passing is else_body else else_body
        w.emit(depth, f"if {cond}:" if passing is else_body else f"if not ({cond}):")
        w.region_body(other, depth + 1, results)
        moved = [(t, x) for t, x, v in zip(results, passed, lanes) if v and t != x]
        if moved:
            w.emit(depth, "else:")
            w.assign(depth + 1, [t for t, _ in moved], [x for _, x in moved])
        return
    w.emit(depth, f"if {cond}:")
    w.region_body(then_body, depth + 1, results)
    if len(else_body.ops) > 1 or results:
        w.emit(depth, "else:")
        w.region_body(else_body, depth + 1, results)


def passing_branch(w: Writer, op: Op) -> Block | None:
    """The branch of an if with number results that only passes values on (the else
    first), if any."""
    if all(is_vector(r) for r in op.results):
        return None
    return next((b for b in reversed(op.regions) if len(b.ops) == 1), None)


@rule("rt.progress")
def rt_progress(w: Writer, op, depth):
    """A call back into Python: hpcad.progress.sweep, through PROGRESS."""
    done, total = (w.ref(v) for v in op.operands)
    if op.attrs["what"] not in w.progress_whats:
        w.progress_whats.append(op.attrs["what"])
    w.emit(depth, f"_progress({done}, {total}, "
                  f"np.int64({w.progress_whats.index(op.attrs['what'])}))")


@rule("rt.assert")
def rt_assert(w: Writer, op, depth):
    """The interpreter's KernelAssertionError, raised through faults.py (recorded inside a
    prange loop, raised after it)."""
    w.emit(depth, f"if not {w.ref(op.operands[0])}:")
    kind = fault_kind(op)
    w.emit(depth + 1, f"_report({faults.fault_args(w, op, kind, what=op.attrs['what'])})")


@rule("func.return")
def func_return(w: Writer, op, depth):
    vector.private_out(w, depth)
    values = [w.ref(v) for v in op.operands] + \
        [s.buffer for s in w.slots + w.arena]
    w.emit(depth, f"return ({', '.join(values)}{',' if len(values) == 1 else ''})")


def narrow(text: str, t) -> str:
    """Keep 32-bit arithmetic 32-bit (numba would widen mixed expressions)."""
    if isinstance(t, ScalarType) and t.name in ("f32", "i32"):
        return f"{NP_TYPES[t.name]}({text})"
    return text


def cast(x: str, src, dst) -> str:
    if dst.is_bool:
        return f"{x} != 0"
    if dst.name == "f64":
        return f"np.float64({x})"
    if dst.name == "i64":
        return f"np.int64({x})"
    return f"{NP_TYPES[dst.name]}({x})"


def write(fn: Function, py_name: str,
          blocking: tuple[int, ...] = ()) -> tuple[Writer, str]:
    """The writer of fn and the source it wrote: written once finding the loops that repeat
    (shared.py), and again, sharing them, if any do. `blocking`: the positions of the
    arrays of vectors passed in place with any strides, whose lane loops that may are
    written blocked (vector.write_blocked)."""
    w = Writer(fn, py_name, blocking=blocking)
    text = source(w)
    copies: dict[str, list] = {}
    for op, t in w.texts.items():
        copies.setdefault(t, []).append(op)
    repeated = {op: ops for ops in copies.values() if len(ops) > 1 for op in ops}
    if not repeated:
        return w, text
    w = Writer(fn, py_name, repeated, blocking)
    return w, source(w)


def generate(fn: Function, py_name: str,
             blocking: tuple[int, ...] = ()) -> tuple[str, list]:
    """Python source defining `py_name` (an njit function) for fn, and the buffers it takes
    and returns after its own arguments and results: tape slots, then arena buffers.
    `blocking`: the variant for these arrays of vectors of any strides (write)."""
    w, text = write(fn, py_name, blocking)
    return text, w.slots + w.arena


def source_loc(fn: Function, py_name: str, line: int):
    """The kernel location of the op that line `line` of generate(fn, py_name)'s source was
    written for (None where it was written for none): asked only when numba refuses a line,
    so the source is written again rather than its map kept for every function."""
    return write(fn, py_name)[0].line_locs.get(line)
