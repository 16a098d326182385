"""Gather form of adjoint stencils over loop nests of any depth (passes/affine.py). A nest
whose body scatters into an array at `iv + c` on every level,

    for i in reversed(range(lo_i, hi_i)):
        for j in reversed(range(lo_j, hi_j)):
            y = f(i, j); d_u[i, j+1] += y; d_u[i, j-1] += y; d_u[i+1, j] += y; d_u[i-1, j] += y

becomes a nest that computes each element of d_u once, its terms recomputed at the
shifted iterations and added in the scatter's order (so the result is the same to the
last bit), before the original nest, which keeps what else it did:

    for i2 in range(lo_i - 1, hi_i + 1):
        for j2 in range(lo_j - 1, hi_j + 1):   d_u[i2, j2] += y(i2+1, j2) + ... (scatter order)

Each array the nest scatters into is gathered, in one nest with the others whose terms
span the same offsets. On each level the elements
whose neighbours may fall outside the scatter's domain run in one guarded loop (both ends,
every deeper level guarded too), the rest in an unguarded loop; the unguarded innermost
loop is marked `outline = true`, so that the numba backend compiles it in a function of
its own (with unsigned indices), where LLVM vectorizes it. What is left of the nest (the
zeroing of the adjoint the stencil read: `d_v[i, j] = 0`) runs for outer index r inside
the last gather's interior, after its outer index r + c_max, once no later one reads it.

Legality, in the terms of passes/affine.py, for a nest and an array A (passes/gather.py
gathers single loops through the same emitter, emit_gather, under its own conditions):
- the nest is perfect and rectangular, outside parallel bodies; its innermost body is
  simple;
- A is touched in the nest only by non-atomic accumulations (nothing else that may alias
  it), each at `iv_L + c_L` on every level exactly once, other components invariant;
- each accumulated value depends on no carried value, and every array it loads that the
  nest writes is written only at (iv_0, ..., iv_{D-1}) itself, after the load: no other
  iteration changes what a term reads, so it may be computed at any time before the nest
  (an indexed tape read too: no op of the nest moves the tape, so an entry names the same
  value anywhere in it);
- every gathered index is known to be non-negative (a negative index names an element
  from the end, which the shifted arithmetic does not).
Then every element of A receives the same terms in the same order (iterations in the
nest's lexicographic order, program order within one), and nothing else sees A.
"""
from __future__ import annotations

from collections.abc import Callable

from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Function, Op, Value, uses, walk
from ..ir.dialects import access_index, before, in_parallel, shifted
from ..ir.types import i1, i64
from .affine import Access, Nest, movable, perfect_nest, recompute, within
from .race import Accesses


class Gather:
    """The accumulations into one array of a nest, all at one index shape: terms (offset
    per level, op). A `prologue(builder, x, guarded)` runs first at each element of a
    single loop's gather (passes/gather.py fuses the loop before it in so), whose guarded
    ends then run before and after its interior."""

    def __init__(self, nest: Nest, template: Access,
                 prologue: Callable[[Builder, Value, bool], None] | None = None):
        self.nest, self.array, self.template = nest, template.array, template
        self.terms: list[tuple[tuple[int, ...], Op]] = []
        self.prologue = prologue
        # when it holds, each element of the nest's domain reads as zero (a zeroing
        # deferred to this gather, passes/gather_deferred.py); True inside the branch of
        # a loop versioned on it (_versioned)
        self.zeroed: Value | bool | None = None

    def span(self, level: int) -> tuple[int, int]:
        cs = [c[level] for c, _ in self.terms]
        return min(cs), max(cs)

    def element(self, at: list[Value]) -> list[Value]:
        """The index of the element at gather position `at` (one value per level)."""
        return [at[comp[0]] if comp is not None else v
                for comp, v in zip(self.template.index, access_index(self.template.op),
                                   strict=True)]


def has_race_free_form(op: Op) -> bool:
    """Whether an accumulation has a race-free form of its own (passes/race.py: atomic, or
    into per-thread copies), which a gather loop would lose."""
    return bool(op.attrs.get("atomic") or op.attrs.get("private"))


def _shape(a: Access) -> tuple:
    """Which level each component follows, or the invariant value itself."""
    return tuple(comp[0] if comp is not None else v
                 for comp, v in zip(a.index, access_index(a.op), strict=True))


def index_levels(g: Gather) -> tuple:
    """Which level each component of the gathered array's index follows (or the invariant
    value itself)."""
    return _shape(g.template)


