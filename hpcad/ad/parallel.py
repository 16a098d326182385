"""Reverse mode of the `par` dialect, mixed into `ad/reverse.py`: the adjoint of a parallel
loop is a parallel loop over the same range (sum reductions broadcast their adjoint, outer
adjoints become sum reductions, racing accumulations are made race-free afterwards by
passes/race.py), and the adjoint of a fork-join is a fork-join of the tasks' adjoints."""
from __future__ import annotations

from ..checkpoint import windows
from ..errors import DifferentiationError, where
from ..ir.core import Block, Builder, Op, Value
from ..ir.dialects import join_arities, reduction_kinds
from ..ir.types import i64
from .common import derivative_name
from .regions import Region


class ParallelReverse:
    def reverse_parallel_for(self, op: Op, ctx) -> None:
        """The adjoint of a parallel loop is a parallel loop over the same range. A sum
        reduction's adjoint is broadcast to every iteration; adjoints of values from outside
        the loop are summed over iterations (a sum reduction); racy accumulations into
        shadows are made atomic afterwards (passes/race.py)."""
        body, kinds = op.regions[0], reduction_kinds(op)
        term, inits = body.ops[-1], op.operands[3:]
        work = self.region_adjoints(op)
        if work is None:
            return
        slots, free = work
        for k in slots:
            if kinds[k] != "add":
                raise DifferentiationError(
                    f"{where(op.loc)}: cannot differentiate a '{kinds[k]}' reduction of a "
                    f"parallel loop; accumulate a sum (e.g. of logarithms) instead")
        b = self.b
        bounds = [self.primal(v, ctx) for v in op.operands[:3]]
        seeds = {k: self.adj.get(op.results[k]) for k in slots}
        outer = self.adj
        rbody = Block([Value(i64, body.args[0].name)]
                      + [Value(self.dtype(f), derivative_name(f, "adj_")) for f in free])
        inner = Region(body, self.fwd_block[body], rbody, ctx)
        inner.avail[body.args[0]] = rbody.args[0]
        self.adj = {}
        b.block = rbody
        for k, g in seeds.items():
            if g is not None:
                self.add_adjoint(term.operands[k], g)
        self.reverse_block(inner)
        b.block = rbody
        outs = []
        for f, partial in zip(free, rbody.args[1:]):
            local = self.adj.get(f)
            outs.append(partial if local is None else b.op1("arith.add", [partial, local],
                                                            partial.type))
        b.op("scf.yield", outs)
        self.resolve(inner)
        self.adj = outer
        b.block = ctx.rev
        windows.close_windows(self, inner, ctx)
        self.tape.close_segments(inner, b, bounds)
        totals = [self.current(f) for f in free]
        loop = b.op("par.parallel_for", bounds + totals, [t.type for t in totals],
                    attrs={"reductions": ",".join(["add"] * len(free)), "reverse": True},
                    regions=[rbody])
        for k in slots:
            self.adj.pop(op.results[k], None)
            if seeds[k] is not None:
                self.add_adjoint(inits[k], seeds[k])
        for f, r in zip(free, loop.results):
            self.adj[f] = r

    def reverse_join(self, op: Op, ctx) -> None:
        """Fork-join reversed: the tasks' adjoints run as tasks again (spawned where the
        primal synced, synced where it spawned); each returns its contributions to the
        adjoints of values from outside, summed after the join."""
        work = self.region_adjoints(op)
        if work is None:
            return
        slots, free = work
        outer = self.adj
        seeds = {k: outer.get(op.results[k]) for k in slots}
        blocks, start = [], 0
        for region, n in zip(op.regions, join_arities(op)):
            rb = Block()
            inner = Region(region, self.fwd_block[region], rb, ctx)
            self.adj = {}
            self.b.block = rb
            for k in range(start, start + n):
                if seeds.get(k) is not None:
                    self.add_adjoint(region.ops[-1].operands[k - start], seeds[k])
            self.reverse_block(inner)
            self.b.block = rb
            Builder(rb).op("scf.yield", [self.current_in(rb, f) for f in free])
            self.resolve(inner)
            blocks.append(rb)
            start += n
        self.adj = outer
        self.b.block = ctx.rev
        new = self.b.op("par.join", [], [self.dtype(f) for f in free] * len(blocks),
                        {"arity": ",".join([str(len(free))] * len(blocks))}, regions=blocks)
        for j, f in enumerate(free):
            total = self.adj.get(f)
            for t in range(len(blocks)):
                part = new.results[t * len(free) + j]
                total = part if total is None else self.b.op1("arith.add", [total, part],
                                                              part.type)
            self.adj[f] = total
        for k in slots:
            self.adj.pop(op.results[k], None)
