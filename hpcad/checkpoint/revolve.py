"""Revolve checkpointing of a time loop (binomial checkpointing, Griewank & Walther), with
checkpoint_schedules' Revolve schedule (generated in closed form, checkpoint/binomial.py).
With S snapshots of the loop's state the tape holds one step at a time; the reverse sweep
re-runs steps from snapshots as the schedule says (O(N log N) recomputed steps). The
schedule becomes a table of actions, computed when the derivative is called (it depends on
the step count and the snapshot count) and executed by a small interpreter in the
derivative IR:

    FORWARD n0 n1 save adj : save the state as snapshot `save` (if >= 0), then run steps
                             [n0, n1): recording the tape if adj, else the plain step
    REVERSE n0 n1          : reverse steps [n0, n1) (their tape was just recorded)
    RESTORE slot           : state = snapshot `slot`
The actions before the schedule's EndForward run where the loop ran (without tape); the rest
runs where the loop's reverse belongs.

Restarting (plan.restart): where every value the reverse of a step needs can be
recomputed from the state the step starts from (ad/reverse.py, `unchanged_after`), the
table has no taping runs and REVERSE reverses the step from the state as it is (the tape is
empty; a kernel that still needs one raises NotRestartable when its derivative is built).
With the snapshots in files (plan.disk, runtime/snapshots.py), REVERSE's `save` column names the
slot holding the step's state and the reverse reads it there (`_reverse_from_slots`), which
spares copying each state back before reversing its step."""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from math import comb
from typing import Any

import numpy as np

from ..errors import DifferentiationError, where
from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Function, Op, Value, walk
from ..ir.effects import writes
from ..ir.types import ArrayType, i1, i64
from .binomial import binomial_recomputation, repetition_number, revolve_actions
from .engine import Engine
from .plan import Plan
from .segments import (
    alloc_snapshots,
    array_root,
    element_view,
    short_loc,
    state_arrays,
    sweep_title,
)
from .tape import array_type, block_of

FORWARD, REVERSE, RESTORE = 0, 1, 2


def longest_recording(actions: np.ndarray) -> int:
    """The most steps one taping FORWARD action runs (sizes the tape)."""
    taping = actions[(actions[:, 0] == FORWARD) & (actions[:, 4] == 1)]
    return int((taping[:, 2] - taping[:, 1]).max()) if len(taping) else 1


@lru_cache(maxsize=64)
def schedule_actions(steps: int, snapshots: int, first: int = 0, lean: bool = False,
                     restart: bool = False, from_slot: bool = False) -> tuple[np.ndarray, int]:
    """(actions [K, 5] int64, number of actions of the forward sweep) for a loop over
    range(first, first + steps). Snapshot slots 0..snapshots-1 follow the schedule; slot
    `snapshots` keeps the state before the forward sweep's last steps, which the forward
    sweep runs without tape and the reverse sweep runs again with it, and, at its end,
    once more without (the arrays end with their final values, with no copy of them).
    Memoized (the schedule is pure Python, about a second for 1e5 steps, and a gradient is
    usually taken many times with the same step count); callers only
    read the table (it stays writeable: numba types read-only arrays differently).
    lean: no slot beyond the schedule's (one state copy less, for budgets that cannot hold
    it; _schedule_actions). restart: each step is reversed from its state, which
    the schedule brings back before taping it, so the taping runs are left out (a
    snapshot they would save is still saved). from_slot (with restart): each REVERSE
    reads the step's state from the snapshot slot in its `save` column instead of the
    arrays, so a RESTORE just before it is left out, and a state reached by running
    forward is first saved to the slot after all others (`scratch_slot`)."""
    actions, split = _schedule_actions(steps, snapshots, first, lean)
    if restart:
        actions, split = _without_taping(actions, split)
    if from_slot:
        actions = _reverse_from_slots(actions, scratch_slot(snapshots, lean))
    return actions, split


def scratch_slot(snapshots: int, lean: bool) -> int:
    """The slot a from-slot table saves a state reached by running forward to."""
    return max(snapshots, 1) + (not lean)


