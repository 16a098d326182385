"""A multi-rank job fails loudly instead of hanging. Before the derivative of a kernel that
calls MPI first runs on a communicator, the ranks compare what they are about to run
(kernel, derivative IR hash, memory budget, checkpointing plan): a mismatch is an error on
every rank naming each plan. An exception while such a kernel runs on one rank, or one that
ends a rank's program after hpcad ran MPI code, prints the traceback with the rank and calls
MPI_Abort, since the other ranks would wait for its messages forever. HPCAD_MPI_ABORT=0
turns the abort off (for interactive debugging)."""
from __future__ import annotations

import hashlib
import os
import sys
import time
import traceback
from contextlib import contextmanager

from .errors import CollectiveError, PlanMismatch

ABORT_SWITCH = "HPCAD_MPI_ABORT"
_calls_mpi: dict[int, tuple] = {}   # id(IR function) -> (function, whether it calls MPI)
_agreed: dict[tuple, tuple] = {}  # (id(IR function), communicator) -> (the function, plan)
_hook_installed = False


def _abort_enabled() -> bool:
    return os.environ.get(ABORT_SWITCH, "1").strip() != "0"


def _world():
    from mpi4py import MPI
    return MPI.COMM_WORLD


def _calls(fn) -> tuple[bool, bool]:
    """Whether fn calls MPI, and whether on COMM_WORLD (numba-mpi's calls, the name
    MPI.COMM_WORLD in its body)."""
    entry = _calls_mpi.get(id(fn))
    if entry is None or entry[0] is not fn:
        from .ir.core import walk
        names = {op.name for op in walk(fn.body) if op.dialect == "mpi"}
        entry = _calls_mpi[id(fn)] = (fn, (bool(names), "mpi.world" in names))
    return entry[1]


def communicator(fn, args):
    """The communicator fn runs on (its first, else COMM_WORLD) where fn calls MPI in a job of
    more than one rank, with another rank (a kernel on communicators of one rank each,
    MPI.COMM_SELF, waits for nobody and keeps nobody waiting); else None (then nothing here
    costs anything)."""
    calls, on_world = _calls(fn)
    if not calls:
        return None
    from mpi4py import MPI
    if MPI.COMM_WORLD.Get_size() == 1:
        return None
    comms = [a for a in args if isinstance(a, MPI.Comm)]
    if comms and not on_world and all(c.Get_size() == 1 for c in comms):
        return None
    watch()
    return comms[0] if comms else MPI.COMM_WORLD


def watch() -> None:
    """From now on an uncaught exception on this rank aborts the job (as `python -m mpi4py`
    does) rather than leaving the other ranks waiting: installed once hpcad runs MPI code."""
    global _hook_installed
    if _hook_installed or not _abort_enabled() or _world().Get_size() == 1:
        return
    _hook_installed = True
    previous = sys.excepthook

    def abort_on_uncaught(kind, value, tb):
        previous(kind, value, tb)
        _abort(f"an uncaught {kind.__name__} ended this rank's program")

    sys.excepthook = abort_on_uncaught


def _abort(why: str) -> None:
    world = _world()
    sys.stderr.write(f"hpcad: rank {world.Get_rank()} of {world.Get_size()}: {why}; calling "
                     f"MPI_Abort so that the other ranks do not wait for it forever "
                     f"({ABORT_SWITCH}=0 turns this off)\n")
    sys.stderr.flush()
    time.sleep(1.0)   # the launcher forwards this rank's stderr before the abort tears it down
    world.Abort(1)
    os._exit(1)   # MPICH's MPI_Abort can return before the process manager ends this rank


def _plan(kernel) -> str:
    """The memory budget and checkpointing a kernel's call runs with, in words."""
    from .checkpoint.budget import env_budget
    budget = env_budget() if kernel.budget == "auto" else kernel.budget
    text = "no memory budget" if budget is None else f"a memory budget of {budget} bytes"
    choice = kernel.last_policy
    if choice is not None:
        text += f", checkpointing: {choice.plan.describe()}"
    return text


@contextmanager
def collective(kernel, fn, args):
    """Run fn inside: for a derivative, agree on the plan first (once per function and
    communicator); an exception on one rank then aborts the job (after its traceback)."""
    comm = communicator(fn, args)
    if comm is None:
        yield
        return
    if not any(fn is s.primal for s in kernel.specializations.values()):
        agree(comm, fn, kernel)   # (ranks may run different primal kernels)
    try:
        yield
    except CollectiveError:   # every rank raises it together: nobody waits
        raise
    except BaseException as e:
        if not _abort_enabled():
            raise
        traceback.print_exc(file=sys.stderr)
        _abort(f"{type(e).__name__} while running kernel '{kernel.__name__}'")


def agree(comm, fn, kernel) -> None:
    """One allgather of what each rank is about to run, before its first message."""
    from mpi4py import MPI
    # (one derivative runs with any snapshot count: agree again when the plan changes)
    key, plan = (id(fn), MPI._handleof(comm)), _plan(kernel)
    agreed = _agreed.get(key)
    if agreed is not None and agreed[0] is fn and agreed[1] == plan:
        return
    from .ir.printer import print_function
    digest = hashlib.sha256(print_function(fn).encode()).hexdigest()[:12]
    mine = f"kernel '{kernel.__name__}' ({fn.name}, IR {digest}), {plan}"
    everyone = comm.allgather(mine)
    if any(r != mine for r in everyone):
        ranks: dict[str, list[int]] = {}
        for r, record in enumerate(everyone):
            ranks.setdefault(record, []).append(r)
        which = "; ".join(f"rank{'s' if len(rs) > 1 else ''} {', '.join(map(str, rs))}: "
                          f"{record}" for record, rs in ranks.items())
        raise PlanMismatch(f"the ranks are about to run different kernels or plans, which "
                           f"would deadlock: {which}; give every rank the same kernel, "
                           f"arguments' types, memory budget (hpcad.checkpoint, "
                           f"HPCAD_MEMORY_BUDGET) and checkpointing")
    _agreed[key] = (fn, plan)
