"""Loop fusion: two adjacent `scf.for` loops over the same range become one when that cannot
change what any iteration reads. The test is deliberately simple: every pair of accesses to
the same array class, one of them a write, must use the same index tuple, on the same array
or on names of the buffer that neither slices nor reshapes it (`a = z[1:]` and `z` index
one element at i + 1 and i), and that tuple must contain the induction variable itself, so
iteration i of the second loop only touches what iteration i of the first touched, after
it.

`fuse_peeled` fuses two loops whose ranges differ by a few elements at either end, when they
share nothing but arrays both only read: the first loop's iterations outside the second's
range run in loops of their own. In a reverse-mode derivative this puts the save of a state
array on the tape (`for w in range(n): push u[w]`) into the stencil loop that reads the same
elements (`for i in range(1, n - 1)`): one pass over the array instead of two.

`fuse_shifted` (derivatives only) fuses a stencil into a buffer with the loop that copies it
back, the copy trailing by the elements the stencil still needs to read, the buffer's
elements carried in registers: a step `tmp[i] = f(u[i-1], u[i], u[i+1]); u[i] = tmp[i]`
becomes one pass that reads and writes `u` and never touches `tmp`."""
from __future__ import annotations

from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Function, Op, Value, walk
from ..ir.dialects import (
    MEMORY_ACCESSES,
    access_index,
    accessed_array,
    is_pure,
    iv_offset,
    lower_bounds,
    plain_body,
    shifted,
    unit_step,
)
from ..ir.effects import touches_memory
from ..ir.types import i64
from .affine import along
from .aliases import variable_classes
from .carry import carry_stored, last_iterations, stored_window
from .race import Accesses, same_indexing


def _accesses(body: Block, iv: Value, rename: Value, key):
    """(class, index tuple with iv renamed, is_write, array) of every memory access in the
    body."""
    out = []
    for op in walk(body):
        if op.name in MEMORY_ACCESSES:
            arr = accessed_array(op)
            out.append((key(arr), tuple(rename if v is iv else v for v in access_index(op)),
                        op.name != "mem.load", arr))
    return out


def _fusable(a: Op, b: Op, key) -> bool:
    if a.name != "scf.for" or b.name != "scf.for" or a.operands[:3] != b.operands[:3] \
            or a.attrs != b.attrs:
        return False
    if any(o.dialect in ("mpi", "func") or (o.name not in MEMORY_ACCESSES and touches_memory(o))
           for loop in (a, b) for o in walk(loop.regions[0])):
        return False   # communication order must stay; whole-array ops are not analysed
    produced = set(a.results)
    if any(v in produced for v in b.operands) or \
            any(v in produced for o in walk(b.regions[0]) for v in o.operands):
        return False
    iv = a.regions[0].args[0]
    first = _accesses(a.regions[0], iv, iv, key)
    second = _accesses(b.regions[0], b.regions[0].args[0], iv, key)
    for cls_a, idx_a, write_a, arr_a in first:
        for cls_b, idx_b, write_b, arr_b in second:
            if cls_a == cls_b and (write_a or write_b) and (
                    idx_a != idx_b or iv not in idx_a or not same_indexing(arr_a, arr_b)):
                return False   # (views at other offsets: z[1:][i] is z[:-1][i + 1])
    return True


def _fuse(a: Op, b: Op) -> Op:
    body_a, body_b = a.regions[0], b.regions[0]
    mapping = {body_b.args[0]: body_a.args[0]}
    yield_a, yield_b = body_a.ops.pop(), body_b.ops.pop()
    for op in walk(body_b):
        op.operands = [mapping.get(v, v) for v in op.operands]
    yield_b.operands = [mapping.get(v, v) for v in yield_b.operands]
    for op in body_b.ops:
        op.parent = body_a
    body_a.ops.extend(body_b.ops)
    for arg in body_b.args[1:]:
        body_a.add_arg(arg)
    yield_a.operands = yield_a.operands + yield_b.operands
    body_a.ops.append(yield_a)
    a.operands = a.operands + b.operands[3:]
    for r in b.results:
        r.owner = a
    a.results = a.results + b.results
    return a


def _fuse_block(block: Block, key) -> bool:
    changed = False
    out: list[Op] = []
    for op in block.ops:
        for r in op.regions:
            changed |= _fuse_block(r, key)
        j = len(out) - 1
        while j >= 0 and is_pure(out[j]) and not out[j].regions:
            j -= 1   # pure ops between the loops (hoisted constants) move in front
        if j >= 0 and _fusable(out[j], op, key):
            first = out[j]
            between = out[j + 1:]
            if not any(v in first.results for o in between for v in o.operands):
                out[j:] = between + [_fuse(first, op)]
                changed = True
                continue
        out.append(op)
    block.ops = out
    return changed


