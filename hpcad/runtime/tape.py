"""The tape's storage: per slot of a derivative's tape, its element type, the loops that
fill it and, where it can be known before the outermost one starts, a bound on how many
values it receives. The numba backend allocates each slot's buffer from it (its tape
writer), and the planner sums it into a tape size for a call's arguments
(checkpoint/budget.py). Plain data about the IR: no backend import."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import HpcadError, where
from ..ir.core import Block, Function, Op, Value
from ..ir.dialects import unit_step
from ..ir.types import ScalarType

_LOOPS = ("scf.for", "scf.while", "par.parallel_for")


@dataclass
class TapeSlot:
    slot: int
    dtype: ScalarType
    anchor: Op                   # top-level op before which the buffer is set up
    extents: list[Any] | None        # per enclosing loop, a bound on its trip count; None: unknown
                                 # ("trips", lb, ub, step), ("at_most", ub, low): ub - low,
                                 # ("reserved", count, 0): a tape.reserve's count
    in_task: bool = False        # used inside a par.join task: position kept in an array
    join: Op | None = None       # an in-task slot of unknown size: the outermost par.join
    join_trips: list[tuple[Any, ...]] | None = None   # around it, before which its buffer
                                 # grows to hold the task's pushes: ("trips", lb, ub, step) of
                                 # each loop in the task around them, bounds from outside

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
    the outermost one starts, a bound on how many values it receives. lower: known lower
    bounds of integer values (ir.dialects.lower_bounds; {} for none)."""
    uses = _TapeUses(fn)
    top_level = set(fn.args)
    for op in fn.body.ops:
        top_level.update(op.results)
    slots = {slot: _slot(uses, slot, push, chain, top_level, lower)
             for slot, (push, chain) in uses.pushes.items()}
    for slot in uses.in_tasks:
        s = slots[slot]
        s.in_task = True
        if s.extents is None:
            if uses.push_count[slot] > 1:   # room for one push's loops would not do
                raise HpcadError(f"{where(s.anchor.loc)}: the numba backend cannot size the "
                                 f"values a fork-join task saves here in several loops; use "
                                 f"backend='interp', or please report this kernel")
            s.join, s.join_trips = _task_trips(*uses.pushes[slot])
    return sorted(slots.values(), key=lambda s: s.slot)


def _task_trips(push: Op, chain: list[Op]) -> tuple[Op, list[tuple[Any, ...]]]:
    """The outermost par.join around a push whose tape size is unknown before the
    outermost loop (a task inside a time loop, its range computed in each step) and the
    trip counts of the task's loops around the push, which the numba backend makes room
    for before the join starts (a task cannot grow a buffer the other tasks share): each
    must be a range whose bounds are known before the join."""
    k = next(i for i, c in enumerate(chain) if c.name == "par.join")
    join = chain[k]
    inside: set[Value] = set()
    for r in join.regions:
        _defined_in(r, inside)
    trips = []
    for loop in chain[k + 1:]:
        if loop.name not in _LOOPS:
            continue
        bounds = loop.operands[:3] if loop.name != "scf.while" else None
        if bounds is None or any(v in inside for v in bounds):
            raise HpcadError(
                f"{where(loop.loc)}: this loop of a spawned task saves values for the reverse "
                f"sweep, and its number of iterations is only known inside the task; the "
                f"numba backend makes room for a task's saved values before the tasks "
                f"start: compute the loop's range before the spawn and pass it to the task "
                f"(h = spawn(f, x, lo, hi) with `for i in range(lo, hi)` in f), or use "
                f"backend='interp'")
        trips.append(("trips", *bounds))
    return join, trips


def _defined_in(block: Block, out: set[Value]) -> None:
    out.update(block.args)
    for op in block.ops:
        out.update(op.results)
        for r in op.regions:
            _defined_in(r, out)


