"""Tape layout: where the augmented forward sweep saves a value and how the reverse sweep
finds it. In sequential code a slot is a stack (`tape.push` at the end of the region's
forward copy, `tape.pop` at the start of its reverse). In the body of a parallel loop,
iterations run concurrently and their reverses in any order, so each iteration owns a
fixed-size block of every slot it saves into, addressed by the iteration number; inside
the loops of the body (sequential or parallel), the block is laid out by their iteration
numbers (row-major, each loop given room for its most iterations). No tape position moves
inside the parallel loop: before its forward copy the slot makes room for the blocks
(`tape.reserve`), after it the slot's segment start moves on past them (`tape.advance`),
and moves back before the reverse loop (`tape.retreat`). How many entries each slot
holds: runtime/tape.py."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import DifferentiationError, where
from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Op, Value, walk
from ..ir.dialects import is_pure
from ..ir.effects import writes
from ..ir.types import ArrayType, ScalarType, i1, i64

if TYPE_CHECKING:
    from collections.abc import Callable

    from .engine import Engine

Region = Any   # the reverse engine's regions (ad/regions.py): old, fwd and rev blocks


def trip_count(b: Builder, lb: Value, ub: Value, step: Value) -> Value:
    """len(range(lb, ub, step)) = max(0, (ub - lb + step - sign(step)) // step)."""
    def c(x: int) -> Value:
        return b.op1("arith.const", [], i64, {"value": x})
    positive = b.op1("arith.cmp", [step, c(0)], i1, {"pred": "gt"})
    sign = b.op1("arith.select", [positive, c(1), c(-1)], i64)
    span = b.op1("arith.sub", [b.op1("arith.add", [b.op1("arith.sub", [ub, lb], i64), step], i64),
                               sign], i64)
    return b.op1("arith.max", [b.op1("arith.floordiv", [span, step], i64), c(0)], i64,
                 name_hint="trips")


def _entry_number(b: Builder, iv: Value, lb: Value, step: Value) -> Value:
    return b.op1("arith.floordiv", [b.op1("arith.sub", [iv, lb], i64), step], i64,
                 name_hint="entry")


def _before(loop: Op) -> Builder:
    """A builder inserting just before loop."""
    block = block_of(loop)
    b = Builder(block, loop.loc)
    b.index = block.ops.index(loop)
    return b


def built(b: Builder) -> list[Op]:
    """The ops of the block b writes into."""
    assert b.block is not None, "internal: a builder without a block"
    return b.block.ops


def array_type(v: Value) -> ArrayType:
    """v's type, an array's (the state, snapshots and windows are arrays)."""
    assert isinstance(v.type, ArrayType), f"internal: %{v.name} is not an array"
    return v.type


def scalar_type(v: Value) -> ScalarType:
    """v's type, a scalar's (a carried scalar of a time loop)."""
    assert isinstance(v.type, ScalarType), f"internal: %{v.name} is not a scalar"
    return v.type


def block_of(op: Op) -> Block:
    """The block op is in (ops the reverse sweep handles are in one)."""
    assert op.parent is not None, f"internal: {op.name} is in no block"
    return op.parent


class TapeLayout:
    """Creates the save/restore pairs of the reverse-mode transformation (`reverse.py`)."""

    def __init__(self) -> None:
        self.slots = 0

    def new_slot(self) -> int:
        self.slots += 1
        return self.slots - 1

    @staticmethod
    def parallel_levels(r: Region) -> tuple[Region, list[Region]] | None:
        """(home, levels): the body of the outermost parallel loop whose iterations own r's
        saved values, and the bodies of the loops between it and r, outermost first (inner
        parallel loops among them; branches in between are passed through); None for
        sequential code."""
        levels, p = [], r
        while not p.top:
            owner = p.old.parent
            if owner.name in ("par.parallel_for", "scf.for"):
                levels.append(p)
            elif owner.name != "scf.if":
                if owner.name in _UNCOUNTED and not _parallel(levels):
                    _refuse_inside_parallel(p, owner)
                break
            p = p.parent
        if not _parallel(levels):
            return None
        k = max(_parallel(levels))
        return levels[k], levels[:k][::-1]

    def entries(self, level: Region, outer: Region | None, home: Region,
                rv: Engine) -> tuple[Value, Value]:
        """The number of the entry a save at `level` (home or one of its loop bodies, `outer`
        the level around it) uses, in the forward and in the reverse copy of that body:
        the iteration number, after the outer level's entry times the loop's capacity."""
        if level.entry is None:
            loop = level.old.parent
            fb = Builder(level.fwd)
            fb.index = 0
            fwd = _entry_number(fb, level.fwd.args[0], rv.vmap[loop.operands[0]],
                                rv.vmap[loop.operands[2]])
            scratch = Builder(Block())
            rev = _entry_number(scratch, level.rev.args[0], rv.primal(loop.operands[0], level),
                                rv.primal(loop.operands[2], level))
            if outer is not None:
                cap_fwd, cap_rev = self.capacity(home, level, rv)
                out_fwd, out_rev = outer.entry
                fwd = fb.op1("arith.add", [fb.op1("arith.mul", [out_fwd, cap_fwd], i64), fwd],
                             i64, name_hint="entry")
                rev = scratch.op1("arith.add", [scratch.op1("arith.mul", [out_rev, cap_rev], i64),
                                                rev], i64, name_hint="entry")
            level.index_ops = built(scratch)
            level.entry = (fwd, rev)
        entry: tuple[Value, Value] = level.entry
        return entry

    def capacity(self, home: Region, level: Region, rv: Engine) -> tuple[Value, Value]:
        """The most iterations the loop of `level` runs in one iteration of home's
        parallel loop, in the forward sweep (computed before the parallel loop) and in the
        reverse sweep (before the reversed parallel loop)."""
        loop = level.old.parent
        if loop not in home.capacities:
            inside = _defined_in(home.old)
            bounds = loop.operands[:3]
            fb = _before(home.fwd.parent)
            if not any(v in inside for v in bounds):
                fwd = trip_count(fb, *(rv.vmap[v] for v in bounds))
                scratch = Builder(Block())
                rev = trip_count(scratch, *(rv.primal(v, home.parent) for v in bounds))
                home.reverse_setup.extend(built(scratch))
            else:
                fwd = _most_trips(fb, home, loop, rv)
                rev = self.forward_in_reverse(home.parent, rv, fwd, "capacity")
            home.capacities[loop] = (fwd, rev)
        got: tuple[Value, Value] = home.capacities[loop]
        return got

    def forward_in_reverse(self, r: Region, rv: Engine, fwd_value: Value, name: str) -> Value:
        """A value the forward copy of region r computes (not in the primal program), seen
        from r's reverse: itself at top level, else saved on the tape."""
        if r.top:
            return fwd_value
        placeholder = Value(fwd_value.type, name)
        r.setup.insert(0, self.save(r, rv, fwd_value, placeholder))
        return placeholder

    def save(self, r: Region, rv: Engine, fwd_value: Value, placeholder: Value) -> Op:
        """Save fwd_value at the end of r's forward copy; returns the restore op (defining
        `placeholder`) for r's reverse prologue."""
        slot = self.new_slot()
        fwd_entry = rev_entry = None
        found = self.parallel_levels(r)
        if found is not None:
            home, levels = found
            outer = None
            for level in [home] + levels:
                fwd_entry, rev_entry = self.entries(level, outer, home, rv)
                outer = level
            home.saved_slots.append((slot, [level.old.parent for level in levels]))
        push = Op("tape.push", [fwd_value] + ([fwd_entry] if fwd_entry else []), [],
                  {"slot": slot})
        push.parent = r.fwd
        r.fwd.ops.insert(len(r.fwd.ops) - 1, push)
        pop = Op("tape.pop", [rev_entry] if rev_entry else [], [], {"slot": slot})
        pop.results = [placeholder]
        placeholder.owner = pop
        return pop

    def close_segments(self, home: Region, b: Builder, rev_bounds: list[Value]) -> None:
        """Home's parallel loop saved values: make room for every iteration's block before
        its forward copy and move past them after it; before its reverse (about to be
        written with b), move back to their start."""
        if not home.saved_slots:
            return
        fwd_loop = home.fwd.parent
        fb = _before(fwd_loop)
        fwd_trips = trip_count(fb, *fwd_loop.operands[:3])
        for op in home.reverse_setup:
            b.insert(op)
        rev_trips = trip_count(b, *rev_bounds)
        after = Builder(block_of(fwd_loop), fwd_loop.loc)
        for slot, loops in home.saved_slots:
            fwd_size, rev_size = fwd_trips, rev_trips
            for loop in loops:
                cap_fwd, cap_rev = home.capacities[loop]
                fwd_size = fb.op1("arith.mul", [fwd_size, cap_fwd], i64)
                rev_size = b.op1("arith.mul", [rev_size, cap_rev], i64)
            fb.op("tape.reserve", [fwd_size], attrs={"slot": slot})
            after.index = block_of(fwd_loop).ops.index(fwd_loop) + 1
            after.op("tape.advance", [fwd_size], attrs={"slot": slot})
            b.op("tape.retreat", [rev_size], attrs={"slot": slot})


def _parallel(levels: list[Region]) -> list[int]:
    return [k for k, level in enumerate(levels) if level.old.parent.name == "par.parallel_for"]


def _defined_in(block: Block) -> set[Value]:
    inside = set(block.args)
    for op in walk(block):
        inside.update(op.results)
        for region in op.regions:
            inside.update(region.args)
    return inside


def _governing(op: Op) -> list[Value]:
    """The operands that decide whether and how often a loop's or a branch's body runs."""
    return list(op.operands[:1] if op.name == "scf.if" else op.operands[:3])


def _source_words(op: Op) -> str:
    """What an op a loop's range needs is, in the user's words, where the counting pass
    cannot run it."""
    if op.regions:
        return "a value computed in a loop or branch before it"
    if op.name.startswith("mem."):
        return "an array made or changed in the parallel loop's body"
    if op.name.startswith("mpi."):
        return "a message received in the parallel loop's body"
    return "a value computed by a call with effects (a random number, I/O, a check)"


def _counting_slices(body: Block, loop: Op, rv: Engine, refuse: Callable[[str], Exception]
                     ) -> tuple[list[Op], list[Block], list[list[Op]]]:
    """For _most_trips: the loops and branches between the parallel body and `loop`
    (outermost first), the block of each of them and of `loop`, and per block the ops
    (last first) that the ranges and conditions below need."""
    nest: list[Op] = []   # the loops and branches between the body and `loop`, outermost first
    levels = [body]       # the block of each of nest + [loop]
    op = loop
    while op.parent is not body:
        owner = block_of(op).parent
        if owner is None or owner.name not in ("scf.for", "par.parallel_for", "scf.if"):
            raise refuse("its range depends on the parallel iteration and it sits inside "
                         "a while loop or a task")
        nest.insert(0, owner)
        levels.insert(1, block_of(op))
        op = owner
    written = {rv.act.key(a) for o in walk(body) for a in writes(o)}
    needed = set(loop.operands[:3])
    slices: list[list[Op]] = [[] for _ in levels]
    for k in range(len(levels) - 1, -1, -1):
        block, stop = levels[k], (nest + [loop])[k]
        for op in reversed(block.ops[:block.ops.index(stop)]):
            if not needed.intersection(op.results):
                continue
            if op.regions or not (is_pure(op) or op.name == "mem.load"):
                raise refuse(f"its range comes from {_source_words(op)} ({where(op.loc)})")
            if op.name == "mem.load" and rv.act.key(op.operands[0]) in written:
                raise refuse(f"its range is read from an array the parallel loop writes "
                             f"({where(op.loc)})")
            slices[k].append(op)
            needed.update(op.operands)
        if k > 0:
            if needed.intersection(block.args[1:]):
                raise refuse("its range depends on a value the loop around it carries "
                             "from one iteration to the next")
            needed.update(_governing(nest[k - 1]))
    return nest, levels, slices


def _most_trips(b: Builder, home: Region, loop: Op, rv: Engine) -> Value:
    """A counting pass before home's forward parallel loop: the most iterations `loop` (in
    the loop body, or in loops nested in it: its range computed there) runs in any
    iteration of the parallel loop and of the loops around it there. The pass runs those
    loops' ranges, the conditions of the branches around them and the ops these need,
    nothing else: a loop in a branch counts only where its branch is taken (where not, its
    range may not even be computable: `if k >= 0: for t in range(k, n)`). The ranges and
    conditions must be computed from the iteration numbers and values from outside, by pure
    ops and loads of arrays the parallel loop does not write."""
    body: Block = home.old
    par: Op = home.old.parent

    def refuse(why: str) -> DifferentiationError:
        return DifferentiationError(
            f"{where(loop.loc)}: cannot lay out the tape of this loop inside the parallel loop "
            f"at {where(par.loc)}: {why}. hpcad gives each parallel iteration a tape block "
            f"sized by the most iterations this loop runs; compute its range at the top of "
            f"the parallel loop's body from arrays the loop does not write, or from values "
            f"set before it")
    nest, levels, slices = _counting_slices(body, loop, rv, refuse)
    inside = _defined_in(body)
    vmap = {body.args[0]: Value(i64, body.args[0].name)}

    def mapped(v: Value) -> Value:
        return vmap[v] if v in inside else rv.vmap[v]

    def count(k: int, cb: Builder, most: Value) -> Value:
        """The ops of level k's slice, then its loop's trips (the innermost level) or the
        counting loop of the next level: the most trips seen, from `most`."""
        for op in reversed(slices[k]):
            vmap.update((v, rv.vmap[v]) for v in op.operands if v not in inside)
            cb.insert(clone_op(op, vmap))
        if k == len(nest):
            trips = trip_count(cb, *(mapped(v) for v in loop.operands[:3]))
            return cb.op1("arith.max", [most, trips], i64)
        if nest[k].name == "scf.if":     # count in the branch on the path, where taken
            branches = []
            for block in nest[k].regions:
                branch = Block()
                bb = Builder(branch, loop.loc)
                bb.op("scf.yield", [count(k + 1, bb, most) if block is levels[k + 1]
                                    else most])
                branches.append(branch)
            taken: Value = cb.op("scf.if", [mapped(nest[k].operands[0])], [i64],
                                 regions=branches).results[0]
            return taken
        iv = levels[k + 1].args[0]
        inner = Block([Value(i64, iv.name), Value(i64, "most")])
        vmap[iv] = inner.args[0]
        ib = Builder(inner, loop.loc)
        ib.op("scf.yield", [count(k + 1, ib, inner.args[1])])
        found: Value = cb.op("scf.for", [mapped(v) for v in nest[k].operands[:3]] + [most],
                             [i64], regions=[inner], name_hint="capacity").results[0]
        return found

    fwd_par = home.fwd.parent
    counter = Block([vmap[body.args[0]], Value(i64, "most")])
    cb = Builder(counter, loop.loc)
    cb.op("scf.yield", [count(0, cb, counter.args[1])])
    zero = b.op1("arith.const", [], i64, {"value": 0})
    most: Value = b.op("scf.for", list(fwd_par.operands[:3]) + [zero], [i64],
                       regions=[counter], name_hint="capacity").results[0]
    return most


# Regions whose saves cannot have a place of their own inside a parallel iteration's block:
# a while loop's iterations are not counted before it runs; a fork-join task's tape is a
# stack (backend/numba/tape.py). What the user can do instead, per kind.
_UNCOUNTED = {
    "scf.while": ("a while loop (or a for loop with `break`, which runs as one)",
                  "write it as a for loop over a bounded range without `break`, skipping the "
                  "rest once done with a flag (`if not done: ...`)"),
    "par.join": ("a fork-join task", "call the tasks one after the other (plain calls)"),
}


def _refuse_inside_parallel(r: Region, region_op: Op) -> None:
    """r's saved values sit in region_op (a while loop or a task); refuse if a parallel
    loop runs it."""
    p = r.parent
    while not p.top:
        owner = p.old.parent
        if owner.name == "par.parallel_for":
            what, hint = _UNCOUNTED[region_op.name]
            raise DifferentiationError(
                f"{where(region_op.loc)}: {what} inside the parallel loop at "
                f"{where(owner.loc)} computes values the reverse sweep needs; hpcad cannot "
                f"give each parallel iteration a tape block of its own for them. Either "
                f"{hint}, or make the outer loop sequential")
        p = p.parent
