"""The cost model behind store-or-recompute: bytes a stored value takes per execution of its
region (the region's trip count multiplies every candidate alike), flops to evaluate it again,
and whether it depends on communication (then it cannot be recomputed without messages on
every rank that took part, so it is always stored). The policy for intermediates decides how
the planner weighs them: "recompute" (the fewest bytes), "auto" (values that cost at least
EXPENSIVE_FLOPS to recompute are stored, the rest recomputed when that saves bytes), "store"
(every float value the reverse sweep needs is stored)."""
from __future__ import annotations

from ..ir.core import Op, Value

INTERMEDIATES = ("auto", "recompute", "store")

BYTES = {"f64": 8, "i64": 8, "f32": 4, "i32": 4, "i1": 1}

# flops per evaluation (order of magnitude on a current x86 core; libm calls ~20-40 cycles)
_FLOPS = {"arith.div": 4, "arith.floordiv": 4, "arith.mod": 4, "arith.pow": 20,
          "math.sqrt": 4, "math.abs": 1, "math.floor": 1, "math.ceil": 1}
_LIBM_FLOPS = 20
EXPENSIVE_FLOPS = 10


def value_bytes(v: Value) -> int:
    return BYTES.get(v.type.name, 8)


def recompute_flops(op: Op) -> int:
    """Flops to evaluate op once more (loads, casts, comparisons count one)."""
    if op.name in _FLOPS:
        return _FLOPS[op.name]
    return _LIBM_FLOPS if op.dialect == "math" else 1


def is_expensive(op: Op) -> bool:
    return recompute_flops(op) >= EXPENSIVE_FLOPS
