"""Batched derivatives of distributed kernels under mpiexec (2 and 3 ranks, launched by
tests/test_mpi_launch.py): each lane of a width-W forward or reverse call equals its own
unbatched call on every rank, the derivative messages carrying all W directions at once
(tests/ad/width_check.py). The distributed heat at W in {1, 3, 8} (numba at 3 and 8); the
other MPI kernels at W=3."""

import numpy as np
import pytest
from mpi4py import MPI

from hpcad.kernels.mpi_stencils import heat_local, split
from tests.ad.width_check import check_forward, check_reverse  # noqa: E402
from tests.mpi import case_backends
from tests.mpi import mpi_kernels as mk

COMM = MPI.COMM_WORLD
# numba compiles each derivative on every rank (seconds apiece): the fast tier runs these on
# the interpreter, and numba under MPI through the examples (tests/test_mpi_launch.py)
BACKENDS = ["interp", pytest.param("numba", marks=pytest.mark.slow)]
# blocking and collective communication (non-blocking calls on halo views need contiguous
# buffers, which the lanes of a view are not)
CASES = {name: case for name, case in mk.CASES.items() if name != "heat_nonblocking"}
# The cases numba compiles at width 3 (slow tier; all under HPCAD_ALL_MPI=1): with
# test_mpi_reductions' case at width 3, their batched derivatives run every line of the
# numba backend's code generation, and call every function in the generated code, that all
# of those cases do (tests/mpi/numba_cases.py, --widths 3 --only derivatives); the
# interpreter runs every case.
ON_NUMBA = ("reduce_loop", "gather_scatter", "halo_views", "irecv_wait_loop", "blocking_pairs",
            "allreduce_buffer_steps", "scalar_allreduce_local")


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
# (at width 1 the batched derivative is the one it is compared with: the interpreter runs it
# as the batching's base case, numba only at widths that batch)
@pytest.mark.parametrize("width, backend", [(1, "interp"), (3, "interp"), (8, "interp"),
                                            *(pytest.param(w, "numba", marks=pytest.mark.slow)
                                              for w in (3, 8))])
def test_batched_distributed_heat_equals_separate_calls(width, backend):
    u0 = np.sin(np.linspace(0.0, np.pi, 23)) + 0.1
    u, _ = split(u0, COMM)
    rng = np.random.default_rng(300 + COMM.rank)
    check_forward(heat_local, (u, 0.25, 6, COMM), width, backend, rng)
    check_reverse(heat_local, (u, 0.25, 6, COMM), width, backend, rng)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case, backend", case_backends(sorted(CASES), ON_NUMBA))
def test_batched_mpi_kernel_equals_separate_calls(case, backend):
    kernel, make = CASES[case]
    rng = np.random.default_rng(400 + COMM.rank)
    args = make(rng) + (COMM,)
    check_forward(kernel, args, 3, backend, rng)
    check_reverse(kernel, args, 3, backend, rng)
