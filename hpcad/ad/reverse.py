"""Reverse mode: an augmented forward sweep (the primal, saving what the reverse sweep needs)
followed by the reverse sweep (adjoints of ops in reverse order, loops run backwards). The
engine here owns the walk, the adjoint map, shadows and the tape; each op's adjoint is its
reverse rule's (ad/rules/, looked up by op name), and every op with regions reverses them
through the one `ReverseEngine.reverse_region`.

The tape is explicit: a value the reverse sweep needs is either visible there already (defined
at function top level, or a reversed loop's induction variable), recomputed from such values
(index arithmetic, cheap float ops), or saved with `tape.push` at the end of its region in the
forward sweep and restored with `tape.pop` at the start of that region's reverse. Primal arrays
are never re-read by the reverse sweep, so in-place overwrites need no restoring."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..checkpoint import windows
from ..checkpoint.cost import is_expensive
from ..checkpoint.mincut import RegionPlan, plan_region
from ..checkpoint.plan import STORE_ALL, Plan
from ..checkpoint.segments import is_scratch, keep_rewritten, rewritten_after, swap_rewritten
from ..checkpoint.strategy import Strategy, run_args, strategy_args, time_loop_strategy
from ..checkpoint.tape import TapeLayout
from ..errors import DifferentiationError, where
from ..ir.activity import SHADOW
from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Function, Op, Value, walk
from ..ir.dialects import is_pure
from ..ir.effects import writes
from ..ir.types import ArrayType, ScalarType, Type, i1, i64, with_width
from ..passes.activity import Activity
from ..passes.replication import replication_types
from .common import array_type, derivative_name, differentiable_result, has_tangent, zero
from .custom import RuleCalls
from .params import reduce_parameters
from .regions import Region
from .rules import vjp_rule
from .rules.mpi import communicates, global_seed


class ReverseEngine:
    """The walk of reverse mode and what its rules (ad/rules/, typed by
    rules/context.ReverseContext) see: the augmented forward sweep's map of primal values
    (`vmap`), the adjoints (`adj`), shadows and tape saves (`primal`, `shadow`, `resolve`),
    and `reverse_region`, which reverses the regions of every op that has some. A
    checkpointed time loop is handed to the plan's strategy (checkpoint/strategy.py), which
    gets this engine as an argument and uses what checkpoint/engine.py states."""

    def __init__(self, fn: Function, act: Activity, intermediates: str = "auto",
                 rules: RuleCalls | None = None, width: int = 1) -> None:
        self.fn = fn
        self.act = act
        self.intermediates = intermediates   # checkpoint/cost.py: how the planner weighs them
        self.rules = rules   # calls to kernels with custom rules (ad/custom.py)
        self.width = width   # directions each adjoint and shadow carries
        self.vmap: dict[Value, Value] = {}        # primal value -> its augmented-forward copy
        self.fwd_block: dict[Block, Block] = {}   # primal block -> augmented-forward block
        self.trip_count: dict[Op, Value] = {}     # primal while op -> forward iteration count
        self.adj: dict[Value, Value] = {}         # primal value -> its current adjoint
        # MPI request -> (shadow request, buffer)
        self.requests: dict[Value, tuple[Value, Value | None]] = {}
        self.strategy: Strategy | None = None    # the checkpointed time loop's (checkpoint/)
        # arrays the time loop uses that a later op writes: (array, values at the loop's
        # end, later values) (checkpoint/segments.py keep_rewritten)
        self.rewritten: list[tuple[Value, Value, Value]] = []
        self.later_written: set[Any] | None = None   # their alias classes (unchanged_after)
        self.plans: list[tuple[Region, RegionPlan]] = []   # for `hpcad plan`
        self.b = Builder()
        self.tape = TapeLayout()
        self.top: Region | None = None
        # per array class, the last top-level op that writes it: a load made after that op
        # reads what the array still holds when the reverse sweep runs, so it may be redone
        self.last_write: dict[Any, int] = {}
        self.first_adjoint, self.kept_adjoint = scratch_adjoints(fn)
        self.scratch = {op.operands[0] for op in self.first_adjoint}
        for pos, top_op in enumerate(fn.body.ops):
            for o in [top_op, *walk_regions(top_op)]:
                for arr in writes(o):   # (stores, fills, MPI receives, kept calls: ir/effects.py)
                    self.last_write[act.key(arr)] = pos

    # -- augmented forward sweep --------------------------------------------------------------
    def augment(self, old: Block, new: Block) -> None:
        self.fwd_block[old] = new
        for op in old.ops:
            if op.name == "scf.while":
                new.ops.append(self.augment_while(op, new))
                continue
            if self.strategy is not None and op is self.strategy.loop:
                self.strategy.augment(self, op, new)
                self.rewritten = keep_rewritten(Builder(new), self.fn, op, self.vmap)
                continue
            c = Op(op.name, [self.vmap.get(v, v) for v in op.operands],
                   [r.type for r in op.results], op.attrs, loc=op.loc,
                   result_names=[r.name for r in op.results])
            c.parent = new
            for region in op.regions:
                nb = Block([Value(a.type, a.name) for a in region.args])
                self.vmap.update(zip(region.args, nb.args, strict=True))
                c.add_region(nb)
                self.augment(region, nb)
            self.vmap.update(zip(op.results, c.results, strict=True))
            new.ops.append(c)

    def augment_while(self, op: Op, parent: Block) -> Op:
        """A copy of the while loop that also counts its iterations (the reverse sweep runs
        its body that many times)."""
        before, after = op.regions
        cond = before.ops[-1]
        if list(cond.operands[1:]) != list(before.args):
            raise DifferentiationError(f"{where(op.loc)}: internal: while loop forwards values "
                                       f"other than its carried variables")
        nbefore = Block([Value(a.type, a.name) for a in before.args] + [Value(i64, "count")])
        nafter = Block([Value(a.type, a.name) for a in after.args] + [Value(i64, "count")])
        self.vmap.update(zip(before.args, nbefore.args, strict=False))
        self.vmap.update(zip(after.args, nafter.args, strict=False))
        self.augment(before, nbefore)
        nbefore.ops[-1].operands.append(nbefore.args[-1])
        self.augment(after, nafter)
        b = Builder(nafter)
        b.index = len(nafter.ops) - 1
        one = b.op1("arith.const", [], i64, {"value": 1})
        nafter.ops[-1].operands.append(b.op1("arith.add", [nafter.args[-1], one], i64))
        zero_count = Op("arith.const", [], [i64], {"value": 0})
        zero_count.parent = parent
        parent.ops.append(zero_count)
        c = Op("scf.while", [self.vmap.get(v, v) for v in op.operands] + [zero_count.result],
               [r.type for r in op.results] + [i64], loc=op.loc,
               result_names=[r.name for r in op.results] + ["trips"])
        c.add_region(nbefore)
        c.add_region(nafter)
        c.parent = parent
        self.vmap.update(zip(op.results, c.results, strict=False))
        self.trip_count[op] = c.results[-1]
        return c

    # -- what the reverse sweep can see -------------------------------------------------------
    def region_of(self, v: Value, ctx: Region) -> Region:
        owner = v.owner
        return self.region_of_block(owner if isinstance(owner, Block) else owner.parent, ctx)

    def region_of_block(self, block: Block | None, ctx: Region) -> Region:
        r: Region | None = ctx
        while r is not None and not r.top and r.old is not block:
            r = r.parent
        found = r if r is not None else self.top
        assert found is not None   # (the reverse sweep starts at the top region)
        return found

    def primal(self, v: Value, ctx: Region) -> Value:
        """The value of primal `v` as seen from the reverse of region `ctx`."""
        r = self.region_of(v, ctx)
        if r.top:
            return self.vmap[v]
        got = r.avail.get(v)
        if got is None:
            if isinstance(v.type, ArrayType):
                raise DifferentiationError(
                    f"internal: array %{v.name} is needed by the reverse sweep inside a loop")
            got = Value(v.type, v.name)
            r.avail[v] = got
            r.needs.append((v, got))
        return got

    def recomputable_op(self, op: Op | Block) -> bool:
        if not isinstance(op, Op) or op.regions:
            return False
        if op.name == "mem.load":
            return self.unchanged_after(op, op.operands[:1])
        if op.name == "func.call":   # a custom rule's fwd (ad/custom.py), called again
            return bool(op.attrs.get("repeatable")) and self.unchanged_after(
                op, [v for v in op.operands if isinstance(v.type, ArrayType)])
        return is_pure(op)

    def close_windows(self, r: Region, ctx: Region) -> None:
        """Before the reverse of r's loop: move its stencil windows' tape slots back
        (checkpoint/windows.py)."""
        windows.close_windows(self, r, ctx)

    def unchanged_after(self, op: Op, arrays: list[Value]) -> bool:
        """Whether nothing writes the arrays from op's top-level op on: reading them in the
        reverse sweep then reads what op read. Under a restarting schedule (each step of the
        time loop reversed from its restored state, checkpoint/revolve.py), also a read in
        a step before the step's first write of the arrays, when nothing after the loop
        writes them."""
        top = self.position(op, self.fn.body)
        last = [self.last_write.get(self.act.key(a), -1) for a in arrays]
        if self.strategy is not None and self.fn.body.ops[top] is self.strategy.loop:
            # during the loop's reverse, an array a later op writes holds its values at the
            # loop's end (swap_rewritten): no write after the loop counts
            if self.later_written is None:
                self.later_written = {self.act.key(x)
                                      for x in rewritten_after(self.fn, self.strategy.loop)}
            last = [min(w, top) if self.act.key(a) in self.later_written else w
                    for a, w in zip(arrays, last, strict=True)]
        if all(w < top for w in last):
            return True
        return self.strategy is not None and not any(w > top for w in last) and \
            self.strategy.reads_restored(self, op, arrays, top)

    def resolve(self, r: Region) -> None:
        """Write the prologue of region r's reverse (restores, recomputations, shadows) and the
        matching saves at the end of its forward copy; what to save and what to recompute is
        a minimum cut (checkpoint/mincut.py)."""
        pops: list[Op] = []
        recomputed: list[tuple[int, Op]] = []
        placeholders = dict(r.needs)
        copies: dict[Op, Op] = {}   # recomputed op -> its copy (one for all its results)
        k = 0
        while k < len(r.needs):
            first = k == 0
            batch = [v for v, _ in r.needs[k:]]
            k = len(r.needs)
            plan = self.plan(r, batch, first)
            for v in plan.stored:
                ph = placeholders.setdefault(v, r.avail.setdefault(v, Value(v.type, v.name)))
                pops.append(self.tape.save(r, self, self.vmap[v], ph))
            for v in plan.recomputed:
                ph = placeholders.setdefault(v, r.avail.setdefault(v, Value(v.type, v.name)))
                if v in r.windows:
                    at = self.position(v.owner, r.old)
                    recomputed.extend((at, c) for c in windows.reload_from_window(self, r, v,
                                                                                  ph))
                    continue
                induction = self.induction(v)
                if induction is not None:
                    recomputed.extend((-1, c) for c in
                                      self.recompute_induction(v, ph, r, *induction))
                    continue
                c = copies.get(v.owner)
                if c is None:
                    c = copies[v.owner] = clone_op(
                        v.owner, {o: placeholders[o] if o in placeholders and
                                  self.region_of(o, r) is r else self.primal(o, r)
                                  for o in v.owner.operands})
                    recomputed.append((self.position(v.owner, r.old), c))
                c.results[v.owner.results.index(v)] = ph
                ph.owner = c
            self.plans.append((r, plan))
        recomputed.sort(key=lambda t: t[0])
        prologue = r.index_ops + pops + [c for _, c in recomputed] + r.setup
        for op in prologue:
            op.parent = r.rev
        at = r.prologue_at
        r.rev.ops[at:at] = prologue

    def plan(self, r: Region, batch: list[Value], first: bool) -> RegionPlan:
        """The min-cut plan for what r's reverse needs; on the first batch, with stencil
        windows (checkpoint/windows.py) instead where that stores fewer bytes."""
        def operands(v: Value) -> list[Value]:
            return self.local_operands(v, r)
        plan = plan_region(batch, operands, lambda v: self.can_recompute(v, r))
        loads = windows.window_loads(self, r) if first else {}
        if loads:
            alt = plan_region(batch, lambda v: [] if v in loads else operands(v),
                              lambda v: v in loads or self.can_recompute(v, r))
            used = {v: loads[v] for v in alt.recomputed if v in loads}
            if used and alt.store_bytes + windows.window_bytes(used) < plan.store_bytes:
                windows.open_windows(self, r, used)
                return alt
        return plan

    def local_operands(self, v: Value, r: Region) -> list[Value]:
        """v's operands that the region r defines (the others r's reverse sees anyway)."""
        if self.induction(v) is not None:
            return []
        needs = dict(r.needs)
        return [o for o in v.owner.operands
                if not isinstance(o.type, ArrayType) and self.region_of(o, r) is r
                and (o not in r.avail or o in needs)]

    def can_recompute(self, v: Value, r: Region) -> bool:
        if self.induction(v) is not None:
            return True
        op = v.owner
        if not self.recomputable_op(op):
            return False
        if _tape_can_hold(op) and (
                self.intermediates == "store" and isinstance(v.type, ScalarType)
                and v.type.is_float or self.intermediates == "auto" and is_expensive(op)):
            return False
        # array operands must be visible where the reverse runs
        return all(self.region_of(o, r).top for o in op.operands
                   if isinstance(o.type, ArrayType))

    @staticmethod
    def induction(v: Value) -> tuple[Op, int, Value] | None:
        """If v is a for loop's carried integer that grows by a loop-invariant amount each
        iteration (`lparam += 1`), the loop and that amount: its value at iteration iv is
        init + (iv - lb) // step * amount, no need to save it."""
        block = v.owner
        if not isinstance(block, Block) or block.parent is None or v.type != i64:
            return None
        loop = block.parent
        if loop.name != "scf.for" or v is block.args[0]:
            return None
        k = block.args.index(v) - 1
        nxt = block.ops[-1].operands[k].owner
        if not isinstance(nxt, Op) or nxt.name != "arith.add" or v not in nxt.operands:
            return None
        amount = nxt.operands[1] if nxt.operands[0] is v else nxt.operands[0]
        inside = {a for a in block.args} | {r for o in walk(block) for r in o.results}
        if amount in inside:
            return None
        return loop, k, amount

    def recompute_induction(self, v: Value, ph: Value, r: Region, loop: Op, k: int,
                            amount: Value) -> list[Op]:
        lb, _, step = (self.primal(x, r) for x in loop.operands[:3])
        init = self.primal(loop.operands[3 + k], r)
        iv = self.primal(loop.regions[0].args[0], r)
        block = Block()
        b = Builder(block)
        count = b.op1("arith.floordiv", [b.op1("arith.sub", [iv, lb], i64), step], i64)
        offset = b.op1("arith.mul", [count, self.primal(amount, r)], i64)
        total = Op("arith.add", [init, offset], [], loc=loop.loc)
        total.results = [ph]
        ph.owner = total
        return block.ops + [total]

    @staticmethod
    def position(op: Op, block: Block | None) -> int:
        """Where in `block` the op holding op (or op itself) is."""
        while op.parent is not block:
            assert op.parent is not None and op.parent.parent is not None
            op = op.parent.parent
        assert block is not None
        return block.ops.index(op)

    # -- shadows ------------------------------------------------------------------------------
    def shadow(self, arr: Value, ctx: Region) -> Value:
        r = self.region_of(arr, ctx)
        s = r.shadows.get(arr)
        if s is not None:
            return s
        owner = arr.owner
        if isinstance(owner, Op) and owner.name == "mem.alloc":
            # a scratch array's adjoint is scratch too: what one step's reverse stores in
            # it, only that step's reverse reads (passes/overwrite.py relies on the mark)
            attrs = {"fill": "zeros", **({"scratch": True} if arr in self.scratch else {})}
            alloc = Op("mem.alloc", [self.primal(v, r) for v in owner.operands], [self.dtype(arr)],
                       attrs, loc=owner.loc, result_names=[derivative_name(arr, "d_")])
            r.setup.append(alloc)
            s = r.shadows[arr] = alloc.result
            return s
        if isinstance(owner, Op) and owner.name in ("mem.view", "mem.reshape"):
            view = Op(owner.name, [self.shadow(owner.operands[0], r)]
                      + [self.primal(v, r) for v in owner.operands[1:]], [self.dtype(arr)],
                      owner.attrs, loc=owner.loc, result_names=[derivative_name(arr, "d_")])
            r.setup.append(view)
            s = r.shadows[arr] = view.result
            return s
        if isinstance(owner, Op) and owner.name == "scf.if":
            k = owner.results.index(arr)
            srcs = [reg.ops[-1].operands[k] for reg in owner.regions]
            blocks = []
            for src in srcs:
                nb = Block()
                yb = Builder(nb)
                if self.region_of(src, r) is not r or _defined_inside(src, owner):
                    raise DifferentiationError(
                        f"{where(owner.loc)}: an array chosen by a branch must be defined "
                        f"before the branch to be differentiated")
                yb.op("scf.yield", [self.shadow(src, r)])
                blocks.append(nb)
            sel = Op("scf.if", [self.primal(owner.operands[0], r)], [self.dtype(arr)],
                     regions=blocks)
            r.setup.append(sel)
            s = r.shadows[arr] = sel.result
            return s
        if isinstance(owner, Op) and owner.name in ("scf.for", "scf.while"):
            self.replay_loop_shadows(owner, r)
            return r.shadows[arr]
        raise DifferentiationError(
            f"{where(getattr(owner, 'loc', None))}: cannot find the shadow of array "
            f"%{arr.name}; arrays carried by loops must be swapped or passed through, "
            f"not created anew in each iteration")

    def replay_loop_shadows(self, op: Op, r: Region) -> None:
        """Shadows of a loop's array results: the loop's swaps of its arrays, replayed on the
        shadows of its inputs (no data moves), in the prologue of the loop's region."""
        is_for = op.name == "scf.for"
        body = op.regions[0] if is_for else op.regions[1]
        carried = body.args[1:] if is_for else body.args
        inits = op.operands[3:] if is_for else op.operands
        arrays = self.shadowed_carried(op)
        perm = self.permutation(op, body.ops[-1], carried, arrays)
        starts = [self.shadow(inits[k], r) for k in arrays]
        scratch = Block()
        b = Builder(scratch)
        if is_for:
            bounds = [self.primal(v, r) for v in op.operands[:3]]
        else:
            bounds = [b.op1("arith.const", [], i64, {"value": 0}),
                      self.primal_forward(self.trip_count[op], op, r),
                      b.op1("arith.const", [], i64, {"value": 1})]
        finals = self.replay_refs(b, bounds, starts, perm)
        r.setup.extend(scratch.ops)
        for k, s in zip(arrays, finals, strict=True):
            r.shadows[op.results[k]] = s

    def shadowed_carried(self, op: Op) -> list[int]:
        return [k for k, res in enumerate(op.results)
                if isinstance(res.type, ArrayType) and self.act.shadowed(res)]

    # -- adjoints -----------------------------------------------------------------------------
    def dtype(self, v: Value) -> Type:
        """The type of v's adjoint or shadow."""
        t: Type = with_width(v.type, self.width)
        return t

    def add_adjoint(self, v: Value, contribution: Value) -> None:
        if not self.act.active(v):
            return
        t = self.dtype(v)
        if contribution.type != t:
            contribution = self.b.op1("arith.cast", [contribution], t)
        cur = self.adj.get(v)
        self.adj[v] = contribution if cur is None else self.b.op1("arith.add", [cur, contribution],
                                                                  t)

    def reverse_block(self, ctx: Region) -> None:
        saved = self.b.block
        self.b.block = ctx.rev
        block = self.fn.body if ctx.old is None else ctx.old
        for op in reversed(block.ops[:-1]):
            self.b.loc = op.loc
            self.reverse_op(op, ctx)
        self.b.block = saved

    def reverse_op(self, op: Op, ctx: Region) -> None:
        """Reverse one op with its rule (ad/rules/)."""
        vjp_rule(op)(self, op, ctx)

    # -- control flow -------------------------------------------------------------------------
    def region_adjoints(self, op: Op) -> tuple[list[int], list[Value]] | None:
        """For an op with regions: (positions of its active results, free adjoints), or
        None when its reverse has nothing to do (no active result, no adjoint of an outer
        value to update, no shadow written)."""
        slots = [k for k, r in enumerate(op.results) if self.act.active(r)]
        free = self.free_adjoints(op)
        if not slots and not free and not self.writes_shadow(op):
            return None
        return slots, free

    def free_adjoints(self, op: Op) -> list[Value]:
        """Active scalars defined outside `op` whose adjoints its regions may update."""
        inside: set[Value] = set()
        for region in op.regions:
            inside.update(region.args)
            for o in walk(region):
                inside.update(o.results)
                for r in o.regions:
                    inside.update(r.args)
        free = []
        for region in op.regions:
            for o in walk(region):
                for v in o.operands:
                    if v not in inside and v not in free and self.act.active(v) \
                            and isinstance(v.type, ScalarType):
                        free.append(v)
        return free

    def current(self, v: Value) -> Value:
        g = self.adj.get(v)
        return g if g is not None else zero(self.b, self.dtype(v))

    def writes_shadow(self, op: Op) -> bool:
        """Whether op's regions have a reverse even without scalar adjoints: they write
        shadowed arrays, or communicate (communication is mirrored in the reverse sweep)."""
        return any(any(self.act.shadowed(a) for a in writes(o))
                   or communicates(o)
                   or (o.name == "func.call" and any(self.act.shadowed(v) for v in o.operands
                                                     if isinstance(v.type, ArrayType)))
                   for region in op.regions for o in walk(region))

    def reverse_region(self, old: Block, ctx: Region, rev: Block, adjoints: dict[Value, Value],
                       seeds: Sequence[tuple[Value, Value | None]],
                       yields: Callable[[], list[Value]],
                       avail: dict[Value, Value] | None = None,
                       shadows: dict[Value, Value] | None = None) -> Region:
        """Reverse `old`, a region of an op reversed in ctx, into block `rev`: the one walk
        behind the reverse of branches, loops, parallel loops and fork-joins. It starts from
        the adjoint map `adjoints` (of values from outside the region that it updates), adds
        each (value, adjoint) of `seeds` (the adjoints of what the region yields; None for
        none), reverses the region's ops, ends `rev` with a yield of `yields()`, and writes
        the prologue that restores or recomputes what it read (`resolve`). `avail` and
        `shadows` are primal values and shadows `rev` sees from its arguments. The adjoint
        map and the builder are as before on return; so is the returned region, for the
        caller's windows and tape segments."""
        outer, outer_block = self.adj, self.b.block
        inner = Region(old, self.fwd_block[old], rev, ctx)
        inner.avail.update(avail or {})
        inner.shadows.update(shadows or {})
        self.adj = adjoints
        self.b.block = rev
        for v, g in seeds:
            if g is not None:
                self.add_adjoint(v, g)
        self.reverse_block(inner)
        self.b.block = rev
        self.b.op("scf.yield", yields())
        self.resolve(inner)
        self.adj, self.b.block = outer, outer_block
        return inner

    def reverse_loop(self, op: Op, ctx: Region, bounds: list[Value] | None = None,
                     carry_out: dict[int, Value] | None = None) -> None:
        """Reverse a for/while loop. `bounds` overrides the reversed range (a checkpointed
        segment); with `carry_out`, the adjoints reaching the loop's carried inputs are put
        there (for the previous segment) instead of onto the inputs."""
        if self.strategy is not None and op is self.strategy.loop and bounds is None:
            # arrays a later op writes hold their values at the loop's end meanwhile
            swap_rewritten(self.b, self.rewritten, back=False)
            self.strategy.reverse(self, op, ctx)
            swap_rewritten(self.b, self.rewritten, back=True)
            return None
        is_for = op.name == "scf.for"
        body = op.regions[0] if is_for else op.regions[1]
        if not is_for:
            self.check_while_before(op)
        carried_args = body.args[1:] if is_for else body.args
        inits = op.operands[3:] if is_for else op.operands
        term = body.ops[-1]
        work = self.region_adjoints(op)
        if work is None:
            return None
        slots, free = work
        arrays = self.shadowed_carried(op)
        if bounds is None:
            bounds = self.loop_bounds(op, ctx)
        perm = self.permutation(op, term, carried_args, arrays)
        final_refs = [self.shadow(op.results[k], ctx) for k in arrays]
        init_adj = [self.current(op.results[k]) for k in slots] + \
                   [self.current(f) for f in free] + final_refs
        rev = Block([Value(i64, body.args[0].name if is_for else "k")]
                    + [Value(v.type, derivative_name(op.results[k], "adj_"))
                       for k, v in zip(slots, init_adj, strict=False)]
                    + [Value(self.dtype(v), derivative_name(v, "adj_")) for v in free]
                    + [Value(r.type, "refs") for r in final_refs])
        n_s, n_f = len(slots), len(free)
        refs_after = rev.args[1 + n_s + n_f:]
        refs_before = [refs_after[perm.index(j)] for j in range(len(arrays))]
        inner = self.reverse_region(
            body, ctx, rev, dict(zip(free, rev.args[1 + n_s:1 + n_s + n_f], strict=True)),
            list(zip([term.operands[k] for k in slots], rev.args[1:1 + n_s], strict=True)),
            lambda: [self.current(carried_args[k]) for k in slots]
            + [self.current(f) for f in free] + refs_before,
            avail={body.args[0]: rev.args[0]} if is_for else None,
            shadows={carried_args[k]: refs_before[j] for j, k in enumerate(arrays)})
        self.close_windows(inner, ctx)
        # the adjoint loop runs the primal's iterations the other way round: descending for
        # an ascending loop, ascending for one that already descends (an adjoint loop of a
        # derivative taken inside the kernel, frontend/nested.py)
        loop = self.b.op("scf.for", bounds + init_adj, [v.type for v in init_adj],
                         attrs={} if op.attrs.get("reverse") else {"reverse": True},
                         regions=[rev])
        res = loop.results
        # the free values' adjoints first: an init that is also a free value (`s = a`
        # before a loop reading a) then gets the carried adjoint added, not overwritten
        for f, r in zip(free, res[n_s:n_s + n_f], strict=True):
            self.adj[f] = r
        for k, r in zip(slots, res[:n_s], strict=True):
            self.adj.pop(op.results[k], None)
            if carry_out is not None:
                carry_out[k] = r
            else:
                self.add_adjoint(inits[k], r)
        return None

    def loop_bounds(self, op: Op, ctx: Region) -> list[Value]:
        """The range a loop's reverse runs over, as ctx's reverse sees it: a for loop's own,
        a while loop's count of iterations."""
        if op.name == "scf.for":
            return [self.primal(v, ctx) for v in op.operands[:3]]
        zero_i = self.b.op1("arith.const", [], i64, {"value": 0})
        one_i = self.b.op1("arith.const", [], i64, {"value": 1})
        return [zero_i, self.primal_forward(self.trip_count[op], op, ctx), one_i]

    def check_while_before(self, op: Op) -> None:
        for o in walk(op.regions[0]):
            if any(self.act.active(r) for r in o.results):
                raise DifferentiationError(
                    f"{where(o.loc)}: a while-loop condition computes a value with a "
                    f"derivative; compute it in the loop body instead")

    def primal_forward(self, fwd_value: Value, op: Op, ctx: Region) -> Value:
        """A forward-only value (not in the primal program) seen from ctx's reverse: the
        iteration count of a while loop, saved when the loop is not at top level."""
        home = self.region_of_block(op.parent, ctx)   # (a while loop may have no results)
        if home.top:
            return fwd_value
        placeholder = Value(i64, "trips")
        home.setup.insert(0, self.tape.save(home, self, fwd_value, placeholder))
        return placeholder

    def permutation(self, op: Op, term: Op, carried_args: list[Value],
                    arrays: list[int]) -> list[int]:
        """For each shadowed carried array k (in `arrays` order), which position in `arrays`
        its next-iteration value comes from: loops may only swap or pass arrays through."""
        perm = []
        for k in arrays:
            src = term.operands[k]
            if src not in carried_args or carried_args.index(src) not in arrays:
                raise DifferentiationError(
                    f"{where(op.loc)}: a loop carries array '{op.results[k].name}' but does not "
                    f"just swap or pass it through (where the loop rebinds the name, hpcad "
                    f"cannot tell that no other name, such as the result of a kernel call "
                    f"given the array, still refers to the old array); write the new values "
                    f"into the array "
                    f"({op.results[k].name}[:] = ...), or allocate a second buffer before the "
                    f"loop, write into it and swap the two names")
            perm.append(arrays.index(carried_args.index(src)))
        if sorted(perm) != list(range(len(perm))):
            raise DifferentiationError(f"{where(op.loc)}: loop-carried arrays are not a "
                                       f"permutation of each other")
        return perm

    @staticmethod
    def replay_refs(b: Builder, bounds: list[Value], refs: list[Value],
                    perm: list[int]) -> list[Value]:
        """The shadow references after the loop's iterations (over `bounds`) permuted them."""
        if not refs or perm == list(range(len(perm))):
            return refs
        body = Block([Value(i64, "t")] + [Value(r.type, "ref") for r in refs])
        Builder(body).op("scf.yield", [body.args[1 + p] for p in perm])
        loop: Op = b.op("scf.for", bounds + refs, [r.type for r in refs], regions=[body])
        return loop.results


