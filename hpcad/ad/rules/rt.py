"""Rules of the `rt` dialect, ops that talk to the user and carry no derivative. Both stay
in the primal part of a derivative, where the engines copy every primal op: a failed
`rt.assert` stops the derivative as it stops the primal (its condition is a primal value),
and nothing of it reaches the tangents or the adjoint sweep. `rt.progress` only appears in
reverse derivatives (the planner's sweeps), so only forward mode (Hessian-vector products)
meets it."""
from __future__ import annotations

from .registry import defrule, inert_jvp, inert_vjp

defrule("rt.assert", jvp=inert_jvp, vjp=inert_vjp)
defrule("rt.progress", jvp=inert_jvp)
