"""The planner: for one reverse-mode call, the checkpointing plan (checkpoint/plan.py). The
kernel's own plan where `hpcad.checkpoint` pinned one (a snapshot count, "store_all",
"recompute_all"); else the fastest plan that fits the memory budget
(`hpcad.checkpoint(f, budget=...)` or HPCAD_MEMORY_BUDGET; none: any), from this call's
tape and time-loop sizes (checkpoint/budget.py), agreed over the ranks of a kernel that
calls MPI. Also the run-time arguments a checkpointed derivative takes: its snapshot count
and, for revolve, the action table for the call's step count; and a call's key, everything
of the call that the plan and those arguments are computed from (key_function: a caller
may keep them per key)."""
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from ..errors import HpcadError
from ..ir.core import Function, walk
from ..ir.types import ArrayType, ScalarType
from ..runtime.snapshots import free_bytes, share, snapshot_dir
from .budget import (
    Choice,
    NoTimeLoop,
    agree,
    cache_bytes,
    choose,
    env_budget,
    tape_bytes,
    time_loop,
    time_loop_location,
    unsized_loop,
)
from .plan import STORE_ALL, Kind, Plan, RunArgs
from .revolve import NotRestartable, longest_recording, schedule_actions
from .segments import choose_time_loop, no_time_loop


class Derivatives(Protocol):
    """What the planner needs of a kernel's specialization (kernel.Specialization)."""
    primal: Function
    call_key: Callable[[tuple[Any, ...]], tuple[Any, ...]]   # key_function(primal, ...)

    def derivative(self, mode: str, activity: tuple[str, ...], ret_active: bool,
                   plan: Plan = ..., width: int = ...) -> Function: ...


class Policy(Protocol):
    """What the planner reads and records on a kernel (kernel.Kernel): a change of the
    first four drops what was planned with them (policies, and the kernel's kept calls)."""
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
    key = (id(spec), activity, ret_active, budget, spec.call_key(args))
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
    no_files = "" if budget is None or not k.disk or sizes[-1] else \
        _no_snapshot_files(comm is not None)
    try:
        c = k.last_policy = choose(budget, *sizes, unsized, no_files)
    except NoTimeLoop as e:    # (with why, which only the kernel's IR tells)
        raise e.because(no_time_loop(spec.primal),
                        choose_time_loop(spec.primal) is not None) from None
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
    loop = time_loop(spec.primal, args)
    if loop is not None and budget is not None:   # the tape of the loops around it
        outside = tape_bytes(spec.derivative("reverse", activity, ret_active,
                                             Plan(intermediates="recompute")), flat,
                             time_loop_location(spec.primal))
        loop = replace(loop, outside=outside)
    restart = budget is not None and (own is None or own > budget) and \
        loop is not None and not loop.computed_range and restartable(spec, activity, ret_active)
    disk = free_bytes() if budget is not None and k.disk else 0
    return tapes, loop, cache_bytes(), restart, disk


def _no_snapshot_files(mpi: bool) -> str:
    """Why a kernel that may put snapshots in files has no room for them (the planner's
    share of the snapshot directory is 0), for messages."""
    where = snapshot_dir()
    if not os.path.isdir(where):
        return f"{where} is not a directory"
    if share(free_bytes()) == 0:
        return f"{where} has {free_bytes()} bytes free"
    return f"{where} is full on another rank" if mpi else f"{where} is full"


def size_inputs(primal: Function, rules: bool) -> tuple[tuple[int, bool], ...]:
    """(position, is an array) of each argument whose shape (arrays) or value (scalars) the
    planner may read: the size estimates evaluate integer arithmetic from the arguments
    (budget.tape_bytes, budget.time_loop: shapes, integer and boolean scalars, and a float
    argument only where an op turns it into a non-float, int(t) or t > 0) and a revolve's
    time-loop range. With custom rules (rules: their derivatives' code is not in the
    primal) every float scalar counts. Communicators do not count."""
    converted = {v for op in walk(primal.body) for v in op.operands
                 if any(not _is_float_scalar(r.type) for r in op.results)}
    return tuple((i, isinstance(a.type, ArrayType)) for i, a in enumerate(primal.args)
                 if isinstance(a.type, ArrayType) or isinstance(a.type, ScalarType) and
                 (not a.type.is_float or rules or a in converted))


def _is_float_scalar(t: object) -> bool:
    return isinstance(t, ScalarType) and t.is_float


def _environment_get() -> tuple[Callable[[Any], Any], Any, Any]:
    """(get, budget, cache): get(budget) and get(cache) are the raw values of
    HPCAD_MEMORY_BUDGET and HPCAD_CACHE_BYTES (budget.env_budget, budget.cache_bytes read
    them), None where unset, cheap enough for every call: a lookup in os.environ's own
    dict (its get of an unset variable raises and catches a KeyError, about 1 us), else
    os.environ.get."""
    names = ("HPCAD_MEMORY_BUDGET", "HPCAD_CACHE_BYTES")
    data, encode = getattr(os.environ, "_data", None), getattr(os.environ, "encodekey", None)
    if isinstance(data, dict) and callable(encode):
        return data.get, *map(encode, names)
    return os.environ.get, *names


_get, _BUDGET, _CACHE = _environment_get()


def key_function(primal: Function, rules: bool) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """The call key of a call of primal's kernel: everything of the call that plan_call
    and run_time_args read beyond the kernel's policy (Policy: pinned, budget,
    intermediates, disk), its activity and a communicator: the environment's budget and
    cache size, and the shapes and values of size_inputs(primal, rules). Equal keys give
    equal plans and run-time arguments, but for a plan with its snapshots in files
    (reusable), which also reads the free disk space. Written out as a lambda of the
    positions (every taping grad call makes a key: a loop over them costs twice as much)."""
    parts = "".join(f", args[{i}].shape" if is_array else f", args[{i}]"
                    for i, is_array in size_inputs(primal, rules))
    # the rank and size of a communicator argument the kernel asks for (trip counts may
    # depend on them: budget._comm_query)
    queried = {op.operands[-1] for op in walk(primal.body) if op.name in ("mpi.rank",
                                                                            "mpi.size")}
    parts += "".join(f", args[{i}].Get_rank(), args[{i}].Get_size()"
                     for i, a in enumerate(primal.args) if a in queried)
    key: Callable[[tuple[Any, ...]], tuple[Any, ...]] = eval(
        f"lambda args: (get(budget), get(cache){parts})",
        {"get": _get, "budget": _BUDGET, "cache": _CACHE})
    return key


def reusable(plan: Plan) -> bool:
    """Whether plan_call gives this plan again for a call with an equal call key (and no
    communicator): budget.choose reads the free disk space only in its branches that put
    the snapshots in files."""
    return not plan.disk


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
