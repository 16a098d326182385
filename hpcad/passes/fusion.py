"""Loop fusion: two adjacent `scf.for` loops over the same range become one when that cannot
change what any iteration reads. The test is deliberately simple: every pair of accesses to
the same array class, one of them a write, must use the same index tuple and that tuple must
contain the induction variable itself, so iteration i of the second loop only touches what
iteration i of the first touched, after it.

`fuse_peeled` fuses two loops whose ranges differ by a few elements at either end, when they
share nothing but arrays both only read: the first loop's iterations outside the second's
range run in loops of their own. In a reverse-mode derivative this puts the save of a state
array on the tape (`for w in range(n): push u[w]`) into the stencil loop that reads the same
elements (`for i in range(1, n - 1)`): one pass over the array instead of two."""
from __future__ import annotations

from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Function, Op, Value, walk
from ..ir.dialects import MEMORY_ACCESSES, access_index, accessed_array, is_pure, iv_offset, \
    unit_step
from ..ir.types import i64
from .aliases import variable_classes



def _accesses(body: Block, iv: Value, rename: Value, key):
    """(class, index tuple with iv renamed, is_write) of every memory access in the body."""
    out = []
    for op in walk(body):
        if op.name in MEMORY_ACCESSES:
            out.append((key(accessed_array(op)),
                        tuple(rename if v is iv else v for v in access_index(op)),
                        op.name != "mem.load"))
    return out


def _fusable(a: Op, b: Op, key) -> bool:
    if a.name != "scf.for" or b.name != "scf.for" or a.operands[:3] != b.operands[:3] \
            or a.attrs != b.attrs:
        return False
    if any(o.dialect in ("mpi", "func") or o.name in ("mem.fill", "mem.copy", "mem.add_into")
           for loop in (a, b) for o in walk(loop.regions[0])):
        return False   # communication order must stay; whole-array ops are not analysed
    produced = set(a.results)
    if any(v in produced for v in b.operands) or \
            any(v in produced for o in walk(b.regions[0]) for v in o.operands):
        return False
    iv = a.regions[0].args[0]
    first = _accesses(a.regions[0], iv, iv, key)
    second = _accesses(b.regions[0], b.regions[0].args[0], iv, key)
    for cls_a, idx_a, write_a in first:
        for cls_b, idx_b, write_b in second:
            if cls_a == cls_b and (write_a or write_b) and (idx_a != idx_b or iv not in idx_a):
                return False
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


def _disjoint(a: Op, b: Op, key) -> bool:
    """Whether two loops without carried values share no array one of them writes, and only
    the first touches the tape (indexed pushes and pops, which do not move it)."""
    if a.results or b.results:
        return False
    for loop, tape in ((a, True), (b, False)):
        for o in walk(loop.regions[0]):
            if o.regions or o.dialect in ("mpi", "func", "rt", "par") or \
                    o.name in ("mem.fill", "mem.copy", "mem.add_into", "mem.alloc"):
                return False
            if o.dialect == "tape" and not (tape and o.name in ("tape.push", "tape.pop")
                                            and len(o.operands) >= 1 + (o.name == "tape.push")):
                return False
    first = _accesses(a.regions[0], None, None, key)
    second = _accesses(b.regions[0], None, None, key)
    return not any(ca == cb and (wa or wb) for ca, _, wa in first for cb, _, wb in second)


def _peel(b: Builder, loop: Op, lb: Value, ub: Value) -> None:
    """At b, the loop's iterations in [lb, ub) as a loop of their own."""
    new = clone_op(loop, {})
    new.operands[:2] = [lb, ub]
    b.insert(new)


def _fuse_peeled_block(block: Block, key) -> bool:
    changed = False
    for op in list(block.ops):
        for r in op.regions:
            changed |= _fuse_peeled_block(r, key)
    k = 0
    while k < len(block.ops):
        a = block.ops[k]
        m = k + 1
        while m < len(block.ops) and (is_pure(block.ops[m]) and not block.ops[m].regions or
                                      block.ops[m].name in ("tape.advance", "tape.reserve")):
            m += 1
        b = block.ops[m] if m < len(block.ops) else None
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
    body_a, body_b = a.regions[0], b.regions[0]
    vmap = {body_a.args[0]: body_b.args[0]}
    inner = Builder(body_b, a.loc)
    inner.index = 0
    for op in body_a.ops[:-1]:
        inner.insert(clone_op(op, vmap))
    builder.index = block.ops.index(b) + 1
    _peel(builder, a, tail_start, ub_a)
    for op in between:
        if not is_pure(op):
            builder.insert(op)


def fuse_peeled(fn: Function) -> bool:
    """Fuse adjacent loops whose ranges differ by at most _PEEL_MOST elements at either end
    and that share no written array (see the module docstring). Returns whether anything
    changed."""
    return _fuse_peeled_block(fn.body, variable_classes(fn).find)
