"""Values a loop stored in earlier iterations, carried to later ones in registers instead of
loaded back from memory (scalar replacement).

In the fused gather loop of an adjoint stencil (passes/gather.py)

    for j in range(lo, hi):   d_tmp[j+1] += d_u[j+1]; ...; x = f(d_tmp[j+1], d_tmp[j], d_tmp[j-1])

iteration j reads what iterations j-1 and j-2 stored: a dependence through memory at a
distance of 1-2 elements that keeps LLVM from vectorizing the loop. `carry_stored` turns
each such load into a loop-carried value (a window of the last few stored values), which
LLVM vectorizes as a recurrence; the stores stay, so memory ends up the same.

It applies to an array that the loop accesses only at `iv + c` along one index position,
the other indices loop-invariant (passes/affine.py, shifted_arrays), and that nothing else
the loop touches may alias. A load of
`a[iv + c]` reads what the most recent store to that element wrote: a store earlier in the
same iteration at offset c, else the store at the smallest offset k > c (the last of them in
the body) from iteration iv - (k - c). Before the loop, the window holds what memory holds.
"""
from __future__ import annotations

from ..ir.core import Block, Builder, Op, Value, replace_uses
from ..ir.dialects import (
    before,
    defined_in,
    shifted,
    unit_step,
)
from ..ir.lanes import lane_work
from ..ir.types import i1, i64, lanes
from .affine import offsets, shifted_arrays
from .race import Accesses


def last_iterations(b: Builder, lb: Value, ub: Value, ms, descending: bool, emit) -> None:
    """At b, after a unit-step loop over [lb, ub): for each m of ms, the loop's m-th last
    iteration j (ub - m, or lb + m - 1 when it runs descending), if it ran, as a block that
    emit(builder, j, m) fills."""
    for m in ms:
        if descending:
            j = shifted(b, lb, m - 1)
            ran = b.op1("arith.cmp", [j, ub], i1, {"pred": "lt"})
        else:
            j = before(b, ub, m)
            ran = b.op1("arith.cmp", [j, lb], i1, {"pred": "ge"})
        then, other = Block(), Block()
        inner = Builder(then, b.loc)
        emit(inner, j, m)
        inner.op("scf.yield", [])
        Builder(other, b.loc).op("scf.yield", [])
        b.op("scf.if", [ran], [], regions=[then, other])


def _expand_accumulates(body: Block, ops: list[Op]) -> list[Op]:
    """Each `mem.accumulate v, a, idx` of ops as `x = load a, idx; store x + v, a, idx` (what
    it means); returns the accesses as they now are."""
    out = []
    for op in ops:
        if op.name != "mem.accumulate":
            out.append(op)
            continue
        b = Builder(body, op.loc)
        b.index = body.ops.index(op)
        value, arr, idx = op.operands[0], op.operands[1], op.operands[2:]
        load = b.op("mem.load", [arr] + idx, [arr.type.dtype])
        total = b.op1("arith.add", [load.result, value], value.type)
        store = b.op("mem.store", [total, arr] + idx)
        body.ops.remove(op)
        out += [load, store]
    return out


def carry_stored(loop: Op, acc: Accesses, inits=None) -> dict:
    """Carry, in loop's iter args, the values its iterations store and later iterations load
    back (see the module docstring). The loop must have step 1 and a body without regions.
    Arrays of vectors (width > 1) are carried only in loops that may run lane-outer
    (ir/lanes.py), where vectors are plain locals; elsewhere a carried vector costs a copy
    of W lanes per iteration. `inits(store, depth)` may give a window's values before the
    loop (what `store` wrote in the `depth` iterations before the first, latest first)
    instead of reading them from memory; None: memory.
    Returns {store: the loop's results holding its window after the loop} (empty: nothing
    changed)."""
    body = loop.regions[0]
    if not unit_step(loop) or any(op.regions for op in body.ops):
        return {}
    local = defined_in(body)
    per_lane = lane_work(loop) is not None
    windows: dict = {}
    for arr, (ops, offset) in shifted_arrays(loop, acc).items():
        if lanes(arr.type) > 1 and not (per_lane and _vector_stores_ok(ops)) \
                or not _forwardable(ops, offset, body):
            continue
        ops = _expand_accumulates(body, ops)
        _carry(loop, ops, offsets(ops, loop), local, inits, windows)
    return windows