def forward_steps(steps: int, snapshots: int, lean: bool, restart: bool = False) -> int:
    """Steps the action table of schedule_actions(steps, snapshots, 0, lean, restart) runs
    forward, tape or not (its recomputation), in closed form: the planner weighs tables of
    1e6 steps without building them (seconds each). The schedule runs each step once with
    tape and recomputes binomial_recomputation steps; the table's forward sweep runs the
    last step without tape and its reverse sweep tapes it again (+1), and the table ends by
    running forward to the last step: plain from the copy of the state before it (+1), lean
    from the latest snapshot (its gap back); restart leaves the taping runs out (-steps).
    Equal to counting the table (tests/checkpoint/test_revolve_plan.py)."""
    s = max(1, min(snapshots, steps))
    runs = binomial_recomputation(steps, s) + (0 if restart else steps)
    if not lean:
        return runs + 2
    return runs + _lean_resume(steps, s) + _lean_final(steps, s)


def _lean_resume(steps: int, s: int) -> int:
    """Lean tables: steps from the latest snapshot the forward sweep saved to the last step's
    end. The sweep's snapshots sit at the binomial splits; the last is t' + 1 steps back
    (at least 2), t' the largest t with C(s + t, t) <= steps."""
    t = repetition_number(steps, s)
    below = t if comb(s + t, t) == steps else t - 1
    return max(2, below + 1)


def _lean_final(steps: int, s: int) -> int:
    """Lean tables: steps from the latest state a snapshot slot holds when the reverse
    sweep ends to the last step's end. With every step a snapshot (t = 1) that is the
    state two steps back; else the snapshots of steps 0..s-1, and the first b <= s - 1
    steps after C(s + t - 1, s), b = steps - C(s + t - 1, s), are still held (read off
    the tables, and equal to them for every n <= 200, s <= 10)."""
    t = repetition_number(steps, s)
    if t == 1:
        return 2
    beyond = steps - comb(s + t - 1, s)
    return steps - (s - 1) - (beyond if beyond <= s - 1 else 0)


def _without_taping(actions: np.ndarray, split: int) -> tuple[np.ndarray, int]:
    """The table with each taping FORWARD (one step: revolve tapes one step at a time) kept
    only as the snapshot it saves."""
    rows, new_split = [], split
    for k, (kind, n0, n1, save, adj) in enumerate(actions.tolist()):
        if kind == FORWARD and adj:
            assert n1 == n0 + 1, "revolve tapes one step at a time"
            if save < 0:
                new_split -= k < split
                continue
            n1, adj = n0, 0
        rows.append((kind, n0, n1, save, adj))
    return np.array(rows, dtype=np.int64).reshape(-1, 5), new_split


def _reverse_from_slots(actions: np.ndarray, scratch: int) -> np.ndarray:
    """Each REVERSE given the slot it reads its state from (_schedule_actions, from_slot):
    the slot of a RESTORE right before it, which is left out when the arrays are restored
    again before anything else reads them; else the scratch slot, saved to first."""
    rows = actions.tolist()
    out = []
    for k, row in enumerate(rows):
        if row[0] != REVERSE:
            out.append(row)
            continue
        later = next((r[0] for r in rows[k + 1:] if not (r[0] == FORWARD and r[1] == r[2]
                                                          and r[3] < 0)), RESTORE)
        if out and out[-1][0] == RESTORE and later == RESTORE:
            slot = out.pop()[3]
        else:
            out.append([FORWARD, row[1], row[1], scratch, 0])
            slot = scratch
        out.append([REVERSE, row[1], row[2], slot, 0])
    return np.array(out, dtype=np.int64).reshape(-1, 5)