def nest_gathers(nest: Nest, acc: Accesses) -> list[Gather]:
    """The gathers of the nest's arrays that take gather form (module docstring)."""
    accesses = nest.accesses()
    if accesses is None:
        return []
    found: dict[Value, Gather | None] = {}
    for a in accesses:
        if a.op.name != "mem.accumulate":
            continue
        offsets = a.offsets(nest.depth)
        g = found.get(a.array, Gather(nest, a))
        if g is None or offsets is None or has_race_free_form(a.op) \
                or _shape(a) != _shape(g.template):
            found[a.array] = None
            continue
        g.terms.append((offsets, a.op))
        found[a.array] = g
    out = []
    for arr, g in found.items():
        if g is None or all(not any(c) for c, _ in g.terms):
            continue
        mine = {op for _, op in g.terms}
        if any(a.op not in mine and acc.may_alias(a.array, arr) for a in accesses):
            continue
        if all(_term_movable(op, nest, accesses, acc) for _, op in g.terms) \
                and _non_negative(g, acc):
            out.append(g)
    return out


def _term_movable(term: Op, nest: Nest, accesses: list[Access], acc: Accesses) -> bool:
    """Whether the term's value may be computed at any time before the nest: movable in
    the innermost body, and every array it loads that the nest writes is written only at
    the iteration's own element (offset 0 on every level)."""
    if not movable(term.operands[0], nest.inner, acc):
        return False
    loads = {a.array for a in accesses if not a.write}
    return all(a.offsets(nest.depth) == (0,) * nest.depth
               for a in accesses if a.write and a.array in loads)


def _non_negative(g: Gather, acc: Accesses) -> bool:
    """Whether every index the gather touches, lo_L + c_min on each level, is known to be
    non-negative."""
    return all(acc.low.get(g.nest.bounds(level)[0], -1) + g.span(level)[0] >= 0
               for level in range(g.nest.depth))


def _sorted_terms(g: Gather) -> list[tuple[tuple[int, ...], Op]]:
    """The order in which one element receives its terms in the scatter: iterations in the
    nest's order (on each level i = p - c, ascending or reversed), then program order."""
    position = {op: k for k, op in enumerate(g.nest.inner.ops)}
    signs = [1 if loop.attrs.get("reverse") else -1 for loop in g.nest.loops]
    return sorted(g.terms, key=lambda t: (*(s * c for s, c in zip(signs, t[0], strict=True)),
                                          position[t[1]]))


def _emit_element(b: Builder, g: Gather, groups: list, at: list[Value], guarded: set) -> None:
    """The element at `at` of each gather of groups ((gather, its sorted terms), all of
    g's span), in turn."""
    if g.prologue is not None:
        g.prologue(b, at[0], bool(guarded))
    for gather, terms in groups:
        _emit_one(b, gather, terms, at, guarded)


def _emit_one(b: Builder, g: Gather, terms: list, at: list[Value], guarded: set) -> None:
    """A[at] gathered: its terms from the scatter's iterations at - c, each from outside
    the scatter's domain on a level in `guarded` skipped."""
    nest, arr = g.nest, g.array
    idx = g.element(at)
    # one load, the terms added one by one, one store: the scatter's association
    # ((x + a) + b) + c exactly (merged accumulations would add a + b + c first)
    total = _first_value(b, g, at, guarded, idx)
    for offsets, op in terms:
        it = [before(b, at[level], c) for level, c in enumerate(offsets)]
        guards = [within(b, it[level], *nest.bounds(level)) for level in sorted(guarded)]
        vmap = dict(zip(nest.ivs, it, strict=True))
        if not guards:
            term = recompute(b, op.operands[0], vmap, *nest.bodies)
            total = b.op1("arith.add", [total, term], total.type)
            continue
        inside = guards[0]
        for more in guards[1:]:
            inside = b.op1("arith.and", [inside, more], i1)
        then, other = Block(), Block()
        Builder(other).op("scf.yield", [total])
        vb = Builder(then, nest.loops[-1].loc)
        term = recompute(vb, op.operands[0], vmap, *nest.bodies)
        vb.op("scf.yield", [vb.op1("arith.add", [total, term], total.type)])
        total = b.op("scf.if", [inside], [total.type], regions=[then, other]).results[0]
    b.op("mem.store", [total, arr, *idx])


def _first_value(b: Builder, g: Gather, at: list[Value], guarded: set,
                 idx: list[Value]) -> Value:
    """The element's value before its terms: loaded, or zero where g.zeroed holds and the
    element is in the nest's domain (tested on the levels where the gather position may
    leave it: the guarded ones, and any whose span does not hold offset 0); no load where
    both are known."""
    dtype = g.array.type.dtype
    inside = None if g.zeroed is None or g.zeroed is True else g.zeroed
    for level in range(g.nest.depth):
        c_min, c_max = g.span(level)
        if g.zeroed is not None and (level in guarded or not c_min <= 0 <= c_max):
            test = within(b, at[level], *g.nest.bounds(level))
            inside = test if inside is None else b.op1("arith.and", [inside, test], i1)
    zero = b.op1("arith.const", [], dtype, {"value": 0.0}) if g.zeroed is not None else None
    if g.zeroed is True and inside is None:
        return zero
    loaded = b.op1("mem.load", [g.array, *idx], dtype)
    return loaded if zero is None else b.op1("arith.select", [inside, zero, loaded], dtype)


