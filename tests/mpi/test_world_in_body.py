"""Kernels that name MPI.COMM_WORLD in their body, as mpi4py programs do (`comm =
MPI.COMM_WORLD`, `MPI.COMM_WORLD.allreduce(...)`, a module's `COMM = MPI.COMM_WORLD`), under
mpiexec at 2 and 3 ranks: the body's COMM_WORLD is the communicator numba-mpi's calls use,
so values equal the plain function's on mpi4py and the gradient of the global loss (a value
the same on every rank once, one the same over a Split communicator once per group, any
other summed over the ranks) equals central differences of it. A kernel that makes a
communicator (comm.Split, comm.Create_cart, MPI.Compute_dims) is refused at the call's line
with what to do: make it outside and pass it in; one that makes a derived datatype says to
pass a strided slice or a contiguous copy."""
import inspect

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from tests.mpi import case_backends, interp_unless_all

COMM = MPI.COMM_WORLD
SUB = COMM.Split(COMM.rank % 2, COMM.rank)


@ad.kernel
def aliased(x, nsteps):
    """`comm = MPI.COMM_WORLD`, a ring Sendrecv per step, a replicated loss."""
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    size = comm.Get_size()
    u = x.copy()
    got = np.zeros(x.shape[0])
    for t in range(nsteps):
        comm.Sendrecv(u, (rank + 1) % size, 3, got, (rank - 1 + size) % size, 3)
        for i in range(u.shape[0]):
            u[i] = u[i] + 0.3 * np.sin(got[i] * u[i])
    return comm.allreduce(np.sum(u * u))


@ad.kernel
def named_inline(x):
    """MPI.COMM_WORLD.Allreduce into a buffer, times this rank's own sum: per rank."""
    loc = np.zeros(1)
    loc[0] = np.sum(x * x)
    glob = np.zeros(1)
    MPI.COMM_WORLD.Allreduce(loc, glob)
    return glob[0] * np.sum(np.cos(x))


@ad.kernel
def module_global(x):
    """The module's COMM: the world total, the same on every rank (counts once)."""
    return COMM.allreduce(np.sum(x ** 3)) * 0.5


@ad.kernel
def beside_group(x, sub):
    """A group's total under a world total in the body: one value for all ranks."""
    t = sub.allreduce(np.sum(x * x))
    return MPI.COMM_WORLD.allreduce(t * x[0])


CASES = {"aliased": (aliased, (2,), "world"), "named_inline": (named_inline, (), "rank"),
         "module_global": (module_global, (), "world"),
         "beside_group": (beside_group, (SUB,), "world")}


def _loss(kernel, x, extra, counts):
    mine = float(kernel.py_func(x.copy(), *extra))
    return COMM.allreduce(mine / (COMM.size if counts == "world" else 1))


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("name, backend", case_backends(sorted(CASES), {"aliased"}))
def test_world_named_in_the_body_matches_mpi4py_and_finite_differences(name, backend):
    kernel, extra, counts = CASES[name]
    rng = np.random.default_rng(50 + COMM.rank)
    x, v = rng.standard_normal(4), rng.standard_normal(4)
    k = ad.kernel(kernel.py_func, backend=backend)
    assert k(x.copy(), *extra) == pytest.approx(kernel.py_func(x.copy(), *extra), rel=1e-13)
    h = 1e-6
    fd = (_loss(kernel, x + h * v, extra, counts) - _loss(kernel, x - h * v, extra, counts)) \
        / (2 * h)
    g = ad.grad(k, argnums=0)(x.copy(), *extra)
    assert COMM.allreduce(float(g @ v)) == pytest.approx(fd, rel=1e-6, abs=1e-8)


def splits(x):
    sub = MPI.COMM_WORLD.Split(0, 0)  # error here
    return sub.allreduce(x[0])


def makes_a_grid(x):
    cart = MPI.COMM_WORLD.Create_cart([2, 1])  # error here
    return cart.allreduce(x[0])


def makes_a_datatype(x, comm):
    MPI.DOUBLE.Create_vector(3, 1, 4).Commit()  # error here
    return x[0]


def computes_dims(x, comm):
    dims = MPI.Compute_dims(comm.Get_size(), 2)  # error here
    return x[0] * dims[0]


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("backend", interp_unless_all())
@pytest.mark.parametrize("fn, args, fragment", [
    (splits, (), "a kernel cannot make a communicator: make it before calling the kernel"),
    (makes_a_grid, (), "a kernel cannot make a communicator: make it before calling the "
                       "kernel"),
    (computes_dims, (COMM,), "compute the process grid before calling the kernel"),
    (makes_a_datatype, (COMM,), "derived datatypes: hpcad sends a buffer's elements in its "
                                "own dtype; pass a strided slice")])
def test_making_a_communicator_or_datatype_in_a_kernel_says_what_to_do(fn, args, fragment,
                                                                      backend):
    lines, start = inspect.getsourcelines(fn)
    line = start + next(k for k, text in enumerate(lines) if "# error here" in text)
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ad.kernel(fn, backend=backend)(np.ones(3), *args)
    assert f"{__file__}:{line}" in str(info.value), str(info.value)
    assert fragment in str(info.value), str(info.value)
