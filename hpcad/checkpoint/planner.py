"""The planner: for one reverse-mode call, the checkpointing plan (checkpoint/plan.py). The
kernel's own plan where `hpcad.checkpoint` pinned one (a snapshot count, "store_all",
"recompute_all"); else the fastest plan that fits the memory budget
(`hpcad.checkpoint(f, budget=...)` or HPCAD_MEMORY_BUDGET; none: any), from this call's
tape and time-loop sizes (checkpoint/budget.py), agreed over the ranks of a kernel that
calls MPI. Also the run-time arguments a checkpointed derivative takes: its snapshot count
and, for revolve, the action table for the call's step count."""
from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from ..errors import HpcadError
from ..ir.core import Function
from ..runtime.snapshots import free_bytes, share
from .budget import (
    Choice,
    agree,
    cache_bytes,
    choose,
    env_budget,
    tape_bytes,
    time_loop,
    unsized_loop,
)
from .plan import STORE_ALL, Kind, Plan, RunArgs
from .revolve import NotRestartable, longest_recording, schedule_actions


class Derivatives(Protocol):
    """What the planner needs of a kernel's specialization (kernel.Specialization)."""
    primal: Function

    def derivative(self, mode: str, activity: tuple[str, ...], ret_active: bool,
                   plan: Plan = ..., width: int = ...) -> Function: ...


class Policy(Protocol):
    """What the planner reads and records on a kernel (kernel.Kernel)."""
    pinned: Plan | None            # hpcad.checkpoint with a snapshot count or "store_all"
    budget: int | str | None       # bytes, "auto" (HPCAD_MEMORY_BUDGET) or None
    intermediates: str
    disk: bool
    policies: dict[tuple[Any, ...], tuple[Any, ...]]   # this rank's sizes per call shape
    last_policy: Choice | None


def plan_call(k: Policy, spec: Derivatives, activity: tuple[str, ...], ret_active: bool,
              args: tuple[Any, ...], flat: list[Any], comm: Any = None) -> Plan:
    """The plan for this call. flat: the derivative's leading arguments (the arrays, their
    shadows, the seeds), which size its tape. comm: the communicator of a kernel that calls
    MPI (every rank then plans alike: the largest rank decides), else None."""
    budget = env_budget() if k.budget == "auto" else k.budget
    if budget is None and (k.budget != "auto" or k.pinned is not None):
        k.last_policy = None     # a pinned plan
        return k.pinned or replace(STORE_ALL, intermediates=k.intermediates)
    assert not isinstance(budget, str)
    key = (id(spec), activity, ret_active, budget is None,
           tuple(a.shape if isinstance(a, np.ndarray) else a for a in args
                 if isinstance(a, (np.ndarray, int, np.integer))))
    sizes = k.policies.get(key)
    if sizes is None:
        sizes = k.policies[key] = _sizes(k, spec, activity, ret_active, args, flat, budget)
    if comm is not None:   # (the caller has set up hpcad/mpi_job.watch)
        sizes = agree(comm, *sizes)
    elif sizes[-1]:     # this process's share of the snapshot file system (none: none)
        sizes = (*sizes[:-1], share(sizes[-1]))
    unsized = unsized_loop(spec.derivative("reverse", activity, ret_active,
                                           Plan(intermediates="recompute"))) \
        if budget is not None and sizes[0][1] is None else ""
    c = k.last_policy = choose(budget, *sizes, unsized)
    return _with_intermediates(c.plan, "recompute" if c.fewest_bytes else k.intermediates)


@functools.lru_cache(maxsize=256)
def _with_intermediates(plan: Plan, intermediates: str) -> Plan:
    """plan with `intermediates` (made once per pair: every reverse call plans)."""
    return replace(plan, intermediates=intermediates)


def _sizes(k: Policy, spec: Derivatives, activity: tuple[str, ...], ret_active: bool,
           args: tuple[Any, ...], flat: list[Any], budget: int | None) -> tuple[Any, ...]:
    """This rank's (tapes, time loop, cache, restart, disk) for these arguments, as
    budget.choose takes them."""
    def tape_of(intermediates: str) -> int | None:
        return tape_bytes(spec.derivative("reverse", activity, ret_active,
                                          Plan(intermediates=intermediates)), flat)
    own = tape_of(k.intermediates)
    # without a budget only the kernel's own plan matters (cache-sized segments or not)
    tapes = (own, own if budget is None else tape_of("recompute"))
    restart = budget is not None and (own is None or own > budget) and \
        restartable(spec, activity, ret_active)
    disk = free_bytes() if budget is not None and k.disk else 0
    return tapes, time_loop(spec.primal, args), cache_bytes(), restart, disk


def restartable(spec: Derivatives, activity: tuple[str, ...], ret_active: bool) -> bool:
    """Whether each step of the kernel's time loop can be reversed from its restored state,
    with no tape (checkpoint/revolve.py: NotRestartable)."""
    try:
        fn = spec.derivative("reverse", activity, ret_active,
                             Plan(Kind.REVOLVE, restart=True, intermediates="recompute"))
    except NotRestartable:
        return False
    return fn.run_args is not None


def run_time_args(run: RunArgs, snapshots: int | None,
                  args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The arguments a checkpointed derivative takes after its seeds, for this call: the
    snapshot count, then for revolve the action table for the call's step count, the
    number of its forward-sweep actions and its longest taping run."""
    if snapshots is None or snapshots < 1:
        raise HpcadError(f"internal: a checkpointed derivative ({run.plan.describe()}) "
                         f"called with {snapshots} snapshots; please report this kernel")
    if run.plan.kind is not Kind.REVOLVE:
        return (snapshots,)
    lb, ub, step = (int(args[v]) if kind == "arg" else int(v) for kind, v in run.bounds)
    p = run.plan
    actions, split = schedule_actions(len(range(lb, ub, step)), snapshots, lb, p.lean,
                                      p.restart, p.from_slot)
    return snapshots, actions, split, longest_recording(actions)
