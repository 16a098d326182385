"""Gather form of the adjoint stencils of parallel loops, in place of the two-colour
chunked form (passes/coloring.py). The adjoint of `for i in prange(..): tmp[i] = f(u[i-1],
u[i], u[i+1])` accumulates into d_u[i-1], d_u[i], d_u[i+1] from neighbouring iterations:
a race, which two colours of chunks avoid at the cost of two parallel regions and a
scatter loop LLVM does not vectorize. The gather form (passes/gather.py for one loop,
passes/gather_nest.py for nests of any depth) computes each element of d_u once, in an
iteration of its own, from terms recomputed at the shifted iterations: its interior, over
the parallel loop's level, is a parallel loop again, each iteration writing only its own
element (or row), one region; its guarded ends (a few elements) run serially. What is left
of the loop (the zeroing of the adjoint it read, sums of parameter adjoints) stays a
parallel loop after the gather, or, when it writes no memory, runs inside the gather's
interior (its sums as the interior's reductions: one region in all). When it is the
zeroing of the adjoint a time step's sweep overwrote, and the next step's gather
accumulates into that array, it runs in that gather instead (passes/gather_deferred.py:
one region per step). The interior says `race_free = "gathered"`.

The gather passes' legality conditions are those of a sequential loop: a parallel loop
whose only races are the accumulations being gathered is one (its iterations in any
order give the same values, and the gather adds each element's terms in the ascending
order). Every other access is untouched; race analysis (passes/race.py) runs afterwards
on what is left of the loop, and checks here that each interior is race-free (an internal
error if not)."""
from __future__ import annotations

from ..errors import DifferentiationError, where
from ..ir.core import Builder, Function, Op, walk
from ..ir.dialects import in_parallel
from ..ir.effects import writes
from .affine import perfect_nest, simple_body
from .gather import fuse_rest as fuse_rest_loop
from .gather import scatter_stencils, to_gather_form
from .gather_deferred import deferrable, not_first_step, zero_after
from .gather_nest import emit_gather, nest_gathers
from .race import Accesses, loop_conflicts


def _writes_memory(loop: Op) -> bool:
    return any(op.name in ("mem.store", "mem.accumulate") or writes(op)
               for op in walk(loop.regions[0]))


def _parallel(loop: Op) -> None:
    """Make a sequential loop (of independent iterations, carrying sums) parallel."""
    loop.name = "par.parallel_for"
    loop.attrs = {"reductions": ",".join(["add"] * len(loop.results)), "race_free": "gathered"}


def _gather_loop(loop: Op, acc: Accesses) -> str | None:
    """A single loop's stencils gathered (passes/gather.py, under its conditions: a simple
    body, no inner loops or private arrays), the rest fused into a lone
    gather's interior when it writes no memory. Returns None when nothing changed, else
    "fused" (what is left of the loop is its last few iterations: a serial loop) or
    "gathered"."""
    stencils = scatter_stencils(loop, acc) if simple_body(loop) else None
    if not stencils:
        return None
    deferral = deferrable(stencils[0].nest, stencils, acc)
    b = Builder(loop.parent, loop.loc)
    fused = False
    for s in stencils:
        b.index = loop.parent.ops.index(loop)
        if deferral is not None and deferral.gather is s:
            s.zeroed = not_first_step(b, deferral.time_loop)
        interior = to_gather_form(s, b, acc, False)
        if len(stencils) == 1 and not _writes_memory(loop):
            fused = fuse_rest_loop(s, interior, acc)
        _parallel(interior)
    if deferral is not None:
        zero_after(deferral, loop)
    return "fused" if fused else "gathered"


def _gather_nest(loop: Op, acc: Accesses) -> bool:
    """A nest's stencils gathered (passes/gather_nest.py); the rest stays after them."""
    nest = perfect_nest(loop)
    if nest is None or nest.depth < 2:
        return False
    found = nest_gathers(nest, acc)
    deferral = deferrable(nest, found, acc)
    spans: dict[tuple, list] = {}
    for g in found:
        spans.setdefault(tuple(g.span(lv) for lv in range(nest.depth)), []).append(g)
    for gathers in spans.values():
        b = Builder(loop.parent, loop.loc)
        b.index = loop.parent.ops.index(loop)
        if deferral is not None and deferral.gather in gathers:
            deferral.gather.zeroed = not_first_step(b, deferral.time_loop)
        _parallel(emit_gather(b, gathers))
        for g in gathers:
            for _, op in g.terms:
                nest.inner.ops.remove(op)
    if deferral is not None:
        zero_after(deferral, loop)
    return bool(spans)


def gather_parallel(fn: Function) -> bool:
    """Rewrite the racing stencil accumulations of parallel loops (outside other parallel
    code) into gather form (module docstring). Returns whether anything changed."""
    acc = Accesses(fn)
    changed = False
    for loop in [op for op in walk(fn.body) if op.name == "par.parallel_for"]:
        if in_parallel(loop) or loop.attrs.get("race_free") or loop.attrs.get("allow_races") \
                or not loop_conflicts(loop, acc):
            continue
        attrs = loop.attrs
        loop.name, loop.attrs = "scf.for", {k: v for k, v in attrs.items() if k == "reverse"}
        try:
            done = "gathered" if _gather_nest(loop, acc) else _gather_loop(loop, acc)
        finally:
            loop.name, loop.attrs = "par.parallel_for", attrs
        if done == "fused":
            loop.name, loop.attrs = "scf.for", {}
        changed |= done is not None
    if changed:
        _check_interiors(fn)
    return changed


def _check_interiors(fn: Function) -> None:
    """Each gather interior is race-free (by construction: it writes its own elements of
    the gathered arrays only, which nothing else in it touches)."""
    acc = Accesses(fn)
    for loop in walk(fn.body):
        if loop.attrs.get("race_free") == "gathered" and loop_conflicts(loop, acc):
            raise DifferentiationError(
                f"{where(loop.loc)}: internal: the gather form of this parallel loop's "
                f"adjoint would race; please report it")
