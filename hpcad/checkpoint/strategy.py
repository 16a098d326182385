"""The time-loop strategy a plan names (checkpoint/plan.py): the object the reverse engine
(ad/reverse.py) hands its time loop to, through one hook: `augment(engine, op, block)` where
the loop's forward copy goes, `reverse(engine, op, ctx)` where its reverse goes. Segments
(segments.py) or revolve (revolve.py); none for store-all. A strategy takes its snapshot
count (and revolve its action table) as arguments of the derivative, `args`, after the
seeds; `run_args` says how the caller fills them in (planner.run_time_args)."""
from __future__ import annotations

import warnings

from ..errors import HpcadWarning, where
from ..ir.core import Function, Value
from ..ir.types import ArrayType, i64
from .plan import Kind, Plan, RunArgs
from .revolve import Revolve, static_bounds
from .segments import Segments, choose_time_loop, no_time_loop

Strategy = Segments | Revolve


def time_loop_strategy(fn: Function, plan: Plan, act: object) -> Strategy | None:
    """The strategy for fn's time loop under plan; None for store-all, and (with a
    warning) where fn has no time loop hpcad can checkpoint."""
    if not plan.checkpoints:
        return None
    loop = choose_time_loop(fn)
    if loop is None:
        warnings.warn(f"{where(fn.loc)}: checkpointing ({plan.kind.value}) was asked for, but "
                      f"'{fn.name}' has no time loop hpcad can checkpoint ({no_time_loop(fn)}); "
                      f"the whole tape is stored", HpcadWarning, stacklevel=3)
        return None
    if plan.kind is Kind.REVOLVE:
        static_bounds(fn, loop)   # (an error where the range is not the arguments')
        return Revolve(fn, loop, plan, act, [
            Value(i64, "snapshots"), Value(ArrayType(i64, 2, "C"), "actions"),
            Value(i64, "forward_actions"), Value(i64, "longest_recording")])
    return Segments(fn, loop, Value(i64, "snapshots"))


def strategy_args(s: Strategy | None) -> list[Value]:
    """The derivative's arguments the strategy reads at run time (after the seeds)."""
    if s is None:
        return []
    if isinstance(s, Revolve):
        return [s.snapshots, s.actions, s.forward_actions, s.longest]
    return [s.snapshots]


def run_args(fn: Function, s: Strategy | None, plan: Plan) -> RunArgs | None:
    """What the caller passes for strategy_args (planner.run_time_args); None for none."""
    if s is None:
        return None
    bounds = static_bounds(fn, s.loop) if isinstance(s, Revolve) else ()
    return RunArgs(plan.shape, bounds)
