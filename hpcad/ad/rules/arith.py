"""The derivative rules of elementary ops: one row per op, giving the partial derivative of
the result with respect to each operand, written with the primal operands (x, y) and the
result (r). Forward mode contracts them with tangents, reverse mode with the adjoint: both
rules of every row are registered here from the one row (`jvp_elementwise`,
`vjp_elementwise`).

A partial is a Value built with `b` (a `RuleBuilder`), a Python number for a constant
(1.0 and -1.0 cost nothing: the engines add or subtract instead of multiplying), or None for
an operand with no derivative (booleans, piecewise-constant ops)."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...ir.core import Block, Builder, Op, Value
from ...ir.types import Type, i1
from ..common import derivative_name
from .registry import constant_jvp, constant_vjp, defrule

if TYPE_CHECKING:
    from ..regions import Region
    from .context import ForwardContext, ReverseContext

Operand = Value | float
Partial = Value | float | None


class RuleBuilder:
    """The little arithmetic vocabulary rules are written in."""

    def __init__(self, builder: Builder) -> None:
        self.b = builder

    def const(self, value: float, like: Value) -> Value:
        return self.b.op1("arith.const", [], like.type, {"value": float(value)})

    def _v(self, v: Operand, like: Value) -> Value:
        return v if isinstance(v, Value) else self.const(v, like)

    def _bin(self, name: str, x: Operand, y: Operand) -> Value:
        like = x if isinstance(x, Value) else y
        assert isinstance(like, Value)
        return self.b.op1(name, [self._v(x, like), self._v(y, like)], like.type)

    def add(self, x: Operand, y: Operand) -> Value:
        return self._bin("arith.add", x, y)

    def sub(self, x: Operand, y: Operand) -> Value:
        return self._bin("arith.sub", x, y)

    def mul(self, x: Operand, y: Operand) -> Value:
        return self._bin("arith.mul", x, y)

    def div(self, x: Operand, y: Operand) -> Value:
        return self._bin("arith.div", x, y)

    def pow(self, x: Operand, y: Operand) -> Value:
        return self._bin("arith.pow", x, y)

    def neg(self, x: Value) -> Value:
        return self.b.op1("arith.neg", [x], x.type)

    def math(self, fn: str, x: Value) -> Value:
        return self.b.op1(f"math.{fn}", [x], x.type)

    def where(self, pred: str, x: Value, y: Value, a: Operand, c: Operand) -> Value:
        """select(x `pred` y, a, c) with a, c numbers or values of x's type."""
        cond = self.b.op1("arith.cmp", [x, y], i1, {"pred": pred})
        return self.b.op1("arith.select", [cond, self._v(a, x), self._v(c, x)], x.type)


def _base_where_power_is_zero(b: RuleBuilder, x: Value, r: Value) -> Value:
    """x, or 1 where r = x**y is 0, so that d/dy x**y = log(x) r is 0 there (the limit at
    x == 0 for y > 0) rather than log(0) * 0 = NaN; guarding the log's operand, not its
    product, keeps the inf out of every derivative of the rule too."""
    return b.where("eq", r, b.const(0.0, r), 1.0, x)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _gaussian(b: RuleBuilder, x: Value) -> Value:
    """exp(-x**2), the shape of erf's derivative."""
    return b.math("exp", b.neg(b.mul(x, x)))


def _over_norm(b: RuleBuilder, x: Value, r: Value) -> Value:
    """x / hypot(x, y), the partial of hypot; 0 where hypot is 0 (its kink at the origin,
    where x / r would be 0 / 0)."""
    return b.where("eq", r, b.const(0.0, r), 0.0, b.div(x, r))


