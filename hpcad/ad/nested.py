"""Differentiating a kernel that takes a derivative inside (nested AD, frontend/nested.py):
its IR holds the inner derivative inlined, tape included where the inner one is a reverse
sweep that saves values. Forward mode carries a saved value's tangent on a second tape (as
for Hessian-vector products, ad/hvp.py); reverse mode over such a tape is refused."""
from __future__ import annotations

from ..errors import DifferentiationError, where
from ..ir.core import Function, walk
from .hvp import reserve_tangent_slots, slot_count


def tape_offset(primal: Function, width: int) -> int:
    """The first tangent slot for forward mode over `primal` (0 if it keeps no tape)."""
    offset = slot_count(primal)
    if offset and width != 1:
        raise DifferentiationError(f"{_taped_at(primal)}: forward mode at width {width} over "
                                   f"a reverse derivative taken inside this kernel that keeps "
                                   f"a tape; use width 1 (jacobian batch=1), or ad.jvp for "
                                   f"the inner derivative")
    return offset


def finish_forward(fn: Function, offset: int) -> None:
    if offset:
        reserve_tangent_slots(fn, offset)


def refuse_reverse_over_tape(primal: Function) -> None:
    """Reverse mode would have to run the inner sweep's tape backwards: refused."""
    if slot_count(primal):
        raise DifferentiationError(
            f"{_taped_at(primal)}: reverse mode over a reverse derivative taken inside this "
            f"kernel (ad.grad or ad.value_and_grad of a kernel whose loop saves values on a "
            f"tape) is not supported; take the inner derivative with ad.jvp (forward mode), "
            f"or differentiate the outer kernel in forward mode (ad.jvp, "
            f"ad.jacobian(mode='fwd'))")


def _taped_at(fn: Function) -> str:
    return where(next(op.loc for op in walk(fn.body) if op.dialect == "tape"))