def fuse_loops(fn: Function) -> bool:
    return _fuse_block(fn.body, variable_classes(fn).find)


_PEEL_MOST = 2      # elements peeled at either end (tiny loops of their own)


def _offset(v: Value, base: Value) -> int | None:
    """c when v is base + c (both constants, or v built from base)."""
    if all(getattr(x.owner, "name", None) == "arith.const" for x in (v, base)):
        return v.owner.attrs["value"] - base.owner.attrs["value"]
    c = iv_offset(v, base)
    if c is None and (c := iv_offset(base, v)) is not None:
        c = -c
    return c


def _plain(loop: Op, tape: bool) -> bool:
    """Whether a loop has no carried values and a body without nested regions of pure ops
    and memory accesses, touching the tape (if `tape`) only by indexed pushes and pops,
    which do not move it."""
    return not loop.results and plain_body(loop, ("tape.push", "tape.pop") if tape else ())


def _disjoint(a: Op, b: Op, key) -> bool:
    """Whether two plain loops (_plain; only the first may touch the tape) share no array
    one of them writes."""
    if not (_plain(a, True) and _plain(b, False)):
        return False
    first = _accesses(a.regions[0], None, None, key)
    second = _accesses(b.regions[0], None, None, key)
    return not any(ca == cb and (wa or wb)
               for ca, _, wa, _ in first for cb, _, wb, _ in second)


def _peel(b: Builder, loop: Op, lb: Value, ub: Value) -> Op:
    """At b, the loop's iterations in [lb, ub) as a loop of their own."""
    new = clone_op(loop, {})
    new.operands[:2] = [lb, ub]
    return b.insert(new)


def _next_across(block: Block, k: int) -> tuple[Op | None, int]:
    """(the op after block.ops[k] past pure ops and tape moves, which may go before or
    after a fused loop; its index), (None, len(block.ops)) at the end."""
    m = k + 1
    while m < len(block.ops) and (is_pure(block.ops[m]) and not block.ops[m].regions or
                                  block.ops[m].name in ("tape.advance", "tape.reserve")):
        m += 1
    return (block.ops[m] if m < len(block.ops) else None), m


def _fuse_peeled_block(block: Block, key) -> bool:
    changed = False
    for op in list(block.ops):
        for r in op.regions:
            changed |= _fuse_peeled_block(r, key)
    k = 0
    while k < len(block.ops):
        a = block.ops[k]
        b, m = _next_across(block, k)
        if a.name != "scf.for" or b is None or b.name != "scf.for" or \
                not (unit_step(a) and unit_step(b)) or a.attrs or b.attrs:
            k += 1
            continue
        p, q = _offset(b.operands[0], a.operands[0]), _offset(a.operands[1], b.operands[1])
        if p is None or q is None or not (0 <= p <= _PEEL_MOST and 0 <= q <= _PEEL_MOST) \
                or p + q == 0 or not _disjoint(a, b, key):
            k += 1
            continue
        _fuse_with_peels(block, a, b, block.ops[k + 1:m])
        changed = True
    return changed


def _fuse_with_peels(block: Block, a: Op, b: Op, between: list[Op]) -> None:
    """a over [lb_a, lb_b) and [max(lb_b, ub_b), ub_a) on its own, over b's range inside b
    (a's iteration first); pure ops between them go before, tape moves after."""
    lb_a, ub_a = a.operands[:2]
    lb_b, ub_b = b.operands[:2]
    for op in [a] + between:
        block.ops.remove(op)
    at = block.ops.index(b)
    builder = Builder(block, a.loc)
    builder.index = at
    for op in between:
        if is_pure(op):
            builder.insert(op)
    head_end = builder.op1("arith.min", [lb_b, ub_a], i64)
    tail_start = builder.op1("arith.max", [lb_b, ub_b], i64)
    _peel(builder, a, lb_a, head_end)
    # a loop that only reads memory and saves on the tape has independent iterations: its
    # tail may run first too, which leaves the fused loop next to what follows b (shifted
    # fusion of a stencil and its copy back, when the save of u is a's body)
    early = not any(o.name in ("mem.store", "mem.accumulate", "tape.pop")
                    for o in a.regions[0].ops)
    if early:
        _peel(builder, a, tail_start, ub_a)
    body_a, body_b = a.regions[0], b.regions[0]
    vmap = {body_a.args[0]: body_b.args[0]}
    inner = Builder(body_b, a.loc)
    inner.index = 0
    for op in body_a.ops[:-1]:
        inner.insert(clone_op(op, vmap))
    builder.index = block.ops.index(b) + 1
    if not early:
        _peel(builder, a, tail_start, ub_a)
    for op in between:
        if not is_pure(op):
            builder.insert(op)


