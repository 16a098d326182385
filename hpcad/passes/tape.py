"""Tape pruning: a saved value that the reverse sweep never reads is not saved. Reverse mode
asks for every primal value a rule might use; this pass drops the slots nobody uses."""
from __future__ import annotations

from ..ir.core import Block, Function, uses, walk


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
