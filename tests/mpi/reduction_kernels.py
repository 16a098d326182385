"""Kernels of tests/mpi/test_mpi_reductions.py: MPI.IN_PLACE and None buffers, array MAX,
MIN and PROD reductions, Scan/Exscan, Sendrecv_replace, the lower-case scalar collectives
and numba-mpi's gather/scatter/allgather. Each returns a per-rank value (it reads this
rank's x), several calls to a kernel so that numba compiles few."""
import math

import numba_mpi
import numpy as np
from mpi4py import MPI

import hpcad as ad


@ad.kernel
def in_place(x, comm):
    """Allreduce, Reduce and Allgather with MPI.IN_PLACE; None receive buffers off the
    root for Reduce and Gather."""
    rank, size, n = comm.Get_rank(), comm.Get_size(), x.shape[0]
    total = np.empty_like(x)
    total[:] = x * x
    comm.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
    red = np.empty_like(x)
    red[:] = np.sin(x)
    if rank == 0:
        comm.Reduce(MPI.IN_PLACE, red, op=MPI.SUM, root=0)
    else:
        comm.Reduce(red, None, op=MPI.SUM, root=0)
    seen = np.zeros(size * n)
    for i in range(n):
        seen[rank * n + i] = x[i] * (i + 1.0)
    comm.Allgather(MPI.IN_PLACE, seen)
    everything = np.zeros(size * n)
    if rank == 0:
        comm.Gather(x, everything, root=0)
    else:
        comm.Gather(x, None, root=0)
    s = 0.0
    for i in range(n):
        s += total[i] * x[i] + red[i] * red[i] * x[i]
    for i in range(size * n):
        s += math.cos(seen[i]) * x[i % n] + everything[i] * everything[i]
    return s


@ad.kernel
def extrema(x, comm):
    """Array Allreduce and Reduce with MAX, MIN and PROD."""
    top = np.zeros_like(x)
    comm.Allreduce(x, top, op=MPI.MAX)
    low = np.zeros_like(x)
    comm.Allreduce(x, low, op=MPI.MIN)
    prod = np.zeros_like(x)
    comm.Allreduce(x, prod, op=MPI.PROD)
    rtop = np.zeros_like(x)
    comm.Reduce(x, rtop, op=MPI.MAX, root=1)
    rlow = np.zeros_like(x)
    comm.Reduce(x, rlow, op=MPI.MIN, root=0)
    rprod = np.zeros_like(x)
    comm.Reduce(x, rprod, op=MPI.PROD, root=1)
    s = 0.0
    for i in range(x.shape[0]):
        s += (top[i] * top[i] + math.sin(low[i]) + prod[i] * x[i] + rtop[i] * rlow[i]
              + rprod[i] * rprod[i])
    return s


@ad.kernel
def scans(x, comm):
    """Scan and Exscan (rank 0's Exscan buffer keeps its values), Sendrecv_replace round a
    ring."""
    rank, size = comm.Get_rank(), comm.Get_size()
    inc = np.zeros_like(x)
    comm.Scan(x, inc, op=MPI.SUM)
    exc = np.empty_like(x)
    exc[:] = np.cos(x)
    comm.Exscan(x, exc, op=MPI.SUM)
    ring = np.empty_like(x)
    ring[:] = x * x
    comm.Sendrecv_replace(ring, (rank + 1) % size, 5, (rank - 1 + size) % size, 5)
    s = 0.0
    for i in range(x.shape[0]):
        s += inc[i] * inc[i] * (i + 1.0) + math.sin(exc[i]) * x[i] + ring[i] * x[i]
    return s


@ad.kernel
def scalars(x, comm):
    """The lower-case collectives on scalars: bcast, reduce, gather, allgather, scatter,
    allreduce PROD, scan, exscan."""
    rank, size = comm.Get_rank(), comm.Get_size()
    a = x[0] * x[1]
    b = comm.bcast(a, root=1)
    r = comm.reduce(a + x[2], op=MPI.SUM, root=0)
    rm = comm.reduce(x[1], op=MPI.MAX, root=0)
    g = comm.gather(math.sin(a), root=0)
    ag = comm.allgather(x[2] * x[2])
    seq = np.zeros(size)
    for k in range(size):
        seq[k] = x[0] * (k + 1.0)
    sc = comm.scatter(seq, root=0)
    p = comm.allreduce(x[1] + 1.0, op=MPI.PROD)
    sn = comm.scan(x[2] * a)
    s = b * x[2] + sc * x[1] + p * x[0] + sn * sn
    if rank == 0:
        s += r * r + rm * x[0]
        for k in range(size):
            s += g[k] * (k + 2.0)
    e = comm.exscan(x[0] * x[0])
    if rank > 0:
        s += e * x[1]
    for k in range(size):
        s += ag[k] * x[0] * (k + 1.0)
    return s


