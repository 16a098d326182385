"""Copying ops and blocks with a value mapping (used by inlining and by the reverse sweep
when it recomputes forward values)."""
from __future__ import annotations

from .core import Block, Function, Op, Value


def clone_op(op: Op, vmap: dict[Value, Value]) -> Op:
    """A deep copy of `op` whose operands are looked up in `vmap` (identity if absent);
    its results and nested block args are added to `vmap`."""
    new = Op(op.name, [vmap.get(v, v) for v in op.operands], [r.type for r in op.results],
             op.attrs, loc=op.loc, result_names=[r.name for r in op.results])
    for region in op.regions:
        new.add_region(clone_block(region, vmap))
    for old, nv in zip(op.results, new.results, strict=True):
        vmap[old] = nv
    return new


def clone_block(block: Block, vmap: dict[Value, Value]) -> Block:
    new = Block([Value(a.type, a.name) for a in block.args])
    for old, nv in zip(block.args, new.args, strict=True):
        vmap[old] = nv
    for op in block.ops:
        c = clone_op(op, vmap)
        c.parent = new
        new.ops.append(c)
    return new


def clone_function(fn: Function) -> Function:
    """A deep copy of a function (transformations that rewrite it keep the original)."""
    vmap: dict[Value, Value] = {}
    body = clone_block(fn.body, vmap)
    return Function(fn.name, body, list(fn.result_types), list(fn.arg_names), fn.loc)
