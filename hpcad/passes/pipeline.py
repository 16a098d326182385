"""The optimization pipeline, run on the primal before AD and again on the derivative."""
from __future__ import annotations

from ..ir.core import Function, Module
from .cse import cse
from .dce import dce
from .fusion import fuse_loops
from .inline import inline_calls
from .licm import licm
from .memory import forward_memory
from .simplify import simplify
from .tape import prune_tape

PASSES = (simplify, cse, forward_memory, licm, fuse_loops, dce, prune_tape)


def optimize(fn: Function, max_rounds: int = 4) -> Function:
    for _ in range(max_rounds):
        changed = False
        for p in PASSES:
            changed |= p(fn)
        if not changed:
            break
    return fn


def optimize_module(module: Module) -> Function:
    """Inline every call into the entry function, then optimize it."""
    return optimize(inline_calls(module))
