"""IR -> readable Python source for numba.njit. Each SSA value becomes a local named after
the kernel's variable; loop-carried values share one local; constants are inlined. The tape
is one typed buffer per slot with a position counter, allocated before the outermost loop
that fills it, sized from the loops' trip counts when they are known there (otherwise it
grows by doubling), and passed in and out so that a caller can reuse it across calls."""
from __future__ import annotations

import builtins
import keyword
import math
import symtable
from dataclasses import dataclass

from ...errors import where
from ...ir.core import Block, Function, Op, Value, walk
from ...ir.dialects import in_parallel, lower_bounds, plain_body, sum_update
from ...ir.types import ScalarType, lanes
from ...runtime.tape import TapeSlot, tape_slots
from .cache import boundscheck
from .common import NP_TYPES, without_terminator
from .faults import NAMES as FAULT_NAMES, FaultWriter
from .mpi_codegen import MpiWriter
from .parallel import ParallelWriter
from .tape import TapeWriter
from .vector import VectorWriter, is_vector

_RESERVED = {"math", "np", "njit", "range", "abs", "float", "int", "len", "min", "max", "True",
             "False", "None", "_trips", "_grow", "objmode", "_sweep", "_progress",
             "_disk_buffer", "_buffer_size"} | \
    {f"_disk_{t.removeprefix('np.')}" for t in NP_TYPES.values()}
_RESERVED |= {f"arena_{k}" for k in range(64)} | FAULT_NAMES
_BINARY = {"arith.add": "+", "arith.sub": "-", "arith.mul": "*", "arith.div": "/",
           "arith.floordiv": "//", "arith.mod": "%", "arith.pow": "**", "arith.shl": "<<",
           "arith.shr": ">>", "arith.bitand": "&", "arith.bitor": "|", "arith.bitxor": "^"}
_CMP = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_MATH = {"floor": "np.floor", "ceil": "np.ceil", "abs": "abs"}

# No `cache=True` below: cache.py gives each function of a generated module numba's cache
# itself, in the verified cache entry (numba's own cache would load unverified pickles).

# rt.progress: an object-mode block in a function of its own, which holds the GIL (the
# kernels are nogil); numba compiles the block in each process at its first call
PROGRESS = """from numba import objmode
from hpcad.progress import sweep as _sweep


@njit
def _progress(done, total, what):
    with objmode():
        _sweep(done, total, what)
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

from hpcad.backend.numba.intrinsics import add_any_order, atomic_add
from hpcad.backend.numba.sizes import buffer_size as _buffer_size

OPTIONS = dict(error_model="numpy", nogil=True, boundscheck={boundscheck})


@njit(inline="always", **OPTIONS)
def _trips(lb, ub, step):
    """len(range(lb, ub, step))"""
    n = (ub - lb + step - (1 if step > 0 else -1)) // step
    return n if n > 0 else 0


@njit(**OPTIONS)
def _grow(buf, needed):
    """A larger copy of a tape buffer (for loops whose trip count is only known at run time)."""
    new = np.empty(max(2 * buf.shape[0], needed, 64), buf.dtype)
    new[:buf.shape[0]] = buf
    return new
'''


class SourceLine(str):
    """A generated line that remembers the kernel location of the op it was written for, so
    that a numba refusal of the line can be reported at the kernel's file:line."""
    loc = None


