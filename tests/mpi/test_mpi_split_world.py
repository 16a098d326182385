"""A COMM_WORLD argument beside a communicator made with Split (under mpiexec, 2 and 3
ranks). Each combination whose global loss hpcad knows matches central differences of
that loss, computed by the plain Python function on mpi4py: a value the same on every rank
counts once, one the same over the Split communicator once per group. A returned value
adding a world-wide value to one of the group's (both replicated, over different
communicators) is refused: before, it was counted once per rank, the group's size times
what a value replicated over the group counts."""
import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.errors import DifferentiationError
from tests.mpi import BACKENDS

COMM = MPI.COMM_WORLD
SUB = COMM.Split(COMM.rank % 2, COMM.rank)


@ad.kernel
def world_of_group(x, world, sub):
    """Sum over world of each rank's group total squared: one value for all ranks."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i] * (i + 1.0)
    t = sub.allreduce(s)
    return world.allreduce(t * t)


@ad.kernel
def world_after_group(x, sub, world):
    """The group's communicator first: a world total, one value for all ranks."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i] * (i + 1.0)
    return world.allreduce(sub.allreduce(s) * x[0])


@ad.kernel
def group_total(x, world, sub):
    """One value per group (counts once per group)."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i] * (i + 1.0)
    return sub.allreduce(s) * 2.0


@ad.kernel
def group_buffers(x, world, sub):
    """Allreduce over the group, then over world, through buffers: once in all."""
    a = np.zeros(1)
    b = np.zeros(1)
    c = np.zeros(1)
    for i in range(x.shape[0]):
        a[0] += x[i] * x[i] * (i + 1.0)
    sub.Allreduce(a, b)
    world.Allreduce(b, c)
    return c[0]


@ad.kernel
def group_plus_world(x, world, sub):
    """Replicated over sub plus replicated over world: how often it counts is unknown."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i] * (i + 1.0)
    return sub.allreduce(s) + world.allreduce(x[0])


@ad.kernel
def group_times_world(x, sub, world):
    """As group_plus_world, a product, the group's communicator first."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i] * (i + 1.0)
    return 1.5 * (sub.allreduce(s) * world.allreduce(x[0]))


def _loss(kernel, x, comms, counts):
    """The global loss: each rank's plain-Python value, counted once in all ("world"),
    once per group ("group")."""
    mine = float(kernel.py_func(x.copy(), *comms))
    return COMM.allreduce(mine / {"world": COMM.size, "group": SUB.size}[counts])


CASES = [(world_of_group, (COMM, SUB), "world"), (world_after_group, (SUB, COMM), "world"),
         (group_total, (COMM, SUB), "group"), (group_buffers, (COMM, SUB), "world")]


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel, comms, counts", CASES, ids=[c[0].__name__ for c in CASES])
def test_split_beside_world_matches_finite_differences(kernel, comms, counts, backend):
    rng = np.random.default_rng(40 + COMM.rank)
    x, v = rng.standard_normal(3), rng.standard_normal(3)
    h = 1e-6
    fd = (_loss(kernel, x + h * v, comms, counts) -
          _loss(kernel, x - h * v, comms, counts)) / (2 * h)
    kernel.backend = backend
    try:
        g = ad.grad(kernel)(x, *comms)
    finally:
        kernel.backend = None
    assert COMM.allreduce(float(g @ v)) == pytest.approx(fd, rel=1e-6, abs=1e-8)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("kernel, comms", [(group_plus_world, (COMM, SUB)),
                                           (group_times_world, (SUB, COMM))])
def test_value_replicated_over_two_communicators_is_refused(kernel, comms):
    x = np.random.default_rng(COMM.rank).standard_normal(3)
    with pytest.raises(DifferentiationError, match=r"test_mpi_split_world.py:\d+: .*"
                       r"different communicator \('(sub|world)' and '(sub|world)'\).*"
                       r"will not guess"):
        ad.grad(kernel)(x, *comms)