def fuse_peeled(fn: Function) -> bool:
    """Fuse adjacent loops whose ranges differ by at most _PEEL_MOST elements at either end
    and that share no written array (see the module docstring). Returns whether anything
    changed."""
    return _fuse_peeled_block(fn.body, variable_classes(fn).find)


_SHIFT_MOST = 2     # iterations the second loop may lag behind the first


def _shifted_accesses(loop: Op) -> dict | None:
    """{array: [(offset, other indices, is_write)]} of the loop body's accesses, each at
    iv + offset along one index position; None when one is not of that form."""
    out: dict[Value, list] = {}
    for op in loop.regions[0].ops:
        if op.name in MEMORY_ACCESSES:
            found = along(op, loop)
            if found is None:
                return None
            out.setdefault(accessed_array(op), []).append(
                (found[1], (found[0], found[2]), op.name != "mem.load"))
    return out


def _lag(a: Op, b: Op, key, first: int | None) -> int | None:
    """The fewest iterations b must lag behind a for the two to run as one loop (a's
    iteration k, then b's iteration k - lag) without changing what either reads: when a
    touches element k + p of an array at iteration k and b touches element j + q at j, one
    of them writing, b's iteration touching the same element as a's (j = k + p - q) must
    still come after it, so lag >= q - p. None when an array one of them writes is shared
    at other indices, through another variable of its class, or the lag is more than
    _SHIFT_MOST; also when an index may be negative (`first`: a lower bound of the loops'
    first iteration), since a[-1] is the last element, not the one before a[0]."""
    accesses = _shifted_accesses(a), _shifted_accesses(b)
    if None in accesses or first is None or \
            any(first + c < 0 for acc in accesses for uses in acc.values() for c, _, _ in uses):
        return None
    first, second = accesses
    lag = 0
    for arr_a, acc_a in first.items():
        for arr_b, acc_b in second.items():
            if key(arr_a) != key(arr_b) or not any(w for *_, w in acc_a + acc_b):
                continue
            if arr_a is not arr_b or len({shape for _, shape, _ in acc_a + acc_b}) != 1:
                return None
            lag = max([lag] + [q - p for p, _, wa in acc_a for q, _, wb in acc_b if wa or wb])
    return lag if lag <= _SHIFT_MOST else None


def _fuse_shifted_block(block: Block, acc, low: dict) -> bool:
    changed = False
    for op in list(block.ops):
        if op.dialect == "par":
            continue   # the backend compiles no loop of a parallel body on its own (outline)
        for r in op.regions:
            changed |= _fuse_shifted_block(r, acc, low)
    k = 0
    while k < len(block.ops):
        a = block.ops[k]
        b, m = _next_across(block, k)
        lag = None
        if a.name == "scf.for" and b is not None and b.name == "scf.for" and unit_step(a) \
                and a.operands[:3] == b.operands[:3] and not (a.attrs or b.attrs) \
                and _plain(a, True) and _plain(b, False):
            lag = _lag(a, b, acc.key, low.get(a.operands[0]))
        if lag is None:
            k += 1
            continue
        _fuse_lagging(block, a, b, block.ops[k + 1:m], lag, acc)
        changed = True
        k += 1
    return changed


