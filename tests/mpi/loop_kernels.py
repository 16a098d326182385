"""Distributed kernels whose MPI calls sit inside a time loop (tests/mpi/test_mpi_loops.py)."""
import numpy as np
from mpi4py import MPI

import hpcad as ad


@ad.kernel
def allgather_fresh(u, nsteps, comm):
    """Allgather into a buffer allocated afresh in every step."""
    size = comm.Get_size()
    n = u.shape[0]
    for t in range(nsteps):
        allx = np.zeros(n * size)
        comm.Allgather(u, allx)
        for i in range(n):
            u[i] = 0.5 * u[i] + 0.1 * allx[i] * allx[n * size - 1 - i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def allgatherv_fresh(u, nsteps, counts, displs, comm):
    """Allgatherv into a buffer allocated afresh in every step."""
    size = comm.Get_size()
    n = u.shape[0]
    total = 0
    for r in range(size):
        total += counts[r]
    for t in range(nsteps):
        allx = np.zeros(total)
        comm.Allgatherv(u, [allx, counts, displs, MPI.DOUBLE])
        for i in range(n):
            u[i] = 0.5 * u[i] + 0.1 * allx[i] * allx[total - 1 - i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def prod_in_loop(u, nsteps, comm):
    """A PROD Allreduce in every step (hpcad gathers the factors into a scratch buffer)."""
    n = u.shape[0]
    for t in range(nsteps):
        tot = np.zeros(n)
        comm.Allreduce(u, tot, op=MPI.PROD)
        for i in range(n):
            u[i] = 0.5 * u[i] + 0.1 * tot[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def scan_in_loop(u, nsteps, comm):
    """A Scan in every step (a gather and a sum in rank order)."""
    n = u.shape[0]
    for t in range(nsteps):
        tot = np.zeros(n)
        comm.Scan(u, tot)
        for i in range(n):
            u[i] = 0.5 * u[i] + 0.1 * tot[i] * u[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def replace_halo(u, alpha, nsteps, comm):
    """A ring exchange by Sendrecv_replace (a scratch copy inside the loop) in every step."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    n = u.shape[0]
    buf = np.zeros(2)
    tmp = np.zeros(n)
    for t in range(nsteps):
        buf[0] = u[0] * u[1]
        buf[1] = u[n - 1]
        comm.Sendrecv_replace(buf, (rank + 1) % size, 4, (rank - 1 + size) % size, 4)
        for i in range(n):
            tmp[i] = u[i] + alpha * buf[i % 2] * np.cos(u[i])
        for i in range(n):
            u[i] = tmp[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return comm.allreduce(s)


@ad.kernel
def heat_final_halo(u, alpha, nsteps, comm):
    """Heat with halo exchanges in every step and once more after the loop (the loss reads
    the ghost cells)."""
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
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1]) * u[i]
        for i in range(1, n - 1):
            u[i] = tmp[i]
    comm.Sendrecv(u[n - 2:n - 1], right, 0, u[0:1], left, 0)
    comm.Sendrecv(u[1:2], left, 1, u[n - 1:n], right, 1)
    s = 0.0
    for i in range(n - 1):
        s += (u[i + 1] - u[i]) ** 2
    return comm.allreduce(s)


@ad.kernel
def rank_sweeps(u, w, nsteps, comm):
    """Each step: rank r smooths its part r + 1 times, then a ring exchange, then a sum
    over one value per rank (trip counts from the rank and the size)."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    n = u.shape[0]
    got = np.zeros(n)
    every = np.zeros(size)
    for t in range(nsteps):
        for k in range(rank + 1):
            for i in range(n):
                u[i] = u[i] + 0.1 * w * np.sin(u[i])
        comm.Sendrecv(u, (rank + 1) % size, 9, got, (rank - 1 + size) % size, 9)
        comm.Allgather(u[0:1], every)
        m = 0.0
        for r in range(size):
            m += every[r] * every[r]
        for i in range(n):
            u[i] = 0.7 * u[i] + 0.3 * got[i] + 0.01 * m
    s = 0.0
    for i in range(n):
        s += u[i] ** 2
    return comm.allreduce(s)


def _counts(size):
    return np.full(size, 3, dtype=np.int64), np.arange(size, dtype=np.int64) * 3


# name -> (kernel, arguments without the communicator from a random generator and the size)
CASES = {
    "allgather_fresh": (allgather_fresh, lambda rng, size: (rng.random(3) + 0.5, 3)),
    "allgatherv_fresh": (allgatherv_fresh,
                         lambda rng, size: (rng.random(3) + 0.5, 3, *_counts(size))),
    "prod_in_loop": (prod_in_loop, lambda rng, size: (rng.random(3) + 0.5, 3)),
    "scan_in_loop": (scan_in_loop, lambda rng, size: (rng.random(3) + 0.5, 3)),
}
