"""Nonblocking collectives and request completion under mpiexec (2 and 3 ranks, launched by
tests/test_mpi_launch.py): Iallreduce, Ibcast, Ireduce, Iallgather and the completion calls
(Wait, Waitall, Waitany, Waitsome, Test, Testall, Testany; numba-mpi's isend, irecv, wait,
waitall, waitany, test, testall, testany) against plain Python and central finite
differences, forward and reverse, on both backends, and at width 3; hpcad's deterministic
completion order; the errors for what it cannot complete at a known point."""
import math

import numba_mpi
import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.cli import specialization
from hpcad.errors import DifferentiationError, UnsupportedConstruct
from hpcad.ir.core import walk
from hpcad.ir.effects import reads, writes
from hpcad.passes.replication import replication_types
from tests.ad.width_check import check_forward, check_reverse
from tests.mpi import nonblocking_kernels as nk

COMM = MPI.COMM_WORLD
BACKENDS = ["interp", pytest.param("numba", marks=pytest.mark.slow)]
# numba compiles each derivative on every rank (seconds apiece): it runs the kernels that
# cover every op once (icollectives: the four collectives; numba_mpi_requests: isend, irecv
# and the completions, which lower to waits), its width check the collectives'
NUMBA_CASES = ("iallreduce_overlap", "icollectives", "numba_mpi_requests")
NUMBA_WIDE = ("iallreduce_overlap", "icollectives")


def _cases(numba_cases):
    return [(case, "interp") for case in sorted(nk.CASES)] + \
        [pytest.param(case, "numba", marks=pytest.mark.slow) for case in numba_cases]


def _args(case, seed=100):
    kernel, make, takes_comm = nk.CASES[case]
    args = make(np.random.default_rng(seed + COMM.rank))
    return kernel, args + ((COMM,) if takes_comm else ())