def _versioned(b: Builder, g: Gather, loc, emit: Callable[[Builder], None]) -> None:
    """emit() twice, under `if g.zeroed` (where it is known to hold: no load, no test) and
    its else (where it is known not to): the flag is the same for every element."""
    flag = g.zeroed
    then, other = Block(), Block()
    for block, known in ((then, True), (other, None)):
        g.zeroed = known
        vb = Builder(block, loc)
        emit(vb)
        vb.op("scf.yield", [])
    g.zeroed = flag
    b.op("scf.if", [flag], [], regions=[then, other])


def _loop(b: Builder, lb: Value, ub: Value, loc, body: Callable[[Builder, Value], None],
          attrs: dict | None = None) -> Op:
    """for x in range(lb, ub): body(x), built at b."""
    block = Block([Value(i64, "x")])
    lb_ = Builder(block, loc)
    body(lb_, block.args[0])
    lb_.op("scf.yield", [])
    one = b.op1("arith.const", [], i64, {"value": 1})
    return b.op("scf.for", [lb, ub, one], [], dict(attrs or {}), regions=[block])


def _edges(b: Builder, g: Gather, level: int, body: Callable[[Builder, Value], None]) -> None:
    """One loop over both guarded ends of level's range [lo + c_min, hi + c_max):
    [.., lo + c_max) and [hi + c_min, ..), clipped so that they do not overlap (emitted
    once, not twice: guarded code is most of what numba compiles here)."""
    lo, hi = g.nest.bounds(level)
    c_min, c_max = g.span(level)
    first, last = shifted(b, lo, c_min), shifted(b, hi, c_max)
    head_end = b.op1("arith.min", [shifted(b, lo, c_max), last], i64)
    tail_start = b.op1("arith.max", [shifted(b, hi, c_min), head_end], i64)
    zero = b.op1("arith.const", [], i64, {"value": 0})
    nh = b.op1("arith.max", [b.op1("arith.sub", [head_end, first], i64), zero], i64)
    nt = b.op1("arith.max", [b.op1("arith.sub", [last, tail_start], i64), zero], i64)

    def at(eb: Builder, k: Value) -> None:
        in_head = eb.op1("arith.cmp", [k, nh], i1, {"pred": "lt"})
        x = eb.op1("arith.select", [in_head, eb.op1("arith.add", [first, k], i64),
                                    eb.op1("arith.add", [tail_start, eb.op1(
                                        "arith.sub", [k, nh], i64)], i64)], i64)
        body(eb, x)
    _loop(b, zero, b.op1("arith.add", [nh, nt], i64), g.nest.loops[level].loc, at)


def _full(b: Builder, g: Gather, groups: list, at: list[Value], guarded: set) -> None:
    """Every element from level len(at) down, each of those levels guarded."""
    level = len(at)
    if level == g.nest.depth:
        _emit_element(b, g, groups, at, guarded)
        return
    lo, hi = g.nest.bounds(level)
    c_min, c_max = g.span(level)
    _loop(b, shifted(b, lo, c_min), shifted(b, hi, c_max), g.nest.loops[level].loc,
          lambda lb, x: _full(lb, g, groups, [*at, x], guarded | {level}))


def _interior(b: Builder, g: Gather, groups: list, at: list[Value]) -> Op | None:
    """From level len(at) down: its guarded ends (_edges; with a prologue, a loop before
    and one after the interior, _ends), then its interior, unguarded on this level,
    recursing; a nest's innermost interior loop is outlined (and versioned on a deferred
    zeroing's flag). Returns the loop over this level's interior (None from the innermost
    level of a nest and below)."""
    level = len(at)
    if level == g.nest.depth:
        _emit_element(b, g, groups, at, set())
        return None
    lo, hi = g.nest.bounds(level)
    c_min, c_max = g.span(level)
    ends = _ends(b, g, groups) if g.prologue is not None and c_min != c_max else None
    if c_min != c_max and ends is None:
        _edges(b, g, level, lambda eb, x: _full(eb, g, groups, [*at, x], {level}))
    attrs = {"outline": True} if level == g.nest.depth - 1 > 0 else None
    loc = g.nest.loops[level].loc

    def emit(eb: Builder) -> Op:
        return _loop(eb, shifted(eb, lo, c_max), shifted(eb, hi, c_min), loc,
                     lambda lb, x: _interior(lb, g, groups, [*at, x]), attrs)
    flagged = [gg for gg, _ in groups if isinstance(gg.zeroed, Value)]
    if attrs is not None and flagged:
        # (the innermost loop, sequential: its value is not the nest's interior loop)
        _versioned(b, flagged[0], loc, emit)
        return None
    interior = emit(b)
    if ends is not None:
        ends()
    return interior