class _TapeUses:
    """Where each slot is pushed, popped and reserved, with the ops around (`chain`)."""

    def __init__(self, fn: Function):
        self.pushes: dict[int, tuple[Op, list[Op]]] = {}
        self.pops: dict[int, list[Op]] = {}
        self.reserved: dict[int, tuple[Op, list[Op]]] = {}
        self.loops: dict[int, set[Op | None]] = {}   # innermost loops around its pushes
        self.in_tasks: set[int] = set()
        self.push_count: dict[int, int] = {}
        self.visit(fn.body, [])

    def visit(self, block: Block, chain: list[Op]) -> None:
        for op in block.ops:
            if op.dialect == "tape":
                self.note(op, chain)
            for r in op.regions:
                self.visit(r, chain + [op])

    def note(self, op: Op, chain: list[Op]) -> None:
        slot = op.attrs["slot"]
        if op.name in ("tape.push", "tape.pop"):
            _check_stack_use(op, chain)
        if any(c.name == "par.join" for c in chain):
            self.in_tasks.add(slot)
        if op.name == "tape.reserve":
            self.reserved.setdefault(slot, (op, chain))
        if op.name == "tape.push":
            self.pushes[slot] = (op, chain)
            self.push_count[slot] = self.push_count.get(slot, 0) + 1
            inner = next((c for c in reversed(chain) if c.name in _LOOPS), None)
            self.loops.setdefault(slot, set()).add(inner)
        elif op.name == "tape.pop":
            self.pops.setdefault(slot, chain)


def _slot(uses: _TapeUses, slot: int, push: Op, chain: list[Op], top_level: set[Value],
          lower: dict[Value, int]) -> TapeSlot:
    # an indexed slot takes what its `tape.reserve` makes room for, however many loops
    # fill it (a loop split in pieces: passes/fusion.py)
    reserve = uses.reserved.get(slot)
    counted = len(push.operands) == 2 and reserve is not None and \
        reserve[0].operands[0] in top_level
    if counted:
        assert reserve is not None
        chain = reserve[1]
    # loops around both the saves and the restores (a checkpointed segment) do not
    # add up: the slot is emptied again within each of their iterations
    shared = 0
    for a, b in zip(chain, uses.pops.get(slot, [])):
        if a is not b:
            break
        shared += 1
    extents = [_extent(c, top_level, lower) for c in chain[shared:] if c.name in _LOOPS]
    if counted:
        assert reserve is not None
        extents.append(("reserved", reserve[0].operands[0], 0))
    if not counted and len(uses.loops[slot]) > 1:
        extents = [None]    # filled in several loops: only the reserve could tell
    if None in extents and len(push.operands) == 2 and reserve is None:
        raise HpcadError(f"{where(push.loc)}: internal: an indexed tape slot whose size is "
                         f"unknown before its loops run (indexed entries cannot grow the "
                         f"buffer); please report this kernel")
    anchor = reserve[0] if counted and reserve is not None else push
    saved = push.operands[0].type
    assert isinstance(saved, ScalarType), "internal: the tape holds scalars"
    return TapeSlot(slot, saved, chain[0] if chain else anchor,
                    None if None in extents else extents)


def _extent(loop: Op, top_level: set[Value], lower: dict[Value, int]) -> tuple[Any, ...] | None:
    """("trips", lb, ub, step) or ("at_most", ub, low): a bound on the loop's trips."""
    if loop.name not in ("scf.for", "par.parallel_for"):
        return None
    lb, ub, step = loop.operands[:3]
    if all(v in top_level for v in (lb, ub, step)):
        return ("trips", lb, ub, step)
    if not unit_step(loop):
        return None
    if ub in top_level and lb in lower:
        return ("at_most", ub, lower[lb])   # range(lb, ub) with lb >= lower[lb]
    span = _segment_span(lb, ub, top_level)
    return None if span is None else ("at_most", span, 0)


def _segment_span(lb: Value, ub: Value, top_level: set[Value]) -> Value | None:
    """A top-level span where ub is min(lb + span, ...): a checkpointed segment's range."""
    stop = ub.owner
    if not (isinstance(stop, Op) and stop.name == "arith.min"):
        return None
    for v in stop.operands:
        add = v.owner
        if isinstance(add, Op) and add.name == "arith.add" and lb in add.operands:
            span = add.operands[1] if add.operands[0] is lb else add.operands[0]
            if span in top_level:
                return span
    return None