# The table. Each row: op name -> one partial per operand.
PARTIALS: dict[str, tuple[Callable[..., Partial], ...]] = {
    "arith.add": (lambda b, x, y, r: 1.0, lambda b, x, y, r: 1.0),
    "arith.sub": (lambda b, x, y, r: 1.0, lambda b, x, y, r: -1.0),
    "arith.mul": (lambda b, x, y, r: y, lambda b, x, y, r: x),
    "arith.div": (lambda b, x, y, r: b.div(1.0, y), lambda b, x, y, r: b.neg(b.div(r, y))),
    "arith.neg": (lambda b, x, r: -1.0,),
    "arith.pow": (lambda b, x, y, r: b.mul(y, b.pow(x, b.sub(y, 1.0))),
                  lambda b, x, y, r: b.mul(b.math("log", _base_where_power_is_zero(b, x, r)),
                                           r)),
    "arith.min": (lambda b, x, y, r: b.where("le", x, y, 1.0, 0.0),
                  lambda b, x, y, r: b.where("le", x, y, 0.0, 1.0)),
    "arith.max": (lambda b, x, y, r: b.where("ge", x, y, 1.0, 0.0),
                  lambda b, x, y, r: b.where("ge", x, y, 0.0, 1.0)),
    "arith.floordiv": (lambda b, x, y, r: None, lambda b, x, y, r: None),
    "arith.mod": (lambda b, x, y, r: 1.0,
                  lambda b, x, y, r: b.neg(b.math("floor", b.div(x, y)))),
    "arith.select": (lambda b, c, x, y, r: None,
                     lambda b, c, x, y, r: b.b.op1("arith.select", [c, b.const(1.0, x),
                                                                    b.const(0.0, x)], x.type),
                     lambda b, c, x, y, r: b.b.op1("arith.select", [c, b.const(0.0, x),
                                                                    b.const(1.0, x)], x.type)),
    "arith.cast": (lambda b, x, r: 1.0,),
    "math.sin": (lambda b, x, r: b.math("cos", x),),
    "math.cos": (lambda b, x, r: b.neg(b.math("sin", x)),),
    "math.tan": (lambda b, x, r: b.add(1.0, b.mul(r, r)),),
    "math.exp": (lambda b, x, r: r,),
    "math.log": (lambda b, x, r: b.div(1.0, x),),
    "math.log1p": (lambda b, x, r: b.div(1.0, b.add(1.0, x)),),
    "math.expm1": (lambda b, x, r: b.add(r, 1.0),),
    "math.sqrt": (lambda b, x, r: b.div(0.5, r),),
    "math.tanh": (lambda b, x, r: b.sub(1.0, b.mul(r, r)),),
    "math.abs": (lambda b, x, r: b.where("ge", x, b.const(0.0, x), 1.0, -1.0),),
    "math.floor": (lambda b, x, r: None,),
    "math.ceil": (lambda b, x, r: None,),
    "math.atan": (lambda b, x, r: b.div(1.0, b.add(1.0, b.mul(x, x))),),
    "math.asin": (lambda b, x, r: b.div(1.0, b.math("sqrt", b.sub(1.0, b.mul(x, x)))),),
    "math.acos": (lambda b, x, r: b.neg(b.div(1.0, b.math("sqrt", b.sub(1.0, b.mul(x, x))))),),
    "math.sinh": (lambda b, x, r: b.math("cosh", x),),
    "math.asinh": (lambda b, x, r: b.div(1.0, b.math("sqrt", b.add(b.mul(x, x), 1.0))),),
    "math.acosh": (lambda b, x, r: b.div(1.0, b.math("sqrt", b.sub(b.mul(x, x), 1.0))),),
    "math.atanh": (lambda b, x, r: b.div(1.0, b.sub(1.0, b.mul(x, x))),),
    "math.cosh": (lambda b, x, r: b.math("sinh", x),),
    "math.log10": (lambda b, x, r: b.div(1.0 / math.log(10.0), x),),
    "math.log2": (lambda b, x, r: b.div(1.0 / math.log(2.0), x),),
    "math.atan2": (lambda b, y, x, r: b.div(x, b.add(b.mul(x, x), b.mul(y, y))),
                   lambda b, y, x, r: b.neg(b.div(y, b.add(b.mul(x, x), b.mul(y, y))))),
    "math.erf": (lambda b, x, r: b.mul(_TWO_OVER_SQRT_PI, _gaussian(b, x)),),
    "math.erfc": (lambda b, x, r: b.mul(-_TWO_OVER_SQRT_PI, _gaussian(b, x)),),
    "math.rint": (lambda b, x, r: None,),
    "math.hypot": (lambda b, x, y, r: _over_norm(b, x, r), lambda b, x, y, r: _over_norm(b, y, r)),
}