def _schedule_actions(steps: int, snapshots: int, first: int,
                      lean: bool) -> tuple[np.ndarray, int]:
    """The table (see schedule_actions). The forward sweep runs every step without tape;
    the reverse sweep starts by bringing the state to the schedule's first taping run, and
    the table ends by bringing it to the last step (the arrays end with their final
    values). Plain: from a copy of the state before that run, in the slot after the
    schedule's. Lean: from the latest state a schedule slot holds at or before the step,
    running forward from there (up to one more forward run, one state copy less)."""
    if steps == 0:
        return np.zeros((0, 5), np.int64), 0
    table = _Table(snapshots, first, lean)
    for action in revolve_actions(steps, max(1, min(snapshots, steps))):
        if action[0] == "EndReverse":
            break
        _TABLE_RULES[action[0]](table, action)
    if table.pending is not None:
        table.resume(steps)
    assert table.split is not None, "revolve's actions end their forward sweep"
    return np.array(table.rows, dtype=np.int64).reshape(-1, 5), table.split


class _Table:
    """The rows of _schedule_actions, appended action by action of the schedule."""

    def __init__(self, snapshots: int, first: int, lean: bool):
        self.first, self.lean = first, lean
        self.rows: list[tuple[int, int, int, int, int]] = []
        self.slot_of: dict[int, int] = {}       # step -> the schedule slot holding its state
        self.free = list(range(max(snapshots, 1)))[::-1]
        self.extra = max(snapshots, 1)
        self.held: dict[int, int] = {}          # slot -> the step whose state it holds
        self.split: int | None = None
        self.pending: tuple[int, int] | None = None   # the first taping run, moved

    def resume(self, n: int) -> None:
        """Rows that bring the state to step n (>= the first taping run's start)."""
        assert self.pending is not None
        slot, k = (self.extra, self.pending[0]) if not self.lean else \
            max(((sl, k) for sl, k in self.held.items() if k <= n), key=lambda t: t[1])
        self.rows.append((RESTORE, 0, 0, slot, 0))
        if k < n:
            self.rows.append((FORWARD, self.first + k, self.first + n, -1, 0))

    def forward(self, action: tuple[Any, ...]) -> None:
        _, n0, n1, write_ics, write_adj = action
        save = -1
        if write_ics:
            save = self.slot_of.setdefault(n0, self.free.pop())
            self.held[save] = n0
        adj = int(write_adj)
        if self.split is None and adj:
            self.pending, adj = (n0, n1), 0
            if not self.lean:
                if save >= 0:    # the schedule's slot may be reused: keep a copy in extra
                    self.rows.append((FORWARD, self.first + n0, self.first + n0, self.extra, 0))
                save = self.extra
            elif save < 0 and not any(k <= n0 for k in self.held.values()):
                save = self.free[-1]    # (a free slot: the schedule may take it back later)
                self.held[save] = n0
        self.rows.append((FORWARD, self.first + n0, self.first + n1, save, adj))

    def end_forward(self, action: tuple[Any, ...]) -> None:
        self.split = len(self.rows)
        if self.pending is not None:
            self.resume(self.pending[0])
            n0, n1 = self.pending
            self.rows.append((FORWARD, self.first + n0, self.first + n1, -1, 1))

    def reverse(self, action: tuple[Any, ...]) -> None:
        self.rows.append((REVERSE, self.first + action[1], self.first + action[2], -1, 0))

    def restore(self, action: tuple[Any, ...]) -> None:
        """Copy or Move (a last restore, freeing the slot)."""
        self.rows.append((RESTORE, 0, 0, self.slot_of[action[1]], 0))
        if action[0] == "Move":
            self.free.append(self.slot_of.pop(action[1]))


_TABLE_RULES: dict[str, Callable[[_Table, tuple[Any, ...]], None]] = {
    "Forward": _Table.forward, "EndForward": _Table.end_forward, "Reverse": _Table.reverse,
    "Copy": _Table.restore, "Move": _Table.restore}


class NotRestartable(DifferentiationError):
    """The time loop's reverse needs a tape even from each step's restored state."""


