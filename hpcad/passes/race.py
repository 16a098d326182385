"""Race analysis of parallel code. Within a `par.parallel_for`, two iterations conflict if
one writes an array element that another reads or writes. A write is safe when
- every access to that array in the loop uses one index tuple that determines the
  iteration: a component is the loop variable i plus a constant (or k * i + c for a
  constant k >= 1 and c the same in every iteration: an array statement storing into
  `a[first::k]`), or two components are
  i // m and i % m for one m, each plus a constant c >= 0 or not (a flattened 2-D index,
  `out[2 + k // m, 2 + k % m]` inside a halo too; legal when the loop's lower bound is at
  least 0, its step positive, m >= 0 and its upper bound a product with m: m = 0 then runs
  no iteration, and for m > 0 the pair is a non-negative index that gives back
  i = m * (i // m) + i % m);
- or every access indexes one same axis by the loop variable itself (each iteration owns
  that slice);
- or, pairwise, the write and each access index one same axis by k * i + c1 and
  k * i + c2 (constants, k >= 1) where c1 - c2 is not a nonzero multiple of k * s, s the
  size of the loop's constant step, up or down (iterations are s apart, so they never
  meet: red-black sweeps,
  `range(1 + colour, n - 1, 2)`, or `i = 2 * k + 1` over `prange(m)`), with the index
  >= 0 for every iteration (a negative index would count from the end);
- or a component is c - k * i (k >= 1, c invariant: a reversed view's element i) that the
  loop's bounds keep >= 0 at its last iteration, by the lower bounds of the values left
  (_reversed_owner: `t[2:1:-1]`'s last index is min(1, n - 1) + 1).
- or, pairwise, the write and each access index one same axis by m * i + j + c, m defined
  outside the loop (or a constant), j the variable of a loop (a `range`, or a `prange`
  inside, which runs serially) from a start >= 0 up to that m, c one constant >= 0, and
  the loop's lower bound is >= 0: iteration i touches only its block
  [m * i + c, m * i + c + m - 1] (`y[isrc * nr + irec]` for irec in range(nr);
  _blocks_apart).
A parallel loop or fork-join inside parallel code runs serially (as numba runs a prange in
a prange): only the outermost are checked, their accesses including the inner ones'. In a
`par.join`, an element a task writes must not be touched by another task: accesses
to one array are apart where the ranges of elements they may touch never meet (`out[:h]`
and `out[h:]`; passes/index_ranges.py). Arrays
allocated inside the loop (or task) are private, and so are their views and the buffers
its inner loops swap among them (`Accesses.made_in`: an alias class that holds nothing
else).

`guard_parallel_starts` gives a parallel loop whose start is not known to be >= 0, and
which races only because its indices might then be negative, a run-time check of its start
(`prange(lo, hi)` with lo an argument);
`guard_adjoint_starts` does the same for a derivative's loops that conflict;
`check_races` rejects racy primal code (unless the loop says allow_races=True), but for
accumulations alone (numba's array reductions, `acc += e`), which go into private copies;
`refuse_racing_derivative` rejects derivatives of loops that race on purpose;
`make_race_free` gives the accumulations of an adjoint that several iterations or tasks may
hit a race-free form: two-colour chunks for stencils (passes/coloring.py), private copies
when they sit in loops of the parallel body (each thread accumulates into its own copy of
the array with plain adds, the copies added to the array once after the loop: a force loop's
`d_x[j] += ...` over all pairs), atomic float adds otherwise."""
from __future__ import annotations

import functools
from collections.abc import Callable

from ..errors import DifferentiationError, HpcadError, where
from ..ir.core import Block, Builder, Function, Op, Value, walk
from ..ir.dialects import VIEWS, in_parallel, int_const, iv_offset, lower_bounds
from ..ir.effects import reads, writes
from ..ir.types import ArrayType, i1, lanes
from .aliases import variable_classes
from .coloring import color, colorable
from .index_ranges import LoopRanges


class RaceError(HpcadError):
    """Iterations of a parallel loop, or parallel tasks, touch the same array elements."""


def _distinct_groups(fn: Function) -> dict[Value, int]:
    """Arrays carried together by a loop as a permutation (`u, v = v, u`) name distinct
    buffers at any one time: value -> id of its group (same id: distinct buffers)."""
    groups = {}
    for op in walk(fn.body):
        if op.name in ("scf.for", "scf.while"):
            body = op.regions[0] if op.name == "scf.for" else op.regions[1]
            args = body.args[1:] if op.name == "scf.for" else body.args
            arrays = [a for a in args if isinstance(a.type, ArrayType)]
            if len(arrays) > 1:
                for a in arrays:
                    groups[a] = id(op)
    return groups