def walk_regions(op: Op) -> Iterator[Op]:
    for r in op.regions:
        yield from walk(r)


def _defined_inside(v: Value, op: Op) -> bool:
    """Whether v is defined in one of op's regions (at any depth)."""
    owner = v.owner
    block = owner if isinstance(owner, Block) else owner.parent
    while block is not None and block.parent is not None:
        if block.parent is op:
            return True
        block = block.parent.parent
    return False


def _parent_op(op: Op) -> Op | None:
    """The op whose region holds op."""
    return None if op.parent is None else op.parent.parent


def _is_const(v: Value) -> bool:
    return isinstance(v.owner, Op) and v.owner.name == "arith.const"


def scratch_adjoints(fn: Function) -> tuple[set[Op], set[Op]]:
    """Scratch arrays of a time loop (checkpoint/segments.py: each step fills one over a
    range, then reads it at the same elements; like heat's `tmp`) need no zeroed adjoint.
    No later step reads what a step stored, so the adjoint is zero at the start of each
    step's reverse, and the first adjoint the step's reverse adds into an element, that of
    the step's one load, may store it instead; every element the fill's adjoint then reads
    is written again before the next step's reverse reads it, so its zeroing can go.
    Returns (those loads, those fills). Only when the one load is unconditional in its
    loop over the range (not in a branch or an inner loop), so that its adjoint writes
    every element once."""
    loads: set[Op] = set()
    fills: set[Op] = set()
    for loop in walk(fn.body):
        if loop.name != "scf.for":
            continue
        arrays = {o.operands[1] for o in walk(loop.regions[0]) if o.name == "mem.store"}
        for arr in arrays:
            if not is_scratch(fn, loop, arr):
                continue
            uses = [o for o in walk(loop.regions[0]) if arr in o.operands]
            reads = [o for o in uses if o.name == "mem.load"]
            if len(reads) == 1 and _parent_op(reads[0]) in loop.regions[0].ops:
                loads.add(reads[0])
                fills.update(o for o in uses if o.name == "mem.store")
    return loads, fills


