"""Tape passes. Pruning: a saved value that the reverse sweep never reads is not saved
(reverse mode asks for every primal value a rule might use; `prune_tape` drops the slots
nobody uses). Indexing: a slot saved and restored once per iteration of a loop becomes
entries indexed by the iteration (`index_tape`)."""
from __future__ import annotations

from ..checkpoint.tape import trip_count
from ..ir.core import Block, Builder, Function, Op, uses, walk
from ..ir.dialects import unit_step
from ..ir.types import i64


def prune_tape(fn: Function) -> bool:
    counts = uses(fn.body)
    pops = [op for op in walk(fn.body) if op.name == "tape.pop"]
    live = {op.attrs["slot"] for op in pops if counts.get(op.results[0], 0)}
    dead = {op.attrs["slot"] for op in pops} - live
    if not dead:
        return False
    _drop(fn.body, dead)
    return True


def _drop(block: Block, dead: set) -> None:
    block.ops = [op for op in block.ops
                 if not (op.dialect == "tape" and op.attrs["slot"] in dead)]
    for op in block.ops:
        for r in op.regions:
            _drop(r, dead)


def index_tape(fn: Function) -> bool:
    """Turn a slot saved once per iteration of a loop and restored once per iteration of
    that loop's reverse into an indexed slot: entry `i - lb` of a segment the size of the
    loop, reserved before the forward loop and passed over after it (`tape.advance`), and
    found again before the reverse (`tape.retreat`). The same entries, but the reverse loop
    no longer moves the tape position per iteration, so its iterations may be reordered
    (passes/gather.py). Only where both loops are unit-step `scf.for` over the same bounds,
    the push and the pop sit directly in their bodies, and the slot has no other push or
    pop. Returns whether anything changed."""
    pushes: dict[int, list[Op]] = {}
    pops: dict[int, list[Op]] = {}
    for op in walk(fn.body):
        if op.name == "tape.push":
            pushes.setdefault(op.attrs["slot"], []).append(op)
        elif op.name == "tape.pop":
            pops.setdefault(op.attrs["slot"], []).append(op)
    changed = False
    for slot, pushed in pushes.items():
        popped = pops.get(slot, [])
        if len(pushed) != 1 or len(popped) != 1 or len(pushed[0].operands) != 1 \
                or popped[0].operands:
            continue
        push, pop = pushed[0], popped[0]
        fwd, rev = push.parent.parent, pop.parent.parent
        if not (_counted(fwd) and _counted(rev) and rev.attrs.get("reverse")
                and not fwd.attrs.get("reverse")
                and fwd.operands[:3] == rev.operands[:3]):
            continue
        for loop, before, after in ((fwd, "tape.reserve", "tape.advance"),
                                    (rev, "tape.retreat", None)):
            parent = loop.parent
            b = Builder(parent)
            b.index = parent.ops.index(loop)
            b.loc = loop.loc
            lb, ub, step = loop.operands[:3]
            count = trip_count(b, lb, ub, step)
            b.op(before, [count], attrs={"slot": slot})
            b.index += 1     # past the loop
            if after:
                b.op(after, [count], attrs={"slot": slot})
            body = loop.regions[0]
            ib = Builder(body)
            ib.index = 0
            ib.loc = loop.loc
            entry = ib.op1("arith.sub", [body.args[0], lb], i64)
            op = push if loop is fwd else pop
            op.operands = list(op.operands) + [entry]
        changed = True
    return changed


def _counted(loop) -> bool:
    """A sequential unit-step loop."""
    return loop is not None and loop.name == "scf.for" and unit_step(loop)
