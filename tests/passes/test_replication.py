"""Replication types (passes/replication.py). A value read from a collective's receive
buffer, at an index that is the same everywhere, with no other write in between and no
rank-dependent control flow, is replicated, and so is what declared parameters compute; what
a rank adds to a sum over the ranks is partial; anything else that may differ between ranks
is per-rank. (On one rank: the analysis reads the IR only.)"""
import math
import os
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.ir import parse_function, print_function
from hpcad.ir.core import walk
from hpcad.passes.replication import Kind, Replication, replication_types
from hpcad.passes.replication_notes import describe, notes


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


# -- the three kinds, declared parameters, the adjoint's kind -------------------------------
@ad.kernel
def shares_summed(x, theta, nit, comm):
    loc = np.zeros(1)
    glob = np.zeros(1)
    s = 0.0
    for it in range(nit):
        loc[0] = x[0] * theta[0]
        comm.Allreduce(loc, glob, op=MPI.SUM)
        s += glob[0]
    top = comm.allreduce(s * x[1], op=MPI.MAX)
    return comm.allreduce(x[0] * x[0]) + 0.5 * theta[0] * theta[0] + top


def _types(kernel, params=()):
    spec = kernel.specialize((np.linspace(0.5, 1.0, 3), np.ones(2), 3, MPI.COMM_WORLD))
    return spec.primal, replication_types(spec.primal, params)


def _op(fn, name, k=0):
    return [op for op in walk(fn.body) if op.name == name][k]


def test_a_sum_reductions_operand_is_partial_and_its_result_replicated():
    fn, types = _types(shares_summed)
    summed = _op(fn, "mpi.allreduce_scalar", 1)
    assert types.of(summed.operands[0]).kind is Kind.PARTIAL
    assert types.of(summed.result).kind is Kind.REPLICATED
    assert types.of(summed.result).comm is fn.args[-1]
    reduction = _op(fn, "mpi.allreduce")
    loc, glob = reduction.operands[:2]
    buffers = types.buffers[reduction]   # glob: written in a loop of per-rank trip count
    assert buffers[loc].kind is Kind.PARTIAL and buffers[glob].kind is Kind.PER_RANK
    top = _op(fn, "mpi.allreduce_scalar", 0)   # a max is no sum: its operand stays per-rank
    assert top.attrs["op"] == "max" and types.of(top.operands[0]).kind is Kind.PER_RANK


def test_declared_parameters_are_replicated_and_so_is_what_they_compute():
    fn, types = _types(shares_summed)
    assert [r.kind for r in types.arguments[:3]] == [Kind.PER_RANK] * 3
    assert types.results[0].kind is Kind.PER_RANK   # theta's penalty may differ per rank
    fn, types = _types(shares_summed, params=(1, 2))
    assert [r.kind for r in types.arguments[:3]] == [Kind.PER_RANK, Kind.REPLICATED,
                                                     Kind.REPLICATED]
    assert types.results[0].one_global_output
    (glob,) = [a for a, r in types.buffers[_op(fn, "mpi.allreduce")].items()
               if r.kind is Kind.REPLICATED]   # the loop's trip count is declared the same
    assert glob is _op(fn, "mpi.allreduce").operands[1]


@ad.kernel
def broadcast_each_step(u, p, nsteps, comm):
    for t in range(nsteps):
        if comm.Get_rank() == 0:
            p[0] = p[0] * 0.9
        comm.Bcast(p, root=0)
        for i in range(u.shape[0]):
            u[i] = u[i] * p[0]
    return comm.allreduce(u[0]) + p[0]


def test_a_loop_that_replicates_a_result_is_taken_to_run_and_listed():
    """p is per-rank on entry and replicated after any step: with the trip count the same
    on every rank the result is one global output on the assumption that the time loop
    runs (the derivative asserts it: tests/mpi/test_replication_types.py), and only that
    loop is listed (the inner loop's bounds are the same on every rank too, but what it
    leaves changes nothing counted); with a per-rank trip count nothing is assumed."""
    spec = broadcast_each_step.specialize((np.ones(3), np.ones(1), 2, MPI.COMM_WORLD))
    fn = spec.primal
    types = replication_types(fn, (), uniform=(0, 2))
    time_loop = [op for op in fn.body.ops if op.name == "scf.for"]
    assert types.results[0].one_global_output and list(types.assumed) == time_loop
    types = replication_types(fn)
    assert not types.results[0].one_global_output and types.assumed == ()