def _ends(b: Builder, g: Gather, groups: list) -> Callable[[], None]:
    """A single loop's guarded head [lo + c_min, lo + c_max), emitted now, and a function
    that emits its guarded tail [hi + c_min, hi + c_max) (both clipped to the range)."""
    lo, hi = g.nest.bounds(0)
    c_min, c_max = g.span(0)
    loc = g.nest.loops[0].loc
    head_end = b.op1("arith.min", [shifted(b, lo, c_max), shifted(b, hi, c_max)], i64)
    tail_start = b.op1("arith.max", [shifted(b, hi, c_min), shifted(b, lo, c_max)], i64)
    _loop(b, shifted(b, lo, c_min), head_end, loc,
          lambda lb, x: _emit_element(lb, g, groups, [x], {0}))
    return lambda: _loop(b, tail_start, shifted(b, hi, c_max), loc,
                         lambda lb, x: _emit_element(lb, g, groups, [x], {0}))


def emit_gather(b: Builder, gathers: list[Gather]) -> Op:
    """Emit, at b, one gather nest computing the elements of each of `gathers` (same nest,
    same span on every level) in turn; returns the loop over its outermost interior."""
    groups = [(g, _sorted_terms(g)) for g in gathers]
    interior = _interior(b, gathers[0], groups, [])
    assert interior is not None
    return interior


def fuse_rest(nest: Nest, g: Gather, interior: Op, acc: Accesses) -> bool:
    """Run outer index r of what is left of the nest at the end of the gather's interior
    outer index r + c_max (the outer indices it does not reach there, after the gather),
    when the rest moves no tape, its iterations are independent (each array it writes is
    accessed only at one index, at outer offset 0) and it touches nothing the gathers
    write (nest_gathers): the gather reads what the rest writes only at the scatter's own
    element (_term_movable), at outer index i2 - c for its terms' c, so outer index r
    last at r + c_max. Returns whether it fused."""
    inner = nest.inner
    counts = uses(inner)
    inner.ops = [op for op in inner.ops if not (op.name == "tape.pop" and op.operands
                                                 and not counts.get(op.results[0], 0))]
    accesses = nest.accesses()
    if accesses is None or any(op.name == "tape.pop" for op in inner.ops):
        return False
    for w in (a for a in accesses if a.write):
        if (0, 0) not in w.index or any(
                acc.may_alias(a.array, w.array) and (a.array is not w.array
                                                     or a.index != w.index)
                for a in accesses):
            return False
    c_min, c_max = g.span(0)
    ibody = interior.regions[0]
    b = Builder(ibody, nest.loops[0].loc)
    b.index = len(ibody.ops) - 1
    vmap = {nest.ivs[0]: before(b, ibody.args[0], c_max)}
    for op in nest.bodies[0].ops[:-1]:
        b.insert(clone_op(op, vmap))
    lo, hi = nest.bounds(0)
    ob = Builder(nest.loops[0].parent, nest.loops[0].loc)
    ob.index = nest.loops[0].parent.ops.index(nest.loops[0])
    nest.loops[0].operands[0] = ob.op1("arith.max", [lo, shifted(ob, hi, c_min - c_max)], i64)
    return True


def gather_nests(fn: Function) -> bool:
    """Rewrite the scatter stencils of sequential loop nests of depth >= 2 into gather form
    (see the module docstring). Returns whether anything changed."""
    acc = Accesses(fn)
    changed = False
    for outer in [op for op in walk(fn.body) if op.name == "scf.for"]:
        nest = perfect_nest(outer)
        # (in a parallel loop or task, the gather's stores of elements that receive no term,
        # of unchanged values, could race)
        if nest is None or nest.depth < 2 or in_parallel(outer):
            continue
        spans: dict[tuple, list[Gather]] = {}
        for g in nest_gathers(nest, acc):   # gathers over the same span share one nest
            spans.setdefault(tuple(g.span(lv) for lv in range(nest.depth)), []).append(g)
        interior = None
        for gathers in spans.values():
            b = Builder(outer.parent, outer.loc)
            b.index = outer.parent.ops.index(outer)
            interior = emit_gather(b, gathers)
            for g in gathers:
                for _, op in g.terms:
                    nest.inner.ops.remove(op)
        if interior is not None:
            fuse_rest(nest, gathers[0], interior, acc)
            changed = True
    return changed
