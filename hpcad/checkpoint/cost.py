"""The cost model behind store-or-recompute: bytes a stored value takes per execution of its
region (the region's trip count multiplies every candidate alike), flops to evaluate it again,
and whether it depends on communication (then it cannot be recomputed without messages on
every rank that took part, so it is always stored). The policy for intermediates decides how
the planner weighs them: "recompute" (the fewest bytes), "auto" (values that cost at least
EXPENSIVE_FLOPS to recompute are stored, the rest recomputed when that saves bytes), "store"
(every float value the reverse sweep needs is stored). The results of a custom rule's fwd
call (its residuals) are weighed like any value: recomputing them calls fwd again, whose
flops are estimated from its ops when AD reads the call (`block_flops`)."""
from __future__ import annotations

from ..ir.core import Block, Op, Value

INTERMEDIATES = ("auto", "recompute", "store")

BYTES = {"f64": 8, "i64": 8, "f32": 4, "i32": 4, "i1": 1}

# flops per evaluation (order of magnitude on a current x86 core; libm calls ~20-40 cycles)
_FLOPS = {"arith.div": 4, "arith.floordiv": 4, "arith.mod": 4, "arith.pow": 20,
          "math.sqrt": 4, "math.abs": 1, "math.floor": 1, "math.ceil": 1}
_LIBM_FLOPS = 20
EXPENSIVE_FLOPS = 10
# a loop's trip count is unknown when a rule is weighed: its body counts this many times,
# enough to make any loop with real work in it expensive
LOOP_TRIPS = 16
_FREE = ("arith.const", "scf.yield", "scf.condition", "func.return")


def value_bytes(v: Value) -> int:
    return BYTES.get(getattr(v.type, "name", ""), 8)


def recompute_flops(op: Op) -> int:
    """Flops to evaluate op once more (loads, casts, comparisons count one)."""
    if op.name in _FLOPS:
        return _FLOPS[op.name]
    if op.name == "func.call":   # a kept call (custom rule) says what it costs
        return int(op.attrs.get("flops", EXPENSIVE_FLOPS))
    return _LIBM_FLOPS if op.dialect == "math" else 1


def block_flops(block: Block) -> int:
    """Flops to run a block once (its calls inlined): each op by the table above, a loop's
    body LOOP_TRIPS times, both arms of a branch."""
    total = 0
    for op in block.ops:
        if op.regions:
            trips = LOOP_TRIPS if op.name in ("scf.for", "scf.while", "par.parallel_for") else 1
            total += trips * sum(block_flops(r) for r in op.regions)
        elif op.name not in _FREE:
            total += recompute_flops(op)
    return total


def is_expensive(op: Op) -> bool:
    return recompute_flops(op) >= EXPENSIVE_FLOPS