_MERGING = ("scf.for", "scf.while", "scf.if", "par.join", "par.parallel_for")


def _merged(v: Value) -> bool:
    """A value a loop or branch merges from others (a result, or a loop's block argument)."""
    owner = v.owner
    if isinstance(owner, Block):
        owner = owner.parent
    return isinstance(owner, Op) and owner.name in _MERGING


class Accesses:
    def __init__(self, fn: Function):
        self.fn = fn
        self.classes = variable_classes(fn)
        self.key = self.classes.find
        self.groups = _distinct_groups(fn)

    @functools.cached_property
    def low(self) -> dict[Value, int]:
        """Known lower bounds of integer values (ir.dialects.lower_bounds)."""
        return lower_bounds(self.fn)

    def may_alias(self, x: Value, y: Value) -> bool:
        if x is y:
            return True
        if self.key(x) != self.key(y):
            return False
        gx, gy = self.groups.get(x), self.groups.get(y)
        return gx is None or gx != gy

    @functools.cached_property
    def members(self) -> dict[Value, list[Value]]:
        """The values of each alias class with more than one (by its representative)."""
        out: dict[Value, list[Value]] = {}
        for v in list(self.classes.parent):
            out.setdefault(self.key(v), []).append(v)
        return out

    def made_in(self, region: Block) -> set[Value]:
        """The arrays of the alias classes the region alone makes: each value of the class is
        allocated in it, a view of one, or merged from those by its loops and branches
        (`cur, nxt = nxt, cur`). Each iteration or task has its own."""
        made = {r for o in walk(region) if o.name == "mem.alloc" or o.name in VIEWS
                for r in o.results}
        out: set[Value] = set()
        for root in {self.key(v) for v in made}:
            group = self.members.get(root, [root])
            if all(v in made or _merged(v) for v in group):
                out.update(group)
        return out

    def collect(self, region: Block) -> list[tuple[Op, Value, tuple, str]]:
        """(op, array, index tuple, kind) of the region's accesses to arrays from outside."""
        private = self.made_in(region)
        out = []
        for o in walk(region):
            if o.name == "mem.load":
                found = [(o.operands[0], tuple(o.operands[1:]), "read")]
            elif o.name in ("mem.store", "mem.accumulate"):
                kind = "store" if o.name == "mem.store" else "accumulate"
                found = [(o.operands[1], tuple(o.operands[2:]), kind)]
            else:   # whole arrays (fills, copies, kept calls: ir/effects.py), no element
                found = [(a, (), "read") for a in reads(o)] + \
                        [(a, (), "store") for a in writes(o)]
            out.extend((o, arr, idx, kind) for arr, idx, kind in found if arr not in private)
        return out


def _owns(idx: tuple, loop: Op, low: dict[Value, int]) -> bool:
    """The index tuple names an element only iteration iv touches: a component is iv itself,
    iv plus a constant, or k * iv + c for constants k >= 1 and c (distinct for distinct
    iterations), never negative (a negative index counts from the end, where another
    iteration may be: `prange(-1, n)` writing `a[i]` meets itself at a[n - 1])."""
    iv = loop.regions[0].args[0]
    return any(_never_negative(iv_offset(v, iv), loop, low) or _strided_owner(v, iv, loop, low)
               or _reversed_owner(v, iv, loop, low) for v in idx)


