"""Forward-mode rules of the `tape` dialect, for Hessian-vector products (ad/hvp.py: forward
mode over the reverse derivative's IR): a saved value's tangent is saved on a second tape
(slot k + offset beside slot k), in the same places, and restored beside it. Reverse mode
never meets the tape (it writes it), so these ops have no reverse rule."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...ir.core import Op
from .registry import defrule, inert_jvp

if TYPE_CHECKING:
    from .context import ForwardContext


def tangent_slot(ctx: ForwardContext, op: Op) -> dict[str, Any]:
    return {"slot": op.attrs["slot"] + ctx.tape_offset}


def jvp_push(ctx: ForwardContext, op: Op) -> None:
    """A slot's pushes and pops are one variable (passes/aliases.variable_classes), so activity
    says alike for all of them whether the slot has a tangent twin: a push whose own value
    has no tangent (its class is active through another of the slot's values, or through a
    loop-carried value it shares a class with) pushes a zero, so every pop finds one."""
    new = ctx.clone(op)
    if ctx.act.active(op.operands[0]):
        ctx.b.op("tape.push", [ctx.tangent_or_zero(op.operands[0])] + new.operands[1:],
                 attrs=tangent_slot(ctx, op))
        ctx.taped.add(op.attrs["slot"])


def jvp_pop(ctx: ForwardContext, op: Op) -> None:
    new = ctx.clone(op)
    if ctx.act.active(op.results[0]):
        ctx.tan[op.results[0]] = ctx.b.op1("tape.pop", new.operands, new.result.type,
                                           tangent_slot(ctx, op))


def jvp_move(ctx: ForwardContext, op: Op) -> None:
    """advance/retreat: the tangent's slot moves with the value's."""
    new = ctx.clone(op)
    if op.attrs["slot"] in ctx.taped:
        ctx.b.op(op.name, new.operands, attrs=tangent_slot(ctx, op))


defrule("tape.push", jvp=jvp_push)
defrule("tape.pop", jvp=jvp_pop)
defrule("tape.advance", "tape.retreat", jvp=jvp_move)
defrule("tape.reserve", jvp=inert_jvp)   # (hvp.py reserves the tangent slots)
