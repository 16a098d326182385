"""Revolve checkpointing of a time loop (binomial checkpointing, Griewank & Walther), with
checkpoint_schedules' Revolve schedule (generated in closed form, checkpoint/binomial.py).
With S snapshots of the loop's state the tape holds one step at a time; the reverse sweep re-runs steps from snapshots as the
schedule says (O(N log N) recomputed steps). The schedule becomes a table of actions,
computed when the derivative is called (it depends on the step count) and executed by a
small interpreter in the derivative IR:

    FORWARD n0 n1 save adj : save the state as snapshot `save` (if >= 0), then run steps
                             [n0, n1): recording the tape if adj, else the plain step
    REVERSE n0 n1          : reverse steps [n0, n1) (their tape was just recorded)
    RESTORE slot           : state = snapshot `slot`
The actions before the schedule's EndForward run where the loop ran (without tape); the rest
runs where the loop's reverse belongs.

Restarting (`revolve[_lean]_restart`): where every value the reverse of a step needs can be
recomputed from the state the step starts from (ad/reverse.py, `unchanged_after`), the
table has no taping runs and REVERSE reverses the step from the state as it is (the tape is
empty; a kernel that still needs one raises NotRestartable when its derivative is built).
With the snapshots in files (`_disk`, checkpoint/disk.py), REVERSE's `save` column names the
slot holding the step's state and the reverse reads it there (`_reverse_from_slots`), which
spares copying each state back before reversing its step."""
from __future__ import annotations

from functools import lru_cache
from math import comb

import numpy as np

from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Op, Value
from ..ir.types import i1, i64
from .binomial import binomial_recomputation, repetition_number, revolve_actions
from .segments import _element_view, alloc_snapshots, state_arrays, sweep_title

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
    rows, slot_of, free = [], {}, list(range(max(snapshots, 1)))[::-1]
    extra = max(snapshots, 1)
    held: dict[int, int] = {}    # slot -> the step whose state it holds
    split = pending = None
    if steps == 0:
        return np.zeros((0, 5), np.int64), 0

    def resume(n: int) -> None:
        """Rows that bring the state to step n (>= the first taping run's start)."""
        slot, k = (extra, pending[0]) if not lean else \
            max(((sl, k) for sl, k in held.items() if k <= n), key=lambda t: t[1])
        rows.append((RESTORE, 0, 0, slot, 0))
        if k < n:
            rows.append((FORWARD, first + k, first + n, -1, 0))

    for action in revolve_actions(steps, max(1, min(snapshots, steps))):
        name = action[0]
        if name == "Forward":
            _, n0, n1, write_ics, write_adj = action
            save = -1
            if write_ics:
                save = slot_of.setdefault(n0, free.pop())
                held[save] = n0
            adj = int(write_adj)
            if split is None and adj:
                pending, adj = (n0, n1), 0
                if not lean:
                    if save >= 0:    # the schedule's slot may be reused: keep a copy in extra
                        rows.append((FORWARD, first + n0, first + n0, extra, 0))
                    save = extra
                elif save < 0 and not any(k <= n0 for k in held.values()):
                    save = free[-1]    # (a free slot: the schedule may take it back later)
                    held[save] = n0
            rows.append((FORWARD, first + n0, first + n1, save, adj))
        elif name == "EndForward":
            split = len(rows)
            if pending is not None:
                resume(pending[0])
                rows.append((FORWARD, first + pending[0], first + pending[1], -1, 1))
        elif name == "Reverse":
            rows.append((REVERSE, first + action[1], first + action[2], -1, 0))
        elif name in ("Copy", "Move"):
            rows.append((RESTORE, 0, 0, slot_of[action[1]], 0))
            if name == "Move":
                free.append(slot_of.pop(action[1]))
        elif name == "EndReverse":
            break
    if pending is not None:
        resume(steps)
    return np.array(rows, dtype=np.int64).reshape(-1, 5), split