def _copies(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def _direction(args):
    rng = np.random.default_rng(200 + COMM.rank)
    return tuple(rng.standard_normal(a.shape) if isinstance(a, np.ndarray) else None
                 for a in args)


def _fd(kernel, args, d, h=1e-6):
    def at(sign):
        return kernel.py_func(*[a + sign * h * t if t is not None else a
                                for a, t in zip(_copies(args), d, strict=True)])
    return (at(1.0) - at(-1.0)) / (2 * h)


def _rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case, backend", _cases(NUMBA_CASES))
def test_primal_forward_and_reverse_match_finite_differences(case, backend):
    """Every output is the same on every rank (one global output): the forward tangent is
    its directional derivative, the reverse cotangents summed over ranks give it too."""
    kernel, args = _args(case)
    plain = kernel.py_func(*_copies(args))
    kernel.backend = backend
    try:
        assert _rel(kernel(*_copies(args)), plain) <= 1e-12
    finally:
        kernel.backend = None
    d = _direction(args)
    fd = _fd(kernel, args, d)
    _, tangent = ad.jvp(kernel, args, d, backend=backend)
    assert _rel(tangent, fd) <= 1e-6, (COMM.rank, tangent, fd)
    _, pullback = ad.vjp(kernel, *args, backend=backend)
    local = sum(float(np.sum(c * t)) for c, t in zip(pullback(1.0), d, strict=True)
                if c is not None)
    assert _rel(COMM.allreduce(local), fd) <= 1e-6, (COMM.rank, local, fd)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case, backend", _cases(NUMBA_WIDE))
def test_width_3_equals_separate_calls(case, backend):
    kernel, args = _args(case, seed=400)
    rng = np.random.default_rng(500 + COMM.rank)
    check_forward(kernel, args, 3, backend, rng)
    check_reverse(kernel, args, 3, backend, rng)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_receive_buffer_is_written_at_the_wait_and_replicated_after_it():
    """The optimized IR keeps every load of the Iallreduce's receive buffer after its wait
    (the wait writes it, ir/effects.py), and the result read from it is replicated."""
    kernel, args = _args("iallreduce_overlap")
    spec = specialization(kernel, "float64[::1], !comm")
    fn = spec.primal
    wait = next(o for o in walk(fn.body) if o.name == "mpi.wait")
    call = wait.operands[0].owner
    glob, loc = call.operands[1], call.operands[0]
    assert writes(wait) == [glob] and reads(wait) == [loc]
    block = wait.parent
    at = block.ops.index(wait)
    for k, op in enumerate(block.ops):
        if any(o.name == "mem.load" and o.operands[0] is glob for o in walk_op(op)):
            assert k > at, "a load of the receive buffer moved above its wait"
    [result] = replication_types(fn).results
    assert result.one_global_output and result.comm is fn.args[1]


def walk_op(op):
    yield op
    for region in op.regions:
        yield from walk(region)


@ad.kernel
def completion_order(x, comm):
    """Waitany completes the lowest-index active request (its index; MPI.UNDEFINED when none
    is active), Test/Testall/Testany complete theirs and say so, Waitsome completes every
    active one: the same on every rank and every run."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    a = np.zeros(1)
    b = np.zeros(1)
    c = np.zeros(1)
    a[0] = x[0]
    r1 = comm.Iallreduce(a, b)
    r2 = comm.Ibcast(a, 0)
    first = MPI.Request.Waitany([r1, r2])
    second = MPI.Request.Waitany([r1, r2])
    none = MPI.Request.Waitany([r1, r2])
    r3 = comm.Iallreduce(b, c)
    flag = r3.Test()
    out = np.zeros(1)
    got = np.zeros(1)
    r4 = comm.Irecv(got, (rank - 1 + size) % size, 3)
    r5 = comm.Isend(a, (rank + 1) % size, 3)
    index, any_flag = MPI.Request.Testany([r4, r5])
    done = MPI.Request.Testall([r4, r5])
    r6 = comm.Irecv(out, (rank + 1) % size, 4)
    r7 = comm.Isend(a, (rank - 1 + size) % size, 4)
    some = MPI.Request.Waitsome([r6, r7])
    code = first * 1000 + second * 100 + index * 10 + len(some)
    ok = flag and any_flag and done and none == MPI.UNDEFINED
    return code + (0.5 if ok else 0.0) + 0.0 * (c[0] + got[0] + out[0])


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_completion_order_is_deterministic(backend):
    completion_order.backend = backend
    try:
        assert completion_order(np.ones(1), COMM) == 102.5
    finally:
        completion_order.backend = None


@ad.kernel
def polling_loop(x, comm):
    a = np.zeros(1)
    b = np.zeros(1)
    a[0] = x[0] * x[0]
    r = comm.Iallreduce(a, b)
    polls = 0
    while not r.Test():
        polls += 1
    return b[0] + polls


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_a_polling_loop_runs_zero_times():
    x = np.full(1, 3.0)
    assert polling_loop(x, COMM) == 9.0 * COMM.size


@ad.kernel
def waitany_in_loop(x, comm):
    a = np.zeros(1)
    b = np.zeros(1)
    c = np.zeros(1)
    r1 = comm.Iallreduce(x, b)
    r2 = comm.Iallreduce(x, c)
    s = 0.0
    for k in range(2):
        i = MPI.Request.Waitany([r1, r2])  # error here
        s += i
    return s + a[0]


@ad.kernel
def waitany_in_branch(x, comm):
    b = np.zeros(1)
    c = np.zeros(1)
    r1 = comm.Iallreduce(x, b)
    r2 = comm.Iallreduce(x, c)
    i = 0
    if x[0] > 0.0:
        i = MPI.Request.Waitany([r1, r2])  # error here
    MPI.Request.Waitall([r1, r2])
    return b[0] + c[0] + i


@ad.kernel
def wait_in_loop(x, comm):
    b = np.zeros(1)
    r = comm.Iallreduce(x, b)
    s = 0.0
    for k in range(2):
        r.Wait()  # error here
        s += b[0]
    return s


@ad.kernel
def wait_in_branch_in_loop(x, comm):
    b = np.zeros(1)
    r = comm.Iallreduce(x, b)
    s = 0.0
    for k in range(2):
        if k == 1:
            r.Wait()
        s += b[0]
    return s


@ad.kernel
def waited_in_branch_then_again(x, comm):
    b = np.zeros(1)
    r = comm.Iallreduce(x, b)
    if x[0] > 0.0:
        r.Wait()
    r.Wait()  # error here
    return b[0]


@ad.kernel
def strided_iallreduce(u, comm):
    b = np.zeros(u.shape[0])
    r = comm.Iallreduce(u[:, 0], b)  # error here
    r.Wait()
    return b[0]


@ad.kernel
def list_of_numbers(x, comm):
    w = [1.0, 2.0]  # error here
    return x[0] * w[0]


@ad.kernel
def requests_appended(x, comm):
    rank = comm.Get_rank()
    size = comm.Get_size()
    got = np.zeros(1)
    reqs = []   # error here
    reqs.append(comm.Irecv(got, (rank - 1 + size) % size, 5))
    reqs.append(comm.Isend(x, (rank + 1) % size, 5))
    MPI.Request.Waitall(reqs)
    return got[0] * x[0]


@ad.kernel
def requests_chosen_by_branch(x, comm):
    got = np.zeros_like(x)
    if comm.Get_rank() == 0:
        r1 = comm.Isend(x, 1, 11)
        r2 = comm.Irecv(got, 1, 22)
    else:
        r1 = comm.Isend(x, 0, 22)
        r2 = comm.Irecv(got, 0, 11)
    MPI.Request.Waitall([r1, r2])  # error here
    return got[0] * x[0]


@ad.kernel
def numba_mpi_request_array(x, comm):
    got = np.zeros_like(x)
    reqs = np.zeros((2,), dtype=numba_mpi.RequestType)  # error here
    status, reqs[0:1] = numba_mpi.isend(x, 1 - numba_mpi.rank(), 11)
    status, reqs[1:2] = numba_mpi.irecv(got, 1 - numba_mpi.rank(), 11)
    numba_mpi.waitall(reqs)
    return got[0] * x[0]


@ad.kernel
def request_stored_in_an_int_array(x, comm):
    got = np.zeros_like(x)
    reqs = np.zeros(2, dtype=np.int32)
    status, r = numba_mpi.irecv(got, 1 - numba_mpi.rank(), 11)
    reqs[0] = r  # error here
    numba_mpi.wait(r)
    return got[0] * x[0]


@ad.kernel
def iallreduce_max(x, comm):
    b = np.zeros(1)
    r = comm.Iallreduce(x, b, op=MPI.MAX)
    r.Wait()
    return b[0]


@ad.kernel
def isend_waited_in_branch(x, comm):
    rank = comm.Get_rank()
    size = comm.Get_size()
    got = np.zeros(1)
    r1 = comm.Irecv(got, (rank - 1 + size) % size, 5)
    r2 = comm.Isend(x, (rank + 1) % size, 5)
    r2.Wait()
    if size > 1:
        r1.Wait()
    return math.sin(got[0])


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kernel, error, words", [
    (waitany_in_loop, UnsupportedConstruct, "waitany in a loop that its request's call"),
    (waitany_in_branch, UnsupportedConstruct, "waitany in a loop or branch that its requests"),
    (waited_in_branch_then_again, UnsupportedConstruct, "may have completed already"),
    (list_of_numbers, UnsupportedConstruct, "a list literal"),
    (requests_appended, UnsupportedConstruct, "a list of requests filled by append"),
    (wait_in_loop, UnsupportedConstruct, "wait in a loop that its request's call is outside"),
    (wait_in_branch_in_loop, UnsupportedConstruct, "wait in a loop that its request's call"),
    (polling_loop, DifferentiationError, "would complete the request again"),
    (requests_chosen_by_branch, UnsupportedConstruct,
     "`MPI.Request.Waitall` of a request that an `if` or a loop above chose"),
    (numba_mpi_request_array, UnsupportedConstruct,
     "an array of MPI requests (numba_mpi.RequestType)"),
    (request_stored_in_an_int_array, UnsupportedConstruct,
     "using an MPI request where a number is expected"),
    (iallreduce_max, DifferentiationError, "max-reduction is not supported"),
    (isend_waited_in_branch, DifferentiationError, "wait is in another block (a branch)"),
])
def test_what_hpcad_cannot_complete_at_a_known_point_is_an_error(kernel, error, words):
    x = np.ones(1)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        ad.grad(kernel, backend="interp")(x, COMM)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_a_strided_buffer_of_a_nonblocking_collective_is_an_error():
    with pytest.raises(UnsupportedConstruct, match="non-contiguous array"):
        strided_iallreduce(np.ones((3, 2)), COMM)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_checkpointed_time_loop_with_iallreduce_has_the_same_gradient():
    """Recomputed steps post their Iallreduce and wait again on every rank (revolve)."""
    kernel, args = _args("iallreduce_overlap")
    ref = ad.grad(kernel, backend="interp")(*args)
    for k in (ad.checkpoint(kernel, snapshots=1),
              ad.checkpoint(kernel, snapshots=1, schedule="revolve")):
        np.testing.assert_allclose(ad.grad(k, backend="interp")(*args), ref, rtol=1e-13)
