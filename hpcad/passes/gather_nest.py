"""Gather form for the adjoint of a 2-D stencil: a nest of two loops whose body scatters

    for i in reversed(range(lo_i, hi_i)):
        for j in reversed(range(lo_j, hi_j)):
            y = f(i, j); d_u[i, j+1] += y; d_u[i, j-1] += y; d_u[i+1, j] += y; d_u[i-1, j] += y

becomes a nest that computes each element of d_u once, its terms recomputed at the shifted
iterations and added in the scatter's order (so the result is the same to the last bit):

    for i2 in range(lo_i - 1, hi_i + 1):
        for j2 in range(lo_j - 1, hi_j + 1):   d_u[i2, j2] += y(i2+1, j2) + ... (scatter order)

as passes/gather.py does for one loop. Rows and columns whose neighbours may fall outside
the scatter's domain are guarded, the rest are not; the unguarded column loop is marked
`outline = true` so that the numba backend compiles it in a function of its own (with
unsigned indices), where LLVM vectorizes it. What is left of the nest (the zeroing of the
adjoint the stencil read: `d_v[i, j] = 0`) runs for row i2 - 1 after row i2 of the gather,
once no later row reads it (Jacobi 500^2: 255 -> 68 us per reverse step, by hand).
"""
from __future__ import annotations

from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Function, Op, Value, walk
from ..ir.dialects import (
    MEMORY_ACCESSES,
    access_index,
    accessed_array,
    before,
    in_parallel,
    is_pure,
    iv_offset,
    shifted,
    unit_step,
)
from ..ir.types import i1, i64
from .gather import _movable, _recompute, _simple_body, _within
from .race import _Accesses


class _Nest:
    """A perfectly nested pair of counted loops with step 1 and a rectangular domain."""

    def __init__(self, outer: Op, inner: Op):
        self.outer, self.inner = outer, inner
        self.obody, self.ibody = outer.regions[0], inner.regions[0]
        self.i, self.j = self.obody.args[0], self.ibody.args[0]


def _nest(outer: Op) -> _Nest | None:
    if outer.name != "scf.for" or outer.results or not unit_step(outer):
        return None
    ops = outer.regions[0].ops[:-1]
    loops = [op for op in ops if op.regions]
    if len(loops) != 1 or loops[0].name != "scf.for" or loops[0].results \
            or not all(is_pure(op) for op in ops if op is not loops[0]):
        return None
    inner = loops[0]
    local = {r for op in ops for r in op.results} | {outer.regions[0].args[0]}
    if any(v in local for v in inner.operands[:3]) or not _simple_body(inner):
        return None
    return _Nest(outer, inner)


def _terms(nest: _Nest, acc: _Accesses) -> tuple[Value, list] | None:
    """(array, [(ci, cj, accumulate op)]) when the inner body accumulates into one 2-D
    array at (i + ci, j + cj), not all on the diagonal, touches it (or anything that may
    alias it) nowhere else, and each accumulated value can be recomputed at any iteration."""
    body = nest.ibody
    accesses = [op for op in body.ops if op.name in MEMORY_ACCESSES]
    found: dict[Value, list] = {}
    for op in accesses:
        if op.name != "mem.accumulate" or op.attrs.get("atomic"):
            continue
        idx = access_index(op)
        if len(idx) != 2:
            continue
        ci, cj = iv_offset(idx[0], nest.i), iv_offset(idx[1], nest.j)
        if ci is None or cj is None:
            continue
        found.setdefault(op.operands[1], []).append((ci, cj, op))
    for arr, terms in found.items():
        mine = {op for *_, op in terms}
        if all(ci == 0 and cj == 0 for ci, cj, _ in terms) or any(
                op not in mine and acc.may_alias(accessed_array(op), arr) for op in accesses):
            continue
        if all(_movable(op.operands[0], body, acc) and _writes_own_element(op, nest)
               for *_, op in terms):
            return arr, terms
    return None


def _writes_own_element(term: Op, nest: _Nest) -> bool:
    """Whether every array written in the inner body that the term's value loads is written
    at the element (i, j) itself (_movable has checked the load comes first): then no
    other iteration changes what the term reads."""
    body = nest.ibody
    loads = {op.operands[0] for op in body.ops if op.name == "mem.load"}
    return all(list(access_index(w)) == [nest.i, nest.j]
               for w in body.ops if w.name in ("mem.store", "mem.accumulate")
               and w.operands[1] in loads)


