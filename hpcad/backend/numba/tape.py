"""The tape in generated code: one typed buffer per slot and a position. Stack slots push
and pop at the position; indexed slots (parallel loops, see checkpoint/tape.py) read and
write entry `position + k` and move the position with tape.advance/retreat. Buffers are
allocated before the outermost loop that fills them, sized from the loops' trip counts when
those are known there (their product checked for overflow: sizes.py; else they grow by
doubling). A slot used inside a fork-join task keeps
its position in a one-element array: variables a numba prange body assigns are private."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...errors import HpcadError, where
from ...ir.core import Block, Function, Op, Value
from ...ir.dialects import unit_step
from ...ir.types import ScalarType
from .common import NP_TYPES
from .rules import rule

if TYPE_CHECKING:
    from .writer import Writer

_LOOPS = ("scf.for", "scf.while", "par.parallel_for")


@dataclass
class TapeSlot:
    slot: int
    dtype: ScalarType
    anchor: Op                   # top-level op before which the buffer is set up
    extents: list | None         # per enclosing loop, a bound on its trip count; None: unknown
                                 # ("trips", lb, ub, step), ("at_most", ub, low): ub - low,
                                 # ("reserved", count, 0): a tape.reserve's count
    in_task: bool = False        # used inside a par.join task: position kept in an array

    @property
    def buffer(self) -> str:
        return f"tape_{self.slot}"

    @property
    def position(self) -> str:
        return f"tp_{self.slot}[0]" if self.in_task else f"tp_{self.slot}"


def _check_stack_use(op: Op, chain: list[Op]) -> None:
    """A stack slot's position is one variable: parallel iterations cannot share it."""
    indexed = len(op.operands) == (2 if op.name == "tape.push" else 1)
    if not indexed and any(c.name == "par.parallel_for" for c in chain):
        raise HpcadError(f"{where(op.loc)}: the numba backend cannot save values for the "
                         f"reverse sweep here inside a parallel loop (its iterations would "
                         f"share one tape position); use backend='interp', or make the "
                         f"loop around this code sequential")


def tape_slots(fn: Function, lower: dict[Value, int]) -> list[TapeSlot]:
    """The tape's slots, each with the loops that fill it and, where it can be known before
    the outermost one starts, a bound on how many values it receives."""
    slots: dict[int, TapeSlot] = {}
    in_tasks: set[int] = set()
    top_level = set(fn.args)
    for op in fn.body.ops:
        top_level.update(op.results)

    def extent(loop: Op):
        """("trips", lb, ub, step) or ("at_most", ub, low): a bound on the loop's trips."""
        if loop.name not in ("scf.for", "par.parallel_for"):
            return None
        lb, ub, step = loop.operands[:3]
        if all(v in top_level for v in (lb, ub, step)):
            return ("trips", lb, ub, step)
        unit = unit_step(loop)
        if unit and ub in top_level and lb in lower:
            return ("at_most", ub, lower[lb])   # range(lb, ub) with lb >= lower[lb]
        stop = ub.owner   # range(lb, min(lb + span, ...)): a checkpointed segment
        if unit and isinstance(stop, Op) and stop.name == "arith.min":
            for v in stop.operands:
                add = v.owner
                if isinstance(add, Op) and add.name == "arith.add" and lb in add.operands:
                    span = add.operands[1] if add.operands[0] is lb else add.operands[0]
                    if span in top_level:
                        return ("at_most", span, 0)
        return None

    pushes, pops, reserved, loops = {}, {}, {}, {}

    def visit(block: Block, chain: list[Op]):
        for op in block.ops:
            if op.dialect == "tape":
                if op.name in ("tape.push", "tape.pop"):
                    _check_stack_use(op, chain)
                if any(c.name == "par.join" for c in chain):
                    in_tasks.add(op.attrs["slot"])
                if op.name == "tape.reserve":
                    reserved.setdefault(op.attrs["slot"], (op, chain))
                if op.name == "tape.push":
                    pushes[op.attrs["slot"]] = (op, chain)
                    inner = next((c for c in reversed(chain) if c.name in _LOOPS), None)
                    loops.setdefault(op.attrs["slot"], set()).add(inner)
                elif op.name == "tape.pop":
                    pops.setdefault(op.attrs["slot"], chain)
            for r in op.regions:
                visit(r, chain + [op])

    visit(fn.body, [])
    for slot, (push, chain) in pushes.items():
        # an indexed slot takes what its `tape.reserve` makes room for, however many loops
        # fill it (a loop split in pieces: passes/fusion.py)
        counted = len(push.operands) == 2 and slot in reserved and \
            reserved[slot][0].operands[0] in top_level
        if counted:
            chain = reserved[slot][1]
        # loops around both the saves and the restores (a checkpointed segment) do not
        # add up: the slot is emptied again within each of their iterations
        shared = 0
        for a, b in zip(chain, pops.get(slot, [])):
            if a is not b:
                break
            shared += 1
        extents = [extent(c) for c in chain[shared:] if c.name in _LOOPS]
        if counted:
            extents.append(("reserved", reserved[slot][0].operands[0], 0))
        if not counted and len(loops[slot]) > 1:
            extents = [None]    # filled in several loops: only the reserve could tell
        if None in extents and len(push.operands) == 2 and slot not in reserved:
            raise HpcadError(f"{where(push.loc)}: internal: an indexed tape slot whose size is "
                             f"unknown before its loops run (indexed entries cannot grow the "
                             f"buffer); please report this kernel")
        anchor = reserved[slot][0] if counted else push
        slots[slot] = TapeSlot(slot, push.operands[0].type, chain[0] if chain else anchor,
                               None if None in extents else extents)
    for slot in in_tasks:
        s = slots[slot]
        s.in_task = True
        if s.extents is None:
            raise HpcadError(f"{where(s.anchor.loc)}: a fork-join task saves values in a loop "
                             f"whose trip count is unknown before it runs; the numba backend "
                             f"cannot size that tape")
    return sorted(slots.values(), key=lambda s: s.slot)