def _reversed_owner(index: Value, iv: Value, loop: Op, low: dict[Value, int]) -> bool:
    """index is c - k * iv (a constant k >= 1; c a sum of multiples of values defined
    outside the loop and a constant: `n - 1 - i`, a reversed view `u[::-1]`'s element i)
    and it is >= 0 at the loop's last iteration, which the loop's upper bound X (or
    max(m, X) for a constant m <= 0, which runs no iteration unless X > 0) bounds: i <= X - 1,
    so c - k * (X - 1) must be >= 0: a constant, plus values with positive coefficients
    and known lower bounds (X = Y // k, a view `u[::-k]`'s length: k * i <= Y - k, so
    c - Y + k; `t[2:1:-1]`, from min(2, n - 1) down to above min(1, n - 1), leaves
    min(1, n - 1) + 1 >= 0). The lower bound >= 0 and the step
    positive; distinct iterations then touch distinct, non-negative indices."""
    lb, ub, step = loop.operands[:3]
    if (int_const(step) or 0) <= 0 or low.get(lb, -1) < 0:
        return False
    form = _linear(index)
    k = -form.pop(iv, 0)
    if k < 1 or any(v is not None and _inside(v, loop) for v in form):
        return False
    bound = ub.owner
    if isinstance(bound, Op) and bound.name == "arith.max":
        least = [v for v in bound.operands if _at_most_zero(int_const(v))]
        if least:
            ub = next(v for v in bound.operands if v is not least[0])
    scale = k
    bound = ub.owner
    if isinstance(bound, Op) and bound.name == "arith.floordiv" and \
            int_const(bound.operands[1]) == k:
        ub, scale = bound.operands[0], 1   # i <= Y // k - 1: k * i <= Y - k
    last = _linear(ub)
    if any(v is not None and _inside(v, loop) for v in last):
        return False
    for v, coeff in last.items():     # index at the last i: c - k * X + k (c - Y + k)
        form[v] = form.get(v, 0) - scale * coeff
    least = form.get(None, 0) + k
    for v, coeff in form.items():     # at least: the values left at their lower bounds
        if v is not None and coeff != 0:
            if coeff < 0 or v not in low:
                return False
            least += coeff * low[v]
    return least >= 0


def _at_most_zero(c: int | None) -> bool:
    return c is not None and c <= 0


def _linear(v: Value, depth: int = 8) -> dict[Value | None, int]:
    """v as a sum of integer multiples of values plus a constant (the key None), through
    integer add, sub, neg and multiplication by a constant (depth levels deep)."""
    c = int_const(v)
    if c is not None:
        return {None: c}
    op = v.owner
    if depth == 0 or not isinstance(op, Op) or op.name not in (
            "arith.add", "arith.sub", "arith.neg", "arith.mul") or v.type.name != "i64":
        return {v: 1}
    if op.name == "arith.mul":
        for x, y in (op.operands, op.operands[::-1]):
            m = int_const(y)
            if m is not None:
                return {w: m * coeff for w, coeff in _linear(x, depth - 1).items()}
        return {v: 1}
    sign = -1 if op.name == "arith.sub" else 1
    parts = [(1, op.operands[0])] if op.name != "arith.neg" else [(-1, op.operands[0])]
    if op.name != "arith.neg":
        parts.append((sign, op.operands[1]))
    out: dict[Value | None, int] = {}
    for factor, x in parts:
        for w, coeff in _linear(x, depth - 1).items():
            out[w] = out.get(w, 0) + factor * coeff
    return out


def _inside(v: Value, loop: Op) -> bool:
    """Whether v is made inside the loop (its variable or an op of its body)."""
    block = v.owner.parent if isinstance(v.owner, Op) else v.owner
    return block is None or _within(block, loop)


def _strided_owner(index: Value, iv: Value, loop: Op, low: dict[Value, int]) -> bool:
    """index is k * iv + c (a constant k >= 1; c a sum of constants and values defined
    outside the loop with known lower bounds: `first + k * iv` of an array statement storing
    into a[first::k]) and k * i + c >= 0 for every iteration i (at the smallest i,
    _smallest)."""
    form = _scaled(index, iv, loop, low)
    if form is None or form[0] < 1:
        return False
    first = _smallest(loop, low)
    return first is not None and form[0] * first + form[1] >= 0


def _scaled(index: Value, iv: Value, loop: Op, low: dict[Value, int]) -> tuple[int, int] | None:
    """(k, least c) when index is k * iv + c for a constant k and a c that every iteration
    shares (constants, and values defined outside the loop, at their lower bound), else
    None."""
    return _affine(index, iv, lambda v: _invariant_least(v, loop, low))


def _strided(index: Value, iv: Value) -> tuple[int, int] | None:
    """(k, c) when index is exactly k * iv + c for integer constants k and c (`i + 1`,
    `2 * i + 1`, `(2 * i + 1) - 1`), else None."""
    return _affine(index, iv, int_const)