class SourceWriter(TapeWriter, ParallelWriter, MpiWriter, VectorWriter, FaultWriter):
    def __init__(self, fn: Function, py_name: str):
        self.fn = fn
        self.py_name = py_name
        self.lines: list[str] = []
        self.at = None                       # the location of the op being written
        self.line_locs: dict[int, tuple] = {}   # source line number -> kernel location
        self.names: dict[Value, str] = {}
        self.taken: set[str] = set(_RESERVED)
        self.unnamed = 0
        self.lower = lower_bounds(fn)
        self.slots = tape_slots(fn, self.lower)
        # buffers of `mem.alloc {arena}` (checkpoint snapshots): passed in and out like the
        # tape's, so that they are allocated once and reused by later calls
        allocs = [o for o in walk(fn.body) if o.name == "mem.alloc" and o.attrs.get("arena")]
        self.arena_of = {op: ArenaBuffer(k, op.results[0].type.dtype)
                         for k, op in enumerate(allocs)}
        self.arena = list(self.arena_of.values())
        self.by_slot = {s.slot: s for s in self.slots}
        self.by_anchor: dict[Op, list[TapeSlot]] = {}
        for s in self.slots:
            self.by_anchor.setdefault(s.anchor, []).append(s)
        self.plain_ivs: set[Value] = set()   # forward range() variables numba indexes well
        self.outlined: list[str] = []        # loops in functions of their own (outline_loop)
        self.any_order: set[Op] = set()      # the adds of its sums (fadd reassoc)
        self.in_outlined = False             # writing an outlined loop: every non-negative
                                             # range() variable indexes unsigned
        self.reduction_updates: dict[Op, tuple[str, str]] = {}
        self.parallel = any(o.dialect == "par" for o in walk(fn.body))
        self.uses_mpi = any(o.dialect == "mpi" for o in walk(fn.body))
        self.vector_setup()
        self.fault_setup()
        self.writing: Op | None = None       # the op being written (checked_index)

    # -- names -------------------------------------------------------------------------------
    def fresh(self, hint: str | None) -> str:
        """A new local. Duplicates get `__k` and unnamed values `tk`: numba renames its own
        SSA versions `x.k` to `x_k` inside parallel loops, so `_k` suffixes could collide."""
        if hint is None:
            self.unnamed += 1
            base = f"t{self.unnamed}"
        else:
            base = hint.replace(".", "__")
        if not base.isidentifier() or keyword.iskeyword(base) or base[0].isdigit():
            base = "v" + base if base[0].isdigit() else base + "_"
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}__{k}"
        self.taken.add(name)
        return name

    def name(self, v: Value) -> str:
        got = self.names.get(v)
        if got is None:
            got = self.names[v] = self.fresh(v.name)
        return got

    def ref(self, v: Value) -> str:
        """How an operand is written: a literal for a constant, else its local."""
        op = v.owner
        if isinstance(op, Op) and op.name == "arith.const":
            return literal(op.attrs["value"], v.type)
        if is_vector(v):
            return self.lane_ref(v, self.name(v))
        return self.name(v)

    # -- emission ----------------------------------------------------------------------------
    def emit(self, depth: int, text: str) -> None:
        line = SourceLine("    " * depth + text)
        line.loc = self.at
        self.lines.append(line)

    def source(self) -> str:
        params = [self.user_array(a) for a in self.fn.args] + \
            [s.buffer for s in self.slots + self.arena]
        if self.uses_mpi:
            params.append("mpi_handles")
        if self.width > 1:
            params.append("_lanes")      # the width, at run time (vector.py)
        if self.width > 1 and self.parallel:
            params.append("_nthreads")   # rows of per-thread vectors (vector.py)
        self.emit(0, "@njit(parallel=True, **OPTIONS)" if self.parallel else "@njit(**OPTIONS)")
        self.emit(0, f"def {self.py_name}({', '.join(params)}):")
        start = len(self.lines)
        self.block(self.fn.body, 1)
        self.lines[start:start] = self.storage_lines() + self.lanes_in() + self.fault_lines()
        prelude = PRELUDE.format(boundscheck=boundscheck()) + (
            "from hpcad.backend.numba import mpi as hpcad_mpi\n" if self.uses_mpi else "")
        if self.width > 1 and self.parallel:
            prelude += "from numba import get_thread_id\n"
        if any(op.name == "rt.progress" for op in walk(self.fn.body)):
            prelude += PROGRESS
        prelude += self.fault_prelude()
        disk = sorted({op.results[0].type.dtype.name for op in self.arena_of
                       if op.attrs.get("disk")})
        if disk:
            prelude += DISK + "".join(DISK_BUFFER.format(name=NP_TYPES[t].removeprefix("np."))
                                      for t in disk)
        lines = self.outlined + self.lines
        first = (prelude + "\n\n").count("\n") + 1
        self.line_locs = {first + k: line.loc for k, line in enumerate(lines)
                          if getattr(line, "loc", None)}
        return prelude + "\n\n" + "\n".join(lines) + "\n"

    def block(self, block: Block, depth: int) -> None:
        lane_ops = []    # vector ops waiting for their lane loop (vector.py)
        for op in block.ops:
            for s in self.by_anchor.get(op, ()):
                self.tape_setup(s, depth)
            if self.width > 1 and self.lane_op(op):
                lane_ops.append(op)
                continue
            if lane_ops and self.breaks_lanes(op):
                self.write_lanes(lane_ops, depth)
                lane_ops = []
            self.op(op, depth)
        self.write_lanes(lane_ops, depth)

    def assign(self, depth: int, targets: list[str], values: list[str]) -> None:
        pairs = [(t, v) for t, v in zip(targets, values) if t != v]
        vectors = [(t, v) for t, v in pairs if t in self.vector_names]
        if vectors:
            self.assign_lanes(depth, vectors)
            pairs = [p for p in pairs if p not in vectors]
        if pairs:
            self.emit(depth, ", ".join(t for t, _ in pairs) + " = "
                      + ", ".join(v for _, v in pairs))

    def op(self, op: Op, depth: int) -> None:
        saved, self.at = self.at, op.loc or self.at
        outer, self.writing = self.writing, op
        try:
            self.check_step(op, depth)
            self.write_op(op, depth)
        finally:
            self.at, self.writing = saved, outer
        self.check_faults(op, depth)

    def write_op(self, op: Op, depth: int) -> None:
        if op in self.reduction_updates:
            self.reduction_update(op, depth)
            return
        if op in self.vector_reductions:
            self.reduction_lane(op, depth)
            return
        handler = getattr(self, "op_" + op.name.replace(".", "_"), None)
        if handler is not None:
            handler(op, depth)
            return
        if op.name == "arith.const":
            return
        text = self.expression(op)
        self.emit(depth, f"{self.target(op.results[0])} = {text}")

    def expression(self, op: Op) -> str:
        a = [self.ref(v) for v in op.operands]
        t = op.results[0].type
        name = op.name
        if op in self.any_order:
            text = f"add_any_order({a[0]}, {a[1]})"
        elif (integer := self.integer_op(op, a)) is not None:
            text = integer
        elif name in _BINARY:
            text = f"{a[0]} {_BINARY[name]} {a[1]}"
        elif name == "arith.neg":
            text = f"-{a[0]}"
        elif name == "arith.min":
            text = f"{a[1]} if {a[1]} < {a[0]} else {a[0]}"
        elif name == "arith.max":
            text = f"{a[1]} if {a[1]} > {a[0]} else {a[0]}"
        elif name == "arith.cmp":
            return f"{a[0]} {_CMP[op.attrs['pred']]} {a[1]}"
        elif name == "arith.select":
            text = f"{a[1]} if {a[0]} else {a[2]}"
        elif name == "arith.and":
            return f"{a[0]} and {a[1]}"
        elif name == "arith.or":
            return f"{a[0]} or {a[1]}"
        elif name == "arith.not":
            return f"not {a[0]}"
        elif name == "arith.cast":
            return self.integer_cast(op, a[0]) or cast(a[0], op.operands[0].type, t)
        elif op.dialect == "math":
            fn = op.name.split(".", 1)[1]
            text = f"{_MATH.get(fn, 'math.' + fn)}({', '.join(a)})"
        elif name == "mem.load":
            return self.element(op.operands[0], op.operands[1:])
        elif name == "mem.shape":   # arrays of vectors hold a lanes axis too (vector.py)
            axis = op.attrs["axis"]
            return f"{a[0]}.shape[{self.lane_axis(axis) if lanes(op.operands[0].type) > 1 else axis}]"
        else:
            raise NotImplementedError(f"numba backend: no code for '{name}'")
        return narrow(text, t)

    # -- memory ------------------------------------------------------------------------------
    def op_mem_alloc(self, op, depth):
        t = op.results[0].type
        if op in self.arena_of:
            buf, size = self.arena_of[op].buffer, self.fresh("arena_size")
            dims = [self.ref(v) for v in op.operands]
            what = f"{where(op.loc)}: the snapshots of the checkpointed loop here need"
            counts = [(0, v, 1) for v in op.operands]
            self.emit(depth, f"{size} = {self.buffer_size(counts, t.dtype, what)}")
            self.emit(depth, f"if {buf}.shape[0] < {size}:")
            np_type = NP_TYPES[t.dtype.name]
            self.emit(depth + 1, f"{buf} = _disk_{np_type.removeprefix('np.')}({size})"
                      if op.attrs.get("disk") else f"{buf} = np.empty({size}, {np_type})")
            self.emit(depth, f"{self.name(op.results[0])} = {buf}[:{size}].reshape(("
                             f"{', '.join(dims)},))")
            return
        fill = "np.zeros" if op.attrs.get("fill") == "zeros" else "np.empty"
        dims = [self.ref(v) for v in op.operands]
        dims = ", ".join(self.with_lane(dims, str(lanes(t))) if lanes(t) > 1 else dims)
        self.emit(depth, f"{self.name(op.results[0])} = {fill}(({dims},), "
                         f"{NP_TYPES[t.dtype.name]})")

    def element(self, arr: Value, idx: list[Value]) -> str:
        """`a[i, j]`; an index proven non-negative is passed as unsigned, which spares numba's
        negative-index wraparound branch (it keeps loops from vectorizing)."""
        parts = []
        for k, v in enumerate(idx):
            text = self.ref(v)
            checked = self.checked_index(self.writing, self.ref(arr), k, text) \
                if lanes(arr.type) == 1 and arr not in self.rows else text
            if checked != text:
                parts.append(checked)
                continue
            # (outside outlined loops an index whose bound is 0 stays signed, as the plain
            # range() variables it is computed from: mixing the two slowed loops down)
            low = self.lower.get(v, -1) if self.in_outlined else self.lower.get(v) or -1
            if (self.in_outlined or v not in self.plain_ivs) and low >= 0 \
                    and not text.isdigit():
                text = f"np.uint64({text})"
            parts.append(text)
        if arr in self.rows:      # a lane-outer loop's row of an array of vectors
            return f"{self.rows[arr]}[{', '.join(parts)}]"
        if lanes(arr.type) > 1:
            parts = self.with_lane(parts, self.lane)
        return f"{self.ref(arr)}[{', '.join(parts)}]"

    def op_mem_view(self, op, depth):
        it = iter(self.ref(v) for v in op.operands[1:])
        parts = [f"{next(it)}:{next(it)}" if d == "s" else next(it) for d in op.attrs["dims"]]
        if lanes(op.operands[0].type) > 1:
            parts = self.with_lane(parts, ":")
        self.emit(depth, f"{self.name(op.results[0])} = {self.ref(op.operands[0])}"
                         f"[{', '.join(parts)}]")

    def op_mem_bitcast(self, op, depth):
        dtype = NP_TYPES[op.results[0].type.dtype.name]
        self.emit(depth, f"{self.name(op.results[0])} = {self.ref(op.operands[0])}.view({dtype})")

    def elementwise(self, arr: Value, depth: int, body) -> None:
        """Nested loops over every element of arr (and lane: the last index of an array of
        vectors, or the first, see vector.py); body(index text) writes the statement."""
        idx = [self.fresh(f"e{k}") for k in range(arr.type.ndim + (lanes(arr.type) > 1))]
        for k, name in enumerate(idx):
            self.emit(depth + k, f"for {name} in range({self.ref(arr)}.shape[{k}]):")
        self.emit(depth + len(idx), body(", ".join(idx)))

    def op_mem_fill(self, op, depth):
        value, arr = op.operands
        fill = self.ref(value)
        lane = 0 if self.lanes_first else -1
        self.elementwise(arr, depth, lambda i: f"{self.ref(arr)}[{i}] = " + (
            f"{fill}[{i.split(', ')[lane]}]" if is_vector(value) else fill))

    def op_mem_copy(self, op, depth):
        src, dst = op.operands
        self.elementwise(dst, depth, lambda i: f"{self.ref(dst)}[{i}] = {self.ref(src)}[{i}]")

    def op_mem_add_into(self, op, depth):
        src, dst = op.operands
        self.elementwise(dst, depth, lambda i: f"{self.ref(dst)}[{i}] += {self.ref(src)}[{i}]")

    def op_mem_store(self, op, depth):
        self.emit(depth, f"{self.element(op.operands[1], op.operands[2:])} = "
                         f"{self.ref(op.operands[0])}")

    def op_mem_accumulate(self, op, depth):
        if op.attrs.get("atomic"):
            idx = [self.ref(v) for v in op.operands[2:]]
            if lanes(op.operands[1].type) == 1:
                arr = self.ref(op.operands[1])
                idx = [self.checked_index(op, arr, k, i) for k, i in enumerate(idx)]
            else:
                idx = self.with_lane(idx, self.lane)
            index = idx[0] if len(idx) == 1 else f"({', '.join(idx)},)"
            self.emit(depth, f"atomic_add({self.ref(op.operands[1])}, {index}, "
                             f"{self.ref(op.operands[0])})")
            return
        self.emit(depth, f"{self.element(op.operands[1], op.operands[2:])} += "
                         f"{self.ref(op.operands[0])}")

    # -- control flow ------------------------------------------------------------------------
    def op_scf_for(self, op, depth):
        if not self.in_outlined and self.outlines(op):
            self.outline_loop(op, depth)
            return
        if op in self.outer:
            self.write_lane_outer(op, depth)
            return
        self.write_for(op, depth, self.carried_names(op.results))

    def write_for(self, op: Op, depth: int, carried: list[str]) -> None:
        """The loop, its carried values in the locals `carried`."""
        body = op.regions[0]
        for arg, var in zip(body.args[1:], carried):
            self.names[arg] = var
        self.assign(depth, carried, [self.ref(v) for v in op.operands[3:]])
        lb, ub, step = (self.ref(v) for v in op.operands[:3])
        if op.attrs.get("reverse"):
            # range(lb, ub, step) backwards: from its last element down to lb
            if step == "1":
                rng = f"range({ub} - 1, {lb} - 1, -1)"
            else:
                rng = f"range({lb} + (_trips({lb}, {ub}, {step}) - 1) * {step}, {lb} - {step}, -{step})"
        else:
            rng = f"range({lb}, {ub})" if step == "1" else f"range({lb}, {ub}, {step})"
            if step == "1" and (self.lower.get(op.operands[0]) or -1) >= 0:
                self.plain_ivs.add(body.args[0])
        self.emit(depth, f"for {self.name(body.args[0])} in {rng}:")
        self.region_body(body, depth + 1, carried)

    # -- sums: float reductions in a function of their own that may reassociate them -----
    def outlines(self, op: Op) -> bool:
        """A loop to compile in a function of its own: one whose sums may be taken in any
        order (passes/gather.py marks them; LLVM vectorizes a float sum only when it may
        reorder it) or marked `outline` (passes/gather_nest.py, passes/fusion.py), if it is
        innermost, not inside a parallel loop, and moves no tape position (indexed pushes
        and pops do not). At width > 1, a loop of lane ops only when it runs lane-outer
        (vector.py)."""
        if not (op.attrs.get("sums") == "any order" or op.attrs.get("outline")):
            return False
        if self.width > 1 and self.outer_lane is None \
                and any(self.lane_op(o) for o in op.regions[0].ops):
            return False    # its lanes run inner, in lane loops of the function itself
        return plain_body(op, ("tape.push", "tape.pop")) and not in_parallel(op)

    def outline_loop(self, op: Op, depth: int, carried: list[str] | None = None) -> None:
        """The loop as a function of its own, called in place, whose sums LLVM may
        reassociate (their adds only: everything else keeps IEEE order) and whose indices
        are unsigned where they are non-negative: LLVM vectorizes such a loop, where in the
        whole derivative it would not."""
        saved, self.lines = self.lines, []
        self.any_order = {a for k in range(len(op.results)) if (a := sum_update(op, k))}
        self.in_outlined = True
        if carried is None:
            carried = self.carried_names(op.results)
        try:
            self.write_for(op, 1, carried)
        finally:
            self.any_order, self.in_outlined = set(), False
        inner, self.lines = self.lines, saved
        params = free_names(inner, carried)
        name = f"{self.py_name}_loop{len(self.outlined)}"
        out = "".join(v + ", " for v in carried)
        self.outlined += ["@njit(**OPTIONS)",
                          f"def {name}({', '.join(params)}):", *inner, f"    return ({out})",
                          "", ""]
        self.emit(depth, f"{out + '= ' if out else ''}{name}({', '.join(params)})")

    def region_body(self, body: Block, depth: int, carried: list[str]) -> None:
        start = len(self.lines)
        self.block(without_terminator(body), depth)
        self.assign(depth, carried, [self.ref(v) for v in body.ops[-1].operands])
        if len(self.lines) == start:
            self.emit(depth, "pass")

    def op_scf_while(self, op, depth):
        before, after = op.regions
        cond = before.ops[-1]
        current = self.carried_names(op.results)
        for a, var in zip(before.args, current):
            self.names[a] = var
        forwards_args = list(cond.operands[1:]) == list(before.args)
        for a, var, fwd in zip(after.args, current, cond.operands[1:]):
            self.names[a] = var if forwards_args else self.carried_names([a])[0]
        self.assign(depth, current, [self.ref(v) for v in op.operands])
        self.emit(depth, "while True:")
        self.block(without_terminator(before), depth + 1)
        if not forwards_args:
            self.assign(depth + 1, [self.name(a) for a in after.args],
                        [self.ref(v) for v in cond.operands[1:]])
        self.emit(depth + 1, f"if not ({self.ref(cond.operands[0])}):")
        if not forwards_args:
            self.assign(depth + 2, current, [self.name(a) for a in after.args])
        self.emit(depth + 2, "break")
        self.region_body(after, depth + 1, current)

    def op_scf_if(self, op, depth):
        """A branch that only passes values on becomes their assignment before the `if`:
        numba's parfor pass finds a cycle of copies in an `else:` that only copies a loop's
        carried values, inside a prange with a reduction, and fails to compile it."""
        results = self.carried_names(op.results)
        cond = self.ref(op.operands[0])
        then_body, else_body = op.regions
        passing = self.passing_branch(op)
        if passing is not None:
            # `r = a` before the if rather than in a branch of its own: numba's parfor pass
            # follows copies back from a reduction and fails ("unexpected cycle in lookup()")
            # on a loop-carried value copied through an `else` that only passes it on
            self.assign(depth, results, [self.ref(v) for v in passing.ops[-1].operands])
            if passing is else_body:
                self.emit(depth, f"if {cond}:")
                self.region_body(then_body, depth + 1, results)
            else:
                self.emit(depth, f"if not ({cond}):")
                self.region_body(else_body, depth + 1, results)
            return
        self.emit(depth, f"if {cond}:")
        self.region_body(then_body, depth + 1, results)
        if len(else_body.ops) > 1 or results:
            self.emit(depth, "else:")
            self.region_body(else_body, depth + 1, results)

    def passing_branch(self, op: Op) -> Block | None:
        """The branch of an if with scalar results that only passes values on (the else
        first), if any."""
        if not op.results or any(is_vector(r) for r in op.results):
            return None
        return next((b for b in reversed(op.regions) if len(b.ops) == 1), None)

    def op_rt_progress(self, op, depth):
        """A call back into Python: hpcad.progress.sweep, through PROGRESS."""
        done, total = (self.ref(v) for v in op.operands)
        self.emit(depth, f"_progress({done}, {total}, {op.attrs['what']!r})")

    def op_func_return(self, op, depth):
        self.lanes_out(depth)
        values = [self.ref(v) for v in op.operands] + [s.buffer for s in self.slots + self.arena]
        self.emit(depth, f"return ({', '.join(values)}{',' if len(values) == 1 else ''})")