def reverse(fn: Function, arg_activity: list[str], act: Activity, ret_active: bool,
            plan: Plan = STORE_ALL, rules: RuleCalls | None = None,
            width: int = 1, params: tuple[int, ...] = (),
            uniform: tuple[int, ...] = ()) -> Function:
    """The adjoint function. Args: each primal arg followed by its shadow (shadowed arrays),
    then one seed per float result (if ret_active; for a returned float array, an array of
    its shape holding its cotangent, added into its shadow first), then what the plan's
    time-loop strategy reads at run time (its snapshot count: checkpoint/strategy.py).
    Returns the primal results, then the adjoint of each active scalar argument. Shadows
    hold the cotangent of the arrays' exit values on entry and of their entry values on
    return. With `width` W, seeds, adjoints and shadows carry W directions (vector types);
    the primal and the tape are one. The arguments at positions `params` are the same on
    every rank (passes/replication.py); their adjoints are summed over the ranks at the end,
    in one message (ad/params.py). Those at positions `uniform` have the same value (a
    scalar) or shape (an array) on every rank, and nothing is summed for them."""
    rv = ReverseEngine(fn, act, plan.intermediates, rules, width)
    rv.strategy = time_loop_strategy(fn, plan, act)
    args, shadows = [], {}
    for a, kind in zip(fn.args, arg_activity, strict=False):
        na = Value(a.type, a.name)
        rv.vmap[a] = na
        args.append(na)
        if isinstance(a.type, ArrayType) and has_tangent(a, kind):
            d = Value(rv.dtype(a), derivative_name(a, "d_"))
            shadows[a] = d
            args.append(d)
    ret = fn.body.ops[-1]
    float_rets = [v for v in ret.operands if differentiable_result(v)]
    seeds = [Value(with_width(seed_type(v), width), "seed") for v in float_rets] \
        if ret_active else []
    body = Block(args + seeds + strategy_args(rv.strategy))
    rv.augment(fn.body, body)
    fwd_ret = body.ops.pop()
    rev = Block()
    top = Region(None, body, rev, None)
    top.shadows.update(shadows)
    rv.top = top
    rv.b.block = rev
    types = replication_types(fn, params, uniform)
    returned = dict(zip(ret.operands, types.results, strict=False))
    rv.b.loc = ret.loc
    for k, (v, s) in enumerate(zip(float_rets, seeds, strict=False)):
        if isinstance(v.type, ArrayType):   # a returned array: its cotangent, added in
            check_seed_shape(rv.b, rv.vmap[v], s, k)
            if rv.act.shadowed(v):
                rv.b.op("mem.add_into", [s, rv.shadow(v, top)])
            continue
        output = returned[v]
        rv.add_adjoint(v, global_seed(rv.b, v, s, _comm_at(rv, output.comm))
                       if output.one_global_output and output.comm is not None else s)
    rv.reverse_block(top)
    rv.b.block = rev
    scalars = [a for a, kind in zip(fn.args, arg_activity, strict=False)
               if has_tangent(a, kind) and not isinstance(a.type, ArrayType)]
    outs = [rv.current(a) for a in scalars]
    summed = tuple(k for k in params if arg_activity[k] != SHADOW)   # (no gradient asked)
    if types.communicator is not None and summed:
        outs = _reduce_params(rv, types.communicator, shadows, scalars, outs, summed, width)
    rv.resolve(top)
    for op in rev.ops:
        op.parent = body
    body.ops.extend(rev.ops)   # (the forward sweep may have grown: tape.advance ops)
    Builder(body).op("func.return", list(fwd_ret.operands) + outs)
    out = Function(fn.name + ".rev", body, [v.type for v in fwd_ret.operands + outs], loc=fn.loc)
    out.plan = describe_plan(rv)
    out.alike = {d: rv.vmap[a] for a, d in shadows.items()}
    if rv.strategy is not None:
        rv.strategy.finish()
    out.run_args = run_args(fn, rv.strategy, plan)
    return out


