"""Which returned values are the same on every rank (passes/replication.py): a value read
from a collective's receive buffer, at an index that is the same everywhere, with no
other write in between and no rank-dependent control flow, is; anything that may differ
between ranks is per-rank. (On one rank: the analysis reads the IR only.)"""
import math

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.passes.replication import Kind, replication_types


@ad.kernel
def buffer_read(x, comm):
    loc = np.zeros(1)
    for i in range(x.shape[0]):
        loc[0] += x[i] * x[i]
    glob = np.zeros(1)
    comm.Allreduce(loc, glob, op=MPI.SUM)
    return 0.5 * glob[0] + 1.0


@ad.kernel
def gathered_sum(x, comm):
    loc = np.zeros(1)
    loc[0] = math.sin(x[0])
    seen = np.zeros(comm.Get_size())
    comm.Allgather(loc, seen)
    s = 0.0
    for r in range(seen.shape[0]):
        s += seen[r] * seen[r]
    return s


@ad.kernel
def broadcast_read(x, comm):
    buf = np.zeros(1)
    if comm.Get_rank() == 0:
        buf[0] = x[0]
    comm.Bcast(buf, root=0)
    return buf[0] * buf[0]


@ad.kernel
def while_residual(x, comm):
    loc = np.zeros(1)
    glob = np.zeros(1)
    rr = 1.0
    it = 0
    while rr > 1e-3 and it < 5:
        loc[0] = 0.0
        for i in range(x.shape[0]):
            x[i] = 0.5 * x[i]
            loc[0] += x[i] * x[i]
        comm.Allreduce(loc, glob, op=MPI.SUM)
        rr = glob[0]
        it += 1
    return rr


@ad.kernel
def mixed(x, comm):
    loc = np.zeros(1)
    loc[0] = x[0]
    glob = np.zeros(1)
    comm.Allreduce(loc, glob, op=MPI.SUM)
    return glob[0] * x[0]


@ad.kernel
def own_entry(x, comm):
    loc = np.zeros(1)
    loc[0] = x[0]
    seen = np.zeros(comm.Get_size())
    comm.Allgather(loc, seen)
    return seen[comm.Get_rank()]


@ad.kernel
def written_after(x, comm):
    loc = np.zeros(1)
    loc[0] = x[0]
    glob = np.zeros(1)
    comm.Allreduce(loc, glob, op=MPI.SUM)
    glob[0] += x[1]
    return glob[0]


@ad.kernel
def read_under_rank_branch(x, comm):
    loc = np.zeros(1)
    loc[0] = x[0]
    glob = np.zeros(1)
    comm.Allreduce(loc, glob, op=MPI.SUM)
    v = 1.0
    if comm.Get_rank() == 0:
        v = glob[0]
    return v


@ad.kernel
def summed_over_local_length(x, comm):
    seen = np.zeros(comm.Get_size())
    comm.Allgather(x[0:1], seen)
    s = 0.0
    for i in range(x.shape[0]):   # x's length may differ between ranks
        s += seen[0]
    return s


@ad.kernel
def reduced_to_root(x, comm):
    loc = np.zeros(1)
    loc[0] = x[0]
    total = np.zeros(1)
    comm.Reduce(loc, total, op=MPI.SUM, root=0)
    return total[0]


REPLICATED = [buffer_read, gathered_sum, broadcast_read, while_residual]
PER_RANK = [mixed, own_entry, written_after, read_under_rank_branch,
            summed_over_local_length, reduced_to_root]


def _returned(kernel):
    spec = kernel.specialize((np.linspace(0.5, 1.0, 3), MPI.COMM_WORLD))
    return replication_types(spec.primal).results


@pytest.mark.parametrize("kernel", REPLICATED, ids=lambda k: k.__name__)
def test_values_read_from_a_collective_buffer_are_replicated(kernel):
    (kind,) = _returned(kernel)
    assert kind.kind is Kind.REPLICATED and kind.comm.name == "comm"


@pytest.mark.parametrize("kernel", PER_RANK, ids=lambda k: k.__name__)
def test_values_that_may_differ_between_ranks_are_per_rank(kernel):
    (kind,) = _returned(kernel)
    assert not kind.one_global_output