def _affine(index: Value, iv: Value, least: Callable[[Value], int | None]) \
        -> tuple[int, int] | None:
    """(k, c) when index is k * iv plus or minus terms, k an integer constant: c sums
    least(term) of the terms added (None: not such a term) and the integer constants
    subtracted (a value subtracted at its least would bound c from above, not below)."""
    if index is iv:
        return 1, 0
    op = index.owner
    if not isinstance(op, Op) or len(op.operands) != 2:
        return None
    a, b = op.operands
    if op.name == "arith.mul":
        k = int_const(b) if a is iv else int_const(a) if b is iv else None
        return None if k is None else (k, 0)
    terms = ((a, b, least), (b, a, least)) if op.name == "arith.add" else \
        ((a, b, int_const),) if op.name == "arith.sub" else ()
    sign = 1 if op.name == "arith.add" else -1
    for inner, term, value in terms:
        c = value(term)
        form = None if c is None else _affine(inner, iv, least)
        if form is not None:
            return form[0], form[1] + sign * c
    return None


def _invariant_least(v: Value, loop: Op, low: dict[Value, int]) -> int | None:
    """The least value of an integer every iteration of the loop shares: a constant, or a
    value defined outside the loop with a known lower bound; else None."""
    c = int_const(v)
    if c is not None:
        return c
    if _inside(v, loop) or v not in low:
        return None
    return low[v]


def _never_negative(c: int | None, loop: Op, low: dict[Value, int]) -> bool:
    """Whether i + c >= 0 for every iteration i of the loop (False when c is None or the
    smallest i is not known)."""
    if c is None:
        return False
    first = _smallest(loop, low)
    return first is not None and first + c >= 0


def _smallest(loop: Op, low: dict[Value, int]) -> int | None:
    """A lower bound of the loop variable over the iterations (None where unknown or the
    step is not a nonzero constant): the start's with a positive step, one above the
    stop's with a negative step (range(hi, lo, -s) stays above lo)."""
    lb, ub, step = loop.operands[:3]
    s = int_const(step) or 0
    return low.get(lb) if s > 0 else (low[ub] + 1 if s < 0 and ub in low else None)


def _flattened(idx: tuple, loop: Op, low: dict[Value, int]) -> bool:
    """Two components of the index tuple are i // m and i % m (each plus a constant >= 0 or
    not) for the loop variable i and one m that is >= 0 and a factor of the loop's upper
    bound, the lower bound >= 0 and the step positive: the pair names one element per
    iteration (module docstring)."""
    _, ub, step = loop.operands[:3]
    iv = loop.regions[0].args[0]
    if (int_const(step) or 0) <= 0 or not _never_negative(0, loop, low):
        return False
    bound = ub.owner
    factors = bound.operands if isinstance(bound, Op) and bound.name == "arith.mul" else ()

    def divisor(v: Value, name: str) -> Value | None:
        op = v.owner
        if isinstance(op, Op) and op.name == "arith.add":   # i // m + c, c >= 0 constant
            a, b = op.operands
            c, v = (int_const(a), b) if int_const(a) is not None else (int_const(b), a)
            if c is None or c < 0:
                return None
            op = v.owner
        if isinstance(op, Op) and op.name == name and op.operands[0] is iv:
            return op.operands[1]
        return None

    quotients = {divisor(v, "arith.floordiv") for v in idx}
    moduli = {divisor(v, "arith.mod") for v in idx}
    return any(m is not None and low.get(m, -1) >= 0 and any(m is f for f in factors)
               for m in quotients & moduli)


def _apart(idx: tuple, other: tuple, loop: Op, low: dict[Value, int]) -> bool:
    """Iterations never meet at these two index tuples: along one axis they are k * i + c1
    and k * i + c2 for constants k >= 1, c1 and c2, both >= 0 for every iteration, with
    c1 - c2 not a nonzero multiple of k * s, s the loop's constant step's size, up or down
    (iterations i != i' meet only where k (i - i') = c2 - c1, and i - i' is a multiple of
    s)."""
    iv, s = loop.regions[0].args[0], abs(int_const(loop.operands[2]) or 0)
    if s == 0:
        return False
    first = _smallest(loop, low)
    for a, b in zip(idx, other, strict=False):
        fa, fb = _strided(a, iv), _strided(b, iv)
        if fa is None or fb is None or fa[0] != fb[0] or fa[0] < 1 or first is None \
                or fa[0] * first + min(fa[1], fb[1]) < 0:
            continue
        if fa[1] == fb[1] or (fa[1] - fb[1]) % (fa[0] * s) != 0:
            return True
    return False


