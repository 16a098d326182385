"""Memory-budget policies: from a budget in bytes and the call's arguments, the
checkpointing (store-all, segments with S snapshots, revolve with S snapshots: restarting
each step from its state without tape where the kernel allows, else with a one-step tape;
the snapshots in files below one copy of the state) whose estimated bytes of memory (tape
and in-memory snapshots) fit, cheapest in time first.

The estimate evaluates, in Python, the top-level integer arithmetic that sizes each tape
slot (the loop extents the numba backend preallocates from, `tape_slots`) and the time loop's
state arrays. It is a bound for the shapes of this call, identical on every rank that
passes the same shapes."""
from __future__ import annotations

import functools
import math
import operator
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import ArgumentError, HpcadError, where
from ..ir.core import Block, Function, Op, Value, walk
from ..ir.types import ArrayType, ScalarType
from ..runtime.snapshots import file_system, share
from ..runtime.tape import tape_slots
from .plan import Kind, Plan
from .revolve import bound_source, forward_steps
from .segments import choose_time_loop, rewritten_after, state_arrays
from .tape import array_type

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: object, what: str = "memory budget") -> int:
    """'100MB', '2GiB', '5e8' or an int: a byte count; ArgumentError otherwise."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool) and text > 0:
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    if m is None or m.group(2).lower() not in _UNITS or float(m.group(1)) <= 0:
        raise ArgumentError(f"{what} {text!r} is not a size: give bytes as an int or a "
                            f"string such as '500MB' or '2GiB'")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def env_budget() -> int | None:
    """HPCAD_MEMORY_BUDGET, parsed, or None when unset."""
    text = os.environ.get("HPCAD_MEMORY_BUDGET", "").strip()
    return parse_bytes(text, "HPCAD_MEMORY_BUDGET") if text else None


class _Unknown(Exception):
    pass


# the integer and boolean ops of size arithmetic, computed exactly (a size past int64 is
# past any budget); any other op leaves a size unknown
_INTEGER: dict[str, Callable[..., Any]] = {
    "arith.add": operator.add, "arith.sub": operator.sub, "arith.mul": operator.mul,
    "arith.neg": operator.neg, "arith.floordiv": operator.floordiv,
    "arith.mod": operator.mod, "arith.min": min, "arith.max": max, "math.abs": abs,
    "arith.and": operator.and_, "arith.or": operator.or_, "arith.not": operator.not_}
_PREDICATES = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
               "gt": operator.gt, "ge": operator.ge}


def _evaluate(v: Value, env: dict[Value, Any]) -> int:
    """The integer value of a top-level value, from the call's arguments, with the
    exact integer arithmetic."""
    if v in env:
        x = env[v]
        if isinstance(x, np.ndarray):
            raise _Unknown()
        return int(x)
    op = v.owner
    if not isinstance(op, Op) or not isinstance(v.type, ScalarType) or v.type.is_float:
        raise _Unknown()
    if op.name == "arith.const":
        out = int(op.attrs["value"])
    elif op.name == "mem.shape":
        out = _extent(op.operands[0], op.attrs["axis"], env)
    elif op.name == "arith.cast":
        out = _evaluate(op.operands[0], env)
    elif op.name == "arith.cmp":
        out = _PREDICATES[op.attrs["pred"]](*(_evaluate(x, env) for x in op.operands))
    elif op.name == "arith.select":
        c, a, b = (_evaluate(x, env) for x in op.operands)
        out = a if c else b
    elif op.name in ("mpi.rank", "mpi.size"):
        out = _comm_query(op, env)
    elif op.name in _INTEGER:
        try:
            out = int(_INTEGER[op.name](*(_evaluate(a, env) for a in op.operands)))
        except ZeroDivisionError:
            raise _Unknown() from None
    else:
        raise _Unknown()
    env[v] = out
    return out


def _comm_query(op: Op, env: dict[Value, Any]) -> int:
    """This rank's rank or the size of a communicator: an argument, or COMM_WORLD (the
    communicator of numba-mpi's calls). Under MPI each rank sizes its own tape and the
    ranks agree on the largest (planner.plan_call)."""
    comm = op.operands[-1]
    obj: Any = env.get(comm)
    if obj is None and isinstance(comm.owner, Op) and comm.owner.name == "mpi.world":
        from mpi4py import MPI
        obj = MPI.COMM_WORLD
    if not (hasattr(obj, "Get_rank") and hasattr(obj, "Get_size")):
        raise _Unknown()
    return int(obj.Get_rank() if op.name == "mpi.rank" else obj.Get_size())


def _extent(a: Value, axis: int, env: dict[Value, Any]) -> int:
    """The length of array a along axis: an argument's, or a local array's from the sizes it
    was allocated with (np.empty_like(u), np.zeros(n), ...), or one of the same bits read as
    another dtype (a.view)."""
    if a in env:
        return int(np.shape(env[a])[axis])
    op = a.owner
    if isinstance(op, Op) and op.name == "mem.alloc":
        return _evaluate(op.operands[axis], env)
    if isinstance(op, Op) and op.name == "mem.bitcast":
        return _extent(op.operands[0], axis, env)
    raise _Unknown()


def tape_bytes(fn: Function, flat_args: list[Any], outside: object = None) -> int | None:
    """A bound on the bytes fn's tape holds for these arguments (flat, as the derivative
    takes them), or None when a slot's size is only known while it runs. outside: the
    location of the primal's time loop: then only the bytes of the slots filled outside
    that loop (which checkpointing keeps whole), counting a slot as the loop's (its buffer
    set up before the loop's forward copy or the tape.reserve made for it) only where one
    top-level loop of fn has that location."""
    env = dict(zip(fn.args, flat_args))
    total = 0
    one = sum(op.name == "scf.for" and op.loc == outside for op in fn.body.ops) == 1
    try:
        for s in tape_slots(fn, {}):
            if outside is not None and one and s.anchor.loc == outside:
                continue
            if s.extents is None:
                return None
            count = 1
            for kind, *vals in s.extents:
                if kind == "trips":
                    lb, ub, step = (_evaluate(x, env) for x in vals)
                    count *= len(range(lb, ub, step))
                else:
                    ub, low = vals
                    count *= max(_evaluate(ub, env) - low, 0)
            total += count * s.dtype.np_dtype.itemsize
    except (_Unknown, HpcadError):
        return None
    return total


UNSIZED = "its loops' trip counts are only known while it runs"
_GROWING = ("Use hpcad.checkpoint(f, 'store_all') or a snapshot count, "
            "hpcad.checkpoint(f, 4): their tapes grow as they run")


def unsized_loop(fn: Function) -> str:
    """Why fn's tape cannot be sized before it runs (tape_bytes is None), as a reason for
    messages: the outermost loop around a saved value whose trip count is data-dependent,
    'file:line: ...', or a general reason where there is none."""
    memo: dict[Value, Op | None] = {}
    for push in (op for op in walk(fn.body) if op.name == "tape.push"):
        for loop in reversed(_enclosing(push)):
            if loop.name == "scf.while":
                return (f"{where(loop.loc)}: the trip count of this loop (a `while` loop, or a "
                        f"`for` loop with `break`) is data-dependent")
            if loop.name not in ("scf.for", "par.parallel_for"):
                continue
            if any(_data_dependent(v) for v in loop.operands[:3]):
                return (f"{where(loop.loc)}: the trip count of this loop is data-dependent "
                        f"(its bounds are read from an array or computed in a loop or branch)")
            carrier = next((c for c in (_carried_shape(v, memo) for v in loop.operands[:3])
                            if c is not None), None)
            if carrier is not None:
                return (f"{where(loop.loc)}: the bounds of this loop take the shape of an array "
                        f"that the loop at {where(carrier.loc)} swaps or rotates (take the "
                        f"shape before that loop, n = u.shape[0], and use n)")
    return UNSIZED


def _carried_shape(v: Value, memo: dict[Value, Op | None]) -> Op | None:
    """The loop carrying an array (buffers it swaps or rotates) whose shape integer v is
    computed from, or None: the extent of a carried array is not known before it runs."""
    if v not in memo:
        memo[v] = None
        owner = v.owner
        if isinstance(owner, Block):
            loop = owner.parent
            if isinstance(v.type, ArrayType) and getattr(loop, "name", None) in (
                    "scf.for", "scf.while", "par.parallel_for"):
                memo[v] = loop
        else:
            memo[v] = next((c for c in (_carried_shape(x, memo) for x in owner.operands)
                            if c is not None), None)
    return memo[v]


def _enclosing(op: Op) -> list[Op]:
    """The ops whose regions hold op, innermost first."""
    out = []
    while op.parent is not None and op.parent.parent is not None:
        op = op.parent.parent
        out.append(op)
    return out


def _data_dependent(v: Value, memo: dict[Value, bool] | None = None) -> bool:
    """Whether integer v may depend on array contents or on what a loop or branch computes,
    rather than only on the arguments' scalars and shapes and on loop indices."""
    memo = {} if memo is None else memo
    if v not in memo:
        owner = v.owner
        if isinstance(owner, Block):
            loop = owner.parent
            memo[v] = loop is not None and not (
                loop.name in ("scf.for", "par.parallel_for") and v is owner.args[0])
        elif owner.regions or owner.name == "mem.load":
            memo[v] = True
        elif owner.name == "mem.shape":
            array = owner.operands[0].owner
            memo[v] = isinstance(array, Op) and (array.name != "mem.alloc" or any(
                _data_dependent(d, memo) for d in array.operands))
        else:
            memo[v] = any(_data_dependent(x, memo) for x in owner.operands)
    return memo[v]


