"""Rules of the `scf` dialect. Forward mode carries tangents (scalars) and shadows (arrays)
next to the primal values through loops and branches. Reverse mode reverses each region
with the engine's one `reverse_region`: a branch's reverse is a branch of the regions'
reverses, a loop's a loop running backwards (`ReverseEngine.reverse_loop`, which time-loop
checkpointing also calls for its segments)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...ir.core import Block, Op, Value
from .registry import defrule

if TYPE_CHECKING:
    from ..regions import Region
    from .context import ForwardContext, ReverseContext


def jvp_for(ctx: ForwardContext, op: Op, name: str = "scf.for") -> Op:
    """The loop carrying its values' tangents and shadows too; `name` the loop op made
    (par/parallel_for's rule reuses this one)."""
    body = op.regions[0]
    tans, shadows = ctx.slots(list(op.results))
    inits = ctx.extended(op.operands[3:], tans, shadows)
    new_body = Block([Value(body.args[0].type, body.args[0].name)]
                     + ctx.new_args(body.args[1:], tans, shadows))
    ctx.vmap[body.args[0]] = new_body.args[0]
    ctx.bind(body.args[1:], new_body.args[1:], tans, shadows)
    term = ctx.region(body, new_body)
    ctx.finish(new_body, "scf.yield", ctx.extended_in(new_body, term.operands, tans, shadows))
    new: Op = ctx.b.op(name, [ctx.vmap.get(v, v) for v in op.operands[:3]] + inits,
                       [v.type for v in inits], dict(op.attrs), regions=[new_body])
    ctx.name_results(new, op, tans, shadows)
    return new


def jvp_while(ctx: ForwardContext, op: Op) -> None:
    before, after = op.regions
    tans, shadows = ctx.slots(list(op.results))
    inits = ctx.extended(op.operands, tans, shadows)
    new_before = Block(ctx.new_args(before.args, tans, shadows))
    ctx.bind(before.args, new_before.args, tans, shadows)
    cond = ctx.region(before, new_before)
    ctx.finish(new_before, "scf.condition", [ctx.vmap.get(cond.operands[0], cond.operands[0])]
               + ctx.extended_in(new_before, cond.operands[1:], tans, shadows))
    new_after = Block(ctx.new_args(after.args, tans, shadows))
    ctx.bind(after.args, new_after.args, tans, shadows)
    term = ctx.region(after, new_after)
    ctx.finish(new_after, "scf.yield", ctx.extended_in(new_after, term.operands, tans, shadows))
    new = ctx.b.op("scf.while", inits, [v.type for v in inits], regions=[new_before, new_after])
    ctx.name_results(new, op, tans, shadows)


def jvp_if(ctx: ForwardContext, op: Op) -> None:
    tans, shadows = ctx.slots(list(op.results))
    blocks = []
    for region in op.regions:
        nb = Block()
        term = ctx.region(region, nb)
        ctx.finish(nb, "scf.yield", ctx.extended_in(nb, term.operands, tans, shadows))
        blocks.append(nb)
    types = [r.type for r in op.results] + [ctx.dtype(op.results[k]) for k in tans] \
        + [ctx.dtype(op.results[k]) for k in shadows]
    new = ctx.b.op("scf.if", [ctx.vmap.get(op.operands[0], op.operands[0])], types,
                   regions=blocks)
    ctx.name_results(new, op, tans, shadows)


def vjp_loop(ctx: ReverseContext, op: Op, region: Region) -> None:
    ctx.reverse_loop(op, region)


def vjp_if(ctx: ReverseContext, op: Op, region: Region) -> None:
    """A branch of the regions' reverses; each starts from the adjoints of the values from
    outside that it may update and yields them."""
    work = ctx.region_adjoints(op)
    if work is None:
        return
    slots, free = work
    outer = ctx.adj
    cond = ctx.primal(op.operands[0], region)
    blocks = []
    for branch in op.regions:
        term = branch.ops[-1]
        rev = Block()
        ctx.reverse_region(branch, region, rev, {f: outer[f] for f in free if f in outer},
                           [(term.operands[k], outer.get(op.results[k])) for k in slots],
                           lambda: [ctx.current(f) for f in free])
        blocks.append(rev)
    new = ctx.b.op("scf.if", [cond], [ctx.dtype(f) for f in free], regions=blocks)
    for f, r in zip(free, new.results, strict=True):
        ctx.adj[f] = r


def jvp_scf_for(ctx: ForwardContext, op: Op) -> None:
    jvp_for(ctx, op)


defrule("scf.for", jvp=jvp_scf_for, vjp=vjp_loop)
defrule("scf.while", jvp=jvp_while, vjp=vjp_loop)
defrule("scf.if", jvp=jvp_if, vjp=vjp_if)
