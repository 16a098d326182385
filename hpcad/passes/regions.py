"""How many parallel regions (thread-pool launches) one step of a time loop runs, in the
primal sweep and in the reverse sweep: the figure issue 23 compares ("the reverse of a
parallel loop runs as few parallel regions as the primal"). The time loop is the outermost
sequential loop holding parallel loops directly; without one, the function's top-level
parallel loops count. A loop in the "private copies" form counts two: its chunks and the
loop adding the copies into the array (backend/numba/parallel.py)."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.core import Function, Op, walk
from ..ir.dialects import in_parallel


@dataclass(frozen=True)
class RegionCount:
    """Parallel regions per step of the primal (forward) sweep and of the reverse sweep."""
    primal: int
    reverse: int


def _launches(loop: Op) -> int:
    return 2 if loop.attrs.get("race_free") == "private copies" else 1


def _time_loop(fn: Function, reverse: bool) -> Op | None:
    return next((op for op in walk(fn.body) if op.name == "scf.for"
                 and bool(op.attrs.get("reverse")) == reverse and not in_parallel(op)
                 and any(o.dialect == "par" for o in op.regions[0].ops)), None)


def _top_level(fn: Function, reverse: bool) -> list[Op]:
    """The function's top-level ops of one sweep: the reverse sweep starts at the first op
    marked `reverse`."""
    ops = fn.body.ops
    start = next((k for k, o in enumerate(ops) if o.attrs.get("reverse")), len(ops))
    return ops[start:] if reverse else ops[:start]


def _per_step(fn: Function, reverse: bool) -> int:
    loop = _time_loop(fn, reverse)
    ops = loop.regions[0].ops if loop else _top_level(fn, reverse)
    return sum(_launches(o) for o in ops if o.dialect == "par")


def regions_per_step(fn: Function) -> RegionCount:
    """Parallel regions per time step of `fn`'s primal sweep and of its reverse sweep (0 for
    a sweep `fn` does not have)."""
    return RegionCount(_per_step(fn, False), _per_step(fn, True))