def _comm_at(rv: ReverseEngine, comm: Value) -> Value:
    """The communicator comm of the primal, where the adjoint's return is (`mpi.world`
    anew: the primal's may be inside a region)."""
    owner = comm.owner
    if isinstance(owner, Op) and owner.name == "mpi.world":
        return rv.b.op1("mpi.world", [], comm.type, name_hint="world")
    return rv.vmap[comm]


def _reduce_params(rv: ReverseEngine, comm: Value, shadows: dict[Value, Value],
                   scalars: list[Value], outs: list[Value], params: tuple[int, ...],
                   width: int) -> list[Value]:
    """The scalar adjoints after the replicated parameters' adjoints (those of `params`
    that have one) are summed over the ranks: ad/params.py."""
    declared = [rv.fn.args[k] for k in params]
    arrays = [shadows[a] for a in declared if a in shadows]
    summed = [a for a in scalars if a in declared]
    if not arrays and not summed:
        return outs
    if width != 1:
        raise DifferentiationError("params= is for gradients (width 1): a batched derivative "
                                   "sums its directions' shares itself")
    got = dict(zip(summed, reduce_parameters(rv.b, _comm_at(rv, comm), arrays,
                                             [outs[scalars.index(a)] for a in summed]),
                   strict=True))
    return [got.get(a, g) for a, g in zip(scalars, outs, strict=True)]


