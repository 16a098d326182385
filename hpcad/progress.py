"""Progress lines for long steps (compiling a derivative, a long checkpointed reverse sweep):
`with progress(total, desc) as p: ... p.advance()` draws a tqdm bar on rank 0 when stderr is
a terminal, and does nothing otherwise (batch jobs, pipes, other ranks), so logs stay clean.
The bar is erased when the step ends."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

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
