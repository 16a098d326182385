"""Loop-invariant code motion: pure ops of a loop body (or of a fork-join task) whose operands
are all defined outside it move in front of it (a task's sizes are then known before the
tasks start: the numba backend sizes their tapes there). Ops that can trap (integer
division) stay, since the loop may
run zero times; float ops cannot trap under the IEEE semantics hpcad uses. A load of an
array the loop does not write, at invariant indices, moves out too, guarded by "the loop runs
at least once" so that it never reads what the original program would not."""
from __future__ import annotations

from ..ir.core import Block, Function, Op, Value
from ..ir.dialects import is_pure
from ..ir.effects import writes_within
from ..ir.types import i1
from .aliases import variable_classes

_TRAPPING = {"arith.floordiv", "arith.mod", "arith.div", "arith.pow"}


def _may_trap(op: Op) -> bool:
    return op.name in _TRAPPING and not op.results[0].type.is_float


class _Licm:
    def __init__(self, fn: Function):
        self.key = variable_classes(fn).find

    def block(self, block: Block) -> bool:
        changed = False
        out = []
        for op in block.ops:
            for r in op.regions:
                changed |= self.block(r)
            if op.name in ("scf.for", "scf.while", "par.parallel_for", "par.join"):
                hoisted = self.hoist_from(op)
                for h in hoisted:
                    h.parent = block
                out.extend(hoisted)
                changed |= bool(hoisted)
            out.append(op)
        block.ops = out
        return changed

    def hoist_from(self, loop: Op) -> list[Op]:
        inside: set[Value] = set()
        for region in loop.regions:
            _defined_in(region, inside)
        written = {self.key(a) for a in writes_within(loop)}   # (MPI receives and calls too)
        hoisted = []
        for region in loop.regions:
            kept = []
            for op in region.ops:
                invariant = not op.regions and not any(v in inside for v in op.operands)
                if invariant and is_pure(op) and not _may_trap(op):
                    hoisted.append(op)
                    inside.difference_update(op.results)
                elif invariant and op.name == "mem.load" and region is loop.regions[0] \
                        and self.key(op.operands[0]) not in written:
                    guarded = _guarded_load(loop, op)
                    if guarded is None:
                        kept.append(op)
                        continue
                    hoisted.extend(guarded)
                    inside.difference_update(op.results)
                else:
                    if op.name == "scf.if":
                        for branch in op.regions:
                            _speculate(branch, inside, hoisted)
                    kept.append(op)
            region.ops = kept
        return hoisted


def _speculate(block: Block, inside: set, hoisted: list[Op]) -> None:
    """Moves the pure, non-trapping integer and boolean ops of a branch (and of the branches
    nested in it) whose operands are defined outside the loop to `hoisted`: running them
    whether or not the branch is taken costs a few integer ops once, and lets what they
    compute (tape sizes, say) be known before the loop. Float ops stay in their branch: one
    run where the program would not run it (`a ** -g` under `if a != 0.0`) may be infinite
    or NaN, and a reverse sweep multiplies its partials by its adjoint, zero there, which
    gives NaN (0 * inf)."""
    kept = []
    for op in block.ops:
        if not op.regions and is_pure(op) and not _may_trap(op) and \
                not any(r.type.is_float for r in op.results) and \
                not any(v in inside for v in op.operands):
            op.parent = None
            hoisted.append(op)
            inside.difference_update(op.results)
            continue
        if op.name == "scf.if":
            for branch in op.regions:
                _speculate(branch, inside, hoisted)
        kept.append(op)
    block.ops = kept


def _guarded_load(loop: Op, load: Op) -> list[Op] | None:
    """`if <loop runs>: v = load else: v = 0`, for a for loop whose step has a known sign."""
    if loop.name not in ("scf.for", "par.parallel_for"):
        return None
    lb, ub, step = loop.operands[:3]
    step_op = step.owner
    if not (isinstance(step_op, Op) and step_op.name == "arith.const"):
        return None
    runs = Op("arith.cmp", [lb, ub], [i1], {"pred": "lt" if step_op.attrs["value"] > 0 else "gt"})
    taken, skipped = Block(), Block()
    load.parent = taken
    taken.ops.append(load)
    y = Op("scf.yield", [load.results[0]])
    y.parent = taken
    taken.ops.append(y)
    t = load.results[0].type
    zero = Op("arith.const", [], [t], {"value": 0.0 if t.is_float else (False if t.is_bool else 0)})
    y2 = Op("scf.yield", [zero.results[0]])
    for o in (zero, y2):
        o.parent = skipped
        skipped.ops.append(o)
    guard = Op("scf.if", [runs.results[0]], [t], regions=[taken, skipped], loc=load.loc)
    value = guard.results[0]
    value.name = load.results[0].name
    # the loop body keeps using the load's result: make the guard define that very value
    guard.results = [load.results[0]]
    load.results[0].owner = guard
    fresh = Value(t, value.name, load)
    load.results = [fresh]
    y.operands = [fresh]
    return [runs, guard]


def _defined_in(block: Block, acc: set) -> None:
    acc.update(block.args)
    for op in block.ops:
        acc.update(op.results)
        for r in op.regions:
            _defined_in(r, acc)


def licm(fn: Function) -> bool:
    return _Licm(fn).block(fn.body)
