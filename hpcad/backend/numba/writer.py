"""The numba writer's context and walk: a Writer holds the state of one function being
written (its lines, the locals' names, the tape slots and arena buffers, the lane and fault
state) and walks the IR, writing each op through its rule (rules.py). The rules live in
codegen.py (arith, math, mem, scf, func), tape.py, parallel.py, mpi_codegen.py and
vector.py; codegen.generate() puts the function and its prelude together."""
from __future__ import annotations

import builtins
import keyword
import math
import symtable
from dataclasses import dataclass

from ...ir.core import Block, Function, Op, Value, walk
from ...ir.dialects import int_const, lower_bounds, plain_body, sum_update
from ...ir.types import ScalarType
from ...runtime.tape import TapeSlot, tape_slots
from . import faults, parallel, shared, tape, vector
from .common import NP_TYPES, without_terminator
from .faults import NAMES as FAULT_NAMES
from .rules import rule_for
from .vector import is_vector

_RESERVED = {"math", "np", "njit", "range", "abs", "float", "int", "len", "min", "max", "True",
             "False", "None", "_trips", "_grow", "objmode", "_sweep", "_progress",
             "_disk_buffer", "_buffer_size", "_empty", "_zeros", "_BUFFERS", "_PROGRESS", "OPTIONS",
             "INNER_OPTIONS"} | \
    {f"_disk_{t.removeprefix('np.')}" for t in NP_TYPES.values()}
_RESERVED |= {f"arena_{k}" for k in range(64)} | FAULT_NAMES
# the names generated code reads from its module (no parameters of a function of its own)
_MODULE = _RESERVED | set(dir(builtins)) | {"prange", "atomic_add", "add_any_order",
                                               "parallel_fence"}


class SourceLine(str):
    """A generated line that remembers the kernel location of the op it was written for, so
    that a numba refusal of the line can be reported at the kernel's file:line."""
    loc = None


@dataclass(frozen=True)
class ArenaBuffer:
    """The reusable buffer of one `mem.alloc {arena}`: a flat array, grown when a call
    needs more, viewed in the shape the alloc asks for."""
    index: int
    dtype: ScalarType

    @property
    def buffer(self) -> str:
        return f"arena_{self.index}"


