"""Stores that a later iteration of their loop overwrites before anything reads them (dead
store elimination across iterations). In the fused gather loop of an adjoint stencil

    for j in range(lo, hi):   x = d_u[j+1]; d_u[j+1] = 0; ...; d_u[j] = y

the zero stored at d_u[j+1] is overwritten by the next iteration's `d_u[j] = y`, and nothing
reads that element in between: the store is dead but in the last iteration, whose store
runs once after the loop instead. A store of a value computed in the loop goes the same
way when the loop carries that value out (passes/carry.py leaves the last values a loop
stored in its results): `a[j+1] = t`, overwritten two iterations later by `a[j-1] = 0`,
costs two stores after the loop instead of one per element.

The array must be accessed in the loop only at `iv + c` along one index position (the
other indices loop-invariant), and nothing else the loop touches may alias it; the loop
has step 1 (either direction), a body without regions, and runs outside parallel bodies.
Memory ends up the same, bit for bit.

`sink_scratch_stores`: in an adjoint marked `scratch` (ad/reverse.py: what one reverse step
stores in it, only that step reads), a loop's stores that nothing after the loop in its step
reads need not happen at all. A gather loop that stores `d_tmp[j+1]` for loops after it
that read only its last two elements keeps those two stores, after the loop, and drops
the rest: each lane of a batched reverse sweep streams one array less."""
from __future__ import annotations

from ..ir.core import Block, Builder, Function, Op, Value, walk
from ..ir.dialects import (
    access_index,
    in_parallel,
    int_const,
    plain_body,
    shifted,
    unit_step,
)
from .affine import along, shifted_arrays
from .carry import last_iterations
from .race import Accesses


def sink_overwritten(fn: Function) -> bool:
    """Move stores that later iterations overwrite out of their loops. Returns whether
    anything changed."""
    acc = Accesses(fn)
    changed = False
    for loop in [op for op in walk(fn.body) if op.name == "scf.for"]:
        if unit_step(loop) and plain_body(loop, ("tape.push", "tape.pop")) \
                and not in_parallel(loop):
            changed |= _sink_loop(loop, acc)
    return changed


def _sink_loop(loop: Op, acc: Accesses) -> bool:
    step = -1 if loop.attrs.get("reverse") else 1
    changed = False
    for ops, offset in shifted_arrays(loop, acc).values():
        for store in [op for op in ops if op.name == "mem.store"]:
            if _sink_store(loop, store, ops, offset, step):
                ops.remove(store)
                changed = True
    return changed


def _sink_store(loop: Op, store: Op, ops: list[Op], offset: dict[Op, int], step: int) -> bool:
    """Sink one store if a later iteration overwrites it unread; see the module doc."""
    body = loop.regions[0]
    pos = {op: k for k, op in enumerate(body.ops)}
    c = offset[store]

    def when(op: Op) -> tuple[int, int]:
        """When op touches store's element, in iterations after store's (and position)."""
        return ((c - offset[op]) * step, pos[op])
    start = (0, pos[store])
    over = [when(o) for o in ops if o.name == "mem.store" and o is not store
            and when(o) > start]
    if not over:
        return False
    first = min(over)
    if first[0] == 0:       # overwritten in the same iteration: dead store, not ours
        return False
    if any(start < when(o) < first for o in ops if o.name != "mem.store"):
        return False        # read before it is overwritten
    value = store.operands[0]
    if isinstance(value.owner, Op) and value.owner.name == "arith.const" \
            and value.owner.parent is body:    # a constant the loop defines: one outside
        b = Builder(loop.parent, store.loc)
        b.index = loop.parent.ops.index(loop)
        value = b.op1("arith.const", [], value.type, dict(value.owner.attrs))
    values = _last_values(loop, value, first[0])
    if values is None:
        return False
    body.ops.remove(store)
    _store_last(loop, store, values, step)
    return True


def _last_values(loop: Op, value: Value, count: int) -> list[Value] | None:
    """Values outside the loop holding what `value` was in its last `count` iterations
    (latest first): value itself if the loop does not compute it, else the loop's results
    that carry it (`yield value`, then `yield` of the iter arg that held it, ...)."""
    body = loop.regions[0]
    if value not in {r for op in body.ops for r in op.results} and value not in body.args:
        return [value] * count
    term = body.ops[-1]
    out, current = [], value
    for _ in range(count):
        k = next((k for k, v in enumerate(term.operands) if v is current), None)
        if k is None:
            return None
        out.append(loop.results[k])
        current = body.args[1 + k]
    return out


