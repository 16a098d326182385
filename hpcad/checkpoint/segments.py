"""Segment checkpointing of a time loop (two-level, sqrt(N)-style when snapshots ~ sqrt(N)).
Instead of taping every step, the forward sweep runs the time loop as the primal and saves
a snapshot of the loop's state (the arrays it writes, its carried scalars) at the start of
each of S segments. The reverse sweep takes the segments last to first: restore the
snapshot, run the segment again recording its tape, and reverse it. Tape memory falls from
N steps to N/S steps for S snapshots of the state, at the price of one more forward run.
The arrays hold their final values again when the derivative returns."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..errors import where
from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Function, Op, Value, walk
from ..ir.dialects import unit_step
from ..ir.effects import reads_within, writes_within
from ..ir.types import ArrayType, i1, i64
from .engine import Engine
from .tape import array_type, scalar_type, trip_count


def array_root(arr: Value) -> Value:
    """The array whose memory arr views (arr itself where it is no view)."""
    while isinstance(arr.owner, Op) and \
            arr.owner.name in ("mem.view", "mem.reshape", "mem.bitcast"):
        arr = arr.owner.operands[0]
    return arr


def _written(op: Op) -> list[Value]:
    """The arrays (their roots, not views) the time loop's body writes (ir/effects.py) that
    live across its steps: an array allocated inside the body is new in every step (the
    step's scratch, re-made when a step runs again), no state."""
    inside = {r for o in walk(op.regions[0]) for r in o.results}
    out = []
    for a in writes_within(op):
        r = array_root(a)
        if r not in out and r not in inside:
            out.append(r)
    return out


def _touches(op: Op, arr: Value) -> list[Op]:
    """The ops in op (itself included) that take arr as an operand."""
    inner = [o for r in op.regions for o in walk(r)]
    return [o for o in [op] + inner if arr in o.operands]


def is_scratch(fn: Function, loop: Op, arr: Value) -> bool:
    """Whether arr is scratch for each step of the time loop, so its snapshots can be left
    out: a 1-D array allocated in fn, used nowhere but in the loop, that each step first
    fills over a range by an unconditional `arr[i] = ...` and then only reads as `arr[i]`
    in loops over that same range. (Conservative: anything else is state.)"""
    if not (isinstance(arr.owner, Op) and arr.owner.name == "mem.alloc"
            and array_type(arr).ndim == 1):
        return False
    inside = [o for o in walk(loop.regions[0]) if arr in o.operands]
    if len([o for o in walk(fn.body) if arr in o.operands]) != len(inside):
        return False
    touching = [op for op in loop.regions[0].ops if _touches(op, arr)]
    if not touching or any(op.name not in ("scf.for", "par.parallel_for") for op in touching):
        return False
    bounds = touching[0].operands[:3]
    for k, op in enumerate(touching):
        iv = op.regions[0].args[0]
        if list(op.operands[:3]) != list(bounds):
            return False
        for use in _touches(op, arr):
            if k == 0:
                ok = use.name == "mem.store" and use.operands[1:] == [arr, iv] \
                    and use.parent is op.regions[0]
            else:
                ok = use.name == "mem.load" and use.operands == [arr, iv]
            if not ok:
                return False
    return True


def state_arrays(fn: Function, loop: Op) -> list[Value]:
    """The arrays a snapshot of the time loop must hold: those it writes, less scratch."""
    return [a for a in _written(loop) if not is_scratch(fn, loop, a)]


def choose_time_loop(fn: Function) -> Op | None:
    """The top-level for loop to checkpoint: one that runs other loops and writes arrays
    defined outside it (a time loop), steps by +1 and carries no arrays; the biggest such."""
    top = set(fn.args) | {r for op in fn.body.ops for r in op.results}
    best, size = None, 0
    for op in fn.body.ops:
        if op.name != "scf.for" or any(isinstance(r.type, ArrayType) for r in op.results):
            continue
        if not unit_step(op):
            continue
        nested = any(o.name in ("scf.for", "par.parallel_for") for o in walk(op.regions[0]))
        state = _written(op)
        if nested and state and all(a in top for a in state):
            n = sum(1 for _ in walk(op.regions[0]))
            if n > size:
                best, size = op, n
    return best


_LOOPS = ("scf.for", "scf.while", "par.parallel_for")


def no_time_loop(fn: Function) -> str:
    """Why choose_time_loop takes no loop of fn, for messages: what keeps the top-level loop
    that comes closest (the biggest one that runs other loops) from being checkpointed,
    'file:line: ...', or that fn has no such loop. Where choose_time_loop does take one
    (the planner found no time loop for a call's arguments: budget.time_loop), that its
    size is not known before it runs."""
    chosen = choose_time_loop(fn)
    if chosen is not None:
        return (f"{where(chosen.loc)}: the step count of this time loop, or the size of the "
                f"arrays it writes, is not known from the arguments before it runs")
    loops = [op for op in fn.body.ops if op.name in ("scf.for", "scf.while")
             and any(o.name in _LOOPS for r in op.regions for o in walk(r))]
    if not loops:
        return ("no loop in the kernel's own body (not inside a branch or a loop) runs "
                "other loops or array statements in its steps")
    op = max(loops, key=lambda o: sum(1 for r in o.regions for _ in walk(r)))
    at = where(op.loc)
    if op.name == "scf.while":
        return (f"{at}: this time loop is a `while` loop, or a `for` loop that leaves early "
                f"(`break` or `return`), so its step count is only known when it ends; "
                f"hpcad checkpoints a `for` loop that runs all its steps")
    if any(isinstance(r.type, ArrayType) for r in op.results):
        return (f"{at}: this time loop rebinds array names from step to step (`a, b = b, a`, "
                f"or `p = p + ...`), so the arrays a snapshot would hold change with the "
                f"step; write each step's new values into the same arrays (`a[:] = b`, or a "
                f"loop) to have it checkpointed")
    if not unit_step(op):
        return f"{at}: this time loop does not step by 1 (range(nt) or range(a, b) does)"
    return (f"{at}: this time loop writes no array that lasts from one step to the next "
            f"(nothing for a snapshot to hold)")


def rewritten_after(fn: Function, loop: Op) -> list[Value]:
    """The arrays (roots) the top-level loop reads or writes that an op after it writes.
    The reverse sweep runs the loop's steps again after the reverse of what follows the
    loop, when such an array holds its later values: keep_rewritten keeps their values at
    the loop's end, which they hold during the loop's reverse (swap_rewritten)."""
    used = {array_root(a) for a in reads_within(loop) + writes_within(loop)}
    out: list[Value] = []
    for op in fn.body.ops[fn.body.ops.index(loop) + 1:]:
        for a in writes_within(op):
            r = array_root(a)
            if r in used and r not in out:
                out.append(r)
    return out


def keep_rewritten(b: Builder, fn: Function, loop: Op,
                   vmap: dict[Value, Value]) -> list[tuple[Value, Value, Value]]:
    """Right after the checkpointed loop's forward copy: for each array of
    rewritten_after, (the array, a copy of its values at the loop's end, a buffer for its
    later values), the buffers in the arena (kept between calls, as snapshots are)."""
    arena = {"fill": "empty", "arena": True}
    out = []
    for a in rewritten_after(fn, loop):
        x = vmap.get(a, a)
        t = array_type(x)
        dims = [b.op1("mem.shape", [x], i64, {"axis": k}) for k in range(t.ndim)]
        kept, later = (b.op1("mem.alloc", dims, ArrayType(t.dtype, t.ndim, "C"), arena,
                             name_hint=hint) for hint in ("at_loop_end", "later"))
        b.op("mem.copy", [x, kept])
        out.append((x, kept, later))
    return out


def swap_rewritten(b: Builder, kept: list[tuple[Value, Value, Value]], back: bool) -> None:
    """Before the loop's reverse (back=False): each kept array's later values aside and its
    values at the loop's end back in place; after it (back=True): the later values back."""
    for x, at_end, later in kept:
        if back:
            b.op("mem.copy", [later, x])
        else:
            b.op("mem.copy", [x, later])
            b.op("mem.copy", [at_end, x])


def alloc_snapshots(b: Builder, slots: Value, state: list[Value], scalars: list[Value],
                    with_finals: bool = True,
                    disk: bool = False) -> tuple[list[Value], list[Value], list[Value]]:
    """Buffers for `slots` snapshots of the state arrays and carried scalars, and one copy
    of each array's final values: (array snapshots, finals, scalar snapshots). They are
    `mem.alloc {arena}`: the numba backend keeps them between calls, with the tape; with
    `disk`, the array snapshots are `{arena, disk}`: in a file (runtime/snapshots.py)."""
    snaps, finals = [], []
    arena = {"fill": "empty", "arena": True}   # reused across calls (numba backend)
    on_disk = dict(arena, disk=True) if disk else arena
    for a in state:
        dims = [b.op1("mem.shape", [a], i64, {"axis": k}) for k in range(array_type(a).ndim)]
        snaps.append(b.op1("mem.alloc", [slots] + dims,
                           ArrayType(array_type(a).dtype, array_type(a).ndim + 1, "C"), on_disk,
                           name_hint="snapshots"))
        if with_finals:
            t = array_type(a)
            finals.append(b.op1("mem.alloc", dims, ArrayType(t.dtype, t.ndim, "C"), arena,
                                name_hint="final"))
    scalar_snaps = [b.op1("mem.alloc", [slots], ArrayType(scalar_type(v), 1, "C"), arena,
                          name_hint="snapshots") for v in scalars]
    return snaps, finals, scalar_snaps


def sweep_title(fn: Function) -> str:
    """What the progress bar of a checkpointed reverse sweep says."""
    return f"hpcad: reverse sweep of {fn.name.split('.')[0]}"


def _counted_loop(b: Builder, lb: Value, ub: Value, inits: list[Value],
                  body: Callable[[Builder, Value, list[Value]], list[Value]],
                  reverse: bool = False) -> Op:
    """scf.for over [lb, ub) step 1 whose body(builder, iv, args) returns the yields."""
    block = Block([Value(i64, "seg")] + [Value(v.type, v.name) for v in inits])
    bb = Builder(block)
    bb.loc = b.loc
    bb.op("scf.yield", body(bb, block.args[0], block.args[1:]))
    one = b.op1("arith.const", [], i64, {"value": 1})
    loop: Op = b.op("scf.for", [lb, ub, one] + list(inits), [v.type for v in inits],
                    {"reverse": True} if reverse else {}, regions=[block])
    return loop


def element_view(b: Builder, snaps: Value, k: Value, like: Value) -> Value:
    """snaps[k, ...]: the k-th snapshot, shaped like the state array."""
    zero = b.op1("arith.const", [], i64, {"value": 0})
    bounds = [k]
    for axis in range(array_type(like).ndim):
        bounds += [zero, b.op1("mem.shape", [like], i64, {"axis": axis})]
    t = array_type(like)
    return b.op1("mem.view", [snaps] + bounds, ArrayType(t.dtype, t.ndim, "A"),
                 {"dims": "i" + "s" * t.ndim})


class Segments:
    """The segments strategy for the time loop `loop` (see module doc): the reverse engine
    (ad/reverse.py) calls augment where the loop's forward copy goes and reverse where
    its reverse goes. `snapshots` is the derivative's argument holding the snapshot count
    (a run-time value: checkpoint/plan.py)."""

    def __init__(self, fn: Function, loop: Op, snapshots: Value):
        self.fn = fn
        self.loop = loop
        self.snapshots = snapshots
        self.state: list[Value] = []
        self.snaps: list[Value] = []
        self.finals: list[Value] = []
        self.scalar_snaps: list[Value] = []
        self.template = Block()
        self.lb = self.ub = self.step = self.length = self.count = snapshots

    def augment(self, engine: Engine, op: Op, new: Block) -> None:
        """The loop as the primal, saving its state at each segment's first step; the
        taping step body the reverse re-runs per segment is kept aside."""
        b = Builder(new)
        b.loc = op.loc
        self.lb, self.ub, self.step = (engine.vmap.get(v, v) for v in op.operands[:3])
        self.length, self.count = _segment_layout(b, self.lb, self.ub, self.step,
                                                  self.snapshots)
        self.state = [engine.vmap[a] for a in state_arrays(self.fn, op)]
        inits = [engine.vmap.get(v, v) for v in op.operands[3:]]
        self.snaps, self.finals, self.scalar_snaps = alloc_snapshots(b, self.snapshots,
                                                                     self.state, inits)
        primal = clone_op(op, dict(engine.vmap))
        primal.parent = new
        self._save_at_segment_starts(primal, op)
        new.ops.append(primal)
        engine.vmap.update(zip(op.results, primal.results, strict=True))
        after = Builder(new)
        for a, fin in zip(self.state, self.finals, strict=True):
            after.op("mem.copy", [a, fin])
        # the step body the reverse sweep re-runs per segment (saves land in it)
        old_body = op.regions[0]
        self.template = Block([Value(a.type, a.name) for a in old_body.args])
        engine.vmap.update(zip(old_body.args, self.template.args, strict=True))
        engine.augment(old_body, self.template)

    def _save_at_segment_starts(self, primal: Op, op: Op) -> None:
        body = primal.regions[0]
        pb = Builder(body)
        pb.index = 0
        pb.loc = op.loc
        number = pb.op1("arith.floordiv", [pb.op1("arith.sub", [body.args[0], self.lb], i64),
                                           self.step], i64)
        first = pb.op1("arith.cmp", [pb.op1("arith.mod", [number, self.length], i64),
                                     pb.op1("arith.const", [], i64, {"value": 0})], i1,
                       {"pred": "eq"})
        save, skip = Block(), Block()
        sb = Builder(save)
        k = sb.op1("arith.floordiv", [number, self.length], i64)
        for a, snap in zip(self.state, self.snaps, strict=True):
            sb.op("mem.copy", [a, element_view(sb, snap, k, a)])
        for v, snap in zip(body.args[1:], self.scalar_snaps, strict=True):
            sb.op("mem.store", [v, snap, k])
        sb.op("scf.yield", [])
        Builder(skip).op("scf.yield", [])
        pb.op("scf.if", [first], [], regions=[save, skip])

    def reverse(self, engine: Engine, op: Op, ctx: Any) -> None:
        """The segments last to first: restore the segment's snapshot, re-run it with
        tape, reverse it (engine.reverse_loop over the segment's range)."""
        b = engine.b
        slots = [k for k, r in enumerate(op.results) if engine.act.active(r)]
        free = engine.free_adjoints(op)
        inits = op.operands[3:]
        zero = b.op1("arith.const", [], i64, {"value": 0})
        carried = [engine.current(op.results[k]) for k in slots] + \
            [engine.current(f) for f in free]
        span = b.op1("arith.mul", [self.length, self.step], i64, name_hint="span")

        def segment(sb: Builder, s: Value, args: list[Value]) -> list[Value]:
            start = sb.op1("arith.add", [self.lb, sb.op1("arith.mul", [s, span], i64)], i64)
            stop = sb.op1("arith.min", [sb.op1("arith.add", [start, span], i64), self.ub], i64)
            restored = self._restore(sb, s)
            self.template.parent = None
            sb.op("scf.for", [start, stop, self.step] + restored,
                  [v.type for v in restored], regions=[self.template])
            yields = _reverse_segment(engine, op, ctx, sb, [start, stop, self.step], args)
            done = sb.op1("arith.sub", [self.count, s], i64)
            sb.op("rt.progress", [done, self.count], attrs={"what": sweep_title(self.fn)})
            return yields

        loop = _counted_loop(b, zero, self.count, carried, segment, reverse=True)
        res = loop.results
        for f, r in zip(free, res[len(slots):], strict=True):   # first: an init may be one
            engine.adj[f] = r
        for k, r in zip(slots, res[:len(slots)], strict=True):
            engine.adj.pop(op.results[k], None)
            engine.add_adjoint(inits[k], r)
        for a, fin in zip(self.state, self.finals, strict=True):
            b.op("mem.copy", [fin, a])

    def _restore(self, sb: Builder, s: Value) -> list[Value]:
        """Restore snapshot s: its arrays copied back; its carried scalars, returned."""
        for a, snap in zip(self.state, self.snaps, strict=True):
            sb.op("mem.copy", [element_view(sb, snap, s, a), a])
        return [sb.op1("mem.load", [snap, s], array_type(snap).dtype) for snap in self.scalar_snaps]

    def reads_restored(self, engine: Engine, op: Op, arrays: list[Value], top: int) -> bool:
        """Segments re-run each segment with tape: no step reads a restored state alone."""
        return False

    def describe(self) -> str:
        names = ", ".join(a.name or "?" for a in state_arrays(self.fn, self.loop))
        return (f"time loop {short_loc(self.loop.loc)}: snapshots of [{names}]; each "
                f"segment's tape is recomputed in the reverse sweep")

    def finish(self) -> None:
        """Nothing to check once the derivative is built."""


def _reverse_segment(engine: Engine, op: Op, ctx: Any, sb: Builder, bounds: list[Value],
                     adjoints: list[Value]) -> list[Value]:
    """Within sb's block, the reverse of the time loop's steps over `bounds`, starting from
    the carried `adjoints` (of op's active results, then of its free scalars); returns them
    as they reach the segment's start."""
    slots = [k for k, r in enumerate(op.results) if engine.act.active(r)]
    free = engine.free_adjoints(op)
    inits = op.operands[3:]
    saved_block, saved_adj = engine.b.block, engine.adj
    engine.b.block = sb.block
    engine.adj = dict(saved_adj)
    for k, a in zip(slots, adjoints[:len(slots)], strict=True):
        engine.adj[op.results[k]] = a
    for f, a in zip(free, adjoints[len(slots):], strict=True):
        engine.adj[f] = a
    out: dict[int, Value] = {}
    engine.reverse_loop(op, ctx, bounds=bounds, carry_out=out)
    yields = [out.get(k) or engine.current(inits[k]) for k in slots]
    yields = [y if y is not None else engine.current(op.results[k])
              for y, k in zip(yields, slots, strict=True)]
    yields += [engine.current(f) for f in free]
    engine.b.block, engine.adj = saved_block, saved_adj
    return yields


def _segment_layout(b: Builder, lb: Value, ub: Value, step: Value,
                    slots: Value) -> tuple[Value, Value]:
    """(steps per segment, number of segments) for `slots` snapshots, at run time:
    max(ceil(n / slots), 1) and ceil(n / length)."""
    def c(x: int) -> Value:
        return b.op1("arith.const", [], i64, {"value": x})
    n = trip_count(b, lb, ub, step)
    length = b.op1("arith.max", [b.op1("arith.floordiv", [
        b.op1("arith.sub", [b.op1("arith.add", [n, slots], i64), c(1)], i64), slots], i64),
        c(1)], i64, name_hint="segment")
    count = b.op1("arith.floordiv", [b.op1("arith.sub", [b.op1("arith.add", [n, length], i64),
                                                        c(1)], i64), length], i64)
    return length, count


def short_loc(loc: tuple[Any, ...] | None) -> str:
    """'file.py:line' of a kernel location, for plan lines."""
    return "?" if loc is None else f"{os.path.basename(loc[0])}:{loc[1]}"