def _block(index: Value, iv: Value, loop: Op, low: dict[Value, int]) -> tuple | None:
    """(m, c) when index is m * i + j + c: i the loop variable, m a value defined outside the
    loop (or a constant k: k * i + j + c), j the variable of a `for` loop from a start >= 0
    up to m (the same value, or k) with a positive constant step, c a constant >= 0; else
    None. Such an index lies in [m * i + c, m * i + c + m - 1] (no j if m <= 0): iteration i's
    own block of m elements (`y[isrc * nr + irec]` for irec in range(nr))."""
    form = _linear(index)
    c = form.pop(None, 0)
    if c < 0 or len(form) != 2 or any(coeff < 1 for coeff in form.values()):
        return None
    for scaled, j in (tuple(form), tuple(form)[::-1]):
        m = _multiplier(scaled, form[scaled], iv, loop)
        if m is not None and form[j] == 1 and _runs_below(j, m, low):
            return m, c
    return None


def _multiplier(term: Value, coeff: int, iv: Value, loop: Op):
    """m where coeff * term is m * iv (m invariant in the loop, or a constant), else None."""
    if term is iv:
        return coeff
    op = term.owner
    if coeff != 1 or not isinstance(op, Op) or op.name != "arith.mul":
        return None
    a, b = op.operands
    m = b if a is iv else a if b is iv else None
    return None if m is None or _inside(m, loop) else m


def _runs_below(j: Value, m, low: dict[Value, int]) -> bool:
    """Whether j is the variable of a `for` loop from a start >= 0 up to m (a value, or a
    constant) with a positive constant step: a `range`, or a `prange` inside the parallel
    loop, which runs serially in each of its iterations (module docstring)."""
    block = j.owner
    op = block.parent if isinstance(block, Block) else None
    if op is None or op.name not in ("scf.for", "par.parallel_for") \
            or op.regions[0].args[0] is not j:
        return False
    lb, ub, step = op.operands[:3]
    return (int_const(step) or 0) > 0 and low.get(lb, -1) >= 0 and \
        (ub is m or int_const(ub) == m)


def _blocks_apart(idx: tuple, other: tuple, loop: Op, low: dict[Value, int]) -> bool:
    """Iterations never meet at these two index tuples: along one axis both are m * i + j + c
    for one m and one c (_block, the loop's lower bound >= 0), so iterations i != i' touch
    [m * i + c, m * i + c + m - 1] and [m * i' + c, ...], which never meet."""
    iv = loop.regions[0].args[0]
    if not _never_negative(0, loop, low):
        return False
    for a, b in zip(idx, other, strict=False):
        fa, fb = _block(a, iv, loop, low), _block(b, iv, loop, low)
        if fa is not None and fb is not None and fa[1] == fb[1] and \
                (fa[0] is fb[0] or (isinstance(fa[0], int) and fa[0] == fb[0])):
            return True
    return False


def _lanes_of(arr: Value) -> Value:
    """The array of vectors a lane view (`vec.lane`) shows one lane of, else arr: the view
    indexes its elements as the array does."""
    while isinstance(arr.owner, Op) and arr.owner.name == "vec.lane":
        arr = arr.owner.operands[0]
    return arr


def same_indexing(x: Value, y: Value) -> bool:
    """Whether one index tuple names the same element of x and of y: the same array (or
    lanes of it), or two names of a buffer that neither slices nor reshapes (u[1:][i] is
    u[i + 1], a.reshape(m, n)[i, j] is not a[i, j])."""
    x, y = _lanes_of(x), _lanes_of(y)
    return x is y or not any(isinstance(v.owner, Op) and v.owner.name in ("mem.view",
                                                                          "mem.reshape")
                             for v in (x, y))


def _owns_slice(related, arr: Value, iv: Value) -> bool:
    """Every access is to arr itself (or a lane of it) with the loop variable as the index
    of one same axis (`a[i, j]`, `a[i, 0]`): iteration iv owns that slice."""
    axes = None
    for _, other, idx, _ in related:
        if _lanes_of(other) is not _lanes_of(arr):
            return False
        mine = {k for k, v in enumerate(idx) if v is iv}
        axes = mine if axes is None else axes & mine
    return bool(axes)


def _ranges_apart(ranges: LoopRanges, p: tuple[Value, tuple], q: tuple[Value, tuple]) -> bool:
    """Iterations never meet at these two accesses (array, index tuple), by the ranges of
    the elements each may touch in the array both are views of (passes/index_ranges.py)."""
    a, b = ranges.access(*p), ranges.access(*q)
    return a is not None and b is not None and a[0] is b[0] and ranges.apart(a[1], b[1])