def _store_last(loop: Op, store: Op, values: list[Value], step: int) -> None:
    """The store of each of the last len(values) iterations, after the loop: iteration
    j = ub - m (or lb + m - 1 descending), if it ran, stores values[m - 1] at element
    j + c."""
    position, c, _ = along(store, loop)
    b = Builder(loop.parent, store.loc)
    b.index = loop.parent.ops.index(loop) + 1

    def iteration(inner: Builder, j: Value, m: int) -> None:
        idx = list(access_index(store))
        idx[position] = shifted(inner, j, c)
        inner.op("mem.store", [values[m - 1], store.operands[1]] + idx)
    last_iterations(b, *loop.operands[:2], range(1, len(values) + 1), step < 0, iteration)


def sink_scratch_stores(fn: Function) -> bool:
    """Drop from loops the stores into scratch adjoints that no later op of the reverse
    step reads, keeping (after the loop) those of its last iterations that it does read;
    see the module doc. Returns whether anything changed."""
    scratch = [op.results[0] for op in walk(fn.body)
               if op.name == "mem.alloc" and op.attrs.get("scratch")]
    changed = False
    for arr in scratch:
        uses = [op for op in walk(fn.body) if arr in op.operands]
        for loop in {op.parent.parent for op in uses if op.name == "mem.store"
                     and op.parent.parent is not None and op.parent.parent.name == "scf.for"}:
            if unit_step(loop) and plain_body(loop, ("tape.push", "tape.pop")) \
                    and not in_parallel(loop):
                changed |= _sink_scratch(loop, arr, uses)
    return changed


def _sink_scratch(loop: Op, arr: Value, uses: list[Op]) -> bool:
    body, block = loop.regions[0], loop.parent
    mine = [op for op in body.ops if arr in op.operands]
    if len(mine) != 1 or mine[0].name != "mem.store" or mine[0].operands[1] is not arr:
        return False
    store = mine[0]
    found = along(store, loop)
    if found is None or loop.attrs.get("reverse"):
        return False
    position, c, rest = found
    inside = {o for op in block.ops for o in [op, *_nested(op)]}
    if any(op not in inside for op in uses) or block.parent is None \
            or all(op in set(_nested(loop)) for op in uses):
        return False    # the step's reverse must be this block: every use in it, not all in loop
    after = [o for op in block.ops[block.ops.index(loop) + 1:] for o in [op, *_nested(op)]
             if arr in o.operands]
    ub_base, ub_k = _affine(loop.operands[1])
    keep = 0
    for op in after:
        if op.name not in ("mem.load", "mem.accumulate", "mem.store"):
            return False
        if op.name == "mem.store":
            continue
        idx = access_index(op)
        if len(idx) != len(rest) + 1 or tuple(v for d, v in enumerate(idx) if d != position) \
                != tuple(rest):
            return False
        lows = [k for base, k in _lower_bounds(idx[position], 6) if base is ub_base]
        if not lows:
            return False
        keep = max(keep, ub_k + c - max(lows))   # it reads elements >= ub - keep + c
    values = _last_values(loop, store.operands[0], keep) if keep > 0 else []
    if values is None:
        return False
    body.ops.remove(store)
    _store_last(loop, store, values, 1)
    return True


def _nested(op: Op) -> list[Op]:
    return [o for r in op.regions for o in walk(r)]


def _affine(v: Value) -> tuple[Value, int]:
    """(base, k) with v = base + k, through adds and subtractions of constants."""
    op = v.owner
    if isinstance(op, Op) and op.name in ("arith.add", "arith.sub"):
        k = int_const(op.operands[1])
        if k is not None:
            base, k0 = _affine(op.operands[0])
            return base, k0 + (k if op.name == "arith.add" else -k)
    return v, 0


def _lower_bounds(v: Value, depth: int) -> list[tuple[Value, int]]:
    """Pairs (base, k) with v >= base + k: v itself, through constant shifts, either
    operand of a max, and the lower bound of a for loop's induction variable."""
    base, k = _affine(v)
    out = [(base, k)]
    if depth == 0:
        return out
    op = base.owner
    if isinstance(op, Op) and op.name == "arith.max":
        for x in op.operands:
            out += [(b, k + k1) for b, k1 in _lower_bounds(x, depth - 1)]
    elif isinstance(op, Block) and op.parent is not None and op.parent.name == "scf.for" \
            and op.args and base is op.args[0]:
        out += [(b, k + k1) for b, k1 in _lower_bounds(op.parent.operands[0], depth - 1)]
    return out
