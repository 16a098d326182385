"""Repeated calls of a kernel that takes a communicator, with the communicator changing
from call to call (under mpiexec, tests/test_mpi_launch.py): such a kernel never takes the
fast call paths (Kernel.direct_call, Kernel.calls, api._GradCall, whose kept plans are not
keyed by the communicator), so each call gives the derivative for its own communicator."""
import importlib

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from tests.mpi import BACKENDS

COMM = MPI.COMM_WORLD
kernel_module = importlib.import_module("hpcad.kernel")   # (hpcad.kernel: the decorator)


@ad.kernel
def rank_weighted(u, w, comm):
    """The sum over the ranks of (rank + 1) w |u|^2."""
    r = comm.Get_rank()
    s = 0.0
    for i in range(u.shape[0]):
        s += (r + 1) * w * u[i] * u[i]
    return comm.allreduce(s)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_new_communicator_is_never_a_kept_call(backend):
    k = ad.kernel(rank_weighted.py_func, backend=backend)
    g = ad.grad(k, argnums=0)
    u = np.random.default_rng(30 + COMM.rank).random(5)
    sub = COMM.Split(COMM.rank % 2, COMM.rank)   # another rank and size
    for comm in (COMM, COMM, sub, sub, COMM, sub):
        r = comm.Get_rank()
        want = comm.allreduce((r + 1) * 0.5 * float(u @ u))
        assert k(u, 0.5, comm) == pytest.approx(want, rel=1e-13)
        np.testing.assert_allclose(g(u, 0.5, comm), 2.0 * (r + 1) * 0.5 * u, rtol=1e-13)
    assert k.direct is kernel_module.no_direct
    assert not k.calls
    sub.Free()