def _forwardable(ops: list[Op], offset: dict[Op, int], body: Block) -> bool:
    """Whether some load of the array (an accumulate loads too) reads what the loop
    stored: at the same offset earlier in the body, or at a larger offset (an earlier
    iteration)."""
    position = {op: k for k, op in enumerate(body.ops)}
    writes = [op for op in ops if op.name != "mem.load"]
    return any(offset[w] > offset[r] or offset[w] == offset[r] and position[w] < position[r]
               for r in ops if r.name != "mem.store" for w in writes)


def _carry(loop: Op, ops: list[Op], offset: dict[Op, int], local: set[Value], inits,
           windows: dict) -> None:
    body = loop.regions[0]
    position = {op: k for k, op in enumerate(body.ops)}
    stores = [op for op in ops if op.name == "mem.store"]
    replace: dict[Value, Value] = {}
    lags: dict[Op, list[tuple[Op, int]]] = {}   # store -> [(load, iterations back)]
    for load in (op for op in ops if op.name == "mem.load"):
        c = offset[load]
        same = [s for s in stores if offset[s] == c and position[s] < position[load]]
        if same:     # stored earlier in this iteration
            replace[load.result] = same[-1].operands[0]
            continue
        back = [(offset[s] - c, -position[s], s) for s in stores if offset[s] > c]
        if back:
            d, _, s = min(back)
            lags.setdefault(s, []).append((load, d))
    for s, loads in lags.items():
        depth = max(d for _, d in loads)
        given = inits(s, depth) if inits is not None else None
        window = _window(loop, s, offset[s], depth, local, given)
        windows[s] = loop.results[-depth:]
        replace.update((load.result, window[d - 1]) for load, d in loads)
    for v in replace:    # a stored value may itself be a load replaced here
        while replace[v] in replace:
            replace[v] = replace[replace[v]]
    replace_uses(body, replace)
    body.ops = [op for op in body.ops if not (op.results and op.results[0] in replace)]


def _typed(value: Value, t, body: Block) -> Value:
    """value as type t: a scalar constant stored into an array of vectors (every lane) is
    carried as a vector constant."""
    if value.type == t:
        return value
    b = Builder(body, value.owner.loc)
    b.index = 0
    return b.op1("arith.const", [], t, dict(value.owner.attrs))


def _vector_stores_ok(ops: list[Op]) -> bool:
    """Whether every store into an array of vectors stores a vector or a constant (which
    _typed can carry)."""
    return all(op.name != "mem.store" or op.operands[0].type == op.operands[1].type.dtype
               or (isinstance(op.operands[0].owner, Op)
                   and op.operands[0].owner.name == "arith.const") for op in ops)


def stored_window(loop: Op, store: Op, depth: int, given: list[Value]) -> list[Value]:
    """New iter args of loop holding what `store` wrote in its last `depth` iterations
    (latest first; `given` before the loop); returns the loop's results that hold them
    after it."""
    _window(loop, store, 0, depth, set(), given)
    return loop.results[-depth:]


def _window(loop: Op, store: Op, k: int, depth: int, local: set[Value],
            given: list[Value] | None = None) -> list[Value]:
    """New iter args w_1..w_depth of loop: w_m in iteration j is what store wrote in
    iteration j - m (element j - m + k); before the loop, `given`, else memory's element
    lb - m + k, read only if the loop runs at all."""
    body = loop.regions[0]
    arr, idx = store.operands[1], store.operands[2:]
    t = arr.type.dtype
    window = [body.add_arg(Value(t, "w")) for _ in range(depth)]
    yield_op = body.ops[-1]
    yield_op.operands += [_typed(store.operands[0], t, body)] + window[:-1]
    loop.results += [Value(t, None, loop) for _ in range(depth)]
    if given is not None:
        loop.operands += list(given)
        return window
    position = next(d for d, v in enumerate(idx) if v in local)
    b = Builder(loop.parent, loop.loc)
    b.index = loop.parent.ops.index(loop)
    lb, ub = loop.operands[:2]
    runs = b.op1("arith.cmp", [lb, ub], i1, {"pred": "lt"})
    then, other = Block(), Block()
    tb = Builder(then, loop.loc)
    first = []
    for m in range(1, depth + 1):
        at = tb.op1("arith.add", [lb, tb.op1("arith.const", [], i64, {"value": k - m})], i64)
        at_idx = list(idx)
        at_idx[position] = at
        first.append(tb.op1("mem.load", [arr] + at_idx, t))
    tb.op("scf.yield", first)
    ob = Builder(other, loop.loc)
    zero = ob.op1("arith.const", [], t, {"value": 0.0 if t.name.startswith("f") else 0})
    ob.op("scf.yield", [zero] * depth)
    loop.operands += b.op("scf.if", [runs], [t] * depth, regions=[then, other]).results
    return window