def _term(b: Builder, i: Value, j: Value, acc_op: Op, nest: _Nest) -> Value:
    """The value acc_op accumulates in the scatter's iteration (i, j), computed again at b
    (with the outer body's pure ops it needs)."""
    return _recompute(b, acc_op.operands[0], {nest.i: i, nest.j: j}, nest.obody, nest.ibody)


def _gather(nest: _Nest, arr: Value, terms: list, b: Builder) -> Op:
    """Emit, at b, the gather nest; returns the loop over its interior rows."""
    lo_i, hi_i = nest.outer.operands[:2]
    lo_j, hi_j = nest.inner.operands[:2]
    position = {op: k for k, op in enumerate(nest.ibody.ops)}
    si = 1 if nest.outer.attrs.get("reverse") else -1
    sj = 1 if nest.inner.attrs.get("reverse") else -1
    terms = sorted(terms, key=lambda t: (si * t[0], sj * t[1], position[t[2]]))
    ci_min, ci_max = min(t[0] for t in terms), max(t[0] for t in terms)
    cj_min, cj_max = min(t[1] for t in terms), max(t[1] for t in terms)
    one = b.op1("arith.const", [], i64, {"value": 1})

    def element(bb: Builder, i2: Value, j2: Value, rows: bool, columns: bool) -> None:
        """d_u[i2, j2] gathered; terms from outside the scatter's rows (columns) are
        skipped where `rows` (`columns`) asks for the guard."""
        total = bb.op1("mem.load", [arr, i2, j2], arr.type.dtype)
        for ci, cj, acc_op in terms:
            i, j = before(bb, i2, ci), before(bb, j2, cj)
            guards = [_within(bb, i, lo_i, hi_i)] * rows + [_within(bb, j, lo_j, hi_j)] * columns
            if not guards:
                total = bb.op1("arith.add", [total, _term(bb, i, j, acc_op, nest)], total.type)
                continue
            inside = guards[0] if len(guards) == 1 else bb.op1("arith.and", guards, i1)
            then, other = Block(), Block()
            Builder(other).op("scf.yield", [total])
            vb = Builder(then, nest.inner.loc)
            vb.op("scf.yield", [vb.op1("arith.add", [total, _term(vb, i, j, acc_op, nest)],
                                       total.type)])
            total = bb.op("scf.if", [inside], [total.type], regions=[then, other]).results[0]
        bb.op("mem.store", [total, arr, i2, j2])

    def edges(bb: Builder, first: Value, last: Value, c_min: int, c_max: int, lo: Value,
              hi: Value, body, loc) -> None:
        """One loop over both guarded ends of [first, last): [first, lo + c_max) and
        [hi + c_min, last), clipped so that they do not overlap (emitted once, not twice:
        guarded code is most of what numba compiles here)."""
        head_end = bb.op1("arith.min", [shifted(bb, lo, c_max), last], i64)
        tail_start = bb.op1("arith.max", [shifted(bb, hi, c_min), head_end], i64)
        zero = bb.op1("arith.const", [], i64, {"value": 0})
        nh = bb.op1("arith.max", [bb.op1("arith.sub", [head_end, first], i64), zero], i64)
        nt = bb.op1("arith.max", [bb.op1("arith.sub", [last, tail_start], i64), zero], i64)
        block = Block([Value(i64, "k")])
        eb = Builder(block, loc)
        k = block.args[0]
        in_head = eb.op1("arith.cmp", [k, nh], i1, {"pred": "lt"})
        at = eb.op1("arith.select", [in_head, eb.op1("arith.add", [first, k], i64),
                                     eb.op1("arith.add", [tail_start, eb.op1(
                                         "arith.sub", [k, nh], i64)], i64)], i64)
        body(eb, at)
        eb.op("scf.yield", [])
        bb.op("scf.for", [zero, bb.op1("arith.add", [nh, nt], i64), one], [], regions=[block])

    def all_columns(bb: Builder, i2: Value) -> None:
        block = Block([Value(i64, "j")])
        cb = Builder(block, nest.inner.loc)
        element(cb, i2, block.args[0], True, True)
        cb.op("scf.yield", [])
        bb.op("scf.for", [shifted(bb, lo_j, cj_min), shifted(bb, hi_j, cj_max), one], [],
              regions=[block])

    def interior_row(rb: Builder, i2: Value) -> None:
        edges(rb, shifted(rb, lo_j, cj_min), shifted(rb, hi_j, cj_max), cj_min, cj_max,
              lo_j, hi_j, lambda eb, j2: element(eb, i2, j2, False, True), nest.inner.loc)
        block = Block([Value(i64, "j")])
        cb = Builder(block, nest.inner.loc)
        element(cb, i2, block.args[0], False, False)
        cb.op("scf.yield", [])
        rb.op("scf.for", [shifted(rb, lo_j, cj_max), shifted(rb, hi_j, cj_min), one], [],
              {"outline": True}, regions=[block])

    # the edge rows first, then the interior rows (the rest of the nest runs inside these,
    # a row behind: passes over rows the edge rows read only after they have read them)
    edges(b, shifted(b, lo_i, ci_min), shifted(b, hi_i, ci_max), ci_min, ci_max, lo_i, hi_i,
          all_columns, nest.outer.loc)
    block = Block([Value(i64, "i")])
    rb = Builder(block, nest.outer.loc)
    interior_row(rb, block.args[0])
    rb.op("scf.yield", [])
    interior = b.op("scf.for", [shifted(b, lo_i, ci_max), shifted(b, hi_i, ci_min), one], [],
                    regions=[block])
    return interior


