"""A tiny rewrite driver shared by the passes: walk a block in order, let a callback replace
an op by values (or new ops), and substitute replaced values in every later use."""
from __future__ import annotations

from collections.abc import Callable

from ..ir.core import Block, Op, Value

# callback(op, new_ops) -> None to keep op, or the values replacing op's results (op removed);
# ops appended to new_ops are inserted where op was.
Rewrite = Callable[[Op, list], "list[Value] | None"]


def rewrite_block(block: Block, fn: Rewrite, replace: dict[Value, Value] | None = None) -> bool:
    """Apply `fn` to every op, regions first (so a loop sees its simplified body).
    Returns True if anything changed."""
    replace = {} if replace is None else replace
    changed = False
    out: list[Op] = []
    for op in block.ops:
        op.operands = [resolve(replace, v) for v in op.operands]
        for r in op.regions:
            changed |= rewrite_block(r, fn, replace)
        new_ops: list[Op] = []
        repl = fn(op, new_ops)
        for o in new_ops:
            o.parent = block
            if o.loc is None:
                o.loc = op.loc
        out.extend(new_ops)
        if repl is None:
            out.append(op)
        else:
            changed = True
            for r, v in zip(op.results, repl):
                replace[r] = resolve(replace, v)
    block.ops = out
    return changed


def resolve(replace: dict[Value, Value], v: Value) -> Value:
    while v in replace:
        v = replace[v]
    return v