def _tasks_apart(ranges: LoopRanges, p: tuple[Value, tuple], q: tuple[Value, tuple]) -> bool:
    """Two tasks' accesses (array, index tuple) never touch one element of the array both
    are views of (passes/index_ranges.py, LoopRanges.disjoint)."""
    a, b = ranges.access(*p), ranges.access(*q)
    return a is not None and b is not None and a[0] is b[0] and ranges.disjoint(a[1], b[1])


def loop_conflicts(loop: Op, acc: Accesses):
    """Groups of accesses that different iterations of the parallel loop may race on."""
    iv = loop.regions[0].args[0]
    accesses = acc.collect(loop.regions[0])
    conflicts = []
    ranges = functools.cache(lambda: LoopRanges(loop, acc.low, acc.fn.alike))
    for op, arr, idx, kind in accesses:
        if kind == "read":
            continue
        related = [a for a in accesses if acc.may_alias(a[1], arr)]
        same = all(a[2] == idx and same_indexing(a[1], arr) for a in related)
        if same and (_owns(idx, loop, acc.low) or _flattened(idx, loop, acc.low)):
            continue
        if _owns_slice(related, arr, iv) and _never_negative(0, loop, acc.low):
            continue
        racing = [a for a in related if (_lanes_of(a[1]) is not _lanes_of(arr)
                  or not (_apart(idx, a[2], loop, acc.low)
                          or _blocks_apart(idx, a[2], loop, acc.low)))
                  and not _ranges_apart(ranges(), (arr, idx), (a[1], a[2]))]
        if racing:
            conflicts.append((op, racing if any(a[0] is op for a in racing)
                              else racing + [(op, arr, idx, kind)]))
    return conflicts


def _join_conflicts(join: Op, acc: Accesses):
    """Accesses of other tasks that may touch an element a task writes: to one array, and
    not proven apart by the ranges of elements each may touch (passes/index_ranges.py:
    `out[:h]` and `out[h:]`, or loops over 0..h - 1 and h..n - 1)."""
    per_task = [acc.collect(r) for r in join.regions]
    conflicts = []
    ranges = functools.cache(lambda: LoopRanges(join, acc.low, acc.fn.alike))
    for t, accesses in enumerate(per_task):
        for op, arr, idx, kind in accesses:
            if kind == "read":
                continue
            related = [a for u, other in enumerate(per_task) if u != t
                       for a in other if acc.may_alias(a[1], arr)
                       and not _tasks_apart(ranges(), (arr, idx), (a[1], a[2]))]
            if related:
                conflicts.append((op, related + [(op, arr, idx, kind)]))
    return conflicts


def _conflicts(fn: Function):
    """The conflicts of each outermost parallel loop or fork-join: one inside parallel code
    runs serially (as numba runs a prange in a prange), its accesses the outer one's."""
    acc = Accesses(fn)
    for op in walk(fn.body):
        if in_parallel(op):
            continue
        if op.name == "par.parallel_for":
            yield op, loop_conflicts(op, acc)
        elif op.name == "par.join":
            yield op, _join_conflicts(op, acc)


def guard_parallel_starts(fn: Function) -> bool:
    """Each parallel loop with a positive constant step whose start has no known lower bound,
    and whose iterations race only because an index i + c might be negative (counting from
    the array's end, where another iteration may be), starts at max(start, 0) after a
    run-time check that start >= 0: the same iterations wherever the check passes, and a
    KernelAssertionError at the loop otherwise. Loops that race whatever their start are
    left to check_races."""
    return _guard_starts(fn, _races_only_below_zero)


def guard_adjoint_starts(fn: Function) -> bool:
    """In a derivative, each such loop outside parallel code whose iterations conflict (an
    adjoint's scatter `d_x[i + c] += ...` of a loop reading x[i + c] with `prange(lo, hi)`)
    gets the same check, as guard_parallel_starts gives primal loops: its race-free forms
    (passes/gather_parallel.py) need non-negative indices, and a negative start stops the
    derivative with a KernelAssertionError at the loop."""
    return _guard_starts(fn, _adjoint_to_make_race_free)


def _guard_starts(fn: Function, needs_check: Callable[[Op, Accesses], bool]) -> bool:
    """The start check (_start_checked) for each parallel loop with a positive constant step,
    a start of no known lower bound and conflicting iterations, where needs_check says so."""
    changed = False
    for loop in [op for op in walk(fn.body) if op.name == "par.parallel_for"]:
        if (int_const(loop.operands[2]) or 0) <= 0:
            continue
        acc = Accesses(fn)   # (afresh: a check made earlier adds values)
        if loop.operands[0] not in acc.low and loop_conflicts(loop, acc) \
                and needs_check(loop, acc):
            _start_checked(loop)
            changed = True
    return changed