def _fuse_rest(nest: _Nest, interior: Op, arr: Value, terms: list, acc: _Accesses) -> bool:
    """Run row r of what is left of the nest after row r + ci_max of the gather's interior
    rows (the rows it does not reach there after the gather), when nothing it touches is
    the gathered array and every element it writes is read by the gather only in rows up to
    that one: the gather reads row i2 - ci of the other arrays, so row r last at r + ci_max.
    Returns whether it fused."""
    ci_min, ci_max = min(t[0] for t in terms), max(t[0] for t in terms)
    body = nest.ibody
    if any(op.name == "tape.pop" for op in body.ops):
        return False
    for op in body.ops:
        if op.name not in MEMORY_ACCESSES:
            continue
        a = accessed_array(op)
        if acc.may_alias(a, arr):
            return False
        if op.name != "mem.load" and (len(access_index(op)) != 2 or
                                      iv_offset(access_index(op)[0], nest.i) != 0):
            return False
    ibody = interior.regions[0]
    b = Builder(ibody, nest.outer.loc)
    b.index = len(ibody.ops) - 1
    r = before(b, ibody.args[0], ci_max)
    vmap = {nest.i: r}
    for op in nest.obody.ops[:-1]:
        b.insert(clone_op(op, vmap))
    lo_i, hi_i = nest.outer.operands[:2]
    ob = Builder(nest.outer.parent, nest.outer.loc)
    ob.index = nest.outer.parent.ops.index(nest.outer)
    nest.outer.operands[0] = ob.op1("arith.max", [lo_i, shifted(ob, hi_i, ci_min - ci_max)], i64)
    return True


def gather_nests(fn: Function) -> bool:
    """Rewrite 2-D scatter stencils of sequential loop nests into gather form (see the
    module docstring). Returns whether anything changed."""
    acc = _Accesses(fn)
    changed = False
    for outer in [op for op in walk(fn.body) if op.name == "scf.for"]:
        nest = _nest(outer)
        # (in a parallel loop or task, the gather's stores of elements that receive no term,
        # of unchanged values, could race)
        if nest is None or in_parallel(outer):
            continue
        found = _terms(nest, acc)
        if found is None:
            continue
        arr, terms = found
        b = Builder(outer.parent, outer.loc)
        b.index = outer.parent.ops.index(outer)
        interior = _gather(nest, arr, terms, b)
        for *_, op in terms:
            nest.ibody.ops.remove(op)
        _fuse_rest(nest, interior, arr, terms, acc)
        changed = True
    return changed
