"""Differentiating a kernel that takes a derivative inside (nested AD, frontend/nested.py):
its IR holds the inner derivative inlined, tape included where the inner one is a reverse
sweep that saves values. Forward mode carries a saved value's tangent on a second tape (as
for Hessian-vector products, ad/hvp.py); reverse mode over such a tape is refused."""
from __future__ import annotations

from ..errors import DifferentiationError, where
from ..ir.core import Function, Op, walk
from .hvp import reserve_tangent_slots, slot_count


def tape_offset(primal: Function, width: int) -> int:
    """The first tangent slot for forward mode over `primal` (0 if it keeps no tape)."""
    offset = slot_count(primal)
    if offset and width != 1:
        raise DifferentiationError(f"{_taped_at(primal)}: forward mode at width {width} over "
                                   f"a reverse derivative taken inside the kernel, whose "
                                   f"sweep saves values of the loop here on a tape, is not "
                                   f"supported; use width 1 (jacobian batch=1), or ad.jvp for "
                                   f"the inner derivative")
    return offset


def finish_forward(fn: Function, offset: int) -> None:
    if offset:
        reserve_tangent_slots(fn, offset)


def refuse_reverse_over_tape(primal: Function) -> None:
    """Reverse mode would have to run the inner sweep's tape backwards: refused."""
    if slot_count(primal):
        raise DifferentiationError(
            f"{_taped_at(primal)}: reverse mode over a reverse derivative taken inside the "
            f"kernel is not supported: the reverse sweep of an ad.grad, ad.value_and_grad or "
            f"vjp_fn called in kernel code saves values of the loop here on a tape; take that "
            f"inner derivative with ad.jvp (forward mode), or differentiate the outer kernel "
            f"in forward mode (ad.jvp, ad.jacobian(mode='fwd'))")


def _taped_at(fn: Function) -> str:
    """file:line of the first tape op that has one, or of the innermost op around it that
    has one (a `while` loop's tape ops, an early return's, carry none)."""
    for op in walk(fn.body):
        if op.dialect != "tape":
            continue
        at: Op | None = op
        while at is not None and at.loc is None:
            at = at.parent.parent if at.parent is not None else None
        if at is not None:
            return where(at.loc)
    return where(None)
