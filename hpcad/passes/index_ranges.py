"""Which elements an access of a parallel loop's iteration may touch, as ranges in the loop
variable: the race analysis's test for accesses that are not one index tuple per iteration
(passes/race.py), such as a triangle `a[i:, i] = ...; a[i, i:] = ...` or a row read through a
slice `np.dot(A[i + 1:, i], B[i + 1:, j])` in `prange(j)`; and for the tasks of a fork-join
(a par.join: no loop variable), whose accesses are apart where, on an axis, one's range
ends below the other's start (`out[:h]` and `out[h:]`: LoopRanges.disjoint).

For the parallel loop `for i in prange(lb, ub, s)` (s a positive constant), every integer
value its body computes gets a range [L, H] of linear forms in i and in values defined
outside the loop (the same in every iteration), L or H None where not known:
- i is [i, i]; a value from outside the loop v is [v, v], or its form where the rules below
  give it one exactly (`n - 1`, a clamp they decide); a constant c is [c, c];
- a loop variable of a loop in the body with a positive constant step runs over
  [L(its start), H(its stop) - 1] (an iteration that does not run touches nothing);
- a view's length along an axis is hi - lo (a unit-step slice) or the length it states
  (a slice with a step): every view hpcad makes lies within its base or is empty;
- sums, differences and products by a constant combine the bounds; min, max, select and
  comparisons are decided where the ranges decide them (i <= ub - 1 and the known lower
  bounds of outside values, ir.dialects.lower_bounds), else take a bound of either side.
A form's least or greatest value over the iterations puts i at an end of its range and
each outside value at its lower bound, with two facts more: a quotient q = Y // k (k a
positive constant) satisfies Y - k + 1 <= k q <= Y, so that `n - 2 * (n // 2)` is >= 0
(LoopRanges._split_quotient), also bounded through a multiple of the form where a
quotient's coefficient is no multiple of k (`(n + 1) // 2 - n <= 0`); and where an
iteration runs, ub >= lb + 1 (`prange(n // 3)` touches nothing unless n // 3 >= 1).
An access is mapped to its base array through slice views (`mem.view`, element k of a slice
from lo is element lo + k of the array, for lo and k >= 0; a whole view covers [lo, hi - 1];
element k of a slice with a constant step s from first is first + s * k: the frontend
clips first into the axis wherever the view has an element, and for a negative step the
start it clips with max(v, -1) is v there, the view being empty otherwise)
and lane views; other views (reshape, bitcast) are a base of their own. A slice's start
min(a, n) is a where n is the axis's length: the shape of an array of the same shape
(`same_shape`: a derivative's shadow has its primal's shape, Function.alike, and a view of a
shadow its primal view's), so a derivative's accesses through views of shadows get the
ranges its primal's got.

Two accesses to one base array, in iterations i and i' != i, name one element only if, on
every axis, their ranges meet: L_p(i) <= H_q(i') and L_q(i') <= H_p(i). Where the two bounds
of an inequality have one coefficient k of the loop variable and differ by a constant C,
it says k (i - i') <= C; intersected over the axes, these bound d = i - i'. If no nonzero
multiple of s is left, the iterations never meet there. Where the coefficients differ
(`i` against a reversed view's `n - 1 - i'`), an inequality that fails with i and i' at the
ends of the loop's range that favour it most fails for every pair (for coefficients k and
-k, with i and i' a step apart: only distinct iterations matter), and the iterations never
meet there either. An axis counts only where both lower bounds are >= 0 in every iteration
(a negative index counts from the end)."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from ..ir.core import Block, Op, Value
from ..ir.dialects import int_const, lower_bound_rule, view_axis_bounds
from ..ir.types import i64

Form = tuple[tuple[tuple[Value, int], ...], int]      # ((value, coefficient), ...), constant
Bound = Form | None
Range = tuple[Bound, Bound]

_UNKNOWN: Range = (None, None)


def _form(terms: dict[Value, int], const: int) -> Form:
    return tuple((v, k) for v, k in terms.items() if k != 0), const


def _exact(v: Value) -> Range:
    f = _form({v: 1}, 0)
    return f, f


def _const(c: int) -> Range:
    return ((), c), ((), c)


def _combine(a: Bound, b: Bound, kb: int) -> Bound:
    """a + kb * b (None where either is)."""
    if a is None or b is None:
        return None
    terms = dict(a[0])
    for v, k in b[0]:
        terms[v] = terms.get(v, 0) + kb * k
    return _form(terms, a[1] + kb * b[1])


def _scale(a: Bound, k: int) -> Bound:
    return None if a is None else _form({v: k * c for v, c in a[0]}, k * a[1])


class LoopRanges:
    """The ranges of the integer values of one parallel loop's body (module docstring)."""

    def __init__(self, loop: Op, low: dict[Value, int],
                 alike: Mapping[Value, Value] | None = None):
        self.loop = loop
        self.alike = alike or {}
        # (a fork-join's tasks have no loop variable: a value none of their forms holds)
        self.iv = loop.regions[0].args[0] if loop.name == "par.parallel_for" else Value(i64)
        self.step = (int_const(loop.operands[2]) or 0) if loop.name == "par.parallel_for" else 0
        self.memo: dict[Value, Range] = {}
        self.inside = _region_ops(loop)
        self.known = dict(low)
        self.known.update((v, 0) for v in _allocated_before(loop) if v not in low)
        self.tried: set[Value] = set()

    def lowest(self, v: Value) -> int | None:
        """A lower bound of a value from outside the loop: lower_bounds', or one its rules
        give from this loop's extra facts (extents of arrays allocated before the loop)."""
        if v not in self.known and v not in self.tried and isinstance(v.owner, Op) \
                and v.owner not in self.inside:
            self.tried.add(v)
            for x in v.owner.operands:
                self.lowest(x)
            got = lower_bound_rule(v.owner, self.known)
            if got is not None:
                self.known[v] = got
        return self.known.get(v)

    # -- ranges of values -----------------------------------------------------------------
    def of(self, v: Value) -> Range:
        got = self.memo.get(v)
        if got is None:
            self.memo[v] = _UNKNOWN          # (a cycle through a loop's carried value)
            got = self.memo[v] = self._compute(v)
        return got

    def _compute(self, v: Value) -> Range:
        c = int_const(v)
        if c is not None:
            return _const(c)
        if v is self.iv:
            return _exact(v)
        owner = v.owner
        if isinstance(owner, Block):
            parent = owner.parent
            if parent is self.loop:     # a reduction's accumulator: its own in each iteration
                return _UNKNOWN
            if parent is None or parent not in self.inside:
                return _exact(v)
            if parent.name in ("scf.for", "par.parallel_for") and v is owner.args[0] \
                    and (int_const(parent.operands[2]) or 0) > 0:
                return self.of(parent.operands[0])[0], \
                    _combine(self.of(parent.operands[1])[1], ((), 1), -1)
            return _UNKNOWN
        if not isinstance(owner, Op):
            return _exact(v)
        rule = _RULES.get(owner.name)
        if owner not in self.inside:    # one value in every iteration: itself, or a sum
            got = rule(self, owner) if rule is not None else None
            return got if got is not None and got[0] is not None and got[0] == got[1] \
                else _exact(v)
        return rule(self, owner) if rule is not None else _UNKNOWN

    # -- constant bounds of a form over the loop's iterations -------------------------------
    def least(self, f: Bound) -> int | None:
        """The least value of the form over the iterations (None: not known)."""
        return self._extreme(f, lower=True)

    def most(self, f: Bound) -> int | None:
        return self._extreme(f, lower=False)

    def _extreme(self, f: Bound, lower: bool) -> int | None:
        f = self._iv_extreme(f, lower)
        if f is None:
            return None
        divisors = [_divisor(v) for v, _ in f[0]]
        scales = {1, math.lcm(*(k for k in divisors if k is not None))}
        got = [b for b in (self._scaled_extreme(f, lower, k) for k in scales) if b is not None]
        return None if not got else max(got) if lower else min(got)

    def _scaled_extreme(self, f: Form, lower: bool, scale: int) -> int | None:
        """The least (lower) or greatest value of the form, bounded through scale times it
        (each quotient's coefficient then a multiple of its divisor: `(n + 1) // 2 - n`
        is at most (n + 1 - 2 n) / 2, so at most 0 for n >= 0), divided back."""
        terms: dict[Value, int] = {}
        total = f[1] * scale
        for v, c in f[0]:
            total += self._split_quotient(v, c * scale, lower, terms)
        for v, c in terms.items():
            if c == 0:
                continue
            least = self._least_running(v) if (c > 0) == lower else None
            if least is None:
                return None
            total += c * least
        return -(-total // scale) if lower else total // scale

    def _least_running(self, v: Value) -> int | None:
        """A lower bound of v from outside the loop where an iteration runs (which every
        access the ranges describe is in): lowest(v), and, where the loop's upper bound is
        v + c, lb + step - c at least (`prange(n // 3)` runs only where n // 3 >= 1)."""
        least = self.lowest(v)
        if self.step <= 0:
            return least
        ub = self.of(self.loop.operands[1])
        if ub[0] is None or ub[0] != ub[1] or ub[0][0] != ((v, 1),) or self.step <= 0:
            return least
        first = self._plain_least(self.of(self.loop.operands[0])[0])
        if first is None:
            return least
        running = first + 1 - ub[0][1]
        return running if least is None else max(least, running)

    def _plain_least(self, f: Bound) -> int | None:
        """The least value of a form of values from outside the loop, by their lower bounds."""
        if f is None or any(c < 0 or self.lowest(v) is None for v, c in f[0]):
            return None
        return f[1] + sum(c * (self.lowest(v) or 0) for v, c in f[0])

    def _iv_extreme(self, f: Bound, lower: bool) -> Bound:
        """f with the loop variable at the end of its range that makes f least (lower) or
        most: lb <= i <= ub - 1, forms of values from outside the loop (None: not known)."""
        if f is None:
            return None
        k = dict(f[0]).get(self.iv, 0)
        if not k:
            return f
        bound = self.of(self.loop.operands[0])[0] if (k > 0) == lower else \
            _combine(self.of(self.loop.operands[1])[1], ((), 1), -1)
        if bound is None or any(v is self.iv for v, _ in bound[0]):
            return None
        return _combine(_form({v: c for v, c in f[0] if v is not self.iv}, f[1]), bound, k)

    def _split_quotient(self, v: Value, c: int, lower: bool, terms: dict[Value, int]) -> int:
        """Adds c * v's terms to `terms` and returns a constant, bounding c * v from below
        (lower) or above where v = Y // k (k a positive constant, floor division: Y - k + 1
        <= k * v <= Y): c = m * k + r with r between 0 and k - 1 (below) or between
        1 - k and 0 (above), m * k * v bounded through Y, r * v left as it is (its sign
        then takes v's lower bound: `n - 2 * (n // 2) >= 0`, `n - n // 2 >= 0`)."""
        op, k = v.owner, _divisor(v)
        if k is None or not isinstance(op, Op):
            terms[v] = terms.get(v, 0) + c
            return 0
        m = c // k if lower else -(-c // k)
        r = c - m * k
        y = op.operands[0]
        exact = self.of(y)      # (Y by its form where it has one exactly: `(n - 1) // 2`)
        form = exact[0] if exact[0] is not None and exact[0] == exact[1] else (((y, 1),), 0)
        for x, kx in form[0]:
            terms[x] = terms.get(x, 0) + m * kx
        if r:
            terms[v] = terms.get(v, 0) + r
        # m * k * v >= m * Y - m * (k - 1) where m > 0 (below), <= it where m < 0 (above)
        return m * form[1] + (-m * (k - 1) if (m > 0) == lower and m != 0 else 0)

    def nonnegative(self, f: Bound) -> bool:
        least = self.least(f)
        return least is not None and least >= 0

    def sign_known(self, a: Bound, b: Bound) -> tuple[int | None, int | None]:
        """Constant bounds of a - b over the iterations."""
        d = _combine(a, b, -1)
        return self.least(d), self.most(d)

    # -- accesses mapped to their base array ------------------------------------------------
    def access(self, arr: Value, idx: tuple[Value, ...]) -> tuple[Value, list[Range]] | None:
        """(base array, range per axis) of an access (idx empty: the whole array), None where
        the access cannot be mapped (a whole array that is no slice view)."""
        ranges: list[Range] | None = \
            [self.index(v, arr, k) for k, v in enumerate(idx)] if idx else None
        while isinstance(arr.owner, Op):
            view = arr.owner
            if view.name == "vec.lane":
                arr = view.operands[0]
            elif view.name == "mem.view":
                ranges = self._through_view(view, ranges)
                arr = view.operands[0]
            else:
                break
        return None if ranges is None else (arr, ranges)

    def index(self, v: Value, arr: Value, axis: int) -> Range:
        """The range of v, an index of arr's axis that names an element (or the start of a
        slice that has one): where v is min(a, n) + k, n the axis's length and k >= 0, it is
        a + k (were a >= n, the index would be past the axis; a slice's start is clamped
        so, NumPy's and numba's)."""
        op = v.owner
        if isinstance(op, Op) and op.name in ("arith.min", "arith.add"):
            pairs = [(v, None)] if op.name == "arith.min" else \
                [(op.operands[0], op.operands[1]), (op.operands[1], op.operands[0])]
            for clamp, rest in pairs:
                a = self._clamped(clamp, arr, axis)
                k = self.of(rest) if rest is not None else _const(0)
                if a is not None and self.nonnegative(k[0]):
                    r = self.of(a)
                    return _combine(r[0], k[0], 1), _combine(r[1], k[1], 1)
        return self.of(v)

    def _through_view(self, view: Op, ranges: list[Range] | None) -> list[Range]:
        bounds = iter(view.operands[1:])
        inner = iter(ranges) if ranges is not None else None
        out: list[Range] = []
        base = view.operands[0]
        for axis, d in enumerate(view.attrs["dims"]):
            if d == "i":
                out.append(self.index(next(bounds), base, axis))
                continue
            if d == "t":     # (first, step, length): element k is first + step * k
                first, step, length = next(bounds), next(bounds), next(bounds)
                k = next(inner) if inner is not None else \
                    (((), 0), _combine(self.of(length)[1], ((), 1), -1))
                start = self._nonempty_start(first, int_const(step)) or \
                    self.index(first, base, axis)
                out.append(self._stepped(start, int_const(step), k))
                continue
            lo, hi = self.index(next(bounds), base, axis), self.of(next(bounds))
            k = next(inner) if inner is not None else None
            if not self.nonnegative(lo[0]):        # a negative start counts from the end
                out.append(_UNKNOWN)
            elif k is None:          # the whole slice: lo .. hi - 1
                top = _combine(hi[1], ((), 1), -1) if self.nonnegative(hi[0]) else None
                out.append((lo[0], top))
            elif self.nonnegative(k[0]):
                out.append((_combine(lo[0], k[0], 1), _combine(lo[1], k[1], 1)))
            else:
                out.append(_UNKNOWN)
        return out

    def _nonempty_start(self, first: Value, step: int | None) -> Range | None:
        """The first element of a view with a negative step where the view has one: the
        frontend clips a start v to min(max(v, -1), n - 1) (frontend/arrays.py `bound`), -1
        where v < -1, which leaves the view empty; so wherever an element is accessed, the
        start is min(v, n - 1). None where first is not so clipped."""
        op = first.owner
        if step is None or step >= 0 or not isinstance(op, Op) or op.name != "arith.min":
            return None
        for clipped, high in (op.operands, reversed(op.operands)):
            inner = clipped.owner
            if isinstance(inner, Op) and inner.name == "arith.max":
                for v, low in (inner.operands, reversed(inner.operands)):
                    if int_const(low) == -1:
                        a, b = self.of(v), self.of(high)
                        return a if _below(self, a, b) else b if _below(self, b, a) else None
        return None

    def _stepped(self, first: Range, step: int | None, k: Range) -> Range:
        """The elements first + step * k of a slice with a constant step, k in its range
        (k >= 0); unknown where the step is not a constant or k is not known to be >= 0 (a
        negative k counts from the view's end). The first element needs no test: the
        frontend clips it to the axis (frontend/arrays.py `bound`) wherever the view has an
        element, and the backends then start the view at first + 0 (numba's a[first::step],
        where a negative first would count from the end, is then cut to length 0)."""
        if step is None or step == 0 or not self.nonnegative(k[0]):
            return _UNKNOWN
        low, high = (k[0], k[1]) if step > 0 else (k[1], k[0])
        return _combine(first[0], _scale(low, step), 1), _combine(first[1], _scale(high, step), 1)

    def _clamped(self, v: Value, arr: Value, axis: int) -> Value | None:
        """a where v is min(a, n) (either order) and n is arr's length along axis: the shape
        of an array of arr's shape (same_shape), or the extent one was allocated with."""
        op = v.owner
        if not isinstance(op, Op) or op.name != "arith.min":
            return None
        for a, n in (op.operands, reversed(op.operands)):
            length = n.owner
            if isinstance(length, Op) and length.name == "mem.shape" \
                    and length.attrs.get("axis") == axis \
                    and same_shape(length.operands[0], arr, self.alike):
                return a
            made = _root(arr, self.alike).owner
            if isinstance(made, Op) and made.name == "mem.alloc" and made.operands[axis] is n:
                return a
        return None

    # -- the test -------------------------------------------------------------------------
    def apart(self, p: list[Range], q: list[Range]) -> bool:
        """Whether iterations i != i' never touch one element with p (in i) and q (in i')."""
        if self.step <= 0 or len(p) != len(q):
            return False
        lo, hi = -math.inf, math.inf
        for (pl, ph), (ql, qh) in zip(p, q):
            if not (self.nonnegative(pl) and self.nonnegative(ql)):
                continue
            for below, above, sign in ((pl, qh, 1), (ql, ph, -1)):
                got = self._inequality(below, above)
                if got is None:
                    if self._never_below(below, above):
                        return True
                    continue
                k, c = got         # k * x <= c, x = sign * d
                if k == 0:
                    if c < 0:
                        return True
                    continue
                k *= sign
                if k > 0:
                    hi = min(hi, c // k)
                else:
                    lo = max(lo, -(c // -k))      # x >= ceil(c / k) for k < 0
        if lo > hi:
            return True
        first = -(-lo // self.step) if lo != -math.inf else -math.inf
        last = hi // self.step if hi != math.inf else math.inf
        return first > last or first == last == 0

    def _never_below(self, below: Bound, above: Bound) -> bool:
        """Whether below(i) > above(i') for every two iterations i != i' (each at the end
        of the loop's range that makes it least or most): where the loop variable's
        coefficients differ (`i` against `n - 1 - i'`), so that their difference is no
        function of i - i'. Where they are k and -k, the difference is k (i + i') plus
        outside values, and two distinct iterations are at least a step apart: its least
        is |k| * step above the one at i = i' (`i` against `n - 2 - i'` over n // 2)."""
        low, high = self._iv_extreme(below, True), self._iv_extreme(above, False)
        least = self.least(_combine(low, high, -1))
        if least is None or below is None or above is None:
            return False
        kb, ka = dict(below[0]).get(self.iv, 0), dict(above[0]).get(self.iv, 0)
        if kb == -ka:
            least += abs(kb) * self.step
        return least > 0

    def disjoint(self, p: list[Range], q: list[Range]) -> bool:
        """Whether p and q, the ranges of two tasks' accesses to one array (in values the
        same for every task: LoopRanges of a par.join), never name one element: on an axis
        where both lower bounds are >= 0, one range ends below the other's start."""
        if len(p) != len(q):
            return False
        for (pl, ph), (ql, qh) in zip(p, q):
            if not (self.nonnegative(pl) and self.nonnegative(ql)):
                continue
            for start, end in ((ql, ph), (pl, qh)):
                least = self.least(_combine(start, end, -1))
                if least is not None and least > 0:
                    return True
        return False

    def _inequality(self, below: Bound, above: Bound) -> tuple[int, int] | None:
        """below(i) <= above(i') as k * (i - i') <= C: (k, C) where both forms have one
        coefficient k of the loop variable and differ by a constant C, else None."""
        if below is None or above is None:
            return None
        kb = dict(below[0]).get(self.iv, 0)
        ka = dict(above[0]).get(self.iv, 0)
        if ka != kb:
            return None
        rest = _combine(above, below, -1)
        return None if rest is None or rest[0] else (kb, rest[1])


def _divisor(v: Value) -> int | None:
    """k where v is Y // k for a positive constant k."""
    op = v.owner
    k = int_const(op.operands[1]) if isinstance(op, Op) and op.name == "arith.floordiv" \
        else None
    return k if k is not None and k > 0 else None


def _root(arr: Value, alike: Mapping[Value, Value]) -> Value:
    seen = 0
    while arr in alike and seen < len(alike):
        arr, seen = alike[arr], seen + 1
    return arr


def same_shape(a: Value, b: Value, alike: Mapping[Value, Value]) -> bool:
    """Whether arrays a and b have one shape: one array (or lanes of it), an argument and the
    one its function says has its shape (a derivative's shadow and its primal:
    Function.alike), views or reshapes of such arrays by one op with the same operands
    (the shadow of a view is that view of the shadow), arrays allocated with the same
    extents."""
    a, b = _root(_lanes_of(a), alike), _root(_lanes_of(b), alike)
    if a is b:
        return True
    x, y = a.owner, b.owner
    if not (isinstance(x, Op) and isinstance(y, Op)) or x.name != y.name \
            or len(x.operands) != len(y.operands):
        return False
    if x.name == "mem.alloc":
        return all(p is q for p, q in zip(x.operands, y.operands))
    return x.name in ("mem.view", "mem.reshape") and x.attrs == y.attrs \
        and all(p is q for p, q in zip(x.operands[1:], y.operands[1:])) \
        and same_shape(x.operands[0], y.operands[0], alike)


def _lanes_of(arr: Value) -> Value:
    while isinstance(arr.owner, Op) and arr.owner.name == "vec.lane":
        arr = arr.owner.operands[0]
    return arr


def _allocated_before(loop: Op) -> set[Value]:
    """The extents of arrays allocated on every path to the loop (before it in its block or
    in an enclosing one): each is >= 0 there, as the allocation raises otherwise."""
    out: set[Value] = set()
    op: Op | None = loop
    while op is not None and op.parent is not None:
        block = op.parent
        for o in block.ops[:block.ops.index(op)]:
            if o.name == "mem.alloc":
                out.update(o.operands)
        op = block.parent if isinstance(block.parent, Op) else None
    return out


def _region_ops(loop: Op) -> set[Op]:
    out: set[Op] = set()

    def visit(block: Block) -> None:
        for op in block.ops:
            out.add(op)
            for r in op.regions:
                visit(r)
    for r in loop.regions:
        visit(r)
    return out


def _add(r: LoopRanges, op: Op) -> Range:
    a, b = (r.of(v) for v in op.operands)
    return _combine(a[0], b[0], 1), _combine(a[1], b[1], 1)


def _sub(r: LoopRanges, op: Op) -> Range:
    a, b = (r.of(v) for v in op.operands)
    return _combine(a[0], b[1], -1), _combine(a[1], b[0], -1)


def _mul(r: LoopRanges, op: Op) -> Range:
    x, y = op.operands
    k, other = (int_const(y), x) if int_const(y) is not None else (int_const(x), y)
    if k is None:
        return _UNKNOWN
    lo, hi = r.of(other)
    return (_scale(lo, k), _scale(hi, k)) if k >= 0 else (_scale(hi, k), _scale(lo, k))


def _lower_of_two(r: LoopRanges, a: Bound, b: Bound) -> Bound:
    """A lower bound of both a and b: the smaller where they differ by a known sign."""
    least, most = r.sign_known(a, b)
    if most is not None and most <= 0:
        return a
    if least is not None and least >= 0:
        return b
    return None


def _upper_of_two(r: LoopRanges, a: Bound, b: Bound) -> Bound:
    least, most = r.sign_known(a, b)
    if least is not None and least >= 0:
        return a
    if most is not None and most <= 0:
        return b
    return None


def _below(r: LoopRanges, a: Range, b: Range) -> bool:
    """Whether a <= b in every iteration."""
    most = r.sign_known(a[1], b[0])[1]
    return most is not None and most <= 0


def _min(r: LoopRanges, op: Op) -> Range:
    a, b = (r.of(v) for v in op.operands)
    if _below(r, a, b):
        return a
    if _below(r, b, a):
        return b
    return _lower_of_two(r, a[0], b[0]), a[1] if a[1] is not None else b[1]


def _max(r: LoopRanges, op: Op) -> Range:
    a, b = (r.of(v) for v in op.operands)
    if _below(r, a, b):
        return b
    if _below(r, b, a):
        return a
    return a[0] if a[0] is not None else b[0], _upper_of_two(r, a[1], b[1])


def _decided(r: LoopRanges, cond: Value) -> bool | None:
    """The value of an integer comparison where the ranges decide it, else None."""
    c = cond.owner
    if not isinstance(c, Op) or c.name != "arith.cmp":
        return None
    a, b = (r.of(v) for v in c.operands)
    least = r.sign_known(a[0], b[1])[0]       # a - b >= least
    most = r.sign_known(a[1], b[0])[1]        # a - b <= most
    pred = c.attrs["pred"]
    tests: dict[str, Callable[[int | None, int | None], bool | None]] = {
        "lt": lambda lo, hi: True if hi is not None and hi < 0 else
        False if lo is not None and lo >= 0 else None,
        "le": lambda lo, hi: True if hi is not None and hi <= 0 else
        False if lo is not None and lo > 0 else None,
        "gt": lambda lo, hi: True if lo is not None and lo > 0 else
        False if hi is not None and hi <= 0 else None,
        "ge": lambda lo, hi: True if lo is not None and lo >= 0 else
        False if hi is not None and hi < 0 else None,
    }
    test = tests.get(pred)
    return test(least, most) if test is not None else None


def _select(r: LoopRanges, op: Op) -> Range:
    cond, a, b = op.operands
    known = _decided(r, cond)
    if known is not None:
        return r.of(a if known else b)
    ra, rb = r.of(a), r.of(b)
    return _lower_of_two(r, ra[0], rb[0]), _upper_of_two(r, ra[1], rb[1])


def _shape(r: LoopRanges, op: Op) -> Range:
    """The length of a view's axis: hi - lo for a unit-step slice, the length a slice with a
    step states (every view hpcad makes lies within its base, or is empty with hi = lo:
    frontend/arrays.py `slice_axis`); unknown for other arrays."""
    view, axis = op.operands[0].owner, op.attrs.get("axis")
    if not isinstance(view, Op) or view.name != "mem.view":
        return _UNKNOWN
    parts = view_axis_bounds(view, axis)
    if parts is None:
        return _UNKNOWN
    if len(parts) == 1:
        return r.of(parts[0])
    a, b = r.of(parts[1]), r.of(parts[0])
    return _combine(a[0], b[1], -1), _combine(a[1], b[0], -1)


_RULES: dict[str, Callable[[LoopRanges, Op], Range]] = {
    "arith.add": _add, "arith.sub": _sub, "arith.mul": _mul, "arith.min": _min,
    "arith.max": _max, "arith.select": _select, "mem.shape": _shape,
}
