"""Before differentiating: make max/min reductions of parallel loops differentiable. The
derivative of m = max over i of e_i flows to the first iteration that attains it (the
sequential loop's tie rule: a later equal value does not replace the earlier one, and the
initial value wins ties). So after the loop, a second parallel loop finds that iteration w
(a min-reduction over iteration numbers), and m is replaced by e recomputed at w: the same
value, whose derivative reaches exactly iteration w's inputs."""
from __future__ import annotations

from ..errors import DifferentiationError, where
from ..ir.core import Block, Builder, Function, Op, Value, walk
from ..ir.dialects import is_pure, reduction_kinds
from ..ir.effects import writes
from ..ir.types import i1, i64
from .aliases import variable_classes

_NONE = 2 ** 62   # "no iteration attains it"


def _slice(e: Value, body: Block, written: set, key) -> list[Op] | None:
    """The body ops e is computed from, in order, if they can be recomputed anywhere:
    pure ops and loads of arrays the loop does not write, from the loop variable and
    values defined outside the loop."""
    inside = {r: op for op in body.ops for r in op.results}
    needed, stack = set(), [e]
    while stack:
        v = stack.pop()
        op = inside.get(v)
        if op is None:
            if v in body.args[1:]:
                return None
            continue
        if op in needed:
            continue
        ok = (is_pure(op) and not op.regions) or \
            (op.name == "mem.load" and key(op.operands[0]) not in written)
        if not ok:
            return None
        needed.add(op)
        stack.extend(op.operands)
    return [op for op in body.ops if op in needed]


def _recompute(b: Builder, ops: list[Op], iv_old: Value, iv_new: Value, e: Value) -> Value:
    vmap = {iv_old: iv_new}
    for op in ops:
        c = Op(op.name, [vmap.get(v, v) for v in op.operands], [r.type for r in op.results],
               op.attrs, loc=op.loc)
        b.insert(c)
        vmap.update(zip(op.results, c.results))
    return vmap.get(e, e)


def rewrite_extrema(fn: Function) -> bool:
    key = variable_classes(fn).find
    changed = False
    for loop in [op for op in walk(fn.body) if op.name == "par.parallel_for"]:
        for k, kind in enumerate(reduction_kinds(loop)):
            if kind not in ("max", "min") or not loop.results[k].type.is_float:
                continue
            _rewrite_one(loop, k, kind, key)
            changed = True
    return changed


def _rewrite_one(loop: Op, k: int, kind: str, key) -> None:
    body = loop.regions[0]
    update = body.ops[-1].operands[k].owner
    acc = body.args[1 + k]
    e = update.operands[1] if update.operands[0] is acc else update.operands[0]
    written = {key(a) for o in walk(body) for a in writes(o)}
    ops = _slice(e, body, written, key)
    if ops is None:
        raise DifferentiationError(
            f"{where(update.loc)}: the derivative of this parallel {kind} reduction needs "
            f"the winning iteration, which hpcad finds by recomputing each iteration's "
            f"value from the loop variable; this value cannot be recomputed (it is updated "
            f"under an `if` or in an inner loop, or read from an array the loop writes). "
            f"Write the update unconditionally as m = {kind}(m, e) with e computed from "
            f"the loop variable (use -inf/+inf for skipped iterations), or store the "
            f"values in an array first")
    loop_m, init = loop.results[k], loop.operands[3 + k]
    lb, ub, step = loop.operands[:3]
    parent = loop.parent
    # the loop reduces from the operator's identity and the initial value joins after it:
    # the loop's own start is then a constant, and its result, which only comparisons read
    # below, needs no derivative even where the initial value has one (m = x[0])
    before = Builder(parent)
    before.index = parent.ops.index(loop)
    before.loc = loop.loc
    loop.operands[3 + k] = before.op1("arith.const", [], loop_m.type,
                                      {"value": float("-inf" if kind == "max" else "inf")})
    b = Builder(parent)
    b.index = parent.ops.index(loop) + 1
    b.loc = loop.loc
    m = b.op1(f"arith.{kind}", [init, loop_m], loop_m.type)
    none = b.op1("arith.const", [], i64, {"value": _NONE})
    # w = first iteration number (0, 1, ...) whose value equals m
    wbody = Block([Value(i64, "i"), Value(i64, "first")])
    wb = Builder(wbody)
    ei = _recompute(wb, ops, body.args[0], wbody.args[0], e)
    hit = wb.op1("arith.cmp", [ei, m], i1, {"pred": "eq"})
    number = wb.op1("arith.floordiv", [wb.op1("arith.sub", [wbody.args[0], lb], i64), step], i64)
    cand = wb.op1("arith.select", [hit, number, none], i64)
    wb.op("scf.yield", [wb.op1("arith.min", [wbody.args[1], cand], i64)])
    first = b.op("par.parallel_for", [lb, ub, step, none], [i64], {"reductions": "min"},
                 regions=[wbody]).results[0]
    found = b.op1("arith.and", [b.op1("arith.cmp", [first, none], i1, {"pred": "ne"}),
                                b.op1("arith.cmp", [m, init], i1, {"pred": "ne"})], i1)
    taken, other = Block(), Block()
    tb = Builder(taken)
    iv = tb.op1("arith.add", [lb, tb.op1("arith.mul", [first, step], i64)], i64)
    tb.op("scf.yield", [_recompute(tb, ops, body.args[0], iv, e)])
    Builder(other).op("scf.yield", [init])
    winner = b.op("scf.if", [found], [m.type], regions=[taken, other]).results[0]
    winner.name = loop_m.name
    _replace_uses_after(parent, b.index, loop_m, winner)


def _replace_uses_after(block: Block, start: int, old: Value, new: Value) -> None:
    for op in block.ops[start:]:
        for o in [op, *(x for r in op.regions for x in walk(r))]:
            o.operands = [new if v is old else v for v in o.operands]
