"""Programs that go wrong on some ranks of an MPI job, run by test_mpi_faults.py under
mpiexec: `python mpi_fault_programs.py FAULT BACKEND`. Each must end the job (non-zero exit,
a message on stderr) instead of leaving the other ranks waiting."""
import os
import sys

import numpy as np
from mpi4py import MPI

import hpcad as ad
from hpcad.kernels.mpi_stencils import heat_local as heat  # explicit heat, one ghost each end

COMM = MPI.COMM_WORLD


@ad.kernel
def picked(x, k, comm):
    """x[k] summed over the ranks (k out of bounds on one rank: an IndexOutOfBounds there)."""
    return comm.allreduce(x[k] * x[k], op=MPI.SUM)


@ad.kernel
def cubes(x, comm):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i] * x[i]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def ring(x, y, comm):
    """Each rank sends x to the next and receives y from the previous (sizes may differ)."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    comm.Sendrecv(x, (rank + 1) % size, 5, y, (rank - 1 + size) % size, 5)
    s = 0.0
    for i in range(y.shape[0]):
        s += y[i] * x[0]
    return comm.allreduce(s, op=MPI.SUM)


def _heat_grad(kernel, backend):
    u = np.linspace(0.1, 1.0, 12)
    return ad.grad(kernel, argnums=(0, 1), backend=backend)(u, 0.25, 6, COMM)


def user_exception(backend):
    _heat_grad(heat, backend)
    if COMM.rank == 1:
        raise RuntimeError("user code failed on rank 1 between two derivative calls")
    _heat_grad(heat, backend)


def kernel_exception(backend):
    k = 10 if COMM.rank == 1 else 0
    ad.grad(picked, backend=backend)(np.ones(3), k, COMM)


def budget_one_rank(backend):
    if COMM.rank == 1:
        os.environ["HPCAD_MEMORY_BUDGET"] = "40B"
    _heat_grad(heat, backend)


def different_budgets(backend):
    _heat_grad(ad.checkpoint(heat, budget="1MB" if COMM.rank == 0 else "300B"), backend)


def different_kernels(backend):
    x = np.linspace(0.1, 1.0, 5)
    ad.grad(cubes if COMM.rank == 0 else ring, backend=backend)(x, *(
        (COMM,) if COMM.rank == 0 else (x.copy(), COMM)))


def truncated(backend):
    x = np.ones(6 if COMM.rank == 0 else 4)
    ring.backend = backend
    ring(x, np.zeros(4), COMM)


def doctor_read_only(backend):
    """`hpcad doctor` where rank 0 cannot write in the cache directory (as on a read-only
    one: root writes through file permissions, so the write is refused here)."""
    import pathlib

    from hpcad.doctor import run

    def refused(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    pathlib.Path.write_text = refused
    sys.exit(run())


FAULTS = {f.__name__: f for f in (user_exception, kernel_exception, budget_one_rank,
                                  different_budgets, different_kernels, truncated,
                                  doctor_read_only)}

if __name__ == "__main__":
    FAULTS[sys.argv[1]](sys.argv[2])
    print(f"rank {COMM.rank}: no fault surfaced", flush=True)