class Revolve:
    """The revolve strategy for the time loop `loop` (see module doc): the reverse engine
    (ad/reverse.py) calls augment where the loop's forward copy goes and reverse where its
    reverse goes. `args`: the derivative's arguments holding the snapshot count, the action
    table, the number of its forward-sweep actions and its longest taping run (run-time
    values: checkpoint/plan.py)."""

    def __init__(self, fn: Function, loop: Op, plan: Plan, act: Any, args: list[Value]):
        self.fn = fn
        self.loop = loop
        self.plan = plan
        self.snapshots, self.actions, self.forward_actions, self.longest = args
        self.first_write = _first_writes(act, loop)
        self.state: list[Value] = []
        self.snaps: list[Value] = []
        self.scalar_snaps: list[Value] = []
        self.template = Block()
        self.adjoint_types: list[Any] = []

    def augment(self, engine: Engine, op: Op, new: Block) -> None:
        """The forward sweep's actions (no tape); the taping step body kept aside."""
        b = Builder(new)
        b.loc = op.loc
        # the slot of the state before the last steps (plain), the scratch slot (from_slot)
        one = b.op1("arith.const", [], i64, {"value": 1})
        extra = b.op1("arith.const", [], i64,
                      {"value": (not self.plan.lean) + self.plan.from_slot})
        slots = b.op1("arith.add", [b.op1("arith.max", [self.snapshots, one], i64), extra], i64)
        self.state = [engine.vmap[a] for a in state_arrays(self.fn, op)]
        inits = [engine.vmap.get(v, v) for v in op.operands[3:]]
        # no copy of the final state: the action table ends by re-running the last steps
        # from the snapshot kept for them (schedule_actions)
        self.snaps, _, self.scalar_snaps = alloc_snapshots(b, slots, self.state, inits,
                                                           with_finals=False,
                                                           disk=self.plan.disk)
        zero = b.op1("arith.const", [], i64, {"value": 0})
        final = self.run_actions(engine, b, op, zero, self.forward_actions, inits, tape=False)
        engine.vmap.update(zip(op.results, final, strict=True))
        old_body = op.regions[0]
        self.template = Block([Value(a.type, a.name) for a in old_body.args])
        engine.vmap.update(zip(old_body.args, self.template.args, strict=True))
        engine.augment(old_body, self.template)

    def steps_loop(self, engine: Engine, b: Builder, op: Op, lo: Value, hi: Value,
                   scalars: list[Value], body: Block | None) -> list[Value]:
        """Run steps [lo, hi) of the time loop: with the taping template, or a fresh plain
        copy of the step."""
        if body is None:
            body = clone_op(op, dict(engine.vmap)).regions[0]
        body.parent = None
        one = b.op1("arith.const", [], i64, {"value": 1})
        steps: list[Value] = b.op("scf.for", [lo, hi, one] + list(scalars),
                                  [v.type for v in scalars], regions=[body]).results
        return steps

    def decode(self, b: Builder, a: Value) -> list[Value]:
        return [b.op1("mem.load", [self.actions, a, b.op1("arith.const", [], i64,
                                                            {"value": k})], i64)
                for k in range(5)]

    def save_state(self, b: Builder, slot: Value, scalars: list[Value]) -> list[Value]:
        """Copy the state to snapshot `slot`; nothing to yield."""
        for a, snap in zip(self.state, self.snaps, strict=True):
            b.op("mem.copy", [a, element_view(b, snap, slot, a)])
        for v, snap in zip(scalars, self.scalar_snaps, strict=True):
            b.op("mem.store", [v, snap, slot])
        return []

    def run_actions(self, engine: Engine, b: Builder, op: Op, lo: Value, hi: Value,
                    inits: list[Value], tape: bool, adjoint: Adjoint | None = None,
                    adjoint_inits: list[Value] | None = None) -> list[Value]:
        """scf.for over actions[lo:hi] carrying the loop's scalars (and, when taping, the
        adjoints `adjoint(builder, n0, n1, adjs, slot) -> adjs` updates)."""
        types = [v.type for v in inits] + (self.adjoint_types if tape else [])
        block = Block([Value(i64, "action")] + [Value(t, "carried") for t in types])
        ab = Builder(block)
        ab.loc = op.loc
        row = self.decode(ab, block.args[0])
        scalars = list(block.args[1:1 + len(inits)])
        adjs = list(block.args[1 + len(inits):])
        act = _Actions(self, engine, op, row, scalars, adjs, tape)
        if tape:
            assert adjoint is not None
            carried = act.dispatch(ab, types, adjoint)
            done = ab.op1("arith.sub", [ab.op1("arith.add", [block.args[0], ab.op1(
                "arith.const", [], i64, {"value": 1})], i64), lo], i64)
            ab.op("rt.progress", [done, ab.op1("arith.sub", [hi, lo], i64)],
                  attrs={"what": sweep_title(self.fn)})
            ab.op("scf.yield", carried)
        else:
            ab.op("scf.yield", act.forward(ab))
        one = b.op1("arith.const", [], i64, {"value": 1})
        out: list[Value] = b.op("scf.for", [lo, hi, one] + list(inits)
                                + list(adjoint_inits or []), types, regions=[block]).results
        return out

    def reverse(self, engine: Engine, op: Op, ctx: Any) -> None:
        """The reverse sweep's actions: restores, re-runs (taping) and reverses of steps."""
        b = engine.b
        slots = [k for k, r in enumerate(op.results) if engine.act.active(r)]
        free = engine.free_adjoints(op)
        inits = op.operands[3:]
        self.adjoint_types = [engine.dtype(op.results[k]) for k in slots] + \
            [engine.dtype(f) for f in free]
        carried_adj = [engine.current(op.results[k]) for k in slots] + \
            [engine.current(f) for f in free]

        def adjoint(bb: Builder, n0: Value, n1: Value, adjs: list[Value],
                    slot: Value) -> list[Value]:
            return self._reverse_steps(engine, op, ctx, bb, [n0, n1], adjs, slot)

        total = b.op1("mem.shape", [self.actions], i64, {"axis": 0})
        scalars = [engine.primal(v, ctx) for v in inits]
        res = self.run_actions(engine, b, op, self.forward_actions, total, scalars, tape=True,
                               adjoint=adjoint, adjoint_inits=carried_adj)
        adjs = res[len(inits):]
        for f, r in zip(free, adjs[len(slots):], strict=True):   # first: an init may be one
            engine.adj[f] = r
        for k, r in zip(slots, adjs[:len(slots)], strict=True):
            engine.adj.pop(op.results[k], None)
            engine.add_adjoint(inits[k], r)

    def _reverse_steps(self, engine: Engine, op: Op, ctx: Any, bb: Builder,
                       steps: list[Value], adjs: list[Value], slot: Value) -> list[Value]:
        """Within bb's block, the reverse of steps [n0, n1) from the carried adjoints; with
        from_slot, reading the steps' state from snapshot `slot`."""
        slots = [k for k, r in enumerate(op.results) if engine.act.active(r)]
        free = engine.free_adjoints(op)
        saved_block, saved_adj, saved_vmap = engine.b.block, engine.adj, dict(engine.vmap)
        if self.plan.from_slot:   # the step's state is read from its snapshot
            states = state_arrays(self.fn, op)
            copy = _views_of_state_before(self.fn, op, states)
            for a, snap in zip(states, self.snaps, strict=True):
                view = element_view(bb, snap, slot, engine.vmap[a])
                if copy:    # into the arrays, which views made before the loop follow
                    bb.op("mem.copy", [view, engine.vmap[a]])
                else:       # in their place: no copy
                    engine.vmap[a] = view
        engine.b.block = bb.block
        engine.adj = dict(saved_adj)
        for k, a in zip(slots, adjs[:len(slots)], strict=True):
            engine.adj[op.results[k]] = a
        for f, a in zip(free, adjs[len(slots):], strict=True):
            engine.adj[f] = a
        out: dict[int, Value] = {}
        one = bb.op1("arith.const", [], i64, {"value": 1})
        engine.reverse_loop(op, ctx, bounds=[steps[0], steps[1], one], carry_out=out)
        got = [out.get(k) for k in slots]
        result = [g if g is not None else engine.current(op.results[k])
                  for g, k in zip(got, slots, strict=True)] + [engine.current(f) for f in free]
        engine.b.block, engine.adj, engine.vmap = saved_block, saved_adj, saved_vmap
        return result

    def reads_restored(self, engine: Engine, op: Op, arrays: list[Value], top: int) -> bool:
        """Restarting: whether op, a read of `arrays` in a step of the time loop (at top
        level position `top`), comes before the step's first write of them, so that the
        step's reverse, run from the restored state, reads what op read."""
        if not self.plan.restart or engine.fn.body.ops[top] is not self.loop:
            return False
        at = _position(op, self.loop.regions[0])
        return all(self.first_write.get(engine.act.key(a), at + 1) > at for a in arrays)

    def describe(self) -> str:
        names = ", ".join(a.name or "?" for a in state_arrays(self.fn, self.loop))
        p = self.plan
        how = (f"each step reversed from its {'snapshot' if p.disk else 'restored state'}"
               f", no tape" if p.restart else "the tape holds one step")
        return (f"time loop {short_loc(self.loop.loc)}: revolve{' (lean)' * p.lean} with "
                f"snapshots of [{names}]{' in files' * p.disk}; {how}")

    def finish(self) -> None:
        """A restarting plan whose step still needs a tape: NotRestartable."""
        if self.plan.restart and any(o.dialect == "tape" for o in walk(self.template)):
            stored = self.plan.intermediates != "recompute"
            raise NotRestartable(
                f"{where(self.loop.loc)}: a step of this time loop cannot be reversed from its "
                f"restored state: its reverse needs values the step computes after overwriting "
                f"them" + (f", or values intermediates='{self.plan.intermediates}' stores "
                           f"instead of recomputing them" if stored else "")
                + "; use schedule='revolve' (a one-step tape)"
                + (", or intermediates='recompute' (hpcad.checkpoint(f, S, "
                   "schedule='restart', intermediates='recompute'))" if stored else ""))


