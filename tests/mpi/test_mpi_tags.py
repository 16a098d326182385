"""Derivative messages of a Sendrecv travel with exact tags (under mpiexec, 2 and 3 ranks).
The tangent and the adjoint of a message received with ANY_TAG (mpi4py's default recvtag)
go with the tag it came with, and the adjoint coming back to the sender is received with
the send tag: never with ANY_TAG, which could match another message from the same peer.
Before, the adjoint went back with the receiver's own send tag and was received with
ANY_TAG: a rank receiving with an exact tag from a peer receiving with ANY_TAG, or an Irecv
posted across the Sendrecv, hung in reverse mode. Each case compares reverse and forward
mode with central differences of the global loss computed by the plain Python function on
mpi4py."""
import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from tests.mpi import BACKENDS

COMM = MPI.COMM_WORLD


@ad.kernel
def exact_and_any(x, comm):
    """Ranks 0 and 1 swap x; rank 0 receives with an exact tag, rank 1 with ANY_TAG, and
    their send tags differ (other ranks take no part)."""
    rank = comm.Get_rank()
    y = np.zeros(x.shape[0])
    if rank == 0:
        comm.Sendrecv(x, 1, 5, y, 1, 7)
    elif rank == 1:
        comm.Sendrecv(x, 0, 7, y, 0)
    s = 0.0
    for i in range(y.shape[0]):
        s += y[i] * y[i] * (i + 1.0) + x[i] * y[i]
    return s


@ad.kernel
def irecv_across(x, z, comm):
    """Rank 0 posts an Irecv (tag 2) before a Sendrecv receiving with ANY_TAG from rank 1,
    which sends an Isend (tag 1) and then its Sendrecv's message (tag 2): MPI matches the
    Isend's message to the ANY_TAG receive and the Sendrecv's to the Irecv."""
    rank = comm.Get_rank()
    u = np.zeros(x.shape[0])
    w = np.zeros(x.shape[0])
    if rank == 0:
        req = comm.Irecv(u, 1, 2)
        comm.Sendrecv(z, 1, 3, w, 1)
        req.Wait()
    elif rank == 1:
        req = comm.Isend(x, 0, 1)
        comm.Sendrecv(z, 0, 2, w, 0)
        req.Wait()
    s = 0.0
    for i in range(x.shape[0]):
        s += (i + 1.0) * u[i] * u[i] + (i + 2.0) * w[i] * w[i] * w[i] + x[i] * z[i]
    return s


@ad.kernel
def ring_steps(x, nsteps, comm):
    """A ring shift per step, received with ANY_TAG, each rank sending with a tag of its
    own that changes every step (the received tags are saved for the reverse sweep)."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    y = np.zeros(x.shape[0])
    s = 0.0
    for t in range(nsteps):
        comm.Sendrecv(x, (rank + 1) % size, 10 * t + rank, y, (rank - 1 + size) % size)
        for i in range(x.shape[0]):
            x[i] = 0.5 * x[i] + y[i] * y[i] * 0.25
            s += (t + 1.0) * x[i] * y[i]
    return s


def _global(kernel, args):
    """The global loss (the sum over the ranks) of the plain Python function on mpi4py."""
    mine = kernel.py_func(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    return COMM.allreduce(float(mine))


def _check(kernel, args, argnum, backend, h=1e-6):
    rng = np.random.default_rng(11 + COMM.rank)
    v = rng.standard_normal(args[argnum].shape)

    def shifted(step):
        a = list(args)
        a[argnum] = args[argnum] + step * v
        return _global(kernel, a)

    fd = (shifted(h) - shifted(-h)) / (2 * h)
    kernel.backend = backend
    try:
        g = ad.grad(kernel, argnums=argnum)(*args)
        tangents = [np.zeros_like(a) if isinstance(a, np.ndarray) else None for a in args]
        tangents[argnum] = v
        _, t = ad.jvp(kernel, args, tangents)
    finally:
        kernel.backend = None
    reverse = COMM.allreduce(float(np.sum(g * v)))
    forward = COMM.allreduce(float(t))
    assert reverse == pytest.approx(fd, rel=1e-6, abs=1e-8)
    assert forward == pytest.approx(fd, rel=1e-6, abs=1e-8)
    assert forward == pytest.approx(reverse, rel=1e-12, abs=1e-12)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120, method="thread")   # a hang in MPI (C) fails too
@pytest.mark.parametrize("backend", BACKENDS)
def test_exact_tag_on_one_rank_any_tag_on_the_other(backend):
    x = np.random.default_rng(COMM.rank).standard_normal(4)
    _check(exact_and_any, (x, COMM), 0, backend)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120, method="thread")   # a hang in MPI (C) fails too
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("argnum", [0, 1])
def test_any_tag_sendrecv_beside_a_pending_irecv(argnum, backend):
    rng = np.random.default_rng(20 + COMM.rank)
    x, z = rng.standard_normal(4), rng.standard_normal(4)
    _check(irecv_across, (x, z, COMM), argnum, backend)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120, method="thread")   # a hang in MPI (C) fails too
@pytest.mark.parametrize("backend", BACKENDS)
def test_any_tag_ring_with_tags_changing_every_step(backend):
    x = np.random.default_rng(30 + COMM.rank).standard_normal(3)
    _check(ring_steps, (x, 4, COMM), 0, backend)
