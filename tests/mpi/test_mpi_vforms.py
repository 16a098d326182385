"""The v-form collectives (Gatherv, Scatterv, Allgatherv, Alltoallv) and the reduce-scatters
under mpiexec (2 and 3 ranks): value, forward and reverse mode against central finite
differences of the global function on both backends, width-3 batches against separate calls,
and the run-time checks of counts and displacements, which raise on every rank."""

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.errors import DifferentiationError, HpcadError, KernelTypeError, UnsupportedConstruct
from tests.ad.width_check import check_forward, check_reverse
from tests.mpi import BACKENDS, case_backends, interp_unless_all
from tests.mpi import vform_kernels as vk

COMM = MPI.COMM_WORLD
# compiled: one kernel per pair of calls (two_steps repeats them in a loop)
ON_NUMBA = ("allgather_alltoall_v", "gather_scatter_v", "reduce_scatters")


def _rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def _fd(kernel, x, d, h=1e-6):
    return (kernel.py_func(x + h * d, COMM) - kernel.py_func(x - h * d, COMM)) / (2 * h)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case, backend", case_backends(sorted(vk.CASES), ON_NUMBA))
def test_vform_derivatives_match_finite_differences(case, backend):
    """The output is an allreduce (the same on every rank): the tangent is the global
    directional derivative, and so is the sum over ranks of <cotangent, direction>."""
    kernel = vk.CASES[case]
    rng = np.random.default_rng(100 + COMM.rank)
    x, = vk.make_x(rng)
    d = np.random.default_rng(200 + COMM.rank).standard_normal(x.shape)
    fd = _fd(kernel, x, d)
    kernel.backend = backend
    try:
        assert _rel(kernel(x.copy(), COMM), kernel.py_func(x.copy(), COMM)) <= 1e-12
    finally:
        kernel.backend = None
    _, tangent = ad.jvp(kernel, (x, COMM), (d, None), backend=backend)
    assert _rel(tangent, fd) <= 1e-6, (COMM.rank, tangent, fd)
    _, pullback = ad.vjp(kernel, x, COMM, backend=backend)
    cot = pullback(1.0)[0]
    total = COMM.allreduce(float(np.sum(cot * d)))
    assert _rel(total, fd) <= 1e-6, (COMM.rank, total, fd)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case, backend", case_backends(sorted(vk.CASES),
                                                        ("allgather_alltoall_v",)))
def test_vform_batched_equals_separate_calls(case, backend):
    rng = np.random.default_rng(400 + COMM.rank)
    args = vk.make_x(rng) + (COMM,)
    kernel = vk.CASES[case]
    kernel.backend = backend   # check_reverse also calls the kernel itself
    try:
        check_forward(kernel, args, 3, backend, rng)
        check_reverse(kernel, args, 3, backend, rng)
    finally:
        kernel.backend = None


@ad.kernel
def overlapping_blocks(x, comm):
    """Receive blocks 0..2 and 1..3 overlap (at two ranks and more)."""
    size = comm.Get_size()
    counts = np.zeros(size, dtype=np.int64)
    displs = np.zeros(size, dtype=np.int64)
    for r in range(size):
        counts[r] = 2
        displs[r] = r
    full = np.zeros(size + 1)
    comm.Allgatherv(x[0:2], [full, counts, displs, MPI.DOUBLE])
    return full[0]


@ad.kernel
def negative_count(x, comm):
    """A negative count on the root only: the other ranks must raise too."""
    size = comm.Get_size()
    counts = np.zeros(size, dtype=np.int64)
    for r in range(size):
        counts[r] = 1
    if comm.Get_rank() == 0:
        counts[size - 1] = -1
    full = np.zeros(size)
    comm.Gatherv(x[0:1], [full, counts, MPI.DOUBLE], 0)
    return full[0]


@ad.kernel
def block_outside(x, comm):
    """The last rank's receive block ends past the buffer."""
    size = comm.Get_size()
    counts = np.zeros(size, dtype=np.int64)
    displs = np.zeros(size, dtype=np.int64)
    for r in range(size):
        counts[r] = 1
        displs[r] = r + 1
    out = np.zeros(size)
    comm.Alltoallv([x[0:size], counts], [out, counts, displs, MPI.DOUBLE])
    return out[0]


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel, message", [
    (overlapping_blocks, "overlap"), (negative_count, "negative"),
    (block_outside, "outside its buffer")])
def test_bad_counts_raise_on_every_rank(kernel, message, backend):
    x = np.arange(4.0)
    with pytest.raises(HpcadError, match=message if COMM.rank == 0 or kernel is not
                       negative_count else "another rank") as info:
        _run(kernel, x, backend)
    assert "test_mpi_vforms.py:" in str(info.value)


def _run(kernel, x, backend):
    kernel.backend = backend
    try:
        return kernel(x, COMM)
    finally:
        kernel.backend = None


@ad.kernel
def wrong_datatype(x, comm):
    out = np.zeros(comm.Get_size())
    comm.Allgather([x[0:1], MPI.FLOAT], out)
    return out[0]


