"""The rule tables: op name -> its forward-mode rule (`JVP`) and its reverse-mode rule
(`VJP`). Each rule module (arith, mem, scf, par, mpi, custom, tape) registers an op's two
rules side by side with `defrule`; the engines look rules up with `jvp_rule` / `vjp_rule`
and never name an op. An op without a rule is a DifferentiationError at the kernel's line
naming the op: never skipped, which would give a wrong derivative in silence."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ...errors import DifferentiationError, where
from ...ir.core import Op
from ...ir.dialects import OPS
from ...ir.effects import writes

if TYPE_CHECKING:
    from ..regions import Region
    from .context import ForwardContext, ReverseContext

JvpRule = Callable[["ForwardContext", Op], None]
VjpRule = Callable[["ReverseContext", Op, "Region"], None]

JVP: dict[str, JvpRule] = {}
VJP: dict[str, VjpRule] = {}

_HINT = {"forward": "ad.custom_jvp", "reverse": "ad.custom_vjp"}


def defrule(*names: str, jvp: JvpRule | None = None, vjp: VjpRule | None = None) -> None:
    """Register the forward and reverse rules of ops `names`."""
    for name in names:
        if jvp is not None:
            JVP[name] = jvp
        if vjp is not None:
            VJP[name] = vjp


def missing_rule(op: Op, mode: str) -> DifferentiationError:
    """The error for an op that has no rule in `mode`, at the kernel's line."""
    if op.dialect == "mpi":
        return DifferentiationError(
            f"{where(op.loc)}: the MPI call '{op.name[4:]}' has no {mode}-mode rule in hpcad; "
            f"move it into a kernel with an {_HINT[mode]} rule")
    return DifferentiationError(f"{where(op.loc)}: no {mode}-mode rule for '{op.name}'")


def jvp_rule(op: Op) -> JvpRule:
    rule = JVP.get(op.name)
    if rule is None:
        raise missing_rule(op, "forward")
    return rule


def vjp_rule(op: Op) -> VjpRule:
    rule = VJP.get(op.name)
    if rule is None:
        raise missing_rule(op, "reverse")
    return rule


def carries_derivative(ctx: ForwardContext | ReverseContext, op: Op) -> bool:
    """Whether a derivative reaches op: an active result, a result or a written array
    with a shadow."""
    act = ctx.act
    return any(act.active(r) or act.shadowed(r) for r in op.results) or \
        any(act.shadowed(a) for a in writes(op))


def constant_jvp(ctx: ForwardContext, op: Op) -> None:
    """The forward rule of an op whose results have no derivative by their nature
    (constants, comparisons, integers, handles): the op itself, its tangent zero."""
    ctx.clone(op)


def constant_vjp(ctx: ReverseContext, op: Op, region: Region) -> None:
    """The reverse rule of an op whose results have no derivative: nothing to add."""


def inert_jvp(ctx: ForwardContext, op: Op) -> None:
    """The forward rule of an op that no derivative reaches: the op itself."""
    if carries_derivative(ctx, op):
        raise _carries(op, "forward")
    ctx.clone(op)


def inert_vjp(ctx: ReverseContext, op: Op, region: Region) -> None:
    """The reverse rule of an op that no derivative reaches: nothing to do."""
    if carries_derivative(ctx, op):
        raise _carries(op, "reverse")


def _carries(op: Op, mode: str) -> DifferentiationError:
    what = "writes an array that carries a derivative" if writes(op) \
        else "computes a value that carries a derivative"
    return DifferentiationError(f"{where(op.loc)}: no {mode}-mode rule for '{op.name}', "
                                f"which {what}")


def unruled_ops() -> dict[str, list[str]]:
    """Per mode, the declared ops (terminators aside) without a rule: empty when every op
    the IR can hold has both."""
    ops = [name for name, spec in OPS.items() if spec.effect != "terminator"]
    return {"forward": [n for n in ops if n not in JVP],
            "reverse": [n for n in ops if n not in VJP]}