class RevolveCheckpointing:
    """Mixed into reverse mode (`ad/reverse.py`)."""

    def augment_revolve(self, op: Op, new: Block) -> None:
        info = self.revolve_info
        b = Builder(new)
        b.loc = op.loc
        # the slot of the state before the last steps (plain), the scratch slot (from_slot)
        count = scratch_slot(info["snapshots"], info["lean"]) + info["from_slot"]
        slots = b.op1("arith.const", [], i64, {"value": count})
        state = [self.vmap[a] for a in state_arrays(self.fn, op)]
        inits = [self.vmap.get(v, v) for v in op.operands[3:]]
        # no copy of the final state: the action table ends by re-running the last steps
        # from the snapshot kept for them (schedule_actions)
        snaps, _, scalar_snaps = alloc_snapshots(b, slots, state, inits, with_finals=False,
                                                 disk=info["disk"])
        info.update(state=state, snaps=snaps, scalar_snaps=scalar_snaps)
        zero = b.op1("arith.const", [], i64, {"value": 0})
        final = self.run_actions(b, op, zero, self.revolve_args[1], inits, tape=False)
        self.vmap.update(zip(op.results, final))
        old_body = op.regions[0]
        template = Block([Value(a.type, a.name) for a in old_body.args])
        self.vmap.update(zip(old_body.args, template.args))
        self.augment(old_body, template)
        info["template"] = template

    def steps_loop(self, b: Builder, op: Op, lo: Value, hi: Value, scalars, body: Block | None):
        """Run steps [lo, hi) of the time loop: with the taping template, or a fresh plain
        copy of the step."""
        if body is None:
            body = clone_op(op, dict(self.vmap)).regions[0]
        body.parent = None
        one = b.op1("arith.const", [], i64, {"value": 1})
        return b.op("scf.for", [lo, hi, one] + list(scalars), [v.type for v in scalars],
                    regions=[body]).results

    def decode(self, b: Builder, a: Value) -> list[Value]:
        actions = self.revolve_args[0]
        return [b.op1("mem.load", [actions, a, b.op1("arith.const", [], i64, {"value": k})], i64)
                for k in range(5)]

    def save_state(self, b: Builder, slot: Value, scalars) -> None:
        info = self.revolve_info
        for a, snap in zip(info["state"], info["snaps"]):
            b.op("mem.copy", [a, _element_view(b, snap, slot, a)])
        for v, snap in zip(scalars, info["scalar_snaps"]):
            b.op("mem.store", [v, snap, slot])

    def run_actions(self, b: Builder, op: Op, lo: Value, hi: Value, inits, tape: bool,
                    adjoint=None, adjoint_inits=()):
        """scf.for over actions[lo:hi] carrying the loop's scalars (and, when taping, the
        adjoints `adjoint(builder, n0, n1, adjs) -> adjs` updates)."""
        info = self.revolve_info
        types = [v.type for v in inits] + (info["adjoint_types"] if tape else [])
        block = Block([Value(i64, "action")] + [Value(t, "carried") for t in types])
        ab = Builder(block)
        ab.loc = op.loc
        kind, n0, n1, save, rec = self.decode(ab, block.args[0])
        scalars = list(block.args[1:1 + len(inits)])
        adjs = list(block.args[1 + len(inits):])

        def branch(build) -> Block:
            blk = Block()
            bb = Builder(blk)
            bb.loc = op.loc
            bb.op("scf.yield", build(bb))
            return blk

        def is_(bb, value, k):
            return bb.op1("arith.cmp", [value, bb.op1("arith.const", [], i64, {"value": k})], i1,
                          {"pred": "eq"})

        def forward(bb):
            saving = bb.op1("arith.cmp", [save, bb.op1("arith.const", [], i64, {"value": 0})],
                            i1, {"pred": "ge"})
            bb.op("scf.if", [saving], [], regions=[
                branch(lambda x: (self.save_state(x, save, scalars), [])[1]),
                branch(lambda x: [])])
            if tape and not info["restart"]:
                # min(n0 + longest recorded run, n1) == n1: a bound the tape can be sized by
                stop = bb.op1("arith.min", [bb.op1("arith.add", [n0, self.revolve_args[2]], i64),
                                            n1], i64)
                recorded = bb.op("scf.if", [is_(bb, rec, 1)], [v.type for v in scalars], regions=[
                    branch(lambda x: list(self.steps_loop(x, op, n0, stop, scalars,
                                                          info["template"]))),
                    branch(lambda x: list(self.steps_loop(x, op, n0, n1, scalars, None)))])
                return list(recorded.results) + adjs
            return list(self.steps_loop(bb, op, n0, n1, scalars, None)) + (adjs if tape else [])

        def restore(bb):
            for a, snap in zip(info["state"], info["snaps"]):
                bb.op("mem.copy", [_element_view(bb, snap, save, a), a])
            got = [bb.op1("mem.load", [snap, save], snap.type.dtype)
                   for snap in info["scalar_snaps"]]
            return got + adjs

        if tape:
            def reverse(bb):
                return scalars + adjoint(bb, n0, n1, adjs, save)
            inner = ab.op("scf.if", [is_(ab, kind, RESTORE)], types, regions=[
                branch(restore),
                branch(lambda x: list(x.op("scf.if", [is_(x, kind, FORWARD)], types, regions=[
                    branch(forward), branch(reverse)]).results))])
            done = ab.op1("arith.sub", [ab.op1("arith.add", [block.args[0], ab.op1(
                "arith.const", [], i64, {"value": 1})], i64), lo], i64)
            ab.op("rt.progress", [done, ab.op1("arith.sub", [hi, lo], i64)],
                  attrs={"what": sweep_title(self.fn)})
            ab.op("scf.yield", list(inner.results))
        else:
            ab.op("scf.yield", forward(ab))
        one = b.op1("arith.const", [], i64, {"value": 1})
        return b.op("scf.for", [lo, hi, one] + list(inits) + list(adjoint_inits), types,
                    regions=[block]).results

    def reverse_revolve(self, op: Op, ctx) -> None:
        info = self.revolve_info
        b = self.b
        slots = [k for k, r in enumerate(op.results) if self.act.active(r)]
        free = self.free_adjoints(op)
        inits = op.operands[3:]
        info["adjoint_types"] = [self.dtype(op.results[k]) for k in slots] + \
            [self.dtype(f) for f in free]
        carried_adj = [self.current(op.results[k]) for k in slots] + [self.current(f) for f in free]

        def adjoint(bb: Builder, n0: Value, n1: Value, adjs, slot: Value):
            saved_block, saved_adj, saved_vmap = self.b.block, self.adj, dict(self.vmap)
            if info["from_slot"]:   # the step's state is read from its snapshot
                for a, snap in zip(state_arrays(self.fn, op), info["snaps"]):
                    self.vmap[a] = _element_view(bb, snap, slot, self.vmap[a])
            self.b.block = bb.block
            self.adj = dict(saved_adj)
            for k, a in zip(slots, adjs[:len(slots)]):
                self.adj[op.results[k]] = a
            for f, a in zip(free, adjs[len(slots):]):
                self.adj[f] = a
            out = {}
            one = bb.op1("arith.const", [], i64, {"value": 1})
            self.reverse_loop(op, ctx, bounds=[n0, n1, one], carry_out=out)
            result = [out.get(k) if out.get(k) is not None else self.current(op.results[k])
                      for k in slots] + [self.current(f) for f in free]
            self.b.block, self.adj, self.vmap = saved_block, saved_adj, saved_vmap
            return result

        total = b.op1("mem.shape", [self.revolve_args[0]], i64, {"axis": 0})
        scalars = [self.primal(v, ctx) for v in inits]
        res = self.run_actions(b, op, self.revolve_args[1], total, scalars, tape=True,
                               adjoint=adjoint, adjoint_inits=carried_adj)
        adjs = res[len(inits):]
        for k, r in zip(slots, adjs[:len(slots)]):
            self.adj.pop(op.results[k], None)
            self.add_adjoint(inits[k], r)
        for f, r in zip(free, adjs[len(slots):]):
            self.adj[f] = r
