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
from hpcad.kernels.mpi_stencils import heat_local, split


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
