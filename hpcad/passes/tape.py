"""Tape passes. Pruning: a saved value that the reverse sweep never reads is not saved
(reverse mode asks for every primal value a rule might use; `prune_tape` drops the slots
nobody uses). Indexing: a slot saved and restored once per iteration of a loop becomes
entries indexed by the iteration (`index_tape`)."""
from __future__ import annotations

from ..checkpoint.tape import trip_count
from ..ir.core import Block, Builder, Function, Op, uses, walk
from ..ir.dialects import is_pure, unit_step
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
    """Turn a slot saved once per iteration of a loop nest and restored once per iteration
    of that nest's reverse into an indexed slot: entry (i_0 - lb_0) * stride_0 + ... +
    (i_{D-1} - lb_{D-1}) of a segment the size of the nest's domain, reserved before the
    forward nest and passed over after it (`tape.advance`), and found again before the
    reverse (`tape.retreat`). The same entries, but the reverse no longer moves the tape
    position per iteration, so its iterations may be reordered (passes/gather.py,
    passes/gather_nest.py). Only where the push and the pop sit directly in the innermost
    bodies, the slot has no other push or pop, and both nests are perfect (each body holds
    pure ops and the next loop only), of unit-step `scf.for` loops over the same bounds,
    defined outside them, the forward ascending and the reverse reversed on every level:
    the pops then meet the pushes' entries in the reverse of their order. Returns whether
    anything changed."""
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
        fwd, rev = _matched(_chain(push.parent.parent, False), _chain(pop.parent.parent, True))
        if not fwd:
            continue
        for nest, op, before, after in ((fwd, push, "tape.reserve", "tape.advance"),
                                        (rev, pop, "tape.retreat", None)):
            _index(nest, op, slot, before, after)
        changed = True
    return changed


def _chain(loop: Op | None, reverse: bool) -> list[Op]:
    """loop and the loops around it that make a perfect, rectangular nest of counted
    loops in one direction (index_tape), outermost first; [] when loop is not one."""
    if not (_counted(loop) and bool(loop.attrs.get("reverse")) == reverse):
        return []
    chain = [loop]
    while True:
        body = chain[0].parent
        outer = body.parent if body is not None else None
        if not (_counted(outer) and bool(outer.attrs.get("reverse")) == reverse) \
                or outer.results or any(op is not chain[0] and not is_pure(op)
                                        for op in body.ops[:-1]):
            return chain
        local = {r for op in body.ops for r in op.results} | set(body.args)
        if any(v in local for inner in chain for v in inner.operands[:3]):
            return chain
        chain.insert(0, outer)


def _matched(fwd: list[Op], rev: list[Op]) -> tuple[list[Op], list[Op]]:
    """The innermost levels of both chains whose loops have the same bounds."""
    k = 0
    while k < min(len(fwd), len(rev)) and fwd[-1 - k].operands[:3] == rev[-1 - k].operands[:3]:
        k += 1
    return (fwd[len(fwd) - k:], rev[len(rev) - k:]) if k else ([], [])


def _index(nest: list[Op], op: Op, slot: int, before: str, after: str | None) -> None:
    """Reserve (retreat) the nest's domain before it, advance after it, and give op the
    entry of its iteration."""
    outer = nest[0]
    parent = outer.parent
    b = Builder(parent, outer.loc)
    b.index = parent.ops.index(outer)
    counts = [trip_count(b, *loop.operands[:3]) for loop in nest]
    count = counts[0]
    for c in counts[1:]:
        count = b.op1("arith.mul", [count, c], i64)
    b.op(before, [count], attrs={"slot": slot})
    b.index += 1     # past the nest
    if after:
        b.op(after, [count], attrs={"slot": slot})
    entry = None
    for loop, trips in zip(nest, counts, strict=True):
        body = loop.regions[0]
        ib = Builder(body, loop.loc)
        ib.index = len(body.ops) - 1 if loop is not nest[-1] else 0
        if loop is not nest[-1]:
            ib.index = body.ops.index(next(o for o in body.ops if o.regions))
        here = ib.op1("arith.sub", [body.args[0], loop.operands[0]], i64)
        entry = here if entry is None else ib.op1(
            "arith.add", [ib.op1("arith.mul", [entry, trips], i64), here], i64)
    op.operands = list(op.operands) + [entry]


def _counted(loop) -> bool:
    """A sequential unit-step loop."""
    return loop is not None and isinstance(loop, Op) and loop.name == "scf.for" \
        and unit_step(loop)
