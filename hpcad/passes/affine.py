"""The affine view of loop nests, shared by the loop rewrites (gather form, fusion with a
lag, scalar replacement, dead and scratch stores).

A *nest* is a chain of counted `scf.for` loops with step 1 and no carried values, each
body holding pure ops and the next loop only, every loop's bounds defined outside the
nest (a rectangular domain); the innermost body is *simple*: pure ops, memory accesses
and indexed tape pops, no regions. A single loop is a nest of depth 1.

Each memory access of the innermost body is described per index component as `iv_L + c`
(`(L, c)`: level L of the nest, a constant c) or as a value that does not change in the
nest (`None`). Two accesses to the same array touch the same element in iterations p and
q exactly when p + c = q + c' on every level they index; a rewrite that reorders
iterations states its legality in these terms once, in its own docstring.

The helpers below slice and recompute the values an access stores or accumulates at other
iterations (`recompute`), and say when that may happen before the loop runs (`movable`)."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Op, Value
from ..ir.dialects import (
    MEMORY_ACCESSES,
    access_index,
    accessed_array,
    defined_in,
    is_pure,
    iv_offset,
    plain_body,
    unit_step,
)
from ..ir.types import i1
from .race import Accesses

Component = tuple[int, int] | None     # (level, c): iv_level + c; None: invariant in the nest


@dataclass(frozen=True)
class Access:
    """One load, store or accumulate of the innermost body, its index made affine."""
    op: Op
    array: Value
    index: tuple[Component, ...]

    @property
    def write(self) -> bool:
        return self.op.name != "mem.load"

    def offsets(self, depth: int) -> tuple[int, ...] | None:
        """c per level when the index names each level of the nest exactly once."""
        found = {comp[0]: comp[1] for comp in self.index if comp is not None}
        levels = [comp[0] for comp in self.index if comp is not None]
        if len(levels) != depth or len(set(levels)) != depth:
            return None
        return tuple(found[level] for level in range(depth))


@dataclass(frozen=True)
class Nest:
    """A perfect, rectangular nest of counted loops, outermost first."""
    loops: tuple[Op, ...]

    @property
    def depth(self) -> int:
        return len(self.loops)

    @property
    def bodies(self) -> tuple[Block, ...]:
        return tuple(loop.regions[0] for loop in self.loops)

    @property
    def ivs(self) -> tuple[Value, ...]:
        return tuple(body.args[0] for body in self.bodies)

    @property
    def inner(self) -> Block:
        return self.bodies[-1]

    def bounds(self, level: int) -> tuple[Value, Value]:
        return self.loops[level].operands[0], self.loops[level].operands[1]

    def accesses(self) -> list[Access] | None:
        """The innermost body's memory accesses made affine; None when an index is neither
        `iv + c` nor invariant."""
        local = {r for body in self.bodies for op in body.ops for r in op.results} \
            | set(self.ivs)
        out = []
        for op in self.inner.ops:
            if op.name not in MEMORY_ACCESSES:
                continue
            index = affine_index(access_index(op), self.ivs, local)
            if index is None:
                return None
            out.append(Access(op, accessed_array(op), index))
        return out


def affine_index(idx: tuple, ivs: tuple[Value, ...], local: set[Value]) \
        -> tuple[Component, ...] | None:
    """Each component as (level, c) when it is ivs[level] + c, None when it is not defined
    in the nest (`local`); None for the whole index when a component is neither."""
    out: list[Component] = []
    for v in idx:
        found = next(((level, c) for level, iv in enumerate(ivs)
                      if (c := iv_offset(v, iv)) is not None), None)
        if found is None and v in local:
            return None
        out.append(found)
    return tuple(out)


def along(op: Op, loop: Op) -> tuple[int, int, tuple] | None:
    """The single loop's view of an access in its body: (position, c, the other index
    components) when exactly one component is `iv + c` and the others do not change in the
    loop; else None."""
    body = loop.regions[0]
    idx = access_index(op)
    index = affine_index(idx, (body.args[0],), defined_in(body))
    hits = [(d, comp[1]) for d, comp in enumerate(index or ()) if comp is not None]
    if len(hits) != 1:
        return None
    d, c = hits[0]
    return d, c, tuple(v for e, v in enumerate(idx) if e != d)


def offsets(ops: list[Op], loop: Op) -> dict[Op, int] | None:
    """{access: c} when every access is `iv + c` along one position (`along`), with the
    same other components; None otherwise."""
    shape, out = None, {}
    for op in ops:
        found = along(op, loop)
        if found is None or shape not in (None, (found[0], found[2])):
            return None
        shape, out[op] = (found[0], found[2]), found[1]
    return out


def shifted_arrays(loop: Op, acc: Accesses) -> dict[Value, tuple[list[Op], dict[Op, int]]]:
    """{array: (its accesses in the loop body, {access: c})} for the arrays the body
    accesses only at `iv + c` along one index position (`offsets`) and that nothing else
    the body touches may alias."""
    by_array: dict[Value, list[Op]] = {}
    for op in loop.regions[0].ops:
        if op.name in MEMORY_ACCESSES:
            by_array.setdefault(accessed_array(op), []).append(op)
    out = {}
    for arr, ops in by_array.items():
        offset = offsets(ops, loop)
        if offset is not None and not any(a is not arr and acc.may_alias(a, arr)
                                          for a in by_array):
            out[arr] = (ops, offset)
    return out


def simple_body(loop: Op) -> bool:
    """A counted loop with step 1 whose body has no regions, calls, communication or tape
    ops other than indexed reads (`tape.pop` with an index does not move the tape)."""
    return unit_step(loop) and plain_body(loop, ("tape.pop",))


def perfect_nest(outer: Op) -> Nest | None:
    """The nest that outer heads (module docstring), as deep as it goes; None when outer
    is not a counted loop with a simple body or a perfect nest below it."""
    loops = [outer]
    while True:
        loop = loops[-1]
        if loop.name != "scf.for" or loop.results or not unit_step(loop):
            return None
        ops = loop.regions[0].ops[:-1]
        inner = [op for op in ops if op.regions]
        if not inner:
            break
        if len(inner) != 1 or not all(is_pure(op) for op in ops if op is not inner[0]):
            return None
        loops.append(inner[0])
    local = {r for loop in loops for op in loop.regions[0].ops for r in op.results} \
        | {loop.regions[0].args[0] for loop in loops}
    if any(v in local for loop in loops[1:] for v in loop.operands[:3]) \
            or not simple_body(loops[-1]):
        return None
    return Nest(tuple(loops))


def slice_of(value: Value, *blocks: Block) -> list[Op] | None:
    """The ops of the blocks (a loop body, or the bodies of a nest from the outside in)
    that compute value, in order; None if it depends on a carried value (an iter arg)."""
    inside = {r: op for body in blocks for op in body.ops for r in op.results}
    carried = {a for body in blocks for a in body.args[1:]}
    need, stack = set(), [value]
    while stack:
        v = stack.pop()
        if v in carried:
            return None
        op = inside.get(v)
        if op is None or op in need:
            continue
        need.add(op)
        stack.extend(op.operands)
    return [op for body in blocks for op in body.ops if op in need]


def recompute(b: Builder, value: Value, vmap: dict, *blocks: Block) -> Value:
    """value computed again at b from its slice of the blocks, their loop variables taking
    the values vmap gives them."""
    for op in slice_of(value, *blocks) or []:
        b.insert(clone_op(op, vmap))
    return vmap.get(value, value)


def within(b: Builder, i: Value, lo: Value, hi: Value) -> Value:
    """lo <= i < hi, built at b."""
    return b.op1("arith.and", [b.op1("arith.cmp", [i, lo], i1, {"pred": "ge"}),
                               b.op1("arith.cmp", [i, hi], i1, {"pred": "lt"})], i1)


def movable(value: Value, body: Block, acc: Accesses) -> bool:
    """Whether value can be computed before the loop runs, at any iteration: it depends on
    no carried value, and each array it loads is either not written by the loop, or written
    only at the one index it is loaded from, which holds the loop variable, after that load
    (so the load sees the value from before the loop)."""
    ops = slice_of(value, body)
    if ops is None:
        return False
    order = {op: k for k, op in enumerate(body.ops)}
    for load in (op for op in ops if op.name == "mem.load"):
        arr, idx = load.operands[0], access_index(load)
        for w in body.ops:
            if w.name not in ("mem.store", "mem.accumulate") or w is load:
                continue
            if not acc.may_alias(w.operands[1], arr):
                continue
            if w.operands[1] is not arr or access_index(w) != idx or order[w] < order[load] \
                    or body.args[0] not in idx:
                return False
    return True
