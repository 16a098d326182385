"""Kernels of tests/mpi/test_mpi_branches.py: one collective reached through rank-dependent
branches, with different buffers per branch, where only some ranks' buffers depend on x.
Every rank must still post the same derivative messages (passes/activity.py groups the
buffers of calls that match one another). Each returns a per-rank value."""
import math

import numpy as np
from mpi4py import MPI

import hpcad as ad


@ad.kernel
def reduce_in_place(x, comm):
    """The root reduces in place into a buffer of constants; the others send x's squares
    and pass None."""
    n = x.shape[0]
    r = np.zeros(n)
    if comm.Get_rank() == 0:
        r[:] = 1.0
        comm.Reduce(MPI.IN_PLACE, r, op=MPI.SUM, root=0)
    else:
        y = np.empty(n)
        y[:] = x * x
        comm.Reduce(y, None, op=MPI.SUM, root=0)
    s = 0.0
    for i in range(n):
        s += r[i] * r[i] + math.sin(x[i])
    return s


@ad.kernel
def gather_none(x, comm):
    """The root gathers constants of its own beside the others' sin(x); None off the root."""
    n, size = x.shape[0], comm.Get_size()
    g = np.zeros(n * size)
    if comm.Get_rank() == 0:
        mine = np.ones(n)
        comm.Gather(mine, g, root=0)
    else:
        y = np.empty(n)
        y[:] = np.sin(x)
        comm.Gather(y, None, root=0)
    s = 0.0
    for i in range(n * size):
        s += g[i] * g[i] * (i + 1.0)
    for i in range(n):
        s += x[i] * x[i]
    return s


@ad.kernel
def bcast_branches(x, comm):
    """The root broadcasts x's cubes from one buffer; the others receive into another."""
    n = x.shape[0]
    s = 0.0
    if comm.Get_rank() == 0:
        b = np.empty(n)
        b[:] = x * x * x
        comm.Bcast(b, root=0)
        for i in range(n):
            s += b[i]
    else:
        c = np.zeros(n)
        comm.Bcast(c, root=0)
        for i in range(n):
            s += math.cos(c[i]) * x[i]
    return s


@ad.kernel
def lower_case_branches(x, comm):
    """Lower-case bcast and allreduce with a constant on some ranks, x on the others."""
    if comm.Get_rank() == 0:
        v = comm.bcast(x[0] * x[1], root=0)
        t = comm.allreduce(2.0)
    else:
        v = comm.bcast(0.5, root=0)
        t = comm.allreduce(x[0] * x[0])
    return v * x[1] + t * t + math.sin(x[0])


@ad.kernel
def scatter_none(x, comm):
    """The root scatters x's squares; the others pass None as the send buffer and receive
    into a buffer of their own."""
    n, size = x.shape[0], comm.Get_size()
    s = 0.0
    if comm.Get_rank() == 0:
        pieces = np.empty(n * size)
        for i in range(n * size):
            pieces[i] = x[i % n] * x[i % n] * (i + 1.0)
        mine = np.zeros(n)
        comm.Scatter(pieces, mine, root=0)
        for i in range(n):
            s += mine[i] * x[i]
    else:
        theirs = np.zeros(n)
        comm.Scatter(None, theirs, root=0)
        for i in range(n):
            s += math.sin(theirs[i]) + x[i]
    return s


CASES = {"reduce_in_place": reduce_in_place, "gather_none": gather_none,
         "bcast_branches": bcast_branches, "lower_case_branches": lower_case_branches,
         "scatter_none": scatter_none}


@ad.kernel
def bcast_constant_argument(x, c, comm):
    """Two broadcasts, one of x's squares, one of the argument c."""
    n = x.shape[0]
    b = np.empty(n)
    b[:] = x * x
    comm.Bcast(b, root=0)
    comm.Bcast(c, root=0)
    s = 0.0
    for i in range(n):
        s += b[i] * c[i]
    return s
