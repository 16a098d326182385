"""A race-free form for adjoint stencils that needs no atomics. When every racing access of a
parallel loop is an accumulation at an index whose component along one dimension is the loop
variable plus a constant (|c| <= w), iterations whose variables are more than 2w apart never
touch the same element: with a constant step s > 0, iterations more than 2 ceil(w / s)
apart in the loop's order. The range is cut into chunks of at least 2 ceil(w / s) + 1
iterations; even chunks run in parallel, then odd ones, each chunk's iterations in order
with plain `+=`. The result is also deterministic: the chunking depends on the range, not
on the thread count."""
from __future__ import annotations

from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Op, Value, replace_uses
from ..ir.dialects import int_const, iv_offset, reduction_kinds
from ..ir.types import i64

CHUNKS = 64   # chunks per loop (both colours): enough to balance, few enough to be cheap


def colorable(loop: Op, racing: list[Op]) -> int | None:
    """The stencil half-width, in iterations (ceil(w / s)), if the loop can be coloured,
    else None."""
    step = int_const(loop.operands[2])
    if step is None or step <= 0:
        return None
    if any(k != "add" for k in reduction_kinds(loop)):
        return None
    iv = loop.regions[0].args[0]
    dims, width = set(), 0
    for op in racing:
        hits = [(d, iv_offset(v, iv)) for d, v in enumerate(op.operands[2:])]
        hits = [(d, c) for d, c in hits if c is not None]
        if not hits:
            return None
        d, c = hits[0]
        dims.add(d)
        width = max(width, abs(c))
    return -(-width // step) if len(dims) == 1 else None


def color(loop: Op, width: int) -> None:
    """Rewrite `loop` in place into the two-colour chunked form."""
    parent = loop.parent
    lb, ub, _ = loop.operands[:3]
    step = int_const(loop.operands[2])
    inits = loop.operands[3:]
    kinds = reduction_kinds(loop)
    b = Builder(parent)
    b.index = parent.ops.index(loop)
    b.loc = loop.loc
    def c(x):
        return b.op1("arith.const", [], i64, {"value": x})
    span = b.op1("arith.sub", [ub, lb], i64)
    if step != 1:   # the trip count, len(range(lb, ub, step))
        span = b.op1("arith.floordiv", [b.op1("arith.add", [span, c(step - 1)], i64), c(step)],
                     i64)
    n = b.op1("arith.max", [span, c(0)], i64, name_hint="n")
    per = b.op1("arith.floordiv", [b.op1("arith.add", [n, c(CHUNKS - 1)], i64), c(CHUNKS)], i64)
    size = b.op1("arith.max", [per, c(2 * width + 1)], i64, name_hint="chunk")
    stride = size if step == 1 else b.op1("arith.mul", [size, c(step)], i64)
    count = b.op1("arith.floordiv", [b.op1("arith.sub", [b.op1("arith.add", [n, size], i64),
                                                        c(1)], i64), size], i64)
    types = [v.type for v in inits]
    colors = Block([Value(i64, "color")] + [Value(t, "acc") for t in types])
    cb = Builder(colors)
    def cc(x):
        return cb.op1("arith.const", [], i64, {"value": x})
    mine = cb.op1("arith.floordiv", [cb.op1("arith.sub", [cb.op1("arith.add", [count, cc(1)], i64),
                                                          colors.args[0]], i64), cc(2)], i64)
    chunks = Block([Value(i64, "ch")] + [Value(t, "acc") for t in types])
    hb = Builder(chunks)
    def hc(x):
        return hb.op1("arith.const", [], i64, {"value": x})
    index = hb.op1("arith.add", [colors.args[0], hb.op1("arith.mul", [chunks.args[0], hc(2)], i64)],
                   i64)
    lo = hb.op1("arith.add", [lb, hb.op1("arith.mul", [index, stride], i64)], i64,
                name_hint="lo")
    hi = hb.op1("arith.min", [hb.op1("arith.add", [lo, stride], i64), ub], i64, name_hint="hi")
    zeros = [hb.op1("arith.const", [], t, {"value": 0.0}) for t in types]
    body = loop.regions[0]
    inner = Block([Value(i64, body.args[0].name)] + [Value(t, a.name)
                                                     for t, a in zip(types, body.args[1:])])
    vmap = dict(zip(body.args, inner.args))
    for op in body.ops:
        clone = clone_op(op, vmap)
        clone.parent = inner
        inner.ops.append(clone)
    part = hb.op("scf.for", [lo, hi, hc(step)] + zeros, types, regions=[inner]).results
    hb.op("scf.yield", [hb.op1("arith.add", [a, p], a.type) for a, p in zip(chunks.args[1:], part)])
    reduced = cb.op("par.parallel_for", [cc(0), mine, cc(1)] + list(colors.args[1:]), types,
                    {"reductions": ",".join(kinds), "race_free": "colored chunks"},
                    regions=[chunks]).results
    cb.op("scf.yield", list(reduced))
    outer = b.op("scf.for", [c(0), c(2), c(1)] + list(inits), types, regions=[colors])
    for old, new in zip(loop.results, outer.results):
        new.name = old.name
        replace_uses(parent, {old: new})
    parent.ops.remove(loop)


