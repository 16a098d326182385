"""Gather form of adjoint stencils, and ascending order for reverse loops whose iterations
are independent: two rewrites of the derivative that let LLVM vectorize the reverse sweep.

The adjoint of a stencil `tmp[i] = f(u[i-1], u[i], u[i+1])` scatters:

    for i in reversed(range(lo, hi)):       d_u[i-1] += a(i); d_u[i] += b(i); d_u[i+1] += c(i)

Every iteration writes three elements that its neighbours write too, a loop-carried
dependence through memory that keeps the loop scalar. `gather_stencils` moves those
accumulations into a loop of their own that runs first and computes each element once:

    for j in range(lo - 1, hi + 1):         d_u[j] += c(j-1) ... in the scatter's order

(`a`, `b`, `c` recomputed from their inputs at the shifted index: loads that are cheap and
in cache.) The elements of d_u receive the same terms in the same order as in the scatter
loop, so the result is bitwise the same. The gather loop's first and last few elements
(where a neighbour lies outside [lo, hi)) are guarded; its interior is not, and vectorizes.
The rest of the loop (other stores, reductions) stays where it was, or runs inside the
gather loop (to_gather_form: with the copy adjoint that precedes the stencil's adjoint fused in too,
one pass over memory per step instead of three).

`ascend_independent` drops the `reverse` attribute of loops whose iterations touch disjoint
elements and carry nothing but sums: LLVM vectorizes ascending loops (such as the copy
adjoint `d_tmp[i] += d_u[i]; d_u[i] = 0`). Such a loop with sums
gets `sums = "any order"`: the numba backend may then reassociate them (codegen.py outlines
it into a function of its own whose sums' adds are `fadd reassoc`), which vectorizes the
adjoints of scalar parameters. (Measured effects: benchmarks/README.md.)"""
from __future__ import annotations

from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Function, Op, Value, walk
from ..ir.dialects import (
    MEMORY_ACCESSES,
    access_index,
    accessed_array,
    before,
    is_pure,
    iv_offset,
    shifted,
    sum_update,
)
from ..ir.types import i64
from .affine import Access, Nest, along, movable, simple_body, slice_of, within
from .carry import carry_stored
from .gather_nest import Gather, emit_gather, has_race_free_form
from .race import Accesses


def _offsets(g: Gather) -> list[tuple[int, Op]]:
    """The single loop's terms as (c, accumulate op)."""
    return [(c[0], op) for c, op in g.terms]


def scatter_stencils(loop: Op, acc: Accesses) -> list[Gather] | None:
    """The loop's scatter stencils that can take gather form (at least one term off the
    diagonal), or None when the loop does not fit."""
    body = loop.regions[0]
    accesses = [op for op in body.ops if op.name in MEMORY_ACCESSES]
    groups: dict[tuple, Gather] = {}
    for op in accesses:
        if op.name != "mem.accumulate":
            continue
        found = along(op, loop)
        if found is None:
            continue
        d, c, rest = found
        if has_race_free_form(op):
            return None
        key = (op.operands[1], d, rest)
        index = tuple((0, c) if e == d else None for e in range(len(rest) + 1))
        template = Access(op, op.operands[1], index)
        groups.setdefault(key, Gather(Nest((loop,)), template)).terms.append(((c,), op))
    out = []
    for s in groups.values():
        if all(c == (0,) for c, _ in s.terms):
            continue
        mine = {op for _, op in s.terms}
        # the array is only accumulated here (through these terms), and nothing else the
        # loop touches may be the same buffer
        if any(op not in mine and (accessed_array(op) is s.array
                                   or acc.may_alias(accessed_array(op), s.array))
               for op in accesses):
            continue
        if all(movable(op.operands[0], body, acc) for _, op in s.terms):
            out.append(s)
    return out


