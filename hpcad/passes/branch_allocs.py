"""Before a reverse sweep: arrays that an `if` at the function's top level allocates (the
statements after an early `return` in a loop run inside one) are allocated before the `if`,
with the integer ops their extents are computed from. The reverse sweep of a matrix product
reads its operands whole, and an array made inside a branch is not visible where the
reverse of the branch runs (ad/rules/linalg.py); one made before it is. The allocation then
runs whether the branch does or not (only where its extents cannot be negative, so that it
cannot fail where the branch would not have run): memory, no other effect. Nested `if`s
move theirs up level by level."""
from __future__ import annotations

from ..ir.core import Block, Function, Op, Value, walk
from ..ir.dialects import is_pure
from ..ir.types import ScalarType
from .licm import may_trap


def _integer(op: Op) -> bool:
    """A pure op of integers and booleans that cannot trap (an extent's arithmetic)."""
    return is_pure(op) and not op.regions and not may_trap(op) and all(
        isinstance(r.type, ScalarType) and not r.type.is_float for r in op.results)


def _never_negative(v: Value) -> bool:
    """Whether an extent is at least 0 on every path (a shape, a constant, a max with one
    that is, sums, products and mins of such): an allocation moved where its branch may not
    run must not fail where the branch would not have run."""
    op = v.owner
    if not isinstance(op, Op):
        return False
    if op.name == "mem.shape":
        return True
    if op.name == "arith.const":
        value = op.attrs.get("value")
        return isinstance(value, int) and value >= 0
    if op.name == "arith.max":
        return any(_never_negative(o) for o in op.operands)
    if op.name in ("arith.min", "arith.add", "arith.mul"):
        return all(_never_negative(o) for o in op.operands)
    return False


def _hoist_from(branch_if: Op) -> list[Op]:
    """The ops that can move out of an `if` in front of it, taken out of its blocks."""
    moved: list[Op] = []
    inside: set[Value] = set()
    for block in branch_if.regions:
        for op in block.ops:
            for v in [*op.results, *(a for r in op.regions for o in walk(r)
                                     for a in o.results)]:
                inside.add(v)
    for block in branch_if.regions:
        _hoist_nested(block)
        kept = []
        for op in block.ops:
            ready = not any(v in inside for v in op.operands)
            alloc = op.name == "mem.alloc" and all(_never_negative(d) for d in op.operands)
            if ready and not op.regions and (alloc or _integer(op)):
                moved.append(op)
                inside.difference_update(op.results)
            else:
                kept.append(op)
        block.ops = kept
    return moved


def _hoist_nested(block: Block) -> bool:
    out, changed = [], False
    for op in block.ops:
        if op.name == "scf.if":
            moved = _hoist_from(op)
            for m in moved:
                m.parent = block
            out.extend(moved)
            changed |= bool(moved)
        out.append(op)
    block.ops = out
    return changed


def branch_allocations(fn: Function) -> bool:
    """Whether a top-level `if` of the function allocates an array."""
    return any(op.name == "scf.if" and any(o.name == "mem.alloc" for r in op.regions
                                           for o in walk(r)) for op in fn.body.ops)


def hoist_branch_allocations(fn: Function) -> bool:
    """Move the allocations of the function's top-level `if`s (and their extents) in front
    of them, in place; whether anything moved."""
    return branch_allocations(fn) and _hoist_nested(fn.body)