@ad.kernel
def reduced_each_step(x, nsteps, comm):
    m = x[0]
    for t in range(nsteps):
        m = comm.allreduce(m * 0.5 + x[1], op=MPI.MAX)
    return m


def test_a_scalar_a_loop_replicates_is_replicated_after_it():
    spec = reduced_each_step.specialize((np.ones(3), 2, MPI.COMM_WORLD))
    types = replication_types(spec.primal, (), uniform=(1,))
    assert types.results[0].one_global_output and len(types.assumed) == 1


@ad.kernel
def broadcast_slice_read(x, theta, comm):
    comm.Bcast(theta[0:2], root=0)
    return comm.allreduce(x[0]) * theta[0] + theta[1]


@ad.kernel
def broadcast_row_read(x, theta, comm):
    comm.Bcast(theta[0, :], root=0)
    return comm.allreduce(x[0]) * theta[0, 2]


@ad.kernel
def broadcast_slice_read_outside(x, theta, comm):
    comm.Bcast(theta[0:2], root=0)
    return comm.allreduce(x[0]) * theta[2]


@ad.kernel
def broadcast_row_read_elsewhere(x, theta, comm):
    comm.Bcast(theta[0, :], root=0)
    return comm.allreduce(x[0]) * theta[1, 0]


@ad.kernel
def broadcast_slice_then_written(x, theta, comm):
    comm.Bcast(theta[0:2], root=0)
    theta[1] = x[0]
    return comm.allreduce(x[0]) * theta[0]


@pytest.mark.parametrize("kernel, replicated", [
    (broadcast_slice_read, True), (broadcast_row_read, True),
    (broadcast_slice_read_outside, False), (broadcast_row_read_elsewhere, False),
    (broadcast_slice_then_written, False)], ids=lambda k: getattr(k, "__name__", str(k)))
def test_elements_of_a_broadcast_slice_are_replicated(kernel, replicated):
    """A collective into a slice of an argument (`comm.Bcast(theta[0:2], root=0)`) makes
    the slice's elements replicated: a load at constant indices inside its bounds is, one
    outside them, or after another write to the array, is not."""
    theta = np.ones((2, 3)) if "row" in kernel.__name__ else np.ones(3)
    spec = kernel.specialize((np.ones(3), theta, MPI.COMM_WORLD))
    assert replication_types(spec.primal).results[0].one_global_output is replicated


def test_an_adjoints_kind_is_the_dual_of_its_values():
    comm = shares_summed.specialize((np.ones(3), np.ones(2), 3, MPI.COMM_WORLD)).primal.args[-1]
    replicated, partial = Replication(Kind.REPLICATED, comm), Replication(Kind.PARTIAL, comm)
    assert replicated.adjoint() == partial and partial.adjoint() == replicated
    assert Replication(Kind.PER_RANK).adjoint() == Replication(Kind.PER_RANK)


def test_numba_mpi_kernels_run_on_comm_world():
    from tests.mpi.mpi_kernels import numba_mpi_calls
    spec = numba_mpi_calls.specialize((np.ones(3), 0.5))
    types = replication_types(spec.primal)
    assert types.communicator.owner.name == "mpi.world"
    assert types.results[0].one_global_output


def test_a_kernel_without_a_communicator_has_no_replication_to_describe():
    @ad.kernel
    def local(x, w):
        return w * x[0]
    spec = local.specialize((np.ones(2), 1.0))
    types = replication_types(spec.primal, params=(1,))
    assert types.communicator is None and describe(types, spec.arg_names) == []
    assert not types.results[0].one_global_output


def test_show_ir_prints_the_kinds_as_comments_the_parser_skips():
    """The annotated IR is pinned in tests/passes/golden (HPCAD_UPDATE_GOLDEN=1 rewrites it)
    and reads back as the IR itself."""
    fn, types = _types(shares_summed, params=(1,))
    text = print_function(fn, notes=notes(types, (1,)))
    golden = Path(__file__).parent / "golden" / "shares_summed.notes.ir"
    if os.environ.get("HPCAD_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()
    assert "%loc partial over %comm" in text and "%theta replicated over %comm (params)" in text
    assert print_function(parse_function(text)) == print_function(fn)
