"""The optimization pipeline, run on the primal before AD and again on the derivative."""
from __future__ import annotations

from ..ir.core import Function, Module
from ..ir.verifier import verify_function
from .cse import cse
from .dce import dce
from .fusion import fuse_loops, fuse_peeled, fuse_shifted
from .gather import ascend_independent, gather_stencils
from .gather_nest import gather_nests
from .gather_parallel import gather_parallel
from .inline import inline_calls
from .licm import licm
from .memory import forward_memory
from .overwrite import sink_overwritten, sink_scratch_stores
from .race import guard_adjoint_starts, make_race_free
from .simplify import simplify
from .tape import index_tape, prune_tape

PASSES = (simplify, cse, forward_memory, licm, fuse_loops, fuse_peeled, dce, prune_tape)


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


def finish_derivative(fn: Function) -> Function:
    """A derivative as AD built it -> the code to compile: optimized, adjoint stencils of
    parallel loops in gather form (passes/gather_parallel.py; their starts checked first
    where unknown: guard_adjoint_starts), parallel loops made
    race-free (passes/race.py), then sequential reverse loops made vectorizable (tape
    slots indexed by iteration of their loop nest: passes/tape.py; gather form of scatter
    stencils over loop nests of depth 2 and more: passes/gather_nest.py, then of single
    loops, with the loops before and after fused in, and ascending independent loops:
    passes/gather.py), then a stencil and its copy
    back fused into one loop (passes/fusion.py, fuse_shifted), and stores that later
    iterations overwrite moved out of their loops (passes/overwrite.py); verified before
    and after."""
    verify_function(fn)
    fn = optimize(fn)
    guard_adjoint_starts(fn)
    if gather_parallel(fn):
        fn = optimize(fn)
    make_race_free(fn)
    fn = optimize(fn)
    if index_tape(fn) | gather_nests(fn) | gather_stencils(fn) | ascend_independent(fn):
        fn = optimize(fn)
    if fuse_shifted(fn):
        fn = optimize(fn)
    if sink_overwritten(fn) | sink_scratch_stores(fn):
        fn = optimize(fn)
    verify_function(fn)
    return fn