def _feeder(s: Gather, acc: Accesses, cmin: int) -> Op | None:
    """The loop just before s's loop (tape moves and pure ops aside) that the gather loops
    can absorb, running its iteration j - cmin in their iteration j: a 1-D stencil whose
    loops share their bounds, the feeder independent (passes over arrays element by
    element: the copy adjoint `d_tmp[i] += d_u[i]; d_u[i] = 0`), carrying nothing, and
    the gather reading what it writes at most -cmin elements ahead. Every element the
    gather reads is then final, and nothing the feeder reads has been changed yet."""
    loop = s.nest.loops[0]
    ops = loop.parent.ops
    k = ops.index(loop) - 1
    while k >= 0 and (is_pure(ops[k]) or ops[k].name in ("tape.retreat", "tape.advance",
                                                           "tape.reserve")):
        k -= 1
    feeder = ops[k] if k >= 0 else None
    if feeder is None or feeder.name != "scf.for" or feeder.results or len(s.template.index) > 1 \
            or cmin > 0 or list(feeder.operands[:3]) != list(loop.operands[:3]) \
            or not simple_body(feeder) or not _independent(feeder, acc):
        return None
    fbody = feeder.regions[0]
    if any(op.name == "tape.pop" for op in fbody.ops) or \
            any(access_index(op) != (fbody.args[0],) for op in fbody.ops
                if op.name in MEMORY_ACCESSES):
        return None
    written = [op.operands[1] for op in fbody.ops if op.name in ("mem.store", "mem.accumulate")]
    body = loop.regions[0]
    for c, acc_op in _offsets(s):
        ops = slice_of(acc_op.operands[0], body) or []
        for load in (op for op in ops if op.name == "mem.load"):
            if any(acc.may_alias(load.operands[0], w) for w in written):
                ahead = iv_offset(load.operands[1], body.args[0]) if len(load.operands) == 2 \
                    else None
                if ahead is None or ahead - c > -cmin:
                    return None
    return feeder


def _absorb(b: Builder, feeder: Op, j: Value, shift: int, guarded: bool) -> None:
    """At b, the feeder's iteration j + shift (guarded: if inside its range)."""
    lo, hi = feeder.operands[:2]
    fbody = feeder.regions[0]
    i = shifted(b, j, shift)
    inner = b
    if guarded:
        inside = within(b, i, lo, hi)
        then, other = Block(), Block()
        Builder(other).op("scf.yield", [])
        inner = Builder(then)
        inner.loc = feeder.loc
    vmap = {fbody.args[0]: i}
    for op in fbody.ops[:-1]:
        inner.insert(clone_op(op, vmap))
    if guarded:
        inner.op("scf.yield", [])
        b.op("scf.if", [inside], [], regions=[then, other])


def to_gather_form(s: Gather, b: Builder, acc: Accesses, fuse: bool) -> Op:
    """Emit, at b, the gather loops of stencil s (passes/gather_nest.py: a guarded head, the
    interior, a guarded tail) and remove its accumulations from the loop; with fuse, where
    that fits, the loop before them (_feeder) and what remains of the stencil's loop
    (fuse_rest) run inside them, and the interior loop's loads of what its earlier
    iterations stored become carried values (passes/carry.py), which lets LLVM vectorize
    it. Fusing saves passes over memory at every size. Returns the interior loop."""
    cmin = s.span(0)[0]
    feeder = _feeder(s, acc, cmin) if fuse else None
    if feeder is not None:
        s.prologue = lambda fb, j, guarded: _absorb(fb, feeder, j, -cmin, guarded)
    interior = emit_gather(b, [s])
    if feeder is not None:
        feeder.parent.ops.remove(feeder)
    for _, op in s.terms:
        s.nest.inner.ops.remove(op)
    if feeder is not None:
        fuse_rest(s, interior, acc)
        carry_stored(interior, acc)
    return interior


