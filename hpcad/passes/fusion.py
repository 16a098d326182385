"""Loop fusion: two adjacent `scf.for` loops over the same range become one when that cannot
change what any iteration reads. The test is deliberately simple: every pair of accesses to
the same array class, one of them a write, must use the same index tuple and that tuple must
contain the induction variable itself, so iteration i of the second loop only touches what
iteration i of the first touched, after it."""
from __future__ import annotations

from ..ir.core import Block, Function, Op, Value, walk
from ..ir.dialects import is_pure
from .aliases import variable_classes

_ACCESS = ("mem.load", "mem.store", "mem.accumulate")


def _accesses(body: Block, iv: Value, rename: Value, key):
    """(class, index tuple with iv renamed, is_write) of every memory access in the body."""
    out = []
    for op in walk(body):
        if op.name in _ACCESS:
            arr, idx = (op.operands[0], op.operands[1:]) if op.name == "mem.load" else \
                (op.operands[1], op.operands[2:])
            out.append((key(arr), tuple(rename if v is iv else v for v in idx),
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
