"""Loop-invariant code motion: pure ops of a loop body whose operands are all defined outside
the loop move in front of it. Ops that can trap (integer division) stay, since the loop may
run zero times; float ops cannot trap under the IEEE semantics hpcad uses."""
from __future__ import annotations

from ..ir.core import Block, Function, Op, Value
from ..ir.dialects import is_pure

_TRAPPING = {"arith.floordiv", "arith.mod", "arith.div", "arith.pow"}


def _may_trap(op: Op) -> bool:
    return op.name in _TRAPPING and not op.results[0].type.is_float


def _hoist_block(block: Block) -> bool:
    changed = False
    out = []
    for op in block.ops:
        for r in op.regions:
            changed |= _hoist_block(r)
        if op.name in ("scf.for", "scf.while"):
            hoisted = _hoist_from(op)
            for h in hoisted:
                h.parent = block
            out.extend(hoisted)
            changed |= bool(hoisted)
        out.append(op)
    block.ops = out
    return changed


def _hoist_from(loop: Op) -> list[Op]:
    inside: set[Value] = set()
    for region in loop.regions:
        _defined_in(region, inside)
    hoisted = []
    for region in loop.regions:
        kept = []
        for op in region.ops:
            if (is_pure(op) and not op.regions and not _may_trap(op)
                    and not any(v in inside for v in op.operands)):
                hoisted.append(op)
                inside.difference_update(op.results)
            else:
                kept.append(op)
        region.ops = kept
    return hoisted


def _defined_in(block: Block, acc: set) -> None:
    acc.update(block.args)
    for op in block.ops:
        acc.update(op.results)
        for r in op.regions:
            _defined_in(r, acc)


def licm(fn: Function) -> bool:
    return _hoist_block(fn.body)
