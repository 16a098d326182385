"""A distributed kernel that returns its rank's local array (halo exchanges on slices of a
local array in a time loop, its final state returned), under mpiexec with 2 and 3 ranks
(tests/test_mpi_launch.py): the primal is plain Python's on every rank; vjp with a random
cotangent per rank and jvp agree with central finite differences of the global pairing
<ct, f(x)> (summed over the ranks) and with each other, on both backends."""
import math

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad

COMM = MPI.COMM_WORLD
BACKENDS = ["interp", pytest.param("numba", marks=pytest.mark.slow)]


@ad.kernel
def halo_state(u, alpha, nsteps, comm):
    rank = comm.Get_rank()
    size = comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    n = u.shape[0]
    w = np.empty_like(u)
    for i in range(n):
        w[i] = u[i]
    tmp = np.zeros(n)
    for t in range(nsteps):
        comm.Sendrecv(w[n - 2:n - 1], right, 0, w[0:1], left, 0)
        comm.Sendrecv(w[1:2], left, 1, w[n - 1:n], right, 1)
        for i in range(1, n - 1):
            tmp[i] = w[i] + alpha * (w[i - 1] - 2.0 * w[i] + w[i + 1]) * math.cos(w[i])
        for i in range(1, n - 1):
            w[i] = tmp[i]
    return w, alpha * w[1:-1] ** 2


def _args():
    rng = np.random.default_rng(300 + COMM.rank)
    return rng.standard_normal(7 + COMM.rank), 0.2, 4, COMM


def _copies(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def _pairing(out, ct):
    return sum(float(np.sum(o * c)) for o, c in zip(out, ct))


def _fd(args, d, ct, h=1e-6):
    """<ct, f> on this rank, differenced along everyone's direction (a collective)."""
    plus = halo_state.py_func(*[a + h * t if t is not None else a
                                for a, t in zip(_copies(args), d)])
    minus = halo_state.py_func(*[a - h * t if t is not None else a
                                 for a, t in zip(_copies(args), d)])
    return (_pairing(plus, ct) - _pairing(minus, ct)) / (2 * h)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_local_array_result_derivatives(backend):
    args = _args()
    rng = np.random.default_rng(400 + COMM.rank)
    d = (rng.standard_normal(args[0].shape), float(rng.standard_normal()), None, None)
    plain = halo_state.py_func(*_copies(args))
    ct = tuple(rng.standard_normal(p.shape) for p in plain)
    out, vjp_fn = ad.vjp(halo_state, *_copies(args), backend=backend)
    for o, p in zip(out, plain):
        np.testing.assert_allclose(o, p, rtol=1e-12, atol=1e-14)
    du, dalpha, dn, dcomm = vjp_fn(ct)
    assert dn is None and dcomm is None
    reverse = COMM.allreduce(float(np.sum(du * d[0])) + dalpha * d[1])
    fd = COMM.allreduce(_fd(args, d, ct))
    _, tangent = ad.jvp(halo_state, _copies(args), d, backend=backend)
    forward = COMM.allreduce(_pairing(tangent, ct))
    assert abs(reverse - fd) <= 1e-6 * max(1.0, abs(fd)), (COMM.rank, reverse, fd)
    assert abs(forward - reverse) <= 1e-10 * max(1.0, abs(reverse)), (forward, reverse)
