"""The tape in generated code: one typed buffer per slot and a position. Stack slots push
and pop at the position; indexed slots (parallel loops, see checkpoint/tape.py; their sizes:
runtime/tape.py) read and
write entry `position + k` and move the position with tape.advance/retreat. Buffers are
allocated before the outermost loop that fills them, sized from the loops' trip counts when
those are known there (their product checked for overflow: helpers.py; else they grow by
doubling). A slot used inside a fork-join task keeps
its position in a one-element array: variables a numba prange body assigns are private."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...errors import where
from ...ir.core import Op, Value
from ...ir.types import ScalarType
from ...runtime.tape import TapeSlot
from .common import NP_TYPES
from .rules import rule

if TYPE_CHECKING:
    from .writer import Writer

EXTENTS_PER_CALL = 4
_ONE_TRIP = (0, 1, 1)     # padding: a count of 1 (BufferMemoryError leaves it out)


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
        # the buffers set up at one point with the same counts and element size share one
        # computed size: one call of the compiled size function, not one per buffer
        text = buffer_size(w, counts, s.dtype, what)
        size = w.tape_sizes.get((_point(s.anchor), text))
        if size is None:
            size = w.tape_sizes[(_point(s.anchor), text)] = w.fresh("tape_size")
            w.emit(depth, f"{size} = {text}")
    else:
        size = "1024"
    w.emit(depth, f"if {s.buffer}.shape[0] < {size}:")
    w.emit(depth + 1, f"{s.buffer} = _empty({size}, {NP_TYPES[s.dtype.name]})")
    if s.in_task:
        w.emit(depth, f"tp_{s.slot} = _zeros(1, np.int64)")
    else:
        # not the literal 0: numba would type a loop function that takes the position first
        # with the literal's type, and again once the position moves (two compiles of it)
        w.emit(depth, f"{s.position} = np.int64(0)")


def _point(anchor: Op) -> Op:
    """The op before which the buffers anchored at `anchor` are set up, past the
    tape.reserve ops in front of it: those change no value a buffer's size reads (the
    same size source before any of them computes the same value)."""
    ops = anchor.parent.ops
    k = ops.index(anchor)
    while ops[k].name == "tape.reserve" and k + 1 < len(ops):
        k += 1
    return ops[k]


def buffer_size(w: Writer, counts: list[tuple], dtype: ScalarType, what: str) -> str:
    """Source computing the entries of a buffer of dtype elements: the product of
    len(range(lb, ub, step)) over counts (values or ints), checked for overflow
    (helpers.py: a MemoryError saying `what` and the counts); 1 without counts. The counts
    are padded with one-trip ranges to a multiple of EXTENTS_PER_CALL: helpers.py's
    function is compiled once per number of extents in a process (~0.1 s each). `what`
    goes to the compiled code as its index in w.buffer_whats, which the generated module
    holds as _BUFFERS (the caller raises the error with the text: a string raised from
    compiled code added ~500 lines of LLVM IR to every derivative)."""
    if not counts:
        return "1"
    def int64(v) -> str:
        if isinstance(v, int):
            return str(v)
        return w.ref(v) if v.type.name == "i64" else f"np.int64({w.ref(v)})"
    counts = list(counts) + [_ONE_TRIP] * (-len(counts) % EXTENTS_PER_CALL)
    extents = "".join(f"({', '.join(int64(v) for v in c)}), " for c in counts)
    itemsize = np.dtype(dtype.np_dtype).itemsize
    if what not in w.buffer_whats:
        w.buffer_whats.append(what)
    return f"_buffer_size(({extents}), {itemsize}, {w.buffer_whats.index(what)})"


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
    if s.extents is None and s.join is None:
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


def reserve_for_tasks(w: Writer, join: Op, depth: int) -> None:
    """Before a par.join: room in each buffer its tasks push to beyond what was sized
    before the outermost loop (TapeSlot.join_trips), since a task cannot grow a buffer."""
    for s in w.slots:
        if s.join is not join:
            continue
        assert s.join_trips is not None
        what = f"{where(join.loc)}: the tape of the values a spawned task here saves needs"
        count = buffer_size(w, [tuple(vals) for _, *vals in s.join_trips], s.dtype, what)
        needed = w.fresh("tape_needed")
        w.emit(depth, f"{needed} = {s.position} + {count}")
        w.emit(depth, f"if {needed} > {s.buffer}.shape[0]:")
        w.emit(depth + 1, f"{s.buffer} = _grow({s.buffer}, {needed})")


@rule("tape.reserve")
def tape_reserve(w: Writer, op, depth):
    """Room for a loop's pushes before it starts, in a buffer sized only at run time. Not
    inside a spawned task (s.join): its buffer grew before the join to hold all the task's
    pushes (reserve_for_tasks, the trips of every task loop around them), and a task that
    rebinds a buffer the other tasks share does not compile (numba takes it for a
    reduction variable)."""
    s = w.by_slot[op.attrs["slot"]]
    if s.extents is None and s.join is None:
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
