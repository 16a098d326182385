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


@ad.kernel
def jacobi_local(u, v, nsteps, cart):
    up, down = cart.Shift(0, 1)
    left, right = cart.Shift(1, 1)
    n, m = u.shape
    for step in range(nsteps):
        cart.Sendrecv(u[n - 2, :], down, 0, u[0, :], up, 0)
        cart.Sendrecv(u[1, :], up, 1, u[n - 1, :], down, 1)
        cart.Sendrecv(u[:, m - 2], right, 2, u[:, 0], left, 2)
        cart.Sendrecv(u[:, 1], left, 3, u[:, m - 1], right, 3)
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                v[i, j] = 0.25 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1])
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                u[i, j] = v[i, j]
    s = 0.0
    for i in range(1, n - 1):
        for j in range(1, m - 1):
            s += u[i, j] * u[i, j]
    return cart.allreduce(s, op=MPI.SUM)


def blocks(total: int, parts: int) -> list[int]:
    return [total // parts + (k < total % parts) for k in range(parts)]


def local_block(global_u: np.ndarray, cart) -> tuple[np.ndarray, tuple[int, int]]:
    """This rank's block of the global interior with its one-cell halo, and the global
    index of its first owned cell."""
    dims, coords = cart.Get_topo()[0], cart.Get_coords(cart.Get_rank())
    starts = []
    for axis in range(2):
        counts = blocks(global_u.shape[axis] - 2, dims[axis])
        starts.append(1 + sum(counts[:coords[axis]]))
    counts = [blocks(global_u.shape[a] - 2, dims[a])[coords[a]] for a in range(2)]
    (r0, c0), (nr, nc) = starts, counts
    return global_u[r0 - 1:r0 + nr + 1, c0 - 1:c0 + nc + 1].copy(), (r0, c0)


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