Adjoint = Callable[[Builder, Value, Value, list[Value], Value], list[Value]]


class _Actions:
    """The branches of one action of the table, in the body of the loop over actions."""

    def __init__(self, rv: Revolve, engine: Engine, op: Op, row: list[Value],
                 scalars: list[Value], adjs: list[Value], tape: bool):
        self.rv, self.engine, self.op = rv, engine, op
        self.kind, self.n0, self.n1, self.save, self.rec = row
        self.scalars, self.adjs, self.tape = scalars, adjs, tape

    def branch(self, build: Callable[[Builder], list[Value]]) -> Block:
        blk = Block()
        bb = Builder(blk)
        bb.loc = self.op.loc
        bb.op("scf.yield", build(bb))
        return blk

    def forward(self, bb: Builder) -> list[Value]:
        """FORWARD n0 n1 save adj: save the state to `save` (if >= 0), run the steps."""
        rv, op, scalars = self.rv, self.op, self.scalars
        saving = bb.op1("arith.cmp", [self.save, _const(bb, 0)], i1, {"pred": "ge"})
        bb.op("scf.if", [saving], [], regions=[
            self.branch(lambda x: rv.save_state(x, self.save, scalars)),
            self.branch(lambda x: [])])
        if self.tape and not rv.plan.restart:
            # min(n0 + longest recorded run, n1) == n1: a bound the tape can be sized by
            stop = bb.op1("arith.min", [bb.op1("arith.add", [self.n0, rv.longest], i64),
                                        self.n1], i64)
            recorded = bb.op("scf.if", [_is(bb, self.rec, 1)], [v.type for v in scalars],
                             regions=[
                self.branch(lambda x: list(rv.steps_loop(self.engine, x, op, self.n0, stop,
                                                         scalars, rv.template))),
                self.branch(lambda x: list(rv.steps_loop(self.engine, x, op, self.n0,
                                                         self.n1, scalars, None)))])
            return list(recorded.results) + self.adjs
        steps = rv.steps_loop(self.engine, bb, op, self.n0, self.n1, scalars, None)
        return list(steps) + (self.adjs if self.tape else [])

    def restore(self, bb: Builder) -> list[Value]:
        """RESTORE slot: the state from snapshot `slot`."""
        for a, snap in zip(self.rv.state, self.rv.snaps, strict=True):
            bb.op("mem.copy", [element_view(bb, snap, self.save, a), a])
        got = [bb.op1("mem.load", [snap, self.save], array_type(snap).dtype)
               for snap in self.rv.scalar_snaps]
        return got + self.adjs

    def dispatch(self, ab: Builder, types: list[Any], adjoint: Adjoint) -> list[Value]:
        """RESTORE, FORWARD or REVERSE by the action's kind; what the action carries on."""
        def reverse(bb: Builder) -> list[Value]:
            return self.scalars + adjoint(bb, self.n0, self.n1, self.adjs, self.save)
        inner = ab.op("scf.if", [_is(ab, self.kind, RESTORE)], types, regions=[
            self.branch(self.restore),
            self.branch(lambda x: list(x.op("scf.if", [_is(x, self.kind, FORWARD)], types,
                                            regions=[self.branch(self.forward),
                                                     self.branch(reverse)]).results))])
        return list(inner.results)


