"""Dead-code elimination: removes pure ops, allocations and control ops whose results are
unused and that have no effect, stores into local arrays nothing reads, and prunes `scf.for`
iter_args and `scf.if` results that nothing reads (e.g. adjoint accumulators of inactive
values). Liveness is a fixpoint over loops, since an iter_arg is live if its next iteration
needs it."""
from __future__ import annotations

from ..ir.core import Block, Function, Op, Value, walk
from ..ir.dialects import OPS
from ..ir.effects import writes

_EFFECTS = ("tape", "comm", "io", "terminator")   # besides writing memory (ir/effects.py)


def _effectful(block: Block, into: set[Op]) -> bool:
    """Adds to `into` the ops of block (nested ones included) that have an effect, each
    found once, and says whether block has one: an op has one if it writes memory, is a
    call (a kept call's callee may communicate), has an effect of _EFFECTS, or holds an op
    that has one. Found once per dce: the liveness fixpoint asks about the same ops again
    and again, and removing ops without effect, all dce does, changes no op's answer."""
    found = False
    for op in block.ops:
        nested = False
        for r in op.regions:
            nested |= _effectful(r, into)
        if nested or OPS[op.name].effect in _EFFECTS or writes(op) or op.name == "func.call":
            into.add(op)
            found = True
    return found


class _Liveness:
    def __init__(self, effectful: set[Op]):
        self.live: set[Value] = set()
        self.effectful = effectful
        # per loop, the size of `live` when its fixpoint last ended: `live` only grows, so at
        # the same size it is the same set, and the loop's fixpoint holds (an outer loop's
        # fixpoint would otherwise redo each inner one: twice per level of nesting)
        self.settled: dict[Op, int] = {}

    def block(self, block: Block) -> None:
        for op in reversed(block.ops):
            self.op(op)

    def op(self, op: Op) -> None:
        live = self.live
        if op.name in ("scf.for", "par.parallel_for"):
            self.loop_for(op)
        elif op.name == "par.join":
            if op in self.effectful or any(r in live for r in op.results):
                for region in op.regions:
                    live.update(region.ops[-1].operands)
                    self.block(region)
        elif op.name == "scf.if":
            if op in self.effectful or any(r in live for r in op.results):
                live.add(op.operands[0])
                for region in op.regions:
                    term = region.ops[-1]
                    live.update(v for v, r in zip(term.operands, op.results, strict=False)
                                if r in live)
                    self.block(region)
        elif op.name == "scf.while":
            if op in self.effectful or any(r in live for r in op.results):
                self.mark_all(op)
        elif op.name in ("scf.yield", "scf.condition"):
            if op.name == "scf.condition":
                live.add(op.operands[0])
        elif op in self.effectful or any(r in live for r in op.results):
            live.update(op.operands)

    def loop_for(self, op: Op) -> None:
        body = op.regions[0]
        term = body.ops[-1]
        args = body.args[1:]
        if not (op in self.effectful or any(r in self.live for r in op.results)) \
                or self.settled.get(op) == len(self.live):
            return
        self.live.update(op.operands[:3])
        while True:
            before = len(self.live)
            for arg, res, y in zip(args, op.results, term.operands, strict=False):
                if arg in self.live or res in self.live:
                    self.live.update((arg, res, y))
            self.block(body)
            if len(self.live) == before:
                break
        for k, (arg, res) in enumerate(zip(args, op.results, strict=False)):
            if arg in self.live or res in self.live:
                self.live.add(op.operands[3 + k])
        self.settled[op] = len(self.live)

    def mark_all(self, op: Op) -> None:
        """A while loop is kept whole: its carried values all stay live."""
        if self.settled.get(op) == len(self.live):
            return
        self.live.update(op.operands)
        self.live.update(op.results)
        for region in op.regions:
            self.live.update(region.args)
            self.live.update(region.ops[-1].operands)
        while True:
            before = len(self.live)
            for region in op.regions:
                self.block(region)
            if len(self.live) == before:
                break
        self.settled[op] = len(self.live)


def _sweep(block: Block, live: set[Value], effectful: set[Op]) -> bool:
    changed = False
    kept = []
    for op in block.ops:
        has_effect = op in effectful
        if op.name in ("scf.for", "par.parallel_for") and (op.results or has_effect):
            changed |= _prune_for(op, live)
        elif op.name == "scf.if":
            changed |= _prune_if(op, live)
        if has_effect or any(r in live for r in op.results):
            for r in op.regions:
                changed |= _sweep(r, live, effectful)
            kept.append(op)
        else:
            changed = True
    block.ops = kept
    return changed


def _prune_for(op: Op, live: set[Value]) -> bool:
    body = op.regions[0]
    term = body.ops[-1]
    dead = [k for k, (a, r) in enumerate(zip(body.args[1:], op.results, strict=False))
            if a not in live and r not in live]
    if not dead:
        return False
    keep = [k for k in range(len(op.results)) if k not in dead]
    if "reductions" in op.attrs:
        kinds = op.attrs["reductions"].split(",")
        op.attrs["reductions"] = ",".join(kinds[k] for k in keep)
    op.operands = op.operands[:3] + [op.operands[3 + k] for k in keep]
    body.args = body.args[:1] + [body.args[1 + k] for k in keep]
    term.operands = [term.operands[k] for k in keep]
    op.results = [op.results[k] for k in keep]
    return True


def _prune_if(op: Op, live: set[Value]) -> bool:
    keep = [k for k, r in enumerate(op.results) if r in live]
    if len(keep) == len(op.results):
        return False
    for region in op.regions:
        term = region.ops[-1]
        term.operands = [term.operands[k] for k in keep]
    op.results = [op.results[k] for k in keep]
    return True


def _drop_unread_arrays(fn: Function) -> bool:
    """Removes the stores into arrays the function allocates and never reads: used only as
    the target of stores and accumulations (or by mem.shape), they are not loaded, returned,
    passed on, viewed, copied or carried, so nothing can see what they hold (after shifted
    fusion, the buffer of a stencil and its copy back in a derivative: passes/fusion.py)."""
    allocs = {op.results[0] for op in walk(fn.body)
              if op.name == "mem.alloc" and not op.attrs.get("arena")}
    if not allocs:
        return False
    read, writes = set(), []
    for op in walk(fn.body):
        for k, v in enumerate(op.operands):
            if v not in allocs:
                continue
            if op.name in ("mem.store", "mem.accumulate") and k == 1:
                writes.append(op)
            elif op.name != "mem.shape":
                read.add(v)
    dead = [op for op in writes if op.operands[1] not in read]
    for op in dead:
        op.parent.ops.remove(op)
    return bool(dead)


def dce(fn: Function) -> bool:
    changed = _drop_unread_arrays(fn)
    effectful: set[Op] = set()
    _effectful(fn.body, effectful)
    lv = _Liveness(effectful)
    lv.block(fn.body)
    return _sweep(fn.body, lv.live, effectful) | changed
