"""The 1-D heat and 2-D Jacobi stencils split over MPI ranks: each rank holds its block with a
one-cell halo, exchanges the halo with its neighbours every step (MPI.PROC_NULL at the domain's
edges, whose halos are fixed boundary values) and the loss is the global sum of squares
(an allreduce). `split` and `local_block` cut a global array into this rank's block."""
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
