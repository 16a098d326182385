"""The numba cases of tests/mpi weighed together (python -m tests.numba_cover): the kernels
of test_mpi_derivatives and test_width_mpi ("d:"), test_mpi_reductions ("r:") and
test_mpi_replicated ("p:"), each with the arguments its file gives rank 0. A case a file
compiles with numba (its ON_NUMBA) is worth its compile where its primal and derivatives run
numba code generation that no other file's kept case runs: one MPI run compiles them all.

    python -m tests.numba_cover "tests.mpi.numba_cases:cases()" --widths 1 4 --keep ...
    python -m tests.numba_cover "tests.mpi.numba_cases:cases('d:', 'r:')" --widths 3 \\
        --only derivatives --keep ...
"""
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mpi4py import MPI

COMM = MPI.COMM_WORLD


@dataclass
class NumbaCase:
    name: str
    kernel: Any
    make_args: Callable


def cases(*prefixes: str) -> list[NumbaCase]:
    """Every case of the four files, or those whose name starts with one of prefixes."""
    from tests.mpi import mpi_kernels as mk
    from tests.mpi import reduction_kernels as rk
    from tests.mpi import test_mpi_replicated as tr
    out = [NumbaCase("d:" + n, k, lambda rng, make=make: make(rng) + (COMM,))
           for n, (k, make) in mk.CASES.items()]
    out += [NumbaCase("r:" + n, k,
                      lambda rng, make=make, wc=wc: make(rng) + ((COMM,) if wc else ()))
            for n, (k, make, wc) in rk.CASES.items()]
    out += [NumbaCase("p:" + n, k, lambda rng, make=make: make(rng, 0))
            for n, (k, make, _) in tr.CASES.items()]
    return [c for c in out if not prefixes or c.name.startswith(prefixes)]