@ad.kernel
def numba_mpi_collectives(x, w):
    """numba-mpi's gather, scatter and allgather (on COMM_WORLD), count in elements."""
    size, n = numba_mpi.size(), x.shape[0]
    everything = np.zeros(size * n)
    numba_mpi.gather(x, everything, n, 0)
    if numba_mpi.rank() == 0:
        for i in range(size * n):
            everything[i] = math.sin(everything[i]) * (i + w)
    mine = np.zeros(n)
    numba_mpi.scatter(everything, mine, n, 0)
    seen = np.zeros(size * n)
    numba_mpi.allgather(mine, seen, n)
    s = 0.0
    for i in range(size * n):
        s += seen[i] * seen[i] * x[i % n]
    return s


@ad.kernel
def numba_mpi_extrema(x):
    """numba-mpi's allreduce and reduce with Operator.MAX and MIN (integers to Python: an
    IntEnum, once lowered as a rank operand)."""
    top = np.zeros_like(x)
    numba_mpi.allreduce(x, top, numba_mpi.Operator.MAX)
    low = np.zeros_like(x)
    numba_mpi.allreduce(x, low, operator=numba_mpi.Operator.MIN)
    high = np.zeros_like(x)
    numba_mpi.reduce(x, high, numba_mpi.Operator.MAX, numba_mpi.size() - 1)
    s = 0.0
    for i in range(x.shape[0]):
        s += (i + 1.0) * top[i] * x[i] + low[i] * low[i] * (i + 3.0)
    if numba_mpi.rank() == numba_mpi.size() - 1:
        s += high[0] * high[1] + math.sin(high[2])
    return s


# name -> (kernel, its arguments before the communicator, from a generator)
CASES = {
    "in_place": (in_place, lambda rng: (rng.standard_normal(4),), True),
    "extrema": (extrema, lambda rng: (rng.standard_normal(5),), True),
    "scans": (scans, lambda rng: (rng.standard_normal(4),), True),
    "scalars": (scalars, lambda rng: (rng.standard_normal(3),), True),
    "numba_mpi": (numba_mpi_collectives, lambda rng: (rng.standard_normal(3), 0.7), False),
    "numba_mpi_extrema": (numba_mpi_extrema, lambda rng: (rng.standard_normal(4),), False),
}


@ad.kernel
def extremum_weights(x, comm):
    """A replicated loss (it reads receive buffers of collectives) of MAX and MIN results
    of four elements."""
    top = np.zeros_like(x)
    comm.Allreduce(x, top, op=MPI.MAX)
    low = np.zeros_like(x)
    comm.Allreduce(x, low, op=MPI.MIN)
    return (top[0] + 2.0 * top[1] + 3.0 * top[2] + 4.0 * top[3] + 10.0 * low[0]
            + 11.0 * low[1] + 12.0 * low[2] + 13.0 * low[3])


@ad.kernel
def product_weights(x, comm):
    """A replicated loss of PROD results of three elements."""
    prod = np.zeros_like(x)
    comm.Allreduce(x, prod, op=MPI.PROD)
    return prod[0] + 2.0 * prod[1] + 3.0 * prod[2]


@ad.kernel
def missing_values(x, comm):
    """What mpi4py gives as None off the root (reduce, gather) and on rank 0 (exscan)."""
    out = np.zeros(3)
    out[0] = comm.reduce(x[0], op=MPI.SUM, root=0)
    out[1] = comm.gather(x[0], root=0)[0]
    out[2] = comm.exscan(x[0])
    return out


def bad_in_place(x, comm):
    comm.Bcast(MPI.IN_PLACE, root=0)
    return x[0]


def bad_scan(x, comm):
    y = np.zeros_like(x)
    comm.Scan(x, y, op=MPI.MAX)
    return y[0]


def bad_count(x, w):
    everything = np.zeros(numba_mpi.size() * x.shape[0])
    numba_mpi.gather(x, everything, x.shape[0] + 1, 0)
    return everything[0] * w
