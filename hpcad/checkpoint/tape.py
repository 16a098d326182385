"""Tape layout: where the augmented forward sweep saves a value and how the reverse sweep
finds it. In sequential code a slot is a stack (`tape.push` at the end of the region's
forward copy, `tape.pop` at the start of its reverse). In the body of a parallel loop, and
in branches inside it, iterations run concurrently, so a slot holds one entry per iteration,
indexed by the iteration number; after the forward loop the slot's segment start moves on
by the trip count (`tape.advance`), and moves back before the reverse loop (`tape.retreat`)."""
from __future__ import annotations

from ..ir.core import Block, Builder, Op, Value
from ..ir.types import i1, i64


def trip_count(b: Builder, lb: Value, ub: Value, step: Value) -> Value:
    """len(range(lb, ub, step)) = max(0, (ub - lb + step - sign(step)) // step)."""
    c = lambda x: b.op1("arith.const", [], i64, {"value": x})
    positive = b.op1("arith.cmp", [step, c(0)], i1, {"pred": "gt"})
    sign = b.op1("arith.select", [positive, c(1), c(-1)], i64)
    span = b.op1("arith.sub", [b.op1("arith.add", [b.op1("arith.sub", [ub, lb], i64), step], i64),
                               sign], i64)
    return b.op1("arith.max", [b.op1("arith.floordiv", [span, step], i64), c(0)], i64,
                 name_hint="trips")


def _entry_number(b: Builder, iv: Value, lb: Value, step: Value) -> Value:
    return b.op1("arith.floordiv", [b.op1("arith.sub", [iv, lb], i64), step], i64,
                 name_hint="entry")


class TapeLayout:
    """Creates the save/restore pairs of the reverse-mode transformation (`reverse.py`)."""

    def __init__(self):
        self.slots = 0

    def new_slot(self) -> int:
        self.slots += 1
        return self.slots - 1

    @staticmethod
    def parallel_home(r):
        """The region of the parallel-loop body whose iterations own r's saved values (r
        itself or r's enclosing branches), or None for sequential code."""
        p = r
        while not p.top and p.old.parent.name == "scf.if":
            p = p.parent
        if not p.top and p.old.parent.name == "par.parallel_for":
            return p
        return None

    def entries(self, home, rv) -> tuple[Value, Value]:
        """The iteration number in the forward and in the reverse copy of the loop body."""
        if home.entry is None:
            loop = home.old.parent
            fb = Builder(home.fwd)
            fb.index = 0
            fwd_entry = _entry_number(fb, home.fwd.args[0], rv.vmap[loop.operands[0]],
                                      rv.vmap[loop.operands[2]])
            scratch = Builder(Block())
            rev_entry = _entry_number(scratch, home.rev.args[0], rv.primal(loop.operands[0], home),
                                      rv.primal(loop.operands[2], home))
            home.index_ops = scratch.block.ops
            home.entry = (fwd_entry, rev_entry)
        return home.entry

    def save(self, r, rv, fwd_value: Value, placeholder: Value) -> Op:
        """Save fwd_value at the end of r's forward copy; returns the restore op (defining
        `placeholder`) for r's reverse prologue."""
        slot = self.new_slot()
        home = self.parallel_home(r)
        fwd_entry = rev_entry = None
        if home is not None:
            fwd_entry, rev_entry = self.entries(home, rv)
            home.saved_slots.append(slot)
        push = Op("tape.push", [fwd_value] + ([fwd_entry] if fwd_entry else []), [],
                  {"slot": slot})
        push.parent = r.fwd
        r.fwd.ops.insert(len(r.fwd.ops) - 1, push)
        pop = Op("tape.pop", [rev_entry] if rev_entry else [], [], {"slot": slot})
        pop.results = [placeholder]
        placeholder.owner = pop
        return pop

    @staticmethod
    def move_segments(b: Builder, slots: list[int], trips: Value, name: str) -> None:
        for slot in slots:
            b.op(name, [trips], [], {"slot": slot})