def _fuse_lagging(block: Block, a: Op, b: Op, between: list[Op], lag: int, acc) -> None:
    """a over [lb, min(lb + lag, ub)) on its own (the head), then one loop over
    [lb + lag, ub) running a's iteration k and b's iteration k - lag, then b over
    [max(ub - lag, lb), ub) on its own; values the fused loop stores and loads back
    iterations later are carried in registers (passes/carry.py). A buffer (_buffers) passes
    in registers throughout: the head's last stored values start the window, and b's last
    iterations, unrolled, read the window the fused loop ends with (when the fused loop
    does not run, that is the head's). Pure ops between a and b go before, tape moves
    after."""
    lb, ub = a.operands[:2]
    for op in [a] + between:
        block.ops.remove(op)
    builder = Builder(block, a.loc)
    builder.index = block.ops.index(b)
    block.ops.remove(b)
    for op in between:
        if is_pure(op):
            builder.insert(op)
    body_a, body_b = a.regions[0], b.regions[0]
    buffers = _buffers(a, b) if lag else {}
    if lag:
        shift = builder.op1("arith.const", [], i64, {"value": lag})
        start = builder.op1("arith.add", [lb, shift], i64)
        head = _peel(builder, a, lb, builder.op1("arith.min", [start, ub], i64))
        twin = dict(zip(body_a.ops, head.regions[0].ops, strict=False))   # a's ops -> the head's
        a.operands[0] = start
    inner = Builder(body_a, a.loc)
    inner.index = len(body_a.ops) - 1
    k, j = body_a.args[0], body_b.args[0]

    def at(c: int) -> Value:
        """b's iv + c, that is k + (c - lag), as an offset of k (passes/carry.py reads)."""
        return shifted(inner, k, c - lag)
    vmap = {j: at(0)}
    for op in body_b.ops[:-1]:
        c = iv_offset(op.results[0], j) if len(op.results) == 1 else None
        if c is not None:
            vmap[op.results[0]] = at(c)
        else:
            inner.insert(clone_op(op, vmap))
    builder.insert(a)
    fed: set[Op] = set()

    def from_head(store: Op, depth: int) -> list[Value] | None:
        """A buffer's window before the fused loop: what the head loop stored last."""
        if accessed_array(store) not in buffers or depth != lag:
            return None
        fed.add(store)
        zero = Builder(block, a.loc)
        zero.index = block.ops.index(head)
        t = store.operands[0].type
        given = [zero.op1("arith.const", [], t, {"value": 0.0 if t.is_float else 0})] * lag
        return stored_window(head, twin[store], lag, given)
    windows = carry_stored(a, acc, from_head)
    builder.index = block.ops.index(a) + 1    # (from_head put constants before the head)
    if fed:
        _unrolled_tail(builder, b, lb, ub, lag, {accessed_array(s): windows[s] for s in fed})
    elif lag:
        b.operands[0] = builder.op1("arith.max", [builder.op1("arith.sub", [ub, shift], i64),
                                                  lb], i64)
        builder.insert(b)
    for op in between:
        if not is_pure(op):
            builder.insert(op)
    a.attrs = {**a.attrs, "outline": True}   # compiled on its own, every index unsigned


def _buffers(a: Op, b: Op) -> dict[Value, int]:
    """{array: offset}: the local arrays that a writes once per iteration (one store at
    iv + offset) and b only reads, at the same element (a buffer passed from a to b, such
    as `tmp` in the module docstring); fused with a lag, their values can pass in registers only."""
    first, second = _shifted_accesses(a), _shifted_accesses(b)
    out = {}
    for arr, uses in first.items():
        owner = arr.owner
        if not (isinstance(owner, Op) and owner.name == "mem.alloc") or arr not in second:
            continue
        if len(uses) == 1 and uses[0][2] and all(not w and c == uses[0][0] and shape ==
                                                 uses[0][1] for c, shape, w in second[arr]):
            out[arr] = uses[0][0]
    return out


def _unrolled_tail(builder: Builder, b: Op, lb: Value, ub: Value, lag: int,
                   windows: dict[Value, list[Value]]) -> None:
    """b's last `lag` iterations j = ub - m (m = lag..1, each if j >= lb), its loads of a
    buffer replaced by w_m, the element the fused loop stored in its iteration ub - m
    (carried: `windows`)."""
    body = b.regions[0]

    def iteration(inner: Builder, j: Value, m: int) -> None:
        vmap = {body.args[0]: j}
        for op in body.ops[:-1]:
            if op.name == "mem.load" and op.operands[0] in windows:
                vmap[op.results[0]] = windows[op.operands[0]][m - 1]
            else:
                inner.insert(clone_op(op, vmap))
    last_iterations(builder, lb, ub, range(lag, 0, -1), False, iteration)


def fuse_shifted(fn: Function) -> bool:
    """Fuse adjacent loops over the same range where the second reads or writes what the
    first touches a few elements ahead of or behind it (a stencil into a buffer, then the
    buffer copied back: `tmp[i] = f(u[i-1], u[i], u[i+1])`, `u[i] = tmp[i]`), the second
    lagging behind as far as that needs (_lag); the buffer's elements then pass between the
    two in registers, in the fused loop and in the iterations before and after it
    (_buffers), so that a local buffer nothing else reads is not written at all (dce). Run
    on derivatives only: the carried values this leaves would each need a tape slot if AD
    saw them. Loops in parallel bodies are left alone. Returns whether anything changed."""
    return _fuse_shifted_block(fn.body, Accesses(fn), lower_bounds(fn))
