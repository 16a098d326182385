"""Progress lines for long steps (compiling a derivative, a long checkpointed reverse sweep):
`with progress(total, desc) as p: ... p.advance()` draws a tqdm bar on rank 0 when stderr is
a terminal, and does nothing otherwise (batch jobs, pipes, other ranks), so logs stay clean.
The bar is erased when the step ends.

Compiled code reports through `sweep(done, total, what)`, which the IR op `rt.progress`
calls (from numba through an object-mode block, about half a microsecond a call): it keeps
one bar open from a sweep's first report to its last."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# set by MPI launchers (MPICH/hydra, Open MPI, srun) in every rank's environment
_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID")


class Progress:
    """What `progress` yields: advance(n) moves the bar n steps (if there is a bar)."""

    def __init__(self, bar=None):
        self._bar = bar

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)


def rank() -> int:
    """This process's rank in MPI_COMM_WORLD, without starting MPI if nothing has."""
    for name in _RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        return mpi.COMM_WORLD.Get_rank()
    return 0


def shown() -> bool:
    stream = sys.stderr
    return stream is not None and stream.isatty() and rank() == 0


@contextmanager
def progress(total: int, desc: str) -> Iterator[Progress]:
    if not shown():
        yield Progress()
        return
    from tqdm import tqdm
    bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)
    try:
        yield Progress(bar)
    finally:
        bar.close()


_sweep_bar = None   # the bar of the sweep now reporting through `sweep`


def sweep(done: int, total: int, what: str) -> None:
    """done of total units of a long step run by compiled code: opens a bar at the first
    report (where `shown()`), moves it, and closes it when done reaches total. A report
    that goes backwards or changes the total starts a new bar (a sweep cut short by an
    error leaves its bar behind until the next sweep)."""
    global _sweep_bar
    bar = _sweep_bar
    if bar is not None and (done < bar.n or total != bar.total):
        bar.close()
        bar = _sweep_bar = None
    if bar is None:
        if done >= total or not shown():
            return
        from tqdm import tqdm
        bar = _sweep_bar = tqdm(total=total, desc=what, file=sys.stderr, leave=False,
                                dynamic_ncols=True)
    bar.update(done - bar.n)
    if done >= total:
        bar.close()
        _sweep_bar = None