class Writer:
    """The state of one function being written, and the walk that writes it: block() writes
    each op of a block through op(), which finds the op's rule in rules.RULES. The rules
    read and extend this state; the comments say which module uses a field."""

    def __init__(self, fn: Function, py_name: str,
                 repeated: dict[Op, list[Op]] | None = None,
                 blocking: tuple[int, ...] = ()):
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
        self.buffer_whats: list[str] = []   # tape.buffer_size: what each buffer is for
        self.progress_whats: list[str] = []   # rt.progress: what each sweep is
        self.tape_sizes: dict[tuple, str] = {}   # tape.tape_setup: sizes computed per anchor
        self.by_slot = {s.slot: s for s in self.slots}
        self.by_anchor: dict[Op, list[TapeSlot]] = {}
        for s in self.slots:
            self.by_anchor.setdefault(s.anchor, []).append(s)
        self.plain_ivs: set[Value] = set()   # forward range() variables numba indexes well
        self.outlined: list[str] = []        # loops in functions of their own (outline_loop)
        # shared.py: the loops to write as shared functions, each with its copies (None:
        # find them, their texts in `texts`); the functions written, canonical text -> name
        self.repeated = repeated
        self.texts: dict[Op, str] = {}
        self.bounds: dict[Op, tuple[str, str]] = {}   # a shared loop's bounds: parameters
        self.shared: dict[str, str] = {}
        self.any_order: set[Op] = set()      # the adds of its sums (fadd reassoc)
        self.in_outlined = False             # writing an outlined loop: every non-negative
                                             # range() variable indexes unsigned
        # parallel.py: the update op of each scalar reduction -> (its variable, its kind)
        self.reduction_updates: dict[Op, tuple[str, str]] = {}
        self.parallel = any(o.dialect == "par" for o in walk(fn.body))
        self.uses_mpi = any(o.dialect == "mpi" for o in walk(fn.body))
        self.writing: Op | None = None       # the op being written (checked_index)
        # vectors (vector.py): the width, lane loops, arrays of vectors, per-thread rows
        self.width = vector.width_of(fn)
        self.lane: str | None = None            # the lane variable while writing a lane loop
        self.local: set[Value] = set()          # vectors that live within one lane loop
        self.vector_names: set[str] = set()     # locals that hold a length-W array
        self.storage: dict[str, tuple] = {}     # name -> (dtype, parallel home or None)
        self.private: dict[Value, str] = {}     # array of vectors -> the caller's (its copy)
        self.homes: list[dict] = []             # enclosing parallel bodies being written
        self.vector_reductions: dict[Op, tuple[str, bool]] = {}
        self.outer: set[Op] = set()             # lane-outer loops
        self.outer_lane: str | None = None      # the lane variable while writing one
        self.rows: dict[Value, str] = {}        # and its row of each array of vectors
        self.blocking = blocking                # the arrays of vectors passed strided in
        self.blocked: set[Op] = set()           # place; the lane loops written blocked
        self.block_buffers: list[tuple[str, str]] = []   # and their buffers
        # faults (faults.py): the codes of integer, cast and index faults
        self.faults: list[tuple[str, str]] = []   # code - 1 -> (error class, message)
        self.fault_checks: set[Op] = set()        # parallel ops checking `_faults` after
        self.uses_integer_ops = False
        self.taken.add("_faults")
        # codegen.fold: values written inside the expression of their one user, not as
        # locals of their own (each op -> its users, while writing: value -> its text)
        self.users: dict[Value, list[Op]] = {}
        for o in walk(fn.body):
            for v in o.operands:
                self.users.setdefault(v, []).append(o)
        self.folded: dict[Value, str] = {}
        vector.plan(self)

    # -- names -----------------------------------------------------------------------------
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
        """How an operand is written: a literal for a constant, the expression of a folded
        value (codegen.fold), else its local."""
        op = v.owner
        if isinstance(op, Op) and op.name == "arith.const":
            return literal(op.attrs["value"], v.type)
        if v in self.folded:
            return self.folded[v]
        if is_vector(v):
            return vector.lane_ref(self, v, self.name(v))
        return self.name(v)

    # -- emission: the walk over blocks, each op through its rule ---------------------------
    def emit(self, depth: int, text: str) -> None:
        line = SourceLine("    " * depth + text)
        line.loc = self.at
        self.lines.append(line)

    def block(self, block: Block, depth: int) -> None:
        lane_ops = []    # vector ops waiting for their lane loop (vector.py)
        for op in block.ops:
            for s in self.by_anchor.get(op, ()):
                tape.tape_setup(self, s, depth)
            if self.width > 1 and vector.lane_op(op):
                lane_ops.append(op)
                continue
            if lane_ops and vector.breaks_lanes(op):
                vector.write_lanes(self, lane_ops, depth)
                lane_ops = []
            self.op(op, depth)
        vector.write_lanes(self, lane_ops, depth)

    def op(self, op: Op, depth: int) -> None:
        saved, self.at = self.at, op.loc or self.at
        outer, self.writing = self.writing, op
        try:
            faults.check_step(self, op, depth)
            if op.dialect == "mpi":
                faults.check_memory_order(self, op, depth)
                faults.check_disjoint(self, op, depth)
            self.write_op(op, depth)
        finally:
            self.at, self.writing = saved, outer
        faults.check_faults(self, op, depth)

    def write_op(self, op: Op, depth: int) -> None:
        if op in self.reduction_updates:
            parallel.reduction_update(self, op, depth)
            return
        if op in self.vector_reductions:
            vector.reduction_lane(self, op, depth)
            return
        rule_for(op)(self, op, depth)

    def assign(self, depth: int, targets: list[str], values: list[str]) -> None:
        pairs = [(t, v) for t, v in zip(targets, values, strict=True) if t != v]
        vectors = [(t, v) for t, v in pairs if t in self.vector_names]
        if vectors:
            vector.assign_lanes(self, depth, vectors)
            pairs = [p for p in pairs if p not in vectors]
        if pairs:
            self.emit(depth, ", ".join(t for t, _ in pairs) + " = "
                      + ", ".join(v for _, v in pairs))

    def region_body(self, body: Block, depth: int, carried: list[str]) -> None:
        start = len(self.lines)
        self.block(without_terminator(body), depth)
        self.assign(depth, carried, [self.ref(v) for v in body.ops[-1].operands])
        if len(self.lines) == start:
            self.emit(depth, "pass")

    # -- loops (scf.for, and the lane-outer and outlined forms of it) -----------------------
    def write_for(self, op: Op, depth: int, carried: list[str],
                  chunk: tuple[str, str, list[str]] | None = None) -> None:
        """The loop, its carried values in the locals `carried`; with `chunk` (first, end,
        starts), its iterations from `first` to `end` only, its carried values starting
        from `starts` (parallel.py: a chunk of a parallel loop's sums)."""
        body = op.regions[0]
        for arg, var in zip(body.args[1:], carried, strict=True):
            self.names[arg] = var
        lb, ub, step = (self.ref(v) for v in op.operands[:3])
        lb, ub = self.bounds.get(op, (lb, ub))
        starts = [self.ref(v) for v in op.operands[3:]]
        if chunk is not None:
            lb, ub, starts = chunk
        self.assign(depth, carried, starts)
        if op.attrs.get("reverse"):
            # range(lb, ub, step) backwards: from its last element down to lb
            if step == "1":
                rng = f"range({ub} - 1, {lb} - 1, -1)"
            else:
                last = f"{lb} + (_trips({lb}, {ub}, {step}) - 1) * {step}"
                rng = f"range({last}, {lb} - {step}, -{step})"
        else:
            rng = f"range({lb}, {ub})" if step == "1" else f"range({lb}, {ub}, {step})"
            # (LLVM proves a variable from a constant start non-negative; one from a computed
            # start, as in a triangular `range(c + 1, d)`, it does not: that one is passed
            # unsigned where it is provably non-negative)
            if step == "1" and chunk is None and (int_const(op.operands[0]) or -1) >= 0:
                self.plain_ivs.add(body.args[0])
        self.emit(depth, f"for {self.name(body.args[0])} in {rng}:")
        self.region_body(body, depth + 1, carried)

    def outlines(self, op: Op) -> bool:
        """A loop to compile in a function of its own: one whose sums may be taken in any
        order (passes/gather.py marks them; LLVM vectorizes a float sum only when it may
        reorder it) or marked `outline` (passes/gather_nest.py, passes/fusion.py), if it is
        innermost and moves no tape position (indexed pushes and pops do not); inside a
        parallel loop too (a gather's interior row, which numba's parfor body keeps LLVM
        from vectorizing where it is inline). At
        width > 1, a loop of lane ops only when it runs lane-outer (vector.py)."""
        if not (op.attrs.get("sums") == "any order" or op.attrs.get("outline")):
            return False
        if self.width > 1 and self.outer_lane is None \
                and any(vector.lane_op(o) for o in op.regions[0].ops):
            return False    # its lanes run inner, in lane loops of the function itself
        return plain_body(op, ("tape.push", "tape.pop"))

    def outline_loop(self, op: Op, depth: int, carried: list[str] | None = None,
                     chunk: tuple[str, str, list[str]] | None = None) -> None:
        """The loop (or a chunk of it: write_for) as a function of its own, called in
        place, whose sums LLVM may reassociate (their adds only: everything else keeps IEEE
        order) and whose indices are unsigned where they are non-negative: LLVM vectorizes
        such a loop, where in the whole derivative it would not."""
        if carried is None:
            carried = vector.carried_names(self, op.results)
        inner = self.function_body(op, carried, any_order=True, chunk=chunk)
        self.call_function(depth, inner, carried, "loop")

    def call_function(self, depth: int, inner: list[str], carried: list[str], kind: str,
                      given: dict[str, str] | None = None) -> None:
        """A call of the function of the lines `inner` (function_body), defined here
        unless an earlier loop made one of the same text (shared.py); its parameters
        in order of first use, each passed as `given` says (else the local of its
        name)."""
        text, order = shared.canonical(inner, _MODULE)
        free = set(free_names(inner, carried))
        params = [n for n in order if n in free]
        name = self.shared.get(text)
        if name is None:
            name = self.shared[text] = f"{self.py_name}_{kind}{len(self.shared)}"
            self.outlined += ["@njit(**INNER_OPTIONS)",
                              f"def {name}({', '.join(params)}):", *inner, "", ""]
        given = given or {}
        out = "".join(v + ", " for v in carried)
        self.emit(depth, f"{out + '= ' if out else ''}{name}("
                         f"{', '.join(given.get(n, n) for n in params)})")

    def function_body(self, op: Op, carried: list[str], any_order: bool,
                      chunk: tuple[str, str, list[str]] | None = None) -> list[str]:
        """The lines of a function running the loop (or a chunk of it: write_for, indented
        one level), its carried values in the locals `carried`; its sums reassociated if
        `any_order`."""
        saved, self.lines = self.lines, []
        if any_order:
            self.any_order = {a for k in range(len(op.results)) if (a := sum_update(op, k))}
        self.in_outlined = True
        try:
            self.write_for(op, 1, carried, chunk)
        finally:
            self.any_order, self.in_outlined = set(), False
        inner, self.lines = self.lines, saved
        return inner + [f"    return ({''.join(v + ', ' for v in carried)})"]

    def share_loop(self, op: Op, depth: int) -> bool:
        """Write a loop that repeats (shared.py) as a call of the function its text makes,
        written the first time; False, writing nothing, where the loop is not one of those.
        Asked to find them (self.repeated None), record the loop's text and return False."""
        if self.repeated is not None and op not in self.repeated or \
                not shared.shareable(self, op):
            return False
        carried = vector.carried_names(self, op.results)
        kept = list(self.faults), self.uses_integer_ops, set(self.fault_checks), self.lower
        self.bounds[op] = names = (self.fresh("lb"), self.fresh("ub"))
        if self.repeated is not None:
            self.lower = shared.merged_lower(self, op, self.repeated[op])
        try:
            inner = self.function_body(op, carried, any_order=False)
        finally:
            del self.bounds[op]
            self.lower = kept[-1]
        if self.repeated is None:   # only looking: leave the writer as it was
            self.faults, self.uses_integer_ops, self.fault_checks = kept[:3]
            self.texts[op] = shared.canonical(inner, _MODULE, loose=True)[0]
            return False
        self.call_function(depth, inner, carried, "shared",
                           dict(zip(names, (self.ref(v) for v in op.operands[:2]))))
        return True


def free_names(lines: list[str], local: list[str]) -> list[str]:
    """The names a block of generated statements (indented one level) reads from outside:
    the parameters of a function made of it. Module names (numpy, helpers) are not."""
    code = "def _block():\n" + "\n".join(lines) + "\n    return (" + "".join(
        v + ", " for v in local) + ")\n"
    table = symtable.symtable(code, "<generated>", "exec").get_children()[0]
    return sorted(sym.get_name() for sym in table.get_symbols()
                  if sym.is_referenced() and not sym.is_assigned()
                  and sym.get_name() not in _MODULE)


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
