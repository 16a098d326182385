"""The derivative rules of elementary ops: one row per op, giving the partial derivative of
the result with respect to each operand, written with the primal operands (x, y) and the
result (r). Forward mode contracts them with tangents, reverse mode with the adjoint.

A partial is a Value built with `b` (a `RuleBuilder`), a Python number for a constant
(1.0 and -1.0 cost nothing: the engines add or subtract instead of multiplying), or None for
an operand with no derivative (booleans, piecewise-constant ops)."""
from __future__ import annotations

import math

from ..ir.core import Block, Builder, Value
from ..ir.types import i1


class RuleBuilder:
    """The little arithmetic vocabulary rules are written in."""

    def __init__(self, builder: Builder):
        self.b = builder

    def const(self, value: float, like: Value) -> Value:
        return self.b.op1("arith.const", [], like.type, {"value": float(value)})

    def _v(self, v, like):
        return v if isinstance(v, Value) else self.const(v, like)

    def _bin(self, name, x, y):
        like = x if isinstance(x, Value) else y
        return self.b.op1(name, [self._v(x, like), self._v(y, like)], like.type)

    def add(self, x, y):
        return self._bin("arith.add", x, y)

    def sub(self, x, y):
        return self._bin("arith.sub", x, y)

    def mul(self, x, y):
        return self._bin("arith.mul", x, y)

    def div(self, x, y):
        return self._bin("arith.div", x, y)

    def pow(self, x, y):
        return self._bin("arith.pow", x, y)

    def neg(self, x):
        return self.b.op1("arith.neg", [x], x.type)

    def math(self, fn, x):
        return self.b.op1(f"math.{fn}", [x], x.type)

    def where(self, pred, x, y, a, c):
        """select(x `pred` y, a, c) with a, c numbers or values of x's type."""
        cond = self.b.op1("arith.cmp", [x, y], i1, {"pred": pred})
        return self.b.op1("arith.select", [cond, self._v(a, x), self._v(c, x)], x.type)


def _base_where_power_is_zero(b: RuleBuilder, x: Value, r: Value) -> Value:
    """x, or 1 where r = x**y is 0, so that d/dy x**y = log(x) r is 0 there (the limit at
    x == 0 for y > 0) rather than log(0) * 0 = NaN; guarding the log's operand, not its
    product, keeps the inf out of every derivative of the rule too."""
    return b.where("eq", r, b.const(0.0, r), 1.0, x)


# The table. Each row: op name -> one partial per operand.
PARTIALS = {
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
    "math.cosh": (lambda b, x, r: b.math("sinh", x),),
    "math.log10": (lambda b, x, r: b.div(1.0 / math.log(10.0), x),),
    "math.log2": (lambda b, x, r: b.div(1.0 / math.log(2.0), x),),
    "math.atan2": (lambda b, y, x, r: b.div(x, b.add(b.mul(x, x), b.mul(y, y))),
                   lambda b, y, x, r: b.neg(b.div(y, b.add(b.mul(x, x), b.mul(y, y))))),
}

# Ops whose results never carry a derivative (comparisons, logic, shapes, constants, MPI
# ranks, sizes and communicators) or that have none (a barrier, kept as it is in forward
# mode). Every other MPI op needs a rule of its own in ad/mpi.py, in each mode.
NON_DIFFERENTIABLE = {"arith.const", "arith.cmp", "arith.and", "arith.or", "arith.not",
                      "mem.shape", "mpi.rank", "mpi.size", "mpi.world", "mpi.cart_shift",
                      "mpi.barrier"}


_USES: dict = {}


def uses_of_partial(name: str, k: int, operand_types, result_type) -> tuple[bool, ...]:
    """Which of (operands..., result) the k-th partial of op `name` reads. Reverse mode asks
    the forward sweep only for those, so that a linear op saves nothing."""
    key = (name, k, tuple(operand_types), result_type)
    got = _USES.get(key)
    if got is None:
        probes = [Value(t) for t in operand_types] + [Value(result_type)]
        scratch = Builder(Block())
        p = PARTIALS[name][k](RuleBuilder(scratch), *probes)
        used = {v for op in scratch.block.ops for v in op.operands}
        if isinstance(p, Value):
            used.add(p)
        got = _USES[key] = tuple(v in used for v in probes)
    return got