def free_names(lines: list[str], local: list[str]) -> list[str]:
    """The names a block of generated statements (indented one level) reads from outside:
    the parameters of a function made of it. Module names (numpy, helpers) are not."""
    code = "def _block():\n" + "\n".join(lines) + "\n    return (" + "".join(
        v + ", " for v in local) + ")\n"
    table = symtable.symtable(code, "<generated>", "exec").get_children()[0]
    module = _RESERVED | set(dir(builtins)) | {"prange", "atomic_add", "add_any_order", "OPTIONS"}
    return sorted(sym.get_name() for sym in table.get_symbols()
                  if sym.is_referenced() and not sym.is_assigned()
                  and sym.get_name() not in module)


def literal(value, t) -> str:
    if isinstance(t, ScalarType) and t.is_bool:
        return "True" if value else "False"
    if isinstance(t, ScalarType) and t.is_float:
        value = float(value)
        if math.isnan(value):
            text = "math.nan"
        elif math.isinf(value):
            text = "math.inf" if value > 0 else "-math.inf"
        else:
            text = repr(value)
        return text if t.name == "f64" else f"np.float32({text})"
    text = repr(int(value))
    return text if t.name == "i64" else f"np.int32({text})"


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


@dataclass(frozen=True)
class ArenaBuffer:
    """The reusable buffer of one `mem.alloc {arena}`: a flat array, grown when a call
    needs more, viewed in the shape the alloc asks for."""
    index: int
    dtype: ScalarType

    @property
    def buffer(self) -> str:
        return f"arena_{self.index}"


def generate(fn: Function, py_name: str) -> tuple[str, list]:
    """Python source defining `py_name` (an njit function) for fn, and the buffers it takes
    and returns after its own arguments and results: tape slots, then arena buffers."""
    w = SourceWriter(fn, py_name)
    return w.source(), w.slots + w.arena


def source_loc(fn: Function, py_name: str, line: int):
    """The kernel location of the op that line `line` of generate(fn, py_name)'s source was
    written for (None where it was written for none): asked only when numba refuses a line,
    so the source is written again rather than its map kept for every function."""
    w = SourceWriter(fn, py_name)
    w.source()
    return w.line_locs.get(line)
