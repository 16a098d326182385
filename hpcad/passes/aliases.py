"""Which SSA values name the same variable: loop-carried values (init, block arg, yield,
result) and branch-merged values are unioned. For arrays this gives the alias classes that
memory reasoning needs: distinct arguments and allocations never overlap (the API checks
arguments), but an array carried or swapped by a loop may be any of its sources."""
from __future__ import annotations

from ..ir.core import Function, Op, Value, walk
from ..ir.dialects import VIEWS


class UnionFind:
    def __init__(self):
        self.parent: dict = {}

    def find(self, x):
        p = self.parent.setdefault(x, x)
        if p is not x:
            p = self.parent[x] = self.find(p)
        return p

    def union(self, *xs):
        roots = [self.find(x) for x in xs]
        for r in roots[1:]:
            self.parent[r] = roots[0]


def _carried(op: Op):
    """Tuples of values that are one variable carried or merged by op (a loop, a branch or a
    join)."""
    if op.name in ("scf.for", "par.parallel_for"):
        body = op.regions[0]
        for k, res in enumerate(op.results):
            yield (op.operands[3 + k], body.args[1 + k], body.ops[-1].operands[k], res)
    elif op.name == "scf.while":
        before, after = op.regions
        cond = before.ops[-1]
        for k, res in enumerate(op.results):
            yield (op.operands[k], before.args[k], cond.operands[1 + k], after.args[k],
                   after.ops[-1].operands[k], res)
    elif op.name == "scf.if":
        for k, res in enumerate(op.results):
            yield (res,) + tuple(r.ops[-1].operands[k] for r in op.regions)
    elif op.name == "par.join":
        yields = [v for r in op.regions for v in r.ops[-1].operands]
        for res, y in zip(op.results, yields):
            yield (res, y)


def is_const(v: Value) -> bool:
    return isinstance(v.owner, Op) and v.owner.name == "arith.const"


def _slot_groups(slots: dict[int, list[Value]]) -> list[list[Value]]:
    """Per tape slot of a derivative function, the values saved and the values restored:
    one variable stored across the sweeps (differentiating a derivative follows it)."""
    return [group for group in slots.values() if not any(is_const(v) for v in group)]


def variable_classes(fn: Function) -> UnionFind:
    """Views with their bases, then loop-carried and branch-merged values (_carried), then
    tape slots (_slot_groups), unioned in that order (which picks each class's
    representative), gathered in one walk of fn."""
    views: list[Op] = []
    carried: list[Op] = []
    slots: dict[int, list[Value]] = {}
    for op in walk(fn.body):
        if op.name in VIEWS:
            views.append(op)
        elif op.regions:
            carried.append(op)
        elif op.name == "tape.push":
            slots.setdefault(op.attrs["slot"], []).append(op.operands[0])
        elif op.name == "tape.pop":
            slots.setdefault(op.attrs["slot"], []).append(op.results[0])
    uf = UnionFind()
    for op in views:      # a view: its base
        uf.union(op.operands[0], op.results[0])
    for op in carried:
        for group in _carried(op):
            # constants are shared by CSE between unrelated variables: never merge through
            # them
            uf.union(*[v for v in group if not is_const(v)])
    for group in _slot_groups(slots):
        uf.union(*group)
    return uf
