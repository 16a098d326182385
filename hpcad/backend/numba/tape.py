"""The tape in generated code: one typed buffer per slot and a position. Stack slots push
and pop at the position; indexed slots (parallel loops, see checkpoint/tape.py; their sizes:
runtime/tape.py) read and
write entry `position + k` and move the position with tape.advance/retreat. Buffers are
allocated before the outermost loop that fills them, sized from the loops' trip counts when
those are known there (their product checked for overflow: sizes.py; else they grow by
doubling). A slot used inside a fork-join task keeps
its position in a one-element array: variables a numba prange body assigns are private."""
from __future__ import annotations

import numpy as np

from ...errors import where
from ...ir.core import Op, Value
from ...ir.types import ScalarType
from ...runtime.tape import TapeSlot
from .common import NP_TYPES


class TapeWriter:
    """Tape emission, mixed into the source writer."""

    def tape_setup(self, s: TapeSlot, depth: int) -> None:
        if s.extents is not None:
            counts = []
            for kind, *vals in s.extents:
                if kind == "trips":
                    counts.append(tuple(vals))
                else:
                    ub, low = vals
                    counts += [(low, f, 1) for f in self.factors(ub, kind == "reserved")] \
                        if low == 0 else [(low, ub, 1)]
            what = f"{where(s.anchor.loc)}: the tape of the values the loops here save for " \
                   f"the reverse sweep needs"
            size = self.fresh("tape_size")
            self.emit(depth, f"{size} = {self.buffer_size(counts, s.dtype, what)}")
        else:
            size = "1024"
        self.emit(depth, f"if {s.buffer}.shape[0] < {size}:")
        self.emit(depth + 1, f"{s.buffer} = np.empty({size}, {NP_TYPES[s.dtype.name]})")
        if s.in_task:
            self.emit(depth, f"tp_{s.slot} = np.zeros(1, np.int64)")
        else:
            self.emit(depth, f"{s.position} = 0")

    def buffer_size(self, counts: list[tuple], dtype: ScalarType, what: str) -> str:
        """Source computing the entries of a buffer of dtype elements: the product of
        len(range(lb, ub, step)) over counts (values or ints), checked for overflow
        (sizes.py: a MemoryError saying `what` and the counts); 1 without counts."""
        if not counts:
            return "1"
        def int64(v) -> str:
            if isinstance(v, int):
                return str(v)
            return self.ref(v) if v.type.name == "i64" else f"np.int64({self.ref(v)})"
        extents = "".join(f"({', '.join(int64(v) for v in c)}), " for c in counts)
        itemsize = np.dtype(dtype.np_dtype).itemsize
        return f"_buffer_size(({extents}), {itemsize}, {what!r})"

    def factors(self, v: Value, counts: bool = False) -> list[Value]:
        """v as factors whose product it is, where that holds in non-negative counts (the
        product, in int64, may wrap around: its factors are counted and multiplied again
        with overflow checks). counts: v is a `tape.reserve`'s count, a product of trip
        counts and capacities (checkpoint/tape.py), so every factor is non-negative; else
        only factors proven non-negative are split."""
        op = v.owner
        if isinstance(op, Op) and op.name == "arith.mul" and \
                (counts or all(self.lower.get(a, -1) >= 0 for a in op.operands)):
            return [f for a in op.operands for f in self.factors(a, counts)]
        return [v]

    def op_tape_push(self, op, depth):
        s = self.by_slot[op.attrs["slot"]]
        value = self.ref(op.operands[0])
        if len(op.operands) == 2:
            entry = f"np.uint64({s.position} + {self.ref(op.operands[1])})"
            self.emit(depth, f"{s.buffer}[{entry}] = {value}")
            return
        if s.extents is None:
            self.emit(depth, f"if {s.position} == {s.buffer}.shape[0]:")
            self.emit(depth + 1, f"{s.buffer} = _grow({s.buffer}, {s.position} + 1)")
        self.emit(depth, f"{s.buffer}[np.uint64({s.position})] = {value}")
        self.emit(depth, f"{s.position} += 1")

    def op_tape_pop(self, op, depth):
        s = self.by_slot[op.attrs["slot"]]
        target = self.name(op.results[0])
        if op.operands:
            entry = f"np.uint64({s.position} + {self.ref(op.operands[0])})"
            self.emit(depth, f"{target} = {s.buffer}[{entry}]")
            return
        self.emit(depth, f"{s.position} -= 1")
        self.emit(depth, f"{target} = {s.buffer}[np.uint64({s.position})]")

    def op_tape_reserve(self, op, depth):
        s = self.by_slot[op.attrs["slot"]]
        if s.extents is None:
            what = f"{where(op.loc)}: the tape of the values the parallel loop here saves needs"
            count = self.buffer_size([(0, f, 1) for f in self.factors(op.operands[0], True)],
                                     s.dtype, what)
            needed = self.fresh("tape_needed")
            self.emit(depth, f"{needed} = {s.position} + {count}")
            self.emit(depth, f"if {needed} > {s.buffer}.shape[0]:")
            self.emit(depth + 1, f"{s.buffer} = _grow({s.buffer}, {needed})")

    def op_tape_advance(self, op, depth):
        self.emit(depth, f"{self.by_slot[op.attrs['slot']].position} += "
                         f"{self.ref(op.operands[0])}")

    def op_tape_retreat(self, op, depth):
        self.emit(depth, f"{self.by_slot[op.attrs['slot']].position} -= "
                         f"{self.ref(op.operands[0])}")
