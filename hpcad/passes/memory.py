"""Memory forwarding within a block: a load of an element that the block just stored or
loaded (same array class, same index values, no write to that class in between) reuses the
value; adjacent accumulations into the same element are summed first. Nested regions start
afresh and invalidate the classes they write."""
from __future__ import annotations

from ..ir.core import Block, Function, Op, Value, walk
from .aliases import variable_classes
from .rewrite import resolve


def _written_classes(op: Op, key) -> set:
    return {key(o.operands[1]) for r in op.regions for o in walk(r)
            if o.name in ("mem.store", "mem.accumulate")}


def _forward_block(block: Block, key, replace: dict[Value, Value]) -> bool:
    known: dict[tuple, Value] = {}
    changed = False
    kept: list[Op] = []
    for op in block.ops:
        op.operands = [resolve(replace, v) for v in op.operands]
        for r in op.regions:
            changed |= _forward_block(r, key, replace)
        if op.regions:
            dirty = _written_classes(op, key)
            known = {k: v for k, v in known.items() if k[0] not in dirty}
        elif op.name == "mem.load":
            element = (key(op.operands[0]),) + tuple(op.operands[1:])
            got = known.get(element)
            if got is not None:
                replace[op.results[0]] = got
                changed = True
                continue
            known[element] = op.results[0]
        elif op.name in ("mem.store", "mem.accumulate"):
            cls = key(op.operands[1])
            known = {k: v for k, v in known.items() if k[0] != cls}
            if op.name == "mem.store":
                known[(cls,) + tuple(op.operands[2:])] = op.operands[0]
        kept.append(op)
    block.ops = kept
    return changed


def _combine_accumulates(block: Block) -> bool:
    """`a[i] += x; a[i] += y` -> `a[i] += x + y` when nothing in between touches memory."""
    changed = False
    for op in block.ops:
        for r in op.regions:
            changed |= _combine_accumulates(r)
    out: list[Op] = []
    for op in block.ops:
        prev = out[-1] if out else None
        if (op.name == "mem.accumulate" and prev is not None and prev.name == "mem.accumulate"
                and prev.operands[1:] == op.operands[1:]):
            total = Op("arith.add", [prev.operands[0], op.operands[0]], [op.operands[0].type],
                       loc=op.loc)
            total.parent = block
            out[-1] = total
            op.operands[0] = total.results[0]
            changed = True
        elif (op.name == "mem.accumulate" and len(out) >= 2 and prev.dialect in ("arith", "math")
              and out[-2].name == "mem.accumulate" and out[-2].operands[1:] == op.operands[1:]):
            earlier = out.pop(-2)
            total = Op("arith.add", [earlier.operands[0], op.operands[0]],
                       [op.operands[0].type], loc=op.loc)
            total.parent = block
            out.append(total)
            op.operands[0] = total.results[0]
            changed = True
        out.append(op)
    block.ops = out
    return changed


def forward_memory(fn: Function) -> bool:
    key = variable_classes(fn).find
    changed = _forward_block(fn.body, key, {})
    return _combine_accumulates(fn.body) or changed