@dataclass(frozen=True)
class TimeLoop:
    steps: int
    state_bytes: int     # one snapshot of the arrays the loop writes
    computed_range: str = ""   # where its range is computed in the kernel (file:line), so
    #                            that no revolve schedule can be given it; "" where it is not
    outside: int | None = 0    # bytes of the fewest-bytes tape filled outside the loop (other
    #                            loops: kept whole however the loop is checkpointed); None:
    #                            unknown before it runs
    kept: int = 0    # the two copies every checkpointing keeps of each array that the loop
    #                  uses and a later statement writes (segments.keep_rewritten)


def time_loop(primal: Function, args: tuple[Any, ...]) -> TimeLoop | None:
    """The loop checkpointing would split (segments.choose_time_loop), its step count, the
    size of one snapshot of its state and of the copies kept of arrays rewritten after it,
    for these arguments."""
    op = choose_time_loop(primal)
    if op is None:
        return None
    env = dict(zip(primal.args, args))
    def size(a: Value) -> int | None:
        if a in env:
            return int(env[a].nbytes)
        if isinstance(a.owner, Op) and a.owner.name == "mem.alloc":
            dims = [_evaluate(x, env) for x in a.owner.operands]
            return math.prod(dims) * array_type(a).dtype.np_dtype.itemsize
        return None
    try:
        lb, ub, step = (_evaluate(x, env) for x in op.operands[:3])
        sizes = [size(a) for a in state_arrays(primal, op)]
        if None in sizes:
            return None
        # the carried scalars are snapshotted beside the arrays, in memory
        state = sum(s for s in sizes if s is not None) + sum(
            v.type.np_dtype.itemsize for v in op.operands[3:] if isinstance(v.type, ScalarType))
        # (an array whose size is not known here is left out of the count)
        kept = 2 * sum(s or 0 for s in map(size, rewritten_after(primal, op)))
    except _Unknown:
        return None
    static = all(bound_source(primal, x) is not None for x in op.operands[:3])
    return TimeLoop(len(range(lb, ub, step)), state, "" if static else where(op.loc),
                    kept=kept)


