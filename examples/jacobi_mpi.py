"""2-D Jacobi iterations on a Cartesian communicator, differentiated.

The global grid is split over a 2-D process grid (MPI.Compute_dims); each rank holds its
block with a one-cell halo and exchanges halo rows and columns with its four neighbours
(`cart.Shift`; MPI.PROC_NULL at the domain's edges, whose halos are fixed boundary values).
The loss is the global sum of squares of the final state; hpcad gives each rank the gradient
with respect to its part of the initial state.

    mpiexec -n 4 python examples/jacobi_mpi.py
"""
import sys

import numpy as np
from mpi4py import MPI

import hpcad as ad
from hpcad.kernels.mpi_stencils import jacobi_local, local_block


def main() -> int:
    world = MPI.COMM_WORLD
    cart = world.Create_cart(MPI.Compute_dims(world.size, 2))
    shape, nsteps = (34, 30), 20
    x = np.linspace(0.0, 1.0, shape[0])[:, None]
    y = np.linspace(0.0, 1.0, shape[1])[None, :]
    u0 = np.sin(3.0 * x) * np.cos(2.0 * y) + 0.5
    u, _ = local_block(u0, cart)
    loss, du = ad.value_and_grad(jacobi_local, argnums=0)(u, np.zeros_like(u), nsteps, cart)
    owned = du[1:-1, 1:-1]
    norm = np.sqrt(cart.allreduce(float(np.sum(owned * owned))))
    if cart.rank == 0:
        print(f"process grid          {cart.Get_topo()[0]}")
        print(f"loss                  {loss:.12e}")
        print(f"|d loss / d u0|       {norm:.12e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
