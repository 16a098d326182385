"""Distributed kernels with the v-form collectives and the reduce-scatters on uneven blocks:
rank r owns (3 r + 2) % 5 elements (2, 0, 3 at three ranks: a zero count), placed with a
one-element gap after each block; the gaps and the tail start from values that depend on
the input, so a derivative that zeroed more than the call wrote would be wrong."""
import math

import numpy as np
from mpi4py import MPI

import hpcad as ad

N_X = 4   # every rank's input length (rank r uses its first counts[r] elements)


@ad.kernel
def gather_scatter_v(x, comm):
    """Gatherv onto rank 0 with gaps, then Scatterv of other blocks back (2-D buffers)."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    counts = np.zeros(size, dtype=np.int64)
    displs = np.zeros(size, dtype=np.int64)
    offset = 0
    for r in range(size):
        counts[r] = (3 * r + 2) % 5
        displs[r] = offset
        offset += counts[r] + 1
    k = counts[rank]
    send = np.empty(k)
    for i in range(k):
        send[i] = math.sin(x[i]) * (rank + 1.0)
    full = np.empty(offset + 1)
    for i in range(offset + 1):
        full[i] = x[0] * (i + 1.0)
    comm.Gatherv(send, [full, counts, displs, MPI.DOUBLE], root=0)
    # scatter back blocks of rows of a 2-D array: counts in elements (two per row)
    rows = np.empty((offset + 1, 2))
    for i in range(offset + 1):
        rows[i, 0] = full[i] * full[i]
        rows[i, 1] = full[i] + x[1]
    mine = np.empty((k, 2))
    comm.Scatterv([rows, (2 * counts, 2 * displs), MPI.DOUBLE], mine, 0)
    s = 0.0
    for i in range(offset + 1):
        s += full[i] * full[i] * x[2]
    for i in range(k):
        s += mine[i, 0] * x[i] + mine[i, 1] * mine[i, 1]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def allgather_alltoall_v(x, comm):
    """Allgatherv into a buffer with gaps, then Alltoallv of uneven pieces of it (send
    displacements omitted: the prefix sums) into another buffer with gaps."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    counts = np.zeros(size, dtype=np.int64)
    displs = np.zeros(size, dtype=np.int64)
    sendcounts = np.zeros(size, dtype=np.int64)
    recvcounts = np.zeros(size, dtype=np.int64)
    recvdispls = np.zeros(size, dtype=np.int64)
    offset = 0
    received = 0
    for r in range(size):
        counts[r] = (3 * r + 2) % 5
        displs[r] = offset
        offset += counts[r] + 1
        sendcounts[r] = (rank + 2 * r) % 3
        recvcounts[r] = (r + 2 * rank) % 3
        recvdispls[r] = received + 1
        received += recvcounts[r] + 1
    k = counts[rank]
    send = np.empty(k)
    for i in range(k):
        send[i] = x[i] * x[i] + rank
    full = np.empty(offset + 1)
    for i in range(offset + 1):
        full[i] = math.cos(x[3]) * (i + 1.0)
    comm.Allgatherv(send, [full, counts, displs, MPI.DOUBLE])
    out = np.empty(received + 1)
    for i in range(received + 1):
        out[i] = x[1] * (i + 2.0)
    comm.Alltoallv((full, sendcounts), [out, (recvcounts, recvdispls), MPI.DOUBLE])
    s = 0.0
    for i in range(offset + 1):
        s += full[i] * (i + 0.5) * (rank + 1.0)
    for i in range(received + 1):
        s += out[i] * out[i] * (i + 1.0)
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def reduce_scatters(x, comm):
    """Reduce_scatter of uneven blocks (a zero count), Reduce_scatter_block, Allgather."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    counts = np.zeros(size, dtype=np.int64)
    total = 0
    for r in range(size):
        counts[r] = (3 * r + 2) % 5
        total += counts[r]
    send = np.empty(total)
    for i in range(total):
        send[i] = x[i % N_X] * (i + rank + 1.0)
    mine = np.empty(counts[rank])
    comm.Reduce_scatter(send, mine, counts, op=MPI.SUM)
    blocks = np.empty(2 * size)
    for i in range(2 * size):
        blocks[i] = math.sin(x[(i + rank) % N_X]) * (i + 1.0)
    pair = np.empty(2)
    comm.Reduce_scatter_block([blocks, MPI.DOUBLE], pair, op=MPI.SUM)
    everyone = np.empty(2 * size)
    comm.Allgather(pair, everyone)
    s = 0.0
    for i in range(counts[rank]):
        s += mine[i] * mine[i] * x[i]
    for i in range(2 * size):
        s += everyone[i] * everyone[i] * (rank + 1.0)
    return comm.allreduce(s, op=MPI.SUM)



@ad.kernel
def two_steps(x, comm):
    """A time loop of two Allgatherv steps into one buffer (counts filled before the loop),
    then an Allgatherv with other counts of constants over values that depend on x."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    counts = np.zeros(size, dtype=np.int64)
    displs = np.zeros(size, dtype=np.int64)
    others = np.zeros(size, dtype=np.int64)
    offset = 0
    for r in range(size):
        counts[r] = (3 * r + 2) % 4
        others[r] = (3 * r + 3) % 4
        displs[r] = offset
        offset += counts[r] + 1
    full = np.empty(4 * size + 1)
    for i in range(4 * size + 1):
        full[i] = x[i % N_X] * (i + 1.0)
    s = 0.0
    send = np.empty(counts[rank])
    for t in range(2):
        for i in range(counts[rank]):
            send[i] = full[i + rank] * full[i] * 0.5
        comm.Allgatherv(send, [full, counts, displs, MPI.DOUBLE])
        for i in range(4 * size + 1):
            s += full[i] * (i + 1.0)
    constant = np.empty(others[rank])
    for i in range(others[rank]):
        constant[i] = rank + i + 0.5
    comm.Allgatherv(constant, [full, others, MPI.DOUBLE])
    for i in range(4 * size + 1):
        s += full[i] * full[i]
    return comm.allreduce(s, op=MPI.SUM)

def make_x(rng):
    return (rng.standard_normal(N_X),)


CASES = {"gather_scatter_v": gather_scatter_v, "allgather_alltoall_v": allgather_alltoall_v,
         "reduce_scatters": reduce_scatters, "two_steps": two_steps}