def time_loop_location(primal: Function) -> object:
    """The location of the loop checkpointing would split (tape_bytes' `outside`)."""
    op = choose_time_loop(primal)
    return None if op is None else op.loc


def cache_bytes() -> int:
    """The largest CPU cache of this machine (Linux sysfs; HPCAD_CACHE_BYTES overrides), or
    32 MiB when unknown: what a segment's tape should stay well inside."""
    text = os.environ.get("HPCAD_CACHE_BYTES", "").strip()
    if text:
        return parse_bytes(text, "HPCAD_CACHE_BYTES")
    return _sysfs_cache_bytes()


@functools.lru_cache(maxsize=1)
def _sysfs_cache_bytes() -> int:
    sizes = []
    for level in range(8):
        try:
            with open(f"/sys/devices/system/cpu/cpu0/cache/index{level}/size") as f:
                sizes.append(parse_bytes(f.read().strip().replace("K", "KiB")
                                         .replace("M", "MiB")))
        except (OSError, ArgumentError):
            continue
    return max(sizes, default=32 * 2**20)


Tapes = tuple[int | None, int | None]   # store-all tape: the kernel's plan, fewest bytes


def agree(comm: Any, tapes: Tapes, loop: TimeLoop | None, cache: int, restart: bool = False,
          disk: int = 0) -> tuple[Tapes, TimeLoop | None, int, bool, int]:
    """The largest tapes and state, and the smallest cache and share of free disk (its free
    bytes over the ranks that share its file system, disk.share), over the ranks of comm
    (collective), so that every rank chooses the same checkpointing and recomputed steps
    communicate alike. A size unknown on any rank is unknown on all. restart: whether the
    time loop's steps can restart, which a rank whose own tape fits the budget does not ask
    (planner._sizes) while a larger rank does: true where any rank found it (the ranks run
    one kernel: hpcad/mpi_job.py checks it), so that they choose alike."""
    # (ranks on one host and device share its free space: file_system)
    mine = (tapes, None if loop is None else (loop.steps, loop.state_bytes, loop.computed_range,
                                              loop.outside, loop.kept),
            cache, disk, file_system(), restart)
    everyone = comm.allgather(mine)
    restart = any(r[-1] for r in everyone)
    everyone = [r[:-1] for r in everyone]
    def largest(k: int) -> int | None:
        return None if any(t[k] is None for t, *_ in everyone) else \
            max(t[k] for t, *_ in everyone)
    tapes = (largest(0), largest(1))
    cache = min(c for _, _, c, _, _ in everyone)
    sharing = [sum(w == other for *_, other in everyone) for *_, w in everyone]
    disk = min(share(d, n) for (*_, d, _), n in zip(everyone, sharing))
    loops = [lp for _, lp, _, _, _ in everyone]
    if None in loops:
        return tapes, None, cache, restart, disk
    outside = None if any(lp[3] is None for lp in loops) else max(lp[3] for lp in loops)
    return (tapes, TimeLoop(max(lp[0] for lp in loops), max(lp[1] for lp in loops),
                            max(lp[2] for lp in loops), outside, max(lp[4] for lp in loops)),
            cache, restart, disk)