def _races_only_below_zero(loop: Op, acc: Accesses) -> bool:
    acc.low[loop.operands[0]] = 0     # as if checked
    return not loop_conflicts(loop, acc)


def _adjoint_to_make_race_free(loop: Op, acc: Accesses) -> bool:
    return not (in_parallel(loop) or loop.attrs.get("allow_races")
                or loop.attrs.get("race_free"))


def _start_checked(loop: Op) -> None:
    """Before loop: assert start >= 0; the loop then starts at max(start, 0), which
    ir.dialects.lower_bounds knows is >= 0."""
    assert loop.parent is not None
    lb = loop.operands[0]
    b = Builder(loop.parent, loop.loc)
    b.index = loop.parent.ops.index(loop)
    zero = b.op1("arith.const", [], lb.type, {"value": 0})
    b.op("rt.assert", [b.op1("arith.cmp", [lb, zero], i1, {"pred": "ge"})], [],
         {"what": "this parallel loop's start is negative, where its indices would count "
                  "from the arrays' ends and iterations could touch the same elements; "
                  "start it at 0 or above"})
    loop.operands[0] = b.op1("arith.max", [lb, zero], lb.type)


def check_races(fn: Function) -> None:
    for par in walk(fn.body):
        if par.dialect == "par":
            for r in par.regions:
                for o in walk(r):
                    if o.dialect == "mpi" and o.name not in ("mpi.rank", "mpi.size",
                                                             "mpi.world"):
                        raise RaceError(
                            f"{where(o.loc)}: MPI communication inside a parallel loop or "
                            f"task ({where(par.loc)}); communicate outside it")
                    if o.dialect == "tape":   # a nested reverse derivative's (one stack)
                        raise RaceError(
                            f"{where(par.loc)}: a reverse derivative taken in this parallel "
                            f"loop or task (ad.grad, ad.value_and_grad or a vjp_fn) saves "
                            f"values on a tape (at {where(o.loc)}) that the iterations "
                            f"would share; take it in a serial loop, or take it with ad.jvp "
                            f"(forward mode saves none)")
    for par, conflicts in _conflicts(fn):
        if not conflicts or _made_race_free(conflicts):
            continue
        _privatize_reductions(par, conflicts)
        if par.attrs.get("allow_races") or _made_race_free(conflicts):
            continue
        op, related = conflicts[0]
        arr = _written_in(op, related)
        if par.name == "par.parallel_for":
            raise RaceError(
                f"{where(par.loc)}: iterations of this parallel loop race on array "
                f"'{shown_name(arr)}' (an element one iteration writes at {where(op.loc)} "
                f"may be read or written by another); give each iteration its own elements "
                f"(for a scatter such as f[j] -= fij: let iteration i add every term of "
                f"f[i] itself). allow_races=True on hpcad.prange runs the loop racing, as "
                f"numba does: two threads adding into one element can lose an update, so "
                f"pass it only where any outcome of the race is acceptable (numba runs a "
                f"prange serially in a function compiled without parallel=True: write "
                f"range() for such a loop)")
        raise RaceError(
            f"{where(par.loc)}: tasks of this fork-join race on array '{shown_name(arr)}' (written "
            f"at {where(op.loc)} and touched by another task); give each task its own arrays")


def _privatize_reductions(par: Op, conflicts) -> None:
    """A primal parallel loop's racing accumulations (numba's array reductions `acc += e`:
    frontend/parallel.py) go into per-thread copies of their arrays, added up after the
    loop, where _privatizable allows: additions commute, so any order of the iterations
    gives the serial sum (up to the rounding of floats, as a scalar reduction's). An
    accumulation that races with a read or a store of the same array stays a race."""
    racing = []
    for _, related in conflicts:
        racing += [o for o, _, _, kind in related if kind == "accumulate" and o not in racing]
    if racing and not par.attrs.get("race_free") and _privatizable(par, racing):
        par.attrs["race_free"] = "private copies"
        for op in racing:
            op.attrs["private"] = True


def _made_race_free(conflicts) -> bool:
    """Whether every racing access is an accumulation a derivative made race-free (atomic
    adds, private copies: make_race_free), as in a derivative taken inside a kernel and
    inlined there (frontend/nested.py)."""
    return all(kind == "accumulate" and (o.attrs.get("atomic") or o.attrs.get("private"))
               for _, related in conflicts for o, _, _, kind in related)


