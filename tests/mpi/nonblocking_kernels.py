"""Kernels with nonblocking collectives and request completion (tests/mpi/
test_mpi_nonblocking.py): Iallreduce overlapping a local update in a time loop, Ibcast,
Ireduce and Iallgather completed by Waitany, Test and Waitall, an Iallreduce waited in a
branch, point-to-point requests completed by Waitany/Testall/Waitsome/Testany, and
numba-mpi's request functions. Every
output is the same on every rank (a scalar allreduce or an Iallreduce's receive buffer) and
does not depend on which request MPI completes first (plain Python, the finite differences'
reference, may complete them in any order)."""
import math

import numba_mpi
import numpy as np
from mpi4py import MPI

import hpcad as ad


@ad.kernel
def iallreduce_overlap(x, comm):
    """A time loop: each step's dot product is reduced by Iallreduce while the local update
    that does not need it runs; the reduced value is used after the wait."""
    n = x.shape[0]
    u = np.empty(n)
    for i in range(n):
        u[i] = x[i]
    loc = np.zeros(1)
    glob = np.zeros(1)
    s = 0.0
    for step in range(3):
        loc[0] = 0.0
        for i in range(n):
            loc[0] += u[i] * u[i]
        req = comm.Iallreduce(loc, glob, op=MPI.SUM)
        for i in range(n):   # overlaps the reduction
            u[i] = u[i] + 0.1 * math.sin(u[i] + step)
        req.Wait()
        for i in range(n):
            u[i] = u[i] / (1.0 + 0.05 * glob[0])
        s += glob[0] * (step + 1.0)
    t = 0.0
    for i in range(n):
        t += u[i] * u[i] * u[i]
    return s + comm.allreduce(t, op=MPI.SUM)


@ad.kernel
def icollectives(x, comm):
    """Ibcast, Iallgather and Ireduce posted together; Waitany (the Ibcast, in hpcad),
    Test (the Iallgather) and a Waitall of a list bound to a name (the rest) complete them."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    b = np.zeros(2)
    b[0] = x[0] * x[1]
    b[1] = math.sin(x[2])
    r1 = comm.Ibcast(b, size - 1)
    part = np.zeros(2)
    part[0] = x[1] * x[1]
    part[1] = x[3] * x[0]
    whole = np.zeros(2 * size)
    r2 = comm.Iallgather(part, whole)
    red = np.zeros(2)
    r3 = comm.Ireduce(part, red, op=MPI.SUM, root=0)
    reqs = [r1, r2, r3]
    MPI.Request.Waitany(reqs)
    r2.Test()
    MPI.Request.Waitall(reqs)
    s = 0.0
    for i in range(2):
        s += b[i] * b[i] * x[i]
    for i in range(2 * size):
        s += (i + 1.0) * whole[i] * whole[i]
    if rank == 0:
        s += red[0] * red[1]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def ring_requests(x, comm):
    """Ring exchanges completed by Waitany + Testall, then by Waitsome + Testany (each
    followed by a Waitall, which MPI needs and hpcad finds nothing left to do for)."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    out = np.zeros(2)
    got = np.zeros(2)
    out[0] = x[0] * x[1]
    out[1] = x[2]
    r1 = comm.Irecv(got, (rank - 1 + size) % size, 7)
    r2 = comm.Isend(out, (rank + 1) % size, 7)
    MPI.Request.Waitany([r1, r2])
    MPI.Request.Testall([r1, r2])
    MPI.Request.Waitall([r1, r2])   # (plain MPI's Testall may leave them active)
    back = np.zeros(2)
    mine = np.zeros(2)
    mine[0] = got[0] * got[1]
    mine[1] = x[3] * got[0]
    r3 = comm.Irecv(back, (rank + 1) % size, 8)
    r4 = comm.Isend(mine, (rank - 1 + size) % size, 8)
    MPI.Request.Waitsome([r3, r4])
    MPI.Request.Testany([r3, r4])
    MPI.Request.Waitall([r3, r4])
    s = back[0] * x[0] + back[1] * back[1] + got[1] * x[3]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def numba_mpi_requests(x):
    """numba-mpi's isend/irecv (status, request) completed by waitany, test, testall,
    testany, wait and waitall (as in ring_requests); the output from an array allreduce's
    receive buffer."""
    rank = numba_mpi.rank()
    size = numba_mpi.size()
    out = np.zeros(2)
    got = np.zeros(2)
    out[0] = x[0] * x[1]
    out[1] = math.cos(x[2])
    status, r1 = numba_mpi.irecv(got, (rank - 1 + size) % size, 9)
    status, r2 = numba_mpi.isend(out, (rank + 1) % size, 9)
    numba_mpi.waitany((r1, r2))
    numba_mpi.test(r2)
    numba_mpi.testall((r1, r2))
    numba_mpi.waitall((r1, r2))
    back = np.zeros(1)
    mine = np.zeros(1)
    mine[0] = got[0] * got[1] * x[3]
    status, r3 = numba_mpi.irecv(back, (rank + 1) % size, 10)
    status, r4 = numba_mpi.isend(mine, (rank - 1 + size) % size, 10)
    numba_mpi.testany((r3, r4))
    numba_mpi.wait(r3)
    numba_mpi.waitall((r3, r4))
    part = np.zeros(1)
    part[0] = back[0] * x[0] + got[1] * got[1]
    total = np.zeros(1)
    numba_mpi.allreduce(part, total)
    return total[0]


@ad.kernel
def iallreduce_waited_in_branches(x, comm):
    """An Iallreduce waited in either branch (its adjoint is done where the wait is), one
    branch overlapping it with local work."""
    a = np.zeros(2)
    b = np.zeros(2)
    a[0] = x[0] * x[1]
    a[1] = math.sin(x[2])
    r = comm.Iallreduce(a, b)
    s = 0.0
    if x[3] > 0.0:
        r.Wait()
        s = b[0] * b[1]
    else:
        for i in range(2):
            s += x[i] * x[i]
        r.Wait()
        s += b[0] + b[1] * b[1]
    return comm.allreduce(s, op=MPI.SUM)


# name -> (kernel, arguments before the communicator from a generator, takes comm)
CASES = {
    "iallreduce_overlap": (iallreduce_overlap, lambda r: (r.standard_normal(4) / 2,), True),
    "icollectives": (icollectives, lambda r: (r.standard_normal(4),), True),
    "ring_requests": (ring_requests, lambda r: (r.standard_normal(4),), True),
    "numba_mpi_requests": (numba_mpi_requests, lambda r: (r.standard_normal(4),), False),
    "iallreduce_waited_in_branches": (iallreduce_waited_in_branches,
                                      lambda r: (r.standard_normal(4),), True),
}
