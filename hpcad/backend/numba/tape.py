"""The tape in generated code: one typed buffer per slot. Sequential code uses it as a stack
(a position counter); inside a parallel loop each iteration owns one entry, indexed by its
iteration number, and the counter moves by the loop's trip count around the loop. Buffers
are allocated before the outermost loop that fills them, sized from the loops' trip counts
when those are known there (else they grow by doubling)."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import HpcadError, where
from ...ir.core import Block, Function, Op, Value
from ...ir.types import ScalarType
from .common import NP_TYPES

_LOOPS = ("scf.for", "scf.while", "par.parallel_for")


@dataclass
class TapeSlot:
    slot: int
    dtype: ScalarType
    anchor: Op                   # top-level op before which the buffer is set up
    extents: list | None         # per enclosing loop, a bound on its trip count; None: unknown
    push_loop: Op | None = None  # the parallel loop whose iterations each push one entry
    pop_loop: Op | None = None   # the parallel loop whose iterations each pop one entry

    @property
    def buffer(self) -> str:
        return f"tape_{self.slot}"

    @property
    def position(self) -> str:
        return f"tp_{self.slot}"


def _parallel_owner(op: Op, chain: list[Op]) -> Op | None:
    """The innermost parallel loop around a tape op; only branches may lie in between, since
    an iteration's entry is found from its iteration number alone."""
    for k in range(len(chain) - 1, -1, -1):
        c = chain[k]
        if c.name == "par.parallel_for":
            inner = [x for x in chain[k + 1:] if x.name in _LOOPS]
            if inner:
                raise HpcadError(f"{where(op.loc)}: the numba backend cannot save values "
                                 f"for the reverse sweep inside a loop nested in a parallel "
                                 f"loop yet; use backend='interp', or make the inner loop "
                                 f"the parallel one")
            return c
    return None


def tape_slots(fn: Function, lower: dict[Value, int]) -> list[TapeSlot]:
    """The tape's slots, each with the loops that fill it and, where it can be known before
    the outermost one starts, a bound on how many values it receives."""
    slots: dict[int, TapeSlot] = {}
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
        step_op = step.owner
        unit = isinstance(step_op, Op) and step_op.name == "arith.const" \
            and step_op.attrs["value"] == 1
        if unit and ub in top_level and lb in lower:
            return ("at_most", ub, lower[lb])   # range(lb, ub) with lb >= lower[lb]
        return None

    pops = {}

    def visit(block: Block, chain: list[Op]):
        for op in block.ops:
            if op.name == "tape.push":
                loops = [c for c in chain if c.name in _LOOPS]
                extents = [extent(c) for c in loops]
                slots[op.attrs["slot"]] = TapeSlot(
                    op.attrs["slot"], op.operands[0].type, chain[0] if chain else op,
                    None if None in extents else extents, _parallel_owner(op, chain))
            elif op.name == "tape.pop":
                pops[op.attrs["slot"]] = _parallel_owner(op, chain)
            for r in op.regions:
                visit(r, chain + [op])

    visit(fn.body, [])
    for slot, loop in pops.items():
        slots[slot].pop_loop = loop
    for s in slots.values():
        if (s.push_loop is None) != (s.pop_loop is None):
            raise HpcadError("internal: a tape slot is pushed and popped by loops of "
                             "different kinds (parallel and sequential)")
        if s.push_loop is not None and s.extents is None:
            raise HpcadError(f"{where(s.push_loop.loc)}: cannot size the tape of a parallel "
                             f"loop inside a loop whose trip count is unknown before it runs")
    return sorted(slots.values(), key=lambda s: s.slot)


class TapeWriter:
    """Tape emission, mixed into the source writer."""

    def trips_of(self, loop: Op) -> str:
        return f"_trips({', '.join(self.ref(v) for v in loop.operands[:3])})"

    def iteration_entry(self, s: TapeSlot, loop: Op) -> str:
        lb, step = self.ref(loop.operands[0]), self.ref(loop.operands[2])
        iv = self.name(loop.regions[0].args[0])
        k = f"{iv} - {lb}" if step == "1" else f"({iv} - {lb}) // {step}"
        return f"np.uint64({s.position} + {k})"

    def tape_setup(self, s: TapeSlot, depth: int) -> None:
        if s.extents is not None:
            counts = []
            for kind, *vals in s.extents:
                if kind == "trips":
                    counts.append(f"_trips({', '.join(self.ref(v) for v in vals)})")
                else:
                    ub, low = vals
                    counts.append(f"max({self.ref(ub)} - {low}, 0)")
            size = " * ".join(counts) if counts else "1"
        else:
            size = "1024"
        self.emit(depth, f"if {s.buffer}.shape[0] < {size}:")
        self.emit(depth + 1, f"{s.buffer} = np.empty({size}, {NP_TYPES[s.dtype.name]})")
        self.emit(depth, f"{s.position} = 0")

    def before_parallel_loop(self, loop: Op, depth: int) -> None:
        """A reverse parallel loop pops the entries its forward twin pushed."""
        for s in self.slots:
            if s.pop_loop is loop:
                self.emit(depth, f"{s.position} -= {self.trips_of(loop)}")

    def after_parallel_loop(self, loop: Op, depth: int) -> None:
        for s in self.slots:
            if s.push_loop is loop:
                self.emit(depth, f"{s.position} += {self.trips_of(loop)}")

    def op_tape_push(self, op, depth):
        s = self.by_slot[op.attrs["slot"]]
        value = self.ref(op.operands[0])
        if s.push_loop is not None:
            self.emit(depth, f"{s.buffer}[{self.iteration_entry(s, s.push_loop)}] = {value}")
            return
        if s.extents is None:
            self.emit(depth, f"if {s.position} == {s.buffer}.shape[0]:")
            self.emit(depth + 1, f"{s.buffer} = _grow({s.buffer}, {s.position} + 1)")
        self.emit(depth, f"{s.buffer}[np.uint64({s.position})] = {value}")
        self.emit(depth, f"{s.position} += 1")

    def op_tape_pop(self, op, depth):
        s = self.by_slot[op.attrs["slot"]]
        target = self.name(op.results[0])
        if s.pop_loop is not None:
            self.emit(depth, f"{target} = {s.buffer}[{self.iteration_entry(s, s.pop_loop)}]")
            return
        self.emit(depth, f"{s.position} -= 1")
        self.emit(depth, f"{target} = {s.buffer}[np.uint64({s.position})]")