def _written_in(op: Op, related) -> Value:
    """The array op writes among the accesses of a conflict."""
    return next(arr for o, arr, _, kind in related if o is op and kind != "read")


def shown_name(arr: Value) -> str:
    """The name a message gives an array: its own, or a view's base's (`b` for `b[1:]`,
    a slice passed to an inlined kernel: the view has none of its own)."""
    while arr.name is None and isinstance(arr.owner, Op) and arr.owner.name in VIEWS:
        arr = arr.owner.operands[0]
    return arr.name or "an array made in the kernel"


def refuse_racing_derivative(fn: Function, shadowed: Callable[[Value], bool]) -> None:
    """A loop that races on purpose (allow_races=True) has no derivative where it races on
    an array that carries one (`shadowed`): the order of the racing iterations decides the
    values, so the derivative would race too, and no race-free form of it is right."""
    for par, conflicts in _conflicts(fn):
        if not par.attrs.get("allow_races"):
            continue
        for op, related in conflicts:
            arr = _written_in(op, related)
            if shadowed(arr):
                name = shown_name(arr)
                raise DifferentiationError(
                    f"{where(op.loc)}: cannot differentiate this write to '{name}': its "
                    f"parallel loop ({where(par.loc)}) says allow_races=True and its "
                    f"iterations may touch the same elements of '{name}', so their order "
                    f"decides the result; differentiate a version where the loop is a "
                    f"range(), or where each iteration writes its own elements (then drop "
                    f"allow_races)")


def make_race_free(fn: Function) -> None:
    """Give racy accumulations of a derivative a race-free form: the two-colour chunked
    loop (passes/coloring.py) for stencil-shaped ones, atomic float adds otherwise. Any
    other racy write is an error (it would mean the adjoint construction is wrong)."""
    for par, conflicts in list(_conflicts(fn)):
        # a loop already given a race-free form (a derivative of a derivative copies it: its
        # tangents touch the elements its values touch) keeps it
        if par.attrs.get("allow_races") or par.attrs.get("race_free") or not conflicts:
            continue
        racing = []
        for op, related in conflicts:
            if any(kind != "accumulate" for _, _, _, kind in related):
                raise DifferentiationError(
                    f"{where(op.loc)}: internal: the derivative of this parallel code would "
                    f"race on '{shown_name(_written_in(op, related))}' and cannot be made "
                    f"race-free")
            racing += [o for o, _, _, _ in related if o not in racing]
        # colouring compares index offsets, so only of accesses that index one memory alike
        # (not u[i] beside a view's v[i], v = u[8:] or u[::-1]: that element is u[i + 8])
        alike = all(same_indexing(a[1], b[1]) for _, related in conflicts
                    for a in related for b in related)
        width = colorable(par, racing) if par.name == "par.parallel_for" and alike else None
        if width is not None:
            color(par, width)
        elif _privatizable(par, racing):
            par.attrs["race_free"] = "private copies"
            for op in racing:
                op.attrs["private"] = True
        else:
            for op in racing:
                op.attrs["atomic"] = True


def _in_inner_loop(op: Op, par: Op) -> bool:
    """Whether a loop of par's body encloses op (op runs many times per iteration)."""
    block = op.parent
    while block is not None and block.parent is not par:
        if block.parent.name in ("scf.for", "scf.while"):
            return True
        block = block.parent.parent
    return False


def _privatizable(par: Op, racing: list[Op]) -> bool:
    """Whether the racing accumulations of a parallel loop may go into per-thread copies of
    their arrays (module docstring): a loop not itself inside parallel code, accumulations
    into float or integer arrays of one lane made outside the loop, at least one of them in an inner
    loop (else the copies, zeroed and added up, cost more than atomic adds), arrays of at
    least one axis."""
    if par.name != "par.parallel_for" or in_parallel(par):
        return False
    inside = {o for o in walk(par.regions[0])}
    for op in racing:
        arr = op.operands[1]
        if op.name != "mem.accumulate" or lanes(arr.type) != 1 or arr.type.ndim == 0 \
                or not (arr.type.dtype.is_float or arr.type.dtype.is_int) \
                or arr.owner in inside \
                or (isinstance(arr.owner, Block) and _within(arr.owner, par)):
            return False
    return any(_in_inner_loop(op, par) for op in racing)


def _within(block: Block, par: Op) -> bool:
    """Whether the block is par's body or nested in it."""
    while block is not None:
        if block.parent is par:
            return True
        block = block.parent.parent if block.parent is not None else None
    return False
