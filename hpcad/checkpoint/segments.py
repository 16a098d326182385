"""Segment checkpointing of a time loop (two-level, sqrt(N)-style when snapshots ~ sqrt(N)).
Instead of taping every step, the forward sweep runs the time loop as the primal and saves
a snapshot of the loop's state (the arrays it writes, its carried scalars) at the start of
each of S segments. The reverse sweep takes the segments last to first: restore the
snapshot, run the segment again recording its tape, and reverse it. Tape memory falls from
N steps to N/S steps for S snapshots of the state, at the price of one more forward run.
The arrays hold their final values again when the derivative returns."""
from __future__ import annotations

from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Function, Op, Value, walk
from ..ir.dialects import unit_step
from ..ir.effects import writes_within
from ..ir.types import ArrayType, i1, i64
from .tape import trip_count

def _root(arr: Value) -> Value:
    while isinstance(arr.owner, Op) and arr.owner.name in ("mem.view", "mem.bitcast"):
        arr = arr.owner.operands[0]
    return arr


def _written(op: Op) -> list[Value]:
    """The arrays (their roots, not views) the time loop's body writes: ir/effects.py."""
    out = []
    for a in writes_within(op):
        r = _root(a)
        if r not in out:
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
            and arr.type.ndim == 1):
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


def alloc_snapshots(b: Builder, slots: Value, state: list[Value], scalars: list[Value],
                    with_finals: bool = True, disk: bool = False):
    """Buffers for `slots` snapshots of the state arrays and carried scalars, and one copy
    of each array's final values: (array snapshots, finals, scalar snapshots). They are
    `mem.alloc {arena}`: the numba backend keeps them between calls, with the tape; with
    `disk`, the array snapshots are `{arena, disk}`: in a file (checkpoint/disk.py)."""
    snaps, finals = [], []
    arena = {"fill": "empty", "arena": True}   # reused across calls (numba backend)
    on_disk = dict(arena, disk=True) if disk else arena
    for a in state:
        dims = [b.op1("mem.shape", [a], i64, {"axis": k}) for k in range(a.type.ndim)]
        snaps.append(b.op1("mem.alloc", [slots] + dims,
                           ArrayType(a.type.dtype, a.type.ndim + 1, "C"), on_disk,
                           name_hint="snapshots"))
        if with_finals:
            finals.append(b.op1("mem.alloc", dims, ArrayType(a.type.dtype, a.type.ndim, "C"),
                                arena, name_hint="final"))
    scalar_snaps = [b.op1("mem.alloc", [slots], ArrayType(v.type, 1, "C"), arena,
                          name_hint="snapshots") for v in scalars]
    return snaps, finals, scalar_snaps


def sweep_title(fn: Function) -> str:
    """What the progress bar of a checkpointed reverse sweep says."""
    return f"hpcad: reverse sweep of {fn.name.split('.')[0]}"


def _counted_loop(b: Builder, lb: Value, ub: Value, inits: list[Value], body, reverse=False):
    """scf.for over [lb, ub) step 1 whose body(builder, iv, args) returns the yields."""
    block = Block([Value(i64, "seg")] + [Value(v.type, v.name) for v in inits])
    bb = Builder(block)
    bb.loc = b.loc
    bb.op("scf.yield", body(bb, block.args[0], block.args[1:]))
    one = b.op1("arith.const", [], i64, {"value": 1})
    return b.op("scf.for", [lb, ub, one] + list(inits), [v.type for v in inits],
                {"reverse": True} if reverse else {}, regions=[block])


def _element_view(b: Builder, snaps: Value, k: Value, like: Value) -> Value:
    """snaps[k, ...]: the k-th snapshot, shaped like the state array."""
    zero = b.op1("arith.const", [], i64, {"value": 0})
    bounds = [k]
    for axis in range(like.type.ndim):
        bounds += [zero, b.op1("mem.shape", [like], i64, {"axis": axis})]
    return b.op1("mem.view", [snaps] + bounds, ArrayType(like.type.dtype, like.type.ndim, "A"),
                 {"dims": "i" + "s" * like.type.ndim})