# Ops whose results never carry a derivative: constants, comparisons, logic, bit operations.
NON_DIFFERENTIABLE = ("arith.const", "arith.cmp", "arith.and", "arith.or", "arith.not",
                      "arith.bitand", "arith.bitor", "arith.bitxor", "arith.shl", "arith.shr")


_USES: dict[tuple[Any, ...], tuple[bool, ...]] = {}


def uses_of_partial(name: str, k: int, operand_types: list[Type],
                    result_type: Type) -> tuple[bool, ...]:
    """Which of (operands..., result) the k-th partial of op `name` reads. Reverse mode asks
    the forward sweep only for those, so that a linear op saves nothing."""
    key = (name, k, tuple(operand_types), result_type)
    got = _USES.get(key)
    if got is None:
        probes = [Value(t) for t in operand_types] + [Value(result_type)]
        block = Block()
        p = PARTIALS[name][k](RuleBuilder(Builder(block)), *probes)
        used = {v for op in block.ops for v in op.operands}
        if isinstance(p, Value):
            used.add(p)
        got = _USES[key] = tuple(v in used for v in probes)
    return got


def _scale(rb: RuleBuilder, t: Value, p: Value | float, result_type: Type) -> Value:
    if t.type != result_type:
        t = rb.b.op1("arith.cast", [t], result_type)
    if p == 1.0 and not isinstance(p, Value):
        return t
    if p == -1.0 and not isinstance(p, Value):
        return rb.neg(t)
    return rb.mul(t, p)


def jvp_elementwise(ctx: ForwardContext, op: Op) -> None:
    """The tangent of the result: the partials contracted with the operands' tangents."""
    new = ctx.clone(op)
    if not ctx.act.active(op.results[0]):
        return
    rb = RuleBuilder(ctx.b)
    total = None
    for k, v in enumerate(op.operands):
        t = ctx.tan.get(v)
        if t is None:
            continue
        p = PARTIALS[op.name][k](rb, *new.operands, new.results[0])
        if p is None:
            continue
        term = _scale(rb, t, p, ctx.dtype(new.results[0]))
        total = term if total is None else rb.add(total, term)
    if total is not None:
        total.name = derivative_name(new.results[0], "d_")
        ctx.tan[op.results[0]] = total


def vjp_elementwise(ctx: ReverseContext, op: Op, region: Region) -> None:
    """Each active operand's adjoint grows by the result's adjoint times its partial; the
    partial reads from the forward sweep only the primal values it uses."""
    g = ctx.adj.get(op.results[0])
    if g is None:
        return
    rb = RuleBuilder(ctx.b)
    primals = op.operands + op.results[:1]
    seen: dict[int, Value] = {}
    for k, v in enumerate(op.operands):
        if not ctx.act.active(v):
            continue
        used = uses_of_partial(op.name, k, [o.type for o in op.operands], op.results[0].type)
        args = []
        for j, (u, p_val) in enumerate(zip(used, primals, strict=True)):
            if u and j not in seen:
                seen[j] = ctx.primal(p_val, region)
            args.append(seen.get(j, p_val) if u else p_val)
        p = PARTIALS[op.name][k](rb, *args)
        if p is None:
            continue
        if isinstance(p, Value):
            term = rb.mul(g, p)
        elif p == 1.0:
            term = g
        elif p == -1.0:
            term = rb.neg(g)
        else:
            term = rb.mul(g, p)
        ctx.add_adjoint(v, term)


def defpartials(name: str, *partials: Callable[..., Partial]) -> None:
    """Register an elementwise op by its row of partials (one per operand, each called as
    `partial(b, *operands, result)`): forward and reverse mode both use the row."""
    PARTIALS[name] = partials
    for key in [key for key in _USES if key[0] == name]:
        del _USES[key]
    defrule(name, jvp=jvp_elementwise, vjp=vjp_elementwise)


defrule(*PARTIALS, jvp=jvp_elementwise, vjp=vjp_elementwise)
defrule(*NON_DIFFERENTIABLE, jvp=constant_jvp, vjp=constant_vjp)
