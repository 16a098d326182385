"""Messages shorter or longer than their receive buffers, under mpiexec (2 and 3 ranks): a
short message leaves the rest of the buffer as it was (as mpi4py does) on both backends and
its tangent is right; its adjoint is refused as a truncated message rather than wrong; a
message longer than its buffer is an MpiError naming the call and the kernel's line."""
import inspect

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad

COMM = MPI.COMM_WORLD
BACKENDS = ["interp", "numba"]
RIGHT, LEFT = (COMM.rank + 1) % COMM.size, (COMM.rank - 1) % COMM.size


@ad.kernel
def ring_into(x, y, comm):
    """x to the right neighbour, into the start of y from the left one."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    comm.Sendrecv(x, (rank + 1) % size, 4, y, (rank - 1 + size) % size, 4)
    s = 0.0
    for i in range(y.shape[0]):
        s += y[i] * y[i]
    return s


@ad.kernel
def ring_into_column(x, y, comm):
    """As ring_into, into a strided column of y."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    comm.Sendrecv(x, (rank + 1) % size, 4, y[:, 0], (rank - 1 + size) % size, 4)
    s = 0.0
    for i in range(y.shape[0]):
        s += y[i, 0] * y[i, 1]
    return s


@ad.kernel
def pass_on(x, y, comm):
    """Rank 0 sends x to rank 1, which receives it into y; nothing else communicates."""
    rank = comm.Get_rank()
    if rank == 0:
        comm.Send(x, 1, 9)
    elif rank == 1:
        comm.Recv(y, 0, 9)
    return y[0]


def _mine(n, shape):
    rng = np.random.default_rng(30 + COMM.rank)
    return rng.standard_normal(n), rng.standard_normal(shape)


def _by_mpi4py(x, y, column):
    """The receive buffer after mpi4py's own Sendrecv of x around the ring into y (into a
    contiguous copy of y's column, put back, where the kernel receives into the column)."""
    y = y.copy()
    into = np.ascontiguousarray(y[:, 0]) if column else y
    COMM.Sendrecv(x, RIGHT, 4, into, LEFT, 4)
    if column:
        y[:, 0] = into
    return y


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel, shape", [(ring_into, (5,)), (ring_into_column, (5, 2))])
def test_short_message_leaves_the_rest_of_the_buffer_like_mpi4py(kernel, shape, backend):
    x, y = _mine(2, shape)
    expected = _by_mpi4py(x, y, len(shape) == 2)
    kernel.backend = backend
    try:
        kernel(x, y, COMM)
    finally:
        kernel.backend = None
    np.testing.assert_array_equal(y, expected)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_tangent_through_a_short_message_from_a_constant(backend):
    """x constant: the received head's tangent is zero, the tail's is the caller's."""
    x, y = _mine(2, (5,))
    dy = np.random.default_rng(50 + COMM.rank).standard_normal(5)
    df = ad.autodiff(ring_into, mode="forward", activity=(ad.Const, ad.Duplicated, ad.Const),
                     backend=backend)
    _, tangent = df(x.copy(), y.copy(), dy.copy(), COMM)
    assert np.isclose(tangent, 2.0 * y[2:] @ dy[2:], rtol=1e-13)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("argnums", [0, 1])
def test_gradient_through_a_short_message_is_refused(argnums, backend, monkeypatch):
    """Every rank sends its adjoint back whole; every sender's buffer is too short for it
    (x active or not), so every rank raises instead of returning a wrong gradient."""
    monkeypatch.setenv("HPCAD_MPI_ABORT", "0")
    x, y = _mine(2, (5,))
    with pytest.raises(ad.MpiError, match="MPI_Sendrecv failed on rank .*Message truncated"):
        ad.grad(ring_into, argnums=argnums, backend=backend)(x, y, COMM)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_message_longer_than_its_buffer_is_an_mpi_error_at_the_receive(backend, monkeypatch):
    monkeypatch.setenv("HPCAD_MPI_ABORT", "0")
    line = inspect.getsourcelines(pass_on.py_func)[1] + 7       # comm.Recv(y, 0, 9)
    pass_on.backend = backend
    try:
        if COMM.rank != 1:
            pass_on(np.ones(6), np.zeros(4), COMM)
            return
        with pytest.raises(ad.MpiError, match=rf"test_mpi_messages.py:{line}: MPI_Recv failed "
                                              rf"on rank 1: Message truncated"):
            pass_on(np.ones(6), np.zeros(4), COMM)
    finally:
        pass_on.backend = None