def fuse_rest(s: Gather, interior: Op, acc: Accesses) -> bool:
    """Run what is left of the stencil's loop (the zeroing of d_tmp and the sums of scalar
    adjoints, after its accumulations went into the gather loops) inside the gather's
    interior loop: its iteration j - cmax at the end of the interior's iteration j, the
    iterations the interior does not reach in the loop itself, now after the tail. Allowed
    when the loop's iterations are independent and carry only sums (any order will do),
    and every element it touches that a gather loop writes, or that it writes and a gather
    loop reads, is touched by the gather in iterations up to j (offsets e_g >= e_r - cmax):
    it then sees, and leaves, memory as when it ran last. Returns whether it fused."""
    rest, (cmin, cmax) = s.nest.loops[0], s.span(0)
    rbody, ibody = rest.regions[0], interior.regions[0]
    if not simple_body(rest) or not _independent(rest, acc) or \
            not all(sum_update(rest, k) for k in range(len(rest.results))):
        return False
    writes = ("mem.store", "mem.accumulate")
    mine = [op for op in rbody.ops if op.name in MEMORY_ACCESSES]
    theirs = [op for op in ibody.ops if op.name in MEMORY_ACCESSES]
    for r in mine:
        for g in theirs:
            if not acc.may_alias(accessed_array(r), accessed_array(g)) or \
                    (r.name not in writes and g.name not in writes):
                continue
            ir_, ig = access_index(r), access_index(g)
            if accessed_array(r) is not accessed_array(g) or len(ir_) != 1 or len(ig) != 1:
                return False
            er, eg = iv_offset(ir_[0], rbody.args[0]), iv_offset(ig[0], ibody.args[0])
            if er is None or eg is None or eg < er - cmax:
                return False
    b = Builder(ibody, interior.loc)
    b.index = len(ibody.ops) - 1
    j = ibody.args[0]
    sums = [ibody.add_arg(Value(a.type, a.name)) for a in rbody.args[1:]]
    vmap = {rbody.args[0]: before(b, j, cmax), **dict(zip(rbody.args[1:], sums, strict=False))}
    for op in rbody.ops[:-1]:
        b.insert(clone_op(op, vmap))
    ibody.ops[-1].operands += [vmap.get(v, v) for v in rbody.ops[-1].operands]
    interior.operands += rest.operands[3:]
    interior.results += [Value(v.type, None, interior) for v in rest.results]
    interior.attrs = {**interior.attrs, "sums": "any order"}
    # the rest loop keeps the iterations from hi + cmin - cmax on (at least lo), after the tail
    lo, hi = rest.operands[:2]
    rb = Builder(rest.parent, rest.loc)
    rb.index = rest.parent.ops.index(rest)
    start = rb.op1("arith.max", [lo, shifted(rb, hi, cmin - cmax)], i64)
    rest.operands = [start, hi, rest.operands[2], *interior.results[-len(rest.results):]] \
        if rest.results else [start, hi, rest.operands[2]]
    return True


def gather_stencils(fn: Function) -> bool:
    """Rewrite scatter stencils of sequential loops into gather form (see the module
    docstring); the loops before and after them run inside them where that fits
    (to_gather_form).
    Returns whether anything changed."""
    acc = Accesses(fn)
    changed = False
    for loop in [op for op in walk(fn.body) if op.name == "scf.for"]:
        if not simple_body(loop):
            continue
        stencils = scatter_stencils(loop, acc)
        if not stencils:
            continue
        b = Builder(loop.parent)
        b.index = loop.parent.ops.index(loop)
        b.loc = loop.loc
        for s in stencils:   # (a feeder is fused into a lone stencil only)
            to_gather_form(s, b, acc, len(stencils) == 1)
            b.index = loop.parent.ops.index(loop)
        changed = True
    return changed


def _independent(loop: Op, acc: Accesses) -> bool:
    """Whether the iterations of a simple loop touch disjoint elements: each array it
    writes is accessed only at one index tuple, which holds the loop variable itself, and
    it moves no tape position."""
    body = loop.regions[0]
    if any(op.name == "tape.pop" and not op.operands for op in body.ops):
        return False
    accesses = [op for op in body.ops if op.name in MEMORY_ACCESSES]
    for w in (op for op in accesses if op.name != "mem.load"):
        idx = access_index(w)
        if body.args[0] not in idx:
            return False
        for a in accesses:
            if acc.may_alias(accessed_array(a), w.operands[1]) and \
                    (accessed_array(a) is not w.operands[1] or access_index(a) != idx):
                return False
    return True


def ascend_independent(fn: Function) -> bool:
    """Drop `reverse` from loops whose iterations touch disjoint elements (each array the
    loop writes is accessed only at one index tuple, which holds the loop variable itself)
    and carry nothing but float sums (whose order is then ascending; a sum in either order
    is the sum's derivative). Returns whether anything changed."""
    acc = Accesses(fn)
    changed = False
    for loop in [op for op in walk(fn.body) if op.name == "scf.for"]:
        if not loop.attrs.get("reverse") or not simple_body(loop) \
                or not all(sum_update(loop, k) for k in range(len(loop.results))):
            continue
        if _independent(loop, acc):
            attrs = dict(loop.attrs)
            del attrs["reverse"]
            if loop.results:
                attrs["sums"] = "any order"   # the backend may reassociate them
            loop.attrs = attrs
            changed = True
    return changed