def tape_setup(w: Writer, s: TapeSlot, depth: int) -> None:
    if s.extents is not None:
        counts = []
        for kind, *vals in s.extents:
            if kind == "trips":
                counts.append(tuple(vals))
            else:
                ub, low = vals
                counts += [(low, f, 1) for f in factors(w, ub, kind == "reserved")] \
                    if low == 0 else [(low, ub, 1)]
        what = f"{where(s.anchor.loc)}: the tape of the values the loops here save for " \
               f"the reverse sweep needs"
        size = w.fresh("tape_size")
        w.emit(depth, f"{size} = {buffer_size(w, counts, s.dtype, what)}")
    else:
        size = "1024"
    w.emit(depth, f"if {s.buffer}.shape[0] < {size}:")
    w.emit(depth + 1, f"{s.buffer} = np.empty({size}, {NP_TYPES[s.dtype.name]})")
    if s.in_task:
        w.emit(depth, f"tp_{s.slot} = np.zeros(1, np.int64)")
    else:
        w.emit(depth, f"{s.position} = 0")


def buffer_size(w: Writer, counts: list[tuple], dtype: ScalarType, what: str) -> str:
    """Source computing the entries of a buffer of dtype elements: the product of
    len(range(lb, ub, step)) over counts (values or ints), checked for overflow
    (sizes.py: a MemoryError saying `what` and the counts); 1 without counts."""
    if not counts:
        return "1"
    def int64(v) -> str:
        if isinstance(v, int):
            return str(v)
        return w.ref(v) if v.type.name == "i64" else f"np.int64({w.ref(v)})"
    extents = "".join(f"({', '.join(int64(v) for v in c)}), " for c in counts)
    itemsize = np.dtype(dtype.np_dtype).itemsize
    return f"_buffer_size(({extents}), {itemsize}, {what!r})"


def factors(w: Writer, v: Value, counts: bool = False) -> list[Value]:
    """v as factors whose product it is, where that holds in non-negative counts (the
    product, in int64, may wrap around: its factors are counted and multiplied again
    with overflow checks). counts: v is a `tape.reserve`'s count, a product of trip
    counts and capacities (checkpoint/tape.py), so every factor is non-negative; else
    only factors proven non-negative are split."""
    op = v.owner
    if isinstance(op, Op) and op.name == "arith.mul" and \
            (counts or all(w.lower.get(a, -1) >= 0 for a in op.operands)):
        return [f for a in op.operands for f in factors(w, a, counts)]
    return [v]


@rule("tape.push")
def tape_push(w: Writer, op, depth):
    s = w.by_slot[op.attrs["slot"]]
    value = w.ref(op.operands[0])
    if len(op.operands) == 2:
        entry = f"np.uint64({s.position} + {w.ref(op.operands[1])})"
        w.emit(depth, f"{s.buffer}[{entry}] = {value}")
        return
    if s.extents is None:
        w.emit(depth, f"if {s.position} == {s.buffer}.shape[0]:")
        w.emit(depth + 1, f"{s.buffer} = _grow({s.buffer}, {s.position} + 1)")
    w.emit(depth, f"{s.buffer}[np.uint64({s.position})] = {value}")
    w.emit(depth, f"{s.position} += 1")


@rule("tape.pop")
def tape_pop(w: Writer, op, depth):
    s = w.by_slot[op.attrs["slot"]]
    target = w.name(op.results[0])
    if op.operands:
        entry = f"np.uint64({s.position} + {w.ref(op.operands[0])})"
        w.emit(depth, f"{target} = {s.buffer}[{entry}]")
        return
    w.emit(depth, f"{s.position} -= 1")
    w.emit(depth, f"{target} = {s.buffer}[np.uint64({s.position})]")


@rule("tape.reserve")
def tape_reserve(w: Writer, op, depth):
    s = w.by_slot[op.attrs["slot"]]
    if s.extents is None:
        what = f"{where(op.loc)}: the tape of the values the parallel loop here saves needs"
        count = buffer_size(w, [(0, f, 1) for f in factors(w, op.operands[0], True)],
                               s.dtype, what)
        needed = w.fresh("tape_needed")
        w.emit(depth, f"{needed} = {s.position} + {count}")
        w.emit(depth, f"if {needed} > {s.buffer}.shape[0]:")
        w.emit(depth + 1, f"{s.buffer} = _grow({s.buffer}, {needed})")


@rule("tape.advance")
def tape_advance(w: Writer, op, depth):
    w.emit(depth, f"{w.by_slot[op.attrs['slot']].position} += "
                  f"{w.ref(op.operands[0])}")


@rule("tape.retreat")
def tape_retreat(w: Writer, op, depth):
    w.emit(depth, f"{w.by_slot[op.attrs['slot']].position} -= "
                  f"{w.ref(op.operands[0])}")