@ad.kernel
def counts_for_plain_call(x, comm):
    counts = np.zeros(comm.Get_size(), dtype=np.int64)
    comm.Allreduce([x, counts, MPI.DOUBLE], x)
    return x[0]


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(60)
def test_buffer_specification_errors_name_the_line():
    with pytest.raises(KernelTypeError, match=r"test_mpi_vforms.py:\d+: .*MPI.FLOAT.* float64"):
        _run(wrong_datatype, np.ones(2), "interp")
    with pytest.raises(UnsupportedConstruct, match=r"test_mpi_vforms.py:\d+: counts"):
        _run(counts_for_plain_call, np.ones(2), "interp")



@ad.kernel
def allgatherv_sum_of_squares(x, comm, gap):
    """The sum of squares of an Allgatherv's receive buffer (the kernels' uneven blocks
    with one-element gaps) whose gaps hold `gap`."""
    size = comm.Get_size()
    counts = np.zeros(size, dtype=np.int64)
    displs = np.zeros(size, dtype=np.int64)
    offset = 0
    for r in range(size):
        counts[r] = (3 * r + 2) % 5
        displs[r] = offset
        offset += counts[r] + 1
    k = counts[comm.Get_rank()]
    send = np.empty(k)
    for i in range(k):
        send[i] = x[i] * x[i]
    full = np.zeros(offset + 1)
    for i in range(offset + 1):
        full[i] = gap
    comm.Allgatherv(send, [full, counts, displs, MPI.DOUBLE])
    s = 0.0
    for i in range(offset + 1):
        s += full[i] * full[i]
    return s


@ad.kernel
def allgatherv_zero_gaps(x, comm):
    return allgatherv_sum_of_squares(x, comm, 0.0)


@ad.kernel
def allgatherv_own_gaps(x, comm):
    return allgatherv_sum_of_squares(x, comm, 1.5 * x[0])


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", interp_unless_all())
@pytest.mark.parametrize("kernel, replicated", [(allgatherv_zero_gaps, True),
                                                (allgatherv_own_gaps, False)])
def test_allgatherv_result_is_replicated_only_where_the_gaps_are(kernel, replicated, backend):
    """A result read from an Allgatherv's receive buffer is one global output when the
    elements between the blocks were the same everywhere, else each rank's part of the sum
    over ranks: the sum over ranks of <cotangent, direction> is that loss's derivative."""
    x = np.random.default_rng(100 + COMM.rank).standard_normal(vk.N_X)
    d = np.random.default_rng(200 + COMM.rank).standard_normal(vk.N_X)
    fd_local = _fd(kernel, x, d)
    expected = fd_local if replicated else COMM.allreduce(fd_local)
    _, pullback = ad.vjp(kernel, x, COMM, backend=backend)
    total = COMM.allreduce(float(np.sum(pullback(1.0)[0] * d)))
    assert _rel(total, expected) <= 1e-6, (COMM.rank, total, expected)


@ad.kernel
def counts_changed_in_loop(x, comm):
    size = comm.Get_size()
    counts = np.zeros(size, dtype=np.int64)
    full = np.zeros(2 * size)
    for t in range(2):
        for r in range(size):
            counts[r] = 1 + t
        comm.Allgatherv(x[0:1 + t], [full, counts, MPI.DOUBLE])
    return full[0]


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(60)
def test_counts_changed_after_the_call_are_a_differentiation_error():
    """The adjoint reads the counts as the call did: counts refilled in a loop are an
    error naming the line, not a wrong gradient."""
    with pytest.raises(DifferentiationError, match=r"test_mpi_vforms.py:\d+: the counts"):
        _, pullback = ad.vjp(counts_changed_in_loop, np.ones(3), COMM, backend="interp")
        pullback(1.0)


@ad.kernel
def allgatherv_given_counts(x, counts, displs, comm):
    full = np.zeros(displs[-1] + counts[-1])
    comm.Allgatherv(x, [full, counts, displs, MPI.DOUBLE])
    s = 0.0
    for i in range(full.shape[0]):
        s += np.cos(full[i]) * (i + 1)
    return s


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_counts_passed_as_arguments_make_a_result_that_counts_once():
    """The counts and displacements of an Allgatherv passed as integer-array arguments, as
    mpi4py programs compute them outside: the call finds their contents the same on every
    rank, so the result, the same on every rank, is one global output (it was summed over
    the ranks: `size` times its derivative)."""
    counts = np.array([2 + r % 2 for r in range(COMM.size)], dtype=np.int64)
    displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    rng = np.random.default_rng(300 + COMM.rank)
    x, d = rng.standard_normal(counts[COMM.rank]), rng.standard_normal(counts[COMM.rank])
    k, h = allgatherv_given_counts, 1e-6
    fd = (k(x + h * d, counts, displs, COMM) - k(x - h * d, counts, displs, COMM)) / (2 * h)
    assert COMM.allgather(fd) == [fd] * COMM.size   # one value for all ranks
    g = ad.grad(k, backend="interp")(x, counts, displs, COMM)
    total = COMM.allreduce(float(np.sum(g * d)))
    assert _rel(total, fd) <= 1e-6, (COMM.rank, total, fd)
