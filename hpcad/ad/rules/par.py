"""Rules of the `par` dialect. A parallel loop's tangents are carried like a for loop's, a
sum reduction's tangent is again a sum reduction; its adjoint is a parallel loop over the
same range (sum reductions broadcast their adjoint, adjoints of values from outside become
sum reductions, racing accumulations are made race-free afterwards by passes/race.py). A
fork-join's tangent and adjoint are fork-joins of the tasks' tangents and adjoints."""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from ...errors import DifferentiationError, where
from ...ir.core import Block, Op, Value
from ...ir.dialects import join_arities, reduction_kinds
from ...ir.types import Type, i64
from ..common import derivative_name
from .registry import defrule
from .scf import jvp_for

if TYPE_CHECKING:
    from ..regions import Region
    from .context import ForwardContext, ReverseContext


# what to write instead of a parallel reduction AD does not take, by its kind
_INSTEAD = {"mul": "accumulate a sum of logarithms instead (the product is np.exp of it)",
            "max": "write it as m = max(m, e), the form hpcad differentiates, or reduce in a "
                   "serial loop",
            "min": "write it as m = min(m, e), the form hpcad differentiates, or reduce in a "
                   "serial loop"}


def _sums_only(op: Op, kinds: list[str], slots: list[int]) -> None:
    for k in slots:
        if kinds[k] != "add":
            raise DifferentiationError(
                f"{where(op.loc)}: cannot differentiate a '{kinds[k]}' reduction of a "
                f"parallel loop; " + _INSTEAD.get(kinds[k], "accumulate a sum instead"))


def jvp_parallel_for(ctx: ForwardContext, op: Op) -> None:
    """(max/min reductions were made differentiable before AD; a product reduction has no
    parallel tangent form here.)"""
    kinds = reduction_kinds(op)
    tans, _ = ctx.slots(list(op.results))
    _sums_only(op, kinds, tans)
    new = jvp_for(ctx, op, name="par.parallel_for")
    new.attrs["reductions"] = ",".join(kinds + ["add"] * len(tans))


def _tangents(ctx: ForwardContext, values: list[Value], positions: list[int],
              start: int) -> list[Value]:
    return [ctx.tangent_or_zero(values[k - start]) for k in positions]


def jvp_join(ctx: ForwardContext, op: Op) -> None:
    """Each task computes its results' tangents too."""
    tans, _ = ctx.slots(list(op.results))
    blocks, arity, types, start = [], [], [], 0
    for region, n in zip(op.regions, join_arities(op), strict=True):
        mine = [k for k in tans if start <= k < start + n]
        nb = Block()
        term = ctx.region(region, nb)
        outs = [ctx.vmap.get(v, v) for v in term.operands]
        outs += ctx.in_block(nb, partial(_tangents, ctx, term.operands, mine, start))
        ctx.finish(nb, "scf.yield", outs)
        blocks.append(nb)
        arity.append(n + len(mine))
        types += [r.type for r in op.results[start:start + n]] + \
            [ctx.dtype(op.results[k]) for k in mine]
        start += n
    new = ctx.b.op("par.join", [], types, {"arity": ",".join(map(str, arity))},
                   regions=blocks)
    it = iter(new.results)
    start = 0
    for n in join_arities(op):
        for k in range(start, start + n):
            ctx.vmap[op.results[k]] = next(it)
        for k in [k for k in tans if start <= k < start + n]:
            ctx.tan[op.results[k]] = next(it)
        start += n


def vjp_parallel_for(ctx: ReverseContext, op: Op, region: Region) -> None:
    """A sum reduction's adjoint is broadcast to every iteration; adjoints of values from
    outside the loop are summed over iterations (a sum reduction); racy accumulations into
    shadows are made atomic afterwards (passes/race.py)."""
    body, kinds = op.regions[0], reduction_kinds(op)
    term, inits = body.ops[-1], op.operands[3:]
    work = ctx.region_adjoints(op)
    if work is None:
        return
    slots, free = work
    _sums_only(op, kinds, slots)
    b = ctx.b
    bounds = [ctx.primal(v, region) for v in op.operands[:3]]
    seeds = {k: ctx.adj.get(op.results[k]) for k in slots}
    rev = Block([Value(i64, body.args[0].name)]
                + [Value(ctx.dtype(f), derivative_name(f, "adj_")) for f in free])

    def totals() -> list[Value]:
        """Each iteration's part of the adjoints of values from outside, summed by the
        loop's reductions."""
        outs = []
        for f, part in zip(free, rev.args[1:], strict=True):
            local = ctx.adj.get(f)
            outs.append(part if local is None else b.op1("arith.add", [part, local],
                                                         part.type))
        return outs
    inner = ctx.reverse_region(body, region, rev, {},
                               [(term.operands[k], g) for k, g in seeds.items()], totals,
                               avail={body.args[0]: rev.args[0]})
    ctx.close_windows(inner, region)
    ctx.tape.close_segments(inner, b, bounds)
    outer_totals = [ctx.current(f) for f in free]
    loop = b.op("par.parallel_for", bounds + outer_totals, [t.type for t in outer_totals],
                attrs={"reductions": ",".join(["add"] * len(free)), "reverse": True},
                regions=[rev])
    for f, r in zip(free, loop.results, strict=True):   # first: an init may be one
        ctx.adj[f] = r
    for k in slots:
        ctx.adj.pop(op.results[k], None)
        g = seeds[k]
        if g is not None:
            ctx.add_adjoint(inits[k], g)


def vjp_join(ctx: ReverseContext, op: Op, region: Region) -> None:
    """Fork-join reversed: the tasks' adjoints run as tasks again (spawned where the
    primal synced, synced where it spawned); each returns its contributions to the
    adjoints of values from outside, summed after the join."""
    work = ctx.region_adjoints(op)
    if work is None:
        return
    slots, free = work
    seeds = {k: ctx.adj.get(op.results[k]) for k in slots}
    blocks, start = [], 0
    for task, n in zip(op.regions, join_arities(op), strict=True):
        term = task.ops[-1]
        rev = Block()
        ctx.reverse_region(task, region, rev, {},
                           [(term.operands[k - start], seeds.get(k))
                            for k in range(start, start + n)],
                           lambda: [ctx.current(f) for f in free])
        blocks.append(rev)
        start += n
    types: list[Type] = [ctx.dtype(f) for f in free] * len(blocks)
    new = ctx.b.op("par.join", [], types,
                   {"arity": ",".join([str(len(free))] * len(blocks))}, regions=blocks)
    for j, f in enumerate(free):
        parts = [new.results[t * len(free) + j] for t in range(len(blocks))]
        total = ctx.adj.get(f)
        for part in parts:
            total = part if total is None else ctx.b.op1("arith.add", [total, part],
                                                         part.type)
        ctx.adj[f] = parts[0] if total is None else total
    for k in slots:
        ctx.adj.pop(op.results[k], None)


defrule("par.parallel_for", jvp=jvp_parallel_for, vjp=vjp_parallel_for)
defrule("par.join", jvp=jvp_join, vjp=vjp_join)