@dataclass(frozen=True)
class Choice:
    plan: Plan                 # its intermediates are the planner's to fill in
    estimate: int | None       # bytes of tape + snapshots (None: store-all, unsized)
    reason: str
    fewest_bytes: bool = False   # intermediates recomputed wherever that saves bytes
    disk: int = 0              # bytes of snapshots in files (hpcad/runtime/snapshots.py)

    @property
    def snapshots(self) -> int | None:
        """The snapshot count; None: store all steps."""
        return self.plan.snapshots


def cache_segments(own: int | None, loop: TimeLoop | None, cache: int) -> Choice | None:
    """Segments whose tape stays in cache, when the store-all tape does not: a reverse
    sweep that re-runs a segment from its snapshot and reads its tape from cache beats one
    that streams every step's tape from memory (measured: benchmarks/README.md). A segment
    takes a quarter of the
    cache (the state and the adjoints need the rest) and at least 2 steps; None where one
    step's tape alone is too big (memory-bound sizes: store-all), and None where a step
    tapes more than twice the bytes of its state: re-running such a step computes much from
    little memory, so the extra forward run costs more than reading its tape from memory
    (a loop over independent data points whose state is a few scratch vectors)."""
    if own is None or loop is None or own <= cache:
        return None
    n = loop.steps
    per_step = -(-own // n)
    if per_step > 2 * loop.state_bytes:
        return None
    length = (cache // 4) // max(per_step, 1)
    if length < 2 or length >= n:
        return None
    s = -(-n // length)
    return Choice(Plan(Kind.SEGMENTS, s), length * per_step + (s + 1) * loop.state_bytes,
                  f"segments of {length} steps keep the tape in cache ({cache} bytes)")


@functools.lru_cache(maxsize=256)
def choose(budget: int | None, tapes: Tapes, loop: TimeLoop | None,
           cache: int = 32 * 2**20, restart: bool = False, disk: int = 0,
           unsized: str = UNSIZED, no_files: str = "") -> Choice:
    """The fastest policy whose estimated bytes of memory fit the budget (None: no limit).
    tapes: the store-all tape under the kernel's own plan for intermediates, then under the
    fewest-bytes plan (equal when they are the same plan). restart: whether each step of
    the time loop can be reversed from its restored state, without tape
    (checkpoint/revolve.py). disk: free bytes for snapshot files (0: none may be written).
    In order: segments that keep the tape in cache (cache_segments) where the store-all
    tape does not fit the cache, store-all under the kernel's plan, then under the
    fewest-bytes plan, segments (one extra forward run, S >= 2 snapshots), revolve
    restarting each step from its state with as many snapshots as fit (no tape), revolve
    with a one-step tape (lean where that recomputes less), and the same two with the
    snapshots on disk. Where the tape cannot be sized before it runs (tapes None; unsized
    says why), only the revolve that keeps no tape. no_files: why disk is 0 where snapshot
    files are allowed ("": they are not). An HpcadError when none fits (NoTimeLoop where
    there is no time loop)."""
    own, least = tapes
    fast = cache_segments(own, loop, cache)
    if fast is not None and (budget is None or fast.estimate is not None
                             and fast.estimate <= budget):
        return fast
    if budget is None:
        return Choice(Plan(), own, "store-all (no memory budget)")
    if own is not None and own <= budget:
        return Choice(Plan(), own, "store-all fits")
    if least is not None and least <= budget:
        return Choice(Plan(), least, "store-all fits with cheap and expensive "
                                               "intermediates recomputed", True)
    if loop is None or loop.steps < 2:
        head = f"memory budget of {budget} bytes cannot be planned: "
        if least is None:
            head += f"{unsized}, so the tape cannot be sized before it runs, and "
        if loop is None:
            raise NoTimeLoop(head, least)
        raise HpcadError(f"{head}its time loop runs {loop.steps} step"
                         f"{'s' * (loop.steps != 1)} for these arguments, too few to "
                         f"checkpoint{_no_loop_advice(least, False)}")
    return _checkpointed(budget, least, loop, restart, disk, unsized, no_files)


class NoTimeLoop(HpcadError):
    """choose's refusal of a budget below the whole tape where it has no time loop for the
    call; `because` words it with why (segments.no_time_loop: the planner has the kernel's
    IR, choose only its sizes)."""

    def __init__(self, head: str, least: int | None,
                 why: str = "it has no time loop to checkpoint", pinnable: bool = False):
        super().__init__(f"{head}{why}{_no_loop_advice(least, pinnable)}")
        self.head, self.least = head, least

    def because(self, why: str, pinnable: bool) -> NoTimeLoop:
        """why: segments.no_time_loop; pinnable: whether a snapshot count checkpoints the
        loop all the same (choose_time_loop takes it, its sizes only are unknown)."""
        return NoTimeLoop(self.head, self.least,
                          f"it has no time loop hpcad can checkpoint ({why})", pinnable)


def _no_loop_advice(least: int | None, pinnable: bool) -> str:
    """What to do where a budget finds no time loop to checkpoint: a budget the whole tape
    fits, else store-all (or a snapshot count, where one checkpoints the loop)."""
    if least is not None:
        return (f". Raise the budget to the {least} bytes of the whole tape, or use "
                f"hpcad.checkpoint(f, 'store_all')")
    return f". {_GROWING}" if pinnable else \
        ". Use hpcad.checkpoint(f, 'store_all'): its tape grows as it runs"


def _checkpointed(budget: int, least: int | None, loop: TimeLoop, restart: bool, disk: int,
                  unsized: str, no_files: str = "") -> Choice:
    """choose's checkpointing plans of the time loop, whose estimates count the tape filled
    outside the loop (loop.outside), which every plan keeps whole, and the copies of arrays
    rewritten after it (loop.kept), which every plan makes."""
    n, p, outside = loop.steps, loop.state_bytes, loop.outside
    if outside is None:
        raise HpcadError(f"memory budget of {budget} bytes cannot be planned: {unsized}, "
                         f"outside the time loop that checkpointing splits, so that part of "
                         f"the tape cannot be sized before it runs. {_GROWING}")
    inner = None if least is None else least - outside    # the loop's own tape
    rest = outside + loop.kept
    fits = _segments(n, p, inner, budget - rest) if inner is not None else None
    if fits is not None:
        return _plus(fits, rest)
    if loop.computed_range:
        raise HpcadError(f"{loop.computed_range}: a memory budget of {budget} bytes needs a "
                         f"revolve schedule for this time loop, and revolve needs the loop's "
                         f"range to come from the kernel's arguments or constants; pass the "
                         f"step count as an int argument (range(nsteps)), or raise the budget")
    if inner is None:
        return _plus(_without_tape(budget - rest, n, p, restart, disk if rest <= budget else 0,
                                   unsized, budget), rest)
    if restart:
        choice = _restarting(n, p, (budget - rest) // max(p, 1))
        if choice is not None:
            return _plus(choice, rest)
    one_step = rest + -(-inner // n)
    # revolve keeps s schedule snapshots and one of the state before the forward sweep's
    # last steps, from which it also restores the final state; lean revolve keeps the s
    # only and runs forward from one of them instead (checkpoint/revolve.py). Of the two,
    # the one whose table runs fewer forward steps with the snapshots that fit.
    room = (budget - one_step) // max(p, 1)
    options = [(forward_steps(n, s, lean), lean, s)
               for lean, s in ((False, min(room - 1, n)), (True, min(room, n))) if s >= 1]
    if options:
        _, lean, s = min(options)
        return Choice(Plan(Kind.REVOLVE, int(s), lean=lean), one_step + (s + (not lean)) * p,
                      f"revolve with {s} snapshots fits" + " (the final state recomputed "
                      "from one)" * lean, True)
    # below one copy of the state in memory: snapshots of every step in files, as many
    # as half the free disk holds
    fits = _restarting_on_disk(n, p, disk) if restart and rest <= budget else None
    if fits is not None:
        return _plus(fits, rest)
    on_disk = min(n + 2, disk // 2 // max(p, 1))
    if not restart and on_disk >= 1 and one_step <= budget:
        s = min(n, on_disk)
        return Choice(Plan(Kind.REVOLVE, int(s), lean=True, disk=True), one_step,
                      f"revolve with {s} snapshots in files (hpcad/runtime/snapshots.py), the tape "
                      f"holding one step", True, s * p)
    if on_disk >= 1 and not restart:
        raise HpcadError(f"memory budget of {budget} bytes is below the least this gradient "
                         f"needs ({one_step} bytes: one step's tape, with the snapshots in "
                         f"files); raise the budget")
    need = (rest if restart else one_step) + p
    where = f"; the snapshot directory ({disk} bytes free, half of it usable) holds too " \
        f"few copies of the state" if disk else ""
    raise HpcadError(f"memory budget of {budget} bytes is below the least this gradient "
                     f"needs ({need} bytes: " + ("" if restart else "one step's tape and ")
                     + f"a copy of the {p}-byte state{where}); raise the budget"
                     + ("" if disk else f", or set HPCAD_SNAPSHOT_DIR to a directory with "
                        f"room for snapshot files ({no_files})" if no_files else
                        ", or allow snapshots on disk (hpcad.checkpoint(f, disk=True) or "
                        "HPCAD_SNAPSHOT_DIR)"))


def _plus(choice: Choice, rest: int) -> Choice:
    """choice with `rest` more bytes of tape in its estimate."""
    if not rest or choice.estimate is None:
        return choice
    return replace(choice, estimate=choice.estimate + rest)


def _segment_counts(n: int) -> Iterator[int]:
    """The least S >= 2 of each run of snapshot counts with the same segment length
    ceil(n / S): within a run more snapshots only cost bytes, so the first S that fits is
    one of these (O(sqrt(n)) of them, not n)."""
    s = 2
    while s <= n:
        yield s
        length = -(-n // s)
        if length == 1:
            return
        s = -(-n // (length - 1))


def _segments(n: int, p: int, tape: int, budget: int) -> Choice | None:
    """Segments (S snapshots of p bytes, the tape of n // S steps) that fit the budget,
    the fewest snapshots first; None where none do."""
    for s in _segment_counts(n):
        est = -(-n // s) * tape // n + (s + 1) * p
        if est <= budget:
            return Choice(Plan(Kind.SEGMENTS, s), est, f"segments of {-(-n // s)} steps fit", True)
    return None


def _without_tape(budget: int, n: int, p: int, restart: bool, disk: int,
                  unsized: str, given: int | None = None) -> Choice:
    """A budget for a gradient whose tape cannot be sized before it runs: revolve with each
    step reversed from its restored state (no tape), the snapshots in memory or in files.
    given: the budget as the user gave it (budget is what the loop may use of it)."""
    if restart:
        choice = _restarting(n, p, budget // max(p, 1))
        if choice is not None:
            return choice
        choice = _restarting_on_disk(n, p, disk)
        if choice is not None:
            return choice
    why = ("its time loop's steps cannot be reversed from a restored state without a tape"
           if not restart else f"not one {p}-byte copy of the state fits, in memory or in "
           f"files")
    raise HpcadError(f"memory budget of {given or budget} bytes cannot be planned: {unsized}, "
                     f"so the tape cannot be sized before it runs, and {why}. {_GROWING}")


def _restarting_on_disk(n: int, p: int, disk: int) -> Choice | None:
    """_restarting with the snapshots in files, as many as half the free disk holds (one
    slot of them scratch); None when not one fits."""
    fits = _restarting(n, p, min(n + 2, disk // 2 // max(p, 1)) - 1)
    if fits is None or fits.estimate is None:
        return None
    return Choice(replace(fits.plan, disk=True), 0,
                  f"revolve with {fits.snapshots} snapshots in files "
                  f"(hpcad/runtime/snapshots.py), each step reversed from its snapshot (no "
                  f"tape)", True, fits.estimate + p)


def _restarting(n: int, p: int, copies: int) -> Choice | None:
    """Revolve with `copies` state copies and each step reversed from its restored state,
    plain (copies - 1 snapshots and the state before the last steps) or lean, whichever
    runs fewer steps; None when not one copy fits."""
    options = [(forward_steps(n, s, lean, True), lean, s)
               for lean, s in ((False, min(copies - 1, n - 1)), (True, min(copies, n))) if s >= 1]
    if not options:
        return None
    _, lean, s = min(options)
    return Choice(Plan(Kind.REVOLVE, int(s), lean=lean, restart=True), (s + (not lean)) * p,
                  f"revolve with {s} snapshots fits, each step reversed from its restored "
                  f"state (no tape)", True)
