"""Parallel ops in generated code: `par.parallel_for` becomes a numba `prange` loop whose
reductions are written the way numba recognizes them (`s += e`, `s = max(s, e)`);
`par.join` becomes a `prange` over its tasks, each task's results passing through a
one-element array (variables assigned inside a prange body are private to it). Sums of
vectors (batched derivatives) go through per-thread rows (vector.py)."""
from __future__ import annotations

from ...ir.core import Op
from ...ir.dialects import join_arities, reduction_kinds
from .common import NP_TYPES, without_terminator
from .vector import is_vector



class ParallelWriter:
    """Mixed into the source writer."""

    def op_par_parallel_for(self, op, depth):
        body = op.regions[0]
        carried = self.carried_names(op.results)
        for arg, var in zip(body.args[1:], carried):
            self.names[arg] = var
        parts = []
        for k, kind in enumerate(reduction_kinds(op)):
            update = body.ops[-1].operands[k].owner
            if is_vector(op.results[k]):
                through = body.ops[-1].operands[k] is body.args[1 + k]
                part = self.vector_reduction(op, None if through else update, carried[k], depth)
                if part is not None:
                    parts.append((carried[k], part))
            elif isinstance(update, Op) and update.parent is body:
                self.reduction_updates[update] = (carried[k], kind)
        self.assign(depth, carried, [self.ref(v) for v in op.operands[3:]])
        lb, ub, step = (self.ref(v) for v in op.operands[:3])
        iv = self.name(body.args[0])
        if step == "1":
            self.emit(depth, f"for {iv} in prange({lb}, {ub}):")
        else:   # numba's prange takes unit steps only: run over iteration numbers
            number = self.fresh(f"{iv}_number")
            self.emit(depth, f"for {number} in prange(_trips({lb}, {ub}, {step})):")
            self.emit(depth + 1, f"{iv} = {lb} + {number} * {step}")
        home = self.enter_home(depth + 1)
        self.region_body(body, depth + 1, carried)
        self.leave_home(home)
        for var, part in parts:
            self.reduce_rows(var, part, depth)

    def reduction_update(self, op: Op, depth: int) -> None:
        """s = s OP e, in the form numba's parfor pass recognizes as a reduction."""
        var, kind = self.reduction_updates[op]
        self.names[op.results[0]] = var
        acc = op.operands[0] if self.names.get(op.operands[0]) == var else op.operands[1]
        other = self.ref(op.operands[1] if acc is op.operands[0] else op.operands[0])
        if op.name == "arith.sub":
            self.emit(depth, f"{var} -= {other}")
        elif kind == "add":
            self.emit(depth, f"{var} += {other}")
        elif kind == "mul":
            self.emit(depth, f"{var} *= {other}")
        else:
            self.emit(depth, f"{var} = {kind}({var}, {other})")

    def op_par_join(self, op, depth):
        buffers = []
        for r in op.results:
            if is_vector(r):   # tasks write their vectors' lanes straight into the results
                buffers.append(self.stored(r))
                continue
            buf = self.fresh(f"{r.name or 'task'}_out")
            self.emit(depth, f"{buf} = np.empty(1, {NP_TYPES[r.type.name]})")
            buffers.append(buf)
        task = self.fresh("task")
        self.emit(depth, f"for {task} in prange({len(op.regions)}):")
        home = self.enter_home(depth + 1)
        start = 0
        for k, (region, n) in enumerate(zip(op.regions, join_arities(op))):
            self.emit(depth + 1, f"{'if' if k == 0 else 'elif'} {task} == {k}:")
            mark = len(self.lines)
            self.block(without_terminator(region), depth + 2)
            for buf, v in zip(buffers[start:start + n], region.ops[-1].operands):
                if buf in self.vector_names:
                    self.assign_lanes(depth + 2, [(buf, self.ref(v))])
                else:
                    self.emit(depth + 2, f"{buf}[0] = {self.ref(v)}")
            if len(self.lines) == mark:
                self.emit(depth + 2, "pass")
            start += n
        self.leave_home(home)
        for r, buf in zip(op.results, buffers):
            if not is_vector(r):
                self.emit(depth, f"{self.name(r)} = {buf}[0]")
