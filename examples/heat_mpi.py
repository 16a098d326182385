"""1-D explicit heat equation split across MPI ranks with halo exchange, differentiated.

Each rank holds its part of the domain plus one ghost cell at each end; every step exchanges
the ghost cells with the neighbours (MPI.PROC_NULL at the global ends, whose ghosts are the
fixed boundary values), then updates its interior. The loss is the global sum of squares.
hpcad differentiates the whole distributed program; the adjoint's messages go back the way
the primal's came. Rank 0 prints the loss and the gradient norms.

    mpiexec -n 2 python examples/heat_mpi.py
"""
import sys

import numpy as np
from mpi4py import MPI

import hpcad as ad


@ad.kernel
def heat_local(u, alpha, nsteps, comm):
    rank = comm.Get_rank()
    size = comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    n = u.shape[0]
    tmp = np.zeros(n)
    for step in range(nsteps):
        comm.Sendrecv(u[n - 2:n - 1], right, 0, u[0:1], left, 0)
        comm.Sendrecv(u[1:2], left, 1, u[n - 1:n], right, 1)
        for i in range(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(1, n - 1):
        s += u[i] * u[i]
    return comm.allreduce(s, op=MPI.SUM)


def split(global_u: np.ndarray, comm) -> tuple[np.ndarray, int]:
    """This rank's part of the global array with one ghost cell at each end, and the global
    index of its first owned cell. Interior cells 1..N-2 are dealt out in contiguous blocks."""
    interior = global_u.shape[0] - 2
    counts = [interior // comm.size + (r < interior % comm.size) for r in range(comm.size)]
    start = 1 + sum(counts[:comm.rank])
    return global_u[start - 1:start + counts[comm.rank] + 1].copy(), start


def main() -> int:
    comm = MPI.COMM_WORLD
    n_global, alpha, nsteps = 400, 0.25, 50
    u0 = np.sin(np.linspace(0.0, np.pi, n_global)) + 0.1
    u, start = split(u0, comm)
    loss, (du, dalpha) = ad.value_and_grad(heat_local, argnums=(0, 1))(u, alpha, nsteps, comm)
    owned = du[1:-1]
    norm = np.sqrt(comm.allreduce(float(owned @ owned)))
    dalpha = comm.allreduce(dalpha)           # alpha is the same on every rank: sum the shares
    if comm.rank == 0:
        print(f"ranks                 {comm.size}")
        print(f"loss                  {loss:.12e}")
        print(f"|d loss / d u0|       {norm:.12e}")
        print(f"d loss / d alpha      {dalpha:.12e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
