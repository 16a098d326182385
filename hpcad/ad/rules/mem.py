"""Rules of the `mem` dialect. A shadowed array's shadow holds its tangent (forward mode)
or its adjoint (reverse mode): a load's tangent is the same load of the shadow, a store's
tangent is a store into it; in reverse a load adds its adjoint into the shadow and a store
takes the adjoint out of it (zeroing it, since the store overwrote the value). Allocations
and views get their shadows in forward mode as they come, in reverse mode when first needed
(ReverseEngine.shadow)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...ir.core import Op
from ...ir.types import lanes
from ..common import array_type, derivative_name, zero
from .registry import constant_jvp, constant_vjp, defrule, inert_jvp, inert_vjp

if TYPE_CHECKING:
    from ..regions import Region
    from .context import ForwardContext, ReverseContext


def jvp_alloc(ctx: ForwardContext, op: Op) -> None:
    new = ctx.clone(op)
    if ctx.act.shadowed(op.results[0]):
        ctx.shadow[op.results[0]] = ctx.b.op1("mem.alloc", new.operands,
                                              ctx.dtype(op.results[0]), {"fill": "zeros"},
                                              name_hint=derivative_name(new.result, "d_"))


def jvp_view(ctx: ForwardContext, op: Op) -> None:
    """The tangent of a view (a slice, a reshape) is the same view of the base's tangent."""
    new = ctx.clone(op)
    if ctx.act.shadowed(op.results[0]):
        ctx.shadow[op.results[0]] = ctx.b.op1(
            op.name, [ctx.shadow_of(op.operands[0])] + new.operands[1:],
            ctx.dtype(op.results[0]), op.attrs, name_hint=derivative_name(new.result, "d_"))


def jvp_load(ctx: ForwardContext, op: Op) -> None:
    new = ctx.clone(op)
    arr = op.operands[0]
    if ctx.act.active(op.results[0]) and ctx.act.shadowed(arr):
        ctx.tan[op.results[0]] = ctx.b.op1(
            "mem.load", [ctx.shadow_of(arr)] + new.operands[1:], ctx.dtype(new.result),
            name_hint=derivative_name(new.result, "d_"))


def jvp_store(ctx: ForwardContext, op: Op) -> None:
    new = ctx.clone(op)
    arr = op.operands[1]
    if ctx.act.shadowed(arr):
        t = ctx.tangent_or_zero(op.operands[0])
        ctx.b.op("mem.store", [t, ctx.shadow_of(arr)] + new.operands[2:])


def jvp_accumulate(ctx: ForwardContext, op: Op) -> None:
    """The tangent accumulates where the value does, so it races where the value races and
    takes the value's race-free form (private copies or atomic adds: passes/race.py), which
    the parallel loop, cloned with its form, keeps (make_race_free passes it by); private
    copies hold arrays of one lane (race._privatizable), so a batched tangent adds
    atomically."""
    new = ctx.clone(op)
    arr = op.operands[1]
    t = ctx.tan.get(op.operands[0])
    if ctx.act.shadowed(arr) and t is not None:
        shadow = ctx.shadow_of(arr)
        race_free = {k: v for k, v in op.attrs.items() if k in ("private", "atomic")}
        if race_free and lanes(shadow.type) > 1:   # private copies hold one lane
            race_free = {"atomic": True}
        ctx.b.op("mem.accumulate", [t, shadow] + new.operands[2:], attrs=race_free)


def vjp_lazy_shadow(ctx: ReverseContext, op: Op, region: Region) -> None:
    """An allocation's or a view's shadow is made when the reverse sweep first needs it."""


def vjp_load(ctx: ReverseContext, op: Op, region: Region) -> None:
    g = ctx.adj.get(op.results[0])
    if not ctx.act.shadowed(op.operands[0]):
        return
    idx = [ctx.primal(v, region) for v in op.operands[1:]]
    if op in ctx.first_adjoint:   # the step's first adjoint of a scratch element
        value = g if g is not None else zero(ctx.b, ctx.dtype(op.operands[0]))
        ctx.b.op("mem.store", [value, ctx.shadow(op.operands[0], region)] + idx)
    elif g is not None:
        ctx.b.op("mem.accumulate", [g, ctx.shadow(op.operands[0], region)] + idx)


def vjp_store(ctx: ReverseContext, op: Op, region: Region) -> None:
    """A store's (or an accumulation's) value gets the adjoint of the element; a store
    overwrote the element, so its adjoint starts again from zero (but for the scratch
    fills whose zeroing is left out: ReverseEngine.kept_adjoint)."""
    value, arr = op.operands[0], op.operands[1]
    if not ctx.act.shadowed(arr):
        return
    sh = ctx.shadow(arr, region)
    idx = [ctx.primal(v, region) for v in op.operands[2:]]
    active = ctx.act.active(value)
    if op.name == "mem.store" or active:
        g = ctx.b.op1("mem.load", [sh] + idx, array_type(sh).dtype)
        if op.name == "mem.store" and op not in ctx.kept_adjoint:
            ctx.b.op("mem.store", [zero(ctx.b, array_type(arr).dtype), sh] + idx)
        if active:
            ctx.add_adjoint(value, g)


def jvp_fill(ctx: ForwardContext, op: Op) -> None:
    """Every element = value: every tangent element = value's tangent (zero if none)."""
    ctx.clone(op)
    arr = op.operands[1]
    if ctx.act.shadowed(arr):
        ctx.b.op("mem.fill", [ctx.tangent_or_zero(op.operands[0]), ctx.shadow_of(arr)])


def jvp_copy(ctx: ForwardContext, op: Op) -> None:
    """destination = source (or += source): the same of the tangents; a source without a
    tangent copies zeros (and adds nothing)."""
    ctx.clone(op)
    src, dst = op.operands
    if not ctx.act.shadowed(dst):
        return
    if ctx.act.shadowed(src):
        ctx.b.op(op.name, [ctx.shadow_of(src), ctx.shadow_of(dst)])
    elif op.name == "mem.copy":
        sh = ctx.shadow_of(dst)
        ctx.b.op("mem.fill", [zero(ctx.b, array_type(sh).dtype), sh])


defrule("mem.alloc", jvp=jvp_alloc, vjp=vjp_lazy_shadow)
defrule("mem.view", "mem.reshape", jvp=jvp_view, vjp=vjp_lazy_shadow)
defrule("mem.load", jvp=jvp_load, vjp=vjp_load)
defrule("mem.store", jvp=jvp_store, vjp=vjp_store)
defrule("mem.accumulate", jvp=jvp_accumulate, vjp=vjp_store)
defrule("mem.shape", jvp=constant_jvp, vjp=constant_vjp)   # an integer
defrule("mem.fill", jvp=jvp_fill, vjp=inert_vjp)
defrule("mem.copy", "mem.add_into", jvp=jvp_copy, vjp=inert_vjp)
# in the reverse, fill/copy/add_into come only from derivative code (forward over reverse
# reads them); the error names the op where a derivative reaches one
defrule("mem.bitcast", jvp=inert_jvp, vjp=inert_vjp)