def _views_of_state_before(fn: Function, loop: Op, states: list[Value]) -> bool:
    """Whether the time loop's body uses an array made before the loop that views a state
    array, or may (made by anything but an allocation): `w[1:n - 1]` passed to a call in
    each step, which loop-invariant code motion takes out of the loop. A from-slot reverse
    reads the step's state from its snapshot by putting the snapshot in the state arrays'
    place (Revolve._reverse_steps), which such a view does not follow: it would read the
    arrays as they are then, not the step's state. The reverse copies the snapshot into the
    arrays instead (as RESTORE does; the table restores them again before any other read,
    and a restarting step's reverse writes none of them)."""
    inside = set(walk(loop.regions[0]))
    for o in inside:
        for v in o.operands:
            if not isinstance(v.type, ArrayType) or v in states or v in fn.args \
                    or not isinstance(v.owner, Op) or v.owner in inside:
                continue
            root = array_root(v)
            made = isinstance(root.owner, Op) and root.owner.name == "mem.alloc"
            if root in states or not (made or root in fn.args):
                return True
    return False


def _const(b: Builder, k: int) -> Value:
    return b.op1("arith.const", [], i64, {"value": k})


def _is(b: Builder, value: Value, k: int) -> Value:
    return b.op1("arith.cmp", [value, _const(b, k)], i1, {"pred": "eq"})