def check_seed_shape(b: Builder, result: Value, seed: Value, k: int) -> None:
    """A returned array's cotangent must have the array's shape (adding it in would read
    past its end): a KernelAssertionError at the kernel's line otherwise."""
    same: Value | None = None
    for axis in range(array_type(result).ndim):
        dims = [b.op1("mem.shape", [a], i64, {"axis": axis}) for a in (seed, result)]
        eq = b.op1("arith.cmp", dims, i1, {"pred": "eq"})
        same = eq if same is None else b.op1("arith.and", [same, eq], i1)
    if same is not None:
        b.op("rt.assert", [same], [], {"what": f"the cotangent (seed) of float result {k}, "
                                               f"an array, must have the array's shape"})


def seed_type(v: Value) -> Type:
    """The type of a float result's seed (at width 1): a scalar's own, a returned array's
    cotangent an array of its dtype and rank in any layout (the caller's)."""
    t = v.type
    return ArrayType(t.dtype, t.ndim) if isinstance(t, ArrayType) else t


def _tape_can_hold(op: Op) -> bool:
    """Whether the planner may save a value op computes instead of recomputing it. Inside a
    parallel loop each iteration's tape block is sized by the most trips of the loops in it
    (checkpoint/tape.py), counted before the loop runs, which some ranges do not allow; so a
    value in a loop nested in a parallel loop, or in a loop inside a fork-join task (whose
    tape must be sized before the task starts), is recomputed whatever it costs, and saved
    only when it cannot be recomputed."""
    loops, in_task = [], False
    block = op.parent
    while block is not None and block.parent is not None:
        owner = block.parent
        if owner.name in ("scf.for", "scf.while", "par.parallel_for"):
            loops.append(owner)
        in_task = in_task or owner.name == "par.join"
        block = owner.parent
    parallel = [lp for lp in loops if lp.name == "par.parallel_for"]
    if in_task and loops:
        return False
    return not parallel or parallel == loops[:1]


