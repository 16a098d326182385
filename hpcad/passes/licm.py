"""Loop-invariant code motion: pure ops of a loop body (or of a fork-join task) whose operands
are all defined outside it move in front of it (a task's sizes are then known before the
tasks start: the numba backend sizes their tapes there). Ops that can trap (integer
division) stay, since the loop may
run zero times; float ops cannot trap under the IEEE semantics hpcad uses. A load of an
array the loop does not write, at invariant indices, moves out too, guarded by "the loop runs
at least once" so that it never reads what the original program would not.

An op moved where the program might not run it (out of a branch, or out of a loop that may
run zero times) is run at operands the program never gives it, and a reverse sweep then
multiplies its partials there by its adjoint, zero: that is NaN where a partial is infinite
(`a ** -g` at a = 0 under `if a != 0.0`, `1 / x` at x = 0 ahead of a loop over nothing).
So a move out of a branch takes only ops whose partials are finite wherever their operands
are (`_speculable`: integer and boolean ops, float +, -, *, negation, min, max, select,
casts, abs, sin, cos, ...). The others move out of a for loop that may run zero times
computed at `select(loop runs, x, 0.5)` for each float operand x (the same value when it
runs; a point where every partial is finite when it does not), and stay in other loops that
may run zero times."""
from __future__ import annotations

from ..ir.core import Block, Function, Op, Value
from ..ir.dialects import int_const, is_pure
from ..ir.effects import writes_within
from ..ir.types import ScalarType, i1
from .aliases import variable_classes

_TRAPPING = {"arith.floordiv", "arith.mod", "arith.div", "arith.pow"}


# float ops whose partials are finite wherever their operands are
_SMOOTH = {"arith.add", "arith.sub", "arith.mul", "arith.neg", "arith.min", "arith.max",
           "arith.select", "arith.cast", "arith.const", "math.abs", "math.sin", "math.cos",
           "math.tanh", "math.atan", "math.erf", "math.erfc", "math.floor", "math.ceil",
           "math.rint"}


def may_trap(op: Op) -> bool:
    """Whether op can raise where its operands are out of its domain (integer division,
    an integer power): such an op must not run where the program would not run it."""
    return op.name in _TRAPPING and not op.results[0].type.is_float


def _speculable(op: Op) -> bool:
    """Whether op may run where the program would not run it: it cannot trap, and its
    partials are finite wherever its operands are, or no derivative goes through it (it
    has no float result, or its operands are computed from integers and constants alone:
    `math.log2(n)` of a length)."""
    return not may_trap(op) and (op.name in _SMOOTH
                                  or not any(r.type.is_float for r in op.results)
                                  or all(_of_integers(v) for v in op.operands))


def _of_integers(v: Value, depth: int = 8) -> bool:
    """Whether v is an integer or boolean, or a float that pure ops compute from integers
    and constants alone (followed `depth` ops up)."""
    if not v.type.is_float:
        return True
    op = v.owner
    if not isinstance(op, Op) or op.regions or not is_pure(op) or depth == 0:
        return False
    return op.name == "arith.const" or all(_of_integers(u, depth - 1) for u in op.operands)


def _may_skip(loop: Op, region: Block) -> bool:
    """Whether `region` of `loop` may run zero times: a for loop's body unless its bounds
    are constants with at least one trip, a while loop's body (its condition always runs),
    never a fork-join task."""
    if loop.name == "par.join" or (loop.name == "scf.while" and region is loop.regions[0]):
        return False
    if loop.name not in ("scf.for", "par.parallel_for"):
        return True
    lb, ub, step = (int_const(v) for v in loop.operands[:3])
    if lb is None or ub is None or step is None or step == 0:
        return True
    return not (lb < ub if step > 0 else lb > ub)


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
        hoisted: list[Op] = []
        runs: list[Op] = []   # the test "the loop runs", made once where needed
        for region in loop.regions:
            kept = []
            skip = _may_skip(loop, region)
            for op in region.ops:
                invariant = not op.regions and not any(v in inside for v in op.operands)
                if invariant and is_pure(op) and not may_trap(op) \
                        and (not skip or _speculable(op)):
                    hoisted.append(op)
                    inside.difference_update(op.results)
                elif invariant and is_pure(op) and not may_trap(op) \
                        and _at_safe_operands(loop, op, runs, hoisted):
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
    """Moves the pure, speculable ops of a branch (and of the branches nested in it) whose
    operands are defined outside the loop to `hoisted`: running them whether or not the
    branch is taken costs a few ops once, and lets what they compute (tape sizes, say) be
    known before the loop."""
    kept = []
    for op in block.ops:
        if not op.regions and is_pure(op) and _speculable(op) and \
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


def _runs(loop: Op) -> Op | None:
    """The test `loop runs at least once`, for a for loop whose step has a known sign."""
    if loop.name not in ("scf.for", "par.parallel_for"):
        return None
    lb, ub, step = loop.operands[:3]
    step_op = step.owner
    if not (isinstance(step_op, Op) and step_op.name == "arith.const"):
        return None
    return Op("arith.cmp", [lb, ub], [i1], {"pred": "lt" if step_op.attrs["value"] > 0 else "gt"})


def _at_safe_operands(loop: Op, op: Op, runs: list[Op], hoisted: list[Op]) -> bool:
    """Moves `op` to `hoisted` with each float operand x replaced by
    `select(loop runs, x, 0.5)` (2.0 for acosh), where the loop's trip test is known;
    returns whether it did."""
    if not runs:
        test = _runs(loop)
        if test is None:
            return False
        runs.append(test)
        hoisted.append(test)
    safe = 2.0 if op.name == "math.acosh" else 0.5
    operands = []
    for v in op.operands:
        if isinstance(v.type, ScalarType) and v.type.is_float:
            c = Op("arith.const", [], [v.type], {"value": safe})
            sel = Op("arith.select", [runs[0].results[0], v, c.results[0]], [v.type])
            hoisted.extend([c, sel])
            v = sel.results[0]
        operands.append(v)
    op.operands = operands
    hoisted.append(op)
    return True


def _guarded_load(loop: Op, load: Op) -> list[Op] | None:
    """`if <loop runs>: v = load else: v = 0`, for a for loop whose step has a known sign."""
    test = _runs(loop)
    if test is None:
        return None
    runs = test
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