def _position(op: Op, block: Block) -> int:
    """The index in block of the op of block that holds op."""
    while op.parent is not block:
        owner = block_of(op).parent
        assert owner is not None, "internal: op is not inside block"
        op = owner
    return block.ops.index(op)


def _first_writes(act: Any, loop: Op) -> dict[Any, int]:
    """Per array class, the position in the time loop's body of the first op that writes
    it (ir/effects.writes, as the engine's `last_write`)."""
    first: dict[Any, int] = {}
    for pos, step_op in enumerate(loop.regions[0].ops):
        for o in [step_op, *(x for r in step_op.regions for x in walk(r))]:
            for arr in writes(o):
                first.setdefault(act.key(arr), pos)
    return first


def bound_source(fn: Function, v: Value) -> tuple[str, int] | None:
    """Where a bound of the revolve loop's range comes from when the derivative is called:
    fn's argument (its index) or a constant; None where it is computed in the kernel."""
    if v in fn.args:
        return ("arg", fn.args.index(v))
    if isinstance(v.owner, Op) and v.owner.name == "arith.const":
        return ("const", int(v.owner.attrs["value"]))
    return None


def static_bounds(fn: Function, loop: Op) -> tuple[tuple[str, int], ...]:
    """How to find the revolve loop's range when the derivative is called: per bound, an
    argument's index or a constant."""
    out = [bound_source(fn, v) for v in loop.operands[:3]]
    if None in out:
        raise DifferentiationError(
            f"{where(loop.loc)}: a revolve schedule needs the time loop's range to come "
            f"from the kernel's arguments or constants (e.g. range(nsteps))")
    return tuple(b for b in out if b is not None)
