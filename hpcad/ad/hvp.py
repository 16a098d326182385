"""Hessian-vector products, forward over reverse: the reverse derivative's IR is a kernel
like any other, so forward mode differentiates it. What forward mode meets there beyond
the primal dialects is the tape: a saved value's tangent is saved on a second tape (slot
k + offset beside slot k), in the same places, and restored beside it (the tape's rules:
ad/rules/tape.py)."""
from __future__ import annotations

from ..ir.activity import CONST, DUP, SHADOW
from ..ir.clone import clone_op
from ..ir.core import Function, walk
from ..ir.types import ArrayType
from ..passes.activity import analyze
from .common import has_tangent


def slot_count(fn: Function) -> int:
    return 1 + max((op.attrs["slot"] for op in walk(fn.body) if op.dialect == "tape"),
                   default=-1)


def reverse_activity(primal: Function, kinds: tuple[str, ...]) -> list[str]:
    """Activities of the reverse derivative's arguments for its tangent: each primal
    argument as it was, its shadow (the adjoint array, whose tangent is the product) like it,
    the seeds constant."""
    out = []
    for a, kind in zip(primal.args, kinds, strict=False):
        out.append(kind)
        if isinstance(a.type, ArrayType) and has_tangent(a, kind):
            out.append(DUP if kind == DUP else SHADOW)
    return out


def forward_over_reverse(reverse_fn: Function, primal: Function,
                         kinds: tuple[str, ...]) -> tuple[Function, list[str]]:
    """(tangent function of reverse_fn, its activity) for directions in the primal arguments
    marked DUP/ACTIVE: its tangents of the shadows and of the scalar adjoints are H v."""
    from .forward import forward
    activity = reverse_activity(primal, kinds)
    activity += [CONST] * (len(reverse_fn.args) - len(activity))   # seeds
    act = analyze(reverse_fn, activity, True)
    offset = slot_count(reverse_fn)
    fn = forward(reverse_fn, activity, act, tape_offset=offset)
    reserve_tangent_slots(fn, offset)
    return fn, activity


def reserve_tangent_slots(fn: Function, offset: int) -> None:
    """A tangent slot takes the room its value's slot reserves (the reserve comes before the
    pushes that show whether the value has a tangent; an indexed slot filled in several
    loops is sized by it: backend/numba/tape.py)."""
    pushed = {op.attrs["slot"] for op in walk(fn.body) if op.name == "tape.push"}
    for op in list(walk(fn.body)):
        if op.name == "tape.reserve" and op.attrs["slot"] + offset in pushed:
            block = op.parent
            assert block is not None
            twin = clone_op(op, {})
            twin.attrs = {**op.attrs, "slot": op.attrs["slot"] + offset}
            twin.parent = block
            block.ops.insert(block.ops.index(op) + 1, twin)