class SegmentCheckpointing:
    """Mixed into reverse mode (`ad/reverse.py`)."""

    def augment_segmented(self, op: Op, new: Block) -> None:
        info = self.segmented[op]
        b = Builder(new)
        b.loc = op.loc
        c = lambda x: b.op1("arith.const", [], i64, {"value": x})
        lb, ub, step = (self.vmap.get(v, v) for v in op.operands[:3])
        n = trip_count(b, lb, ub, step)
        slots = c(info["snapshots"])
        length = b.op1("arith.max", [b.op1("arith.floordiv", [
            b.op1("arith.sub", [b.op1("arith.add", [n, slots], i64), c(1)], i64), slots], i64),
            c(1)], i64, name_hint="segment")
        count = b.op1("arith.floordiv", [b.op1("arith.sub", [b.op1("arith.add", [n, length], i64),
                                                            c(1)], i64), length], i64)
        state = [self.vmap[a] for a in state_arrays(self.fn, op)]
        inits = [self.vmap.get(v, v) for v in op.operands[3:]]
        snaps, finals, scalar_snaps = alloc_snapshots(b, slots, state, inits)
        # the primal loop, saving the state at each segment's first step
        primal = clone_op(op, dict(self.vmap))
        primal.parent = new
        body = primal.regions[0]
        pb = Builder(body)
        pb.index = 0
        pb.loc = op.loc
        number = pb.op1("arith.floordiv", [pb.op1("arith.sub", [body.args[0], lb], i64), step],
                        i64)
        first = pb.op1("arith.cmp", [pb.op1("arith.mod", [number, length], i64),
                                     pb.op1("arith.const", [], i64, {"value": 0})], i1,
                       {"pred": "eq"})
        save, skip = Block(), Block()
        sb = Builder(save)
        k = sb.op1("arith.floordiv", [number, length], i64)
        for a, snap in zip(state, snaps):
            sb.op("mem.copy", [a, _element_view(sb, snap, k, a)])
        for v, snap in zip(body.args[1:], scalar_snaps):
            sb.op("mem.store", [v, snap, k])
        sb.op("scf.yield", [])
        Builder(skip).op("scf.yield", [])
        pb.op("scf.if", [first], [], regions=[save, skip])
        new.ops.append(primal)
        self.vmap.update(zip(op.results, primal.results))
        after = Builder(new)
        for a, fin in zip(state, finals):
            after.op("mem.copy", [a, fin])
        # the step body the reverse sweep re-runs per segment (saves land in it)
        old_body = op.regions[0]
        template = Block([Value(a.type, a.name) for a in old_body.args])
        self.vmap.update(zip(old_body.args, template.args))
        self.augment(old_body, template)
        info.update(lb=lb, ub=ub, step=step, length=length, count=count, state=state,
                    snaps=snaps, finals=finals, scalar_snaps=scalar_snaps, template=template)

    def reverse_segmented(self, op: Op, ctx) -> None:
        info = self.segmented[op]
        b = self.b
        slots = [k for k, r in enumerate(op.results) if self.act.active(r)]
        free = self.free_adjoints(op)
        inits = op.operands[3:]
        zero = b.op1("arith.const", [], i64, {"value": 0})
        carried = [self.current(op.results[k]) for k in slots] + [self.current(f) for f in free]
        span = b.op1("arith.mul", [info["length"], info["step"]], i64, name_hint="span")

        def segment(sb: Builder, s: Value, args):
            start = sb.op1("arith.add", [info["lb"], sb.op1("arith.mul", [s, span], i64)], i64)
            stop = sb.op1("arith.min", [sb.op1("arith.add", [start, span], i64), info["ub"]], i64)
            for a, snap in zip(info["state"], info["snaps"]):
                sb.op("mem.copy", [_element_view(sb, snap, s, a), a])
            restored = [sb.op1("mem.load", [snap, s], snap.type.dtype)
                        for snap in info["scalar_snaps"]]
            template = info["template"]
            template.parent = None
            sb.op("scf.for", [start, stop, info["step"]] + restored,
                  [v.type for v in restored], regions=[template])
            saved_block, saved_adj = self.b.block, self.adj
            self.b.block = sb.block
            self.adj = dict(saved_adj)
            for k, a in zip(slots, args[:len(slots)]):
                self.adj[op.results[k]] = a
            for f, a in zip(free, args[len(slots):]):
                self.adj[f] = a
            out = {}
            self.reverse_loop(op, ctx, bounds=[start, stop, info["step"]], carry_out=out)
            yields = [out.get(k) or self.current(inits[k]) for k in slots]
            yields = [y if y is not None else self.current(op.results[k])
                      for y, k in zip(yields, slots)]
            yields += [self.current(f) for f in free]
            self.b.block, self.adj = saved_block, saved_adj
            done = sb.op1("arith.sub", [info["count"], s], i64)
            sb.op("rt.progress", [done, info["count"]], attrs={"what": sweep_title(self.fn)})
            return yields

        loop = _counted_loop(b, zero, info["count"], carried, segment, reverse=True)
        res = loop.results
        for k, r in zip(slots, res[:len(slots)]):
            self.adj.pop(op.results[k], None)
            self.add_adjoint(inits[k], r)
        for f, r in zip(free, res[len(slots):]):
            self.adj[f] = r
        for a, fin in zip(info["state"], info["finals"]):
            b.op("mem.copy", [fin, a])