def _short(loc: tuple[Any, ...] | None) -> str:
    return "?" if loc is None else f"{os.path.basename(loc[0])}:{loc[1]}"


def _describe_value(v: Value) -> str:
    if v.name:
        return f"{v.name}:{v.type}"
    owner = v.owner
    what = owner.name if isinstance(owner, Op) else "argument"
    return f"{what}@{_short(getattr(owner, 'loc', None))}:{v.type}"


def describe_plan(rv: ReverseEngine) -> list[str]:
    """Readable lines: per region of the primal, what its reverse restores from the tape
    and how much it recomputes; checkpointed time loops and their snapshots."""
    lines = [] if rv.strategy is None else [rv.strategy.describe()]
    for r, plan in rv.plans:
        if not plan.stored and not plan.recomputed:
            continue
        owner = None if r.old is None else r.old.parent
        place = "function body" if owner is None else f"{owner.name} {_short(owner.loc)}"
        stored = ", ".join(_describe_value(v) for v in plan.stored) or "nothing"
        for w in dict.fromkeys(w for w, _ in r.windows.values()):
            loads = sum(1 for u, _ in r.windows.values() if u is w)
            lines.append(f"{place}: save a window of {w.array.name or 'array'} (offsets "
                         f"{w.low}..{w.high}) before the loop, reload {loads} values per "
                         f"iteration from it")
        again = "".join(f", {_describe_value(v)} by calling {v.owner.attrs['callee']} again"
                        for v in plan.recomputed if isinstance(v.owner, Op)
                        and v.owner.name == "func.call")   # a custom rule's fwd
        lines.append(f"{place}: save {stored} ({plan.store_bytes} B per execution); "
                     f"recompute {len(plan.recomputed)} values ({plan.recompute_flops} "
                     f"flops per execution){again}")
    return lines
