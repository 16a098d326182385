"""Distributed stencils written with NumPy slices (issue 21), run under mpiexec with 2 and 3
ranks (tests/test_mpi_launch.py): halo exchanges on slice views (`u[1:2]`, `u[-2:-1]`,
`u[0:1]`, `u[-1:]`, rows `u[1, :]`, strided columns `u[:, 1]`) through mpi4py's Sendrecv,
Isend/Irecv and numba-mpi, a whole-slice update `u[1:-1] = ...` and an allreduce of the loss.
Each is checked against plain Python, the same stencil written as loops, the single-process
run, finite differences of the global loss, and forward against reverse, on both backends."""
import inspect

import numba_mpi
import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.kernels.mpi_stencils import heat_local, jacobi_local, local_block, split

COMM = MPI.COMM_WORLD
# numba compiles each derivative on every rank (seconds apiece): the fast tier runs the
# interpreter; the full tier (tests/test_mpi_launch.py, slow) runs numba too
BACKENDS = ["interp", pytest.param("numba", marks=pytest.mark.slow)]


@ad.kernel
def heat_slices(u, c, nsteps, comm):
    rank, size = comm.rank, comm.size
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    for _ in range(nsteps):
        comm.Sendrecv(u[-2:-1], right, 0, u[0:1], left, 0)
        comm.Sendrecv(u[1:2], left, 1, u[-1:], right, 1)
        u[1:-1] = u[1:-1] + c * (u[:-2] - 2 * u[1:-1] + u[2:])
    return comm.allreduce(np.sum(u[1:-1] ** 2), op=MPI.SUM)


@ad.kernel
def heat_slices_nonblocking(u, c, nsteps, comm):
    rank, size = comm.rank, comm.size
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    for _ in range(nsteps):
        r1 = comm.Irecv(u[0:1], left, 0)
        r2 = comm.Irecv(u[-1:], right, 1)
        r3 = comm.Isend(u[-2:-1], right, 0)
        r4 = comm.Isend(u[1:2], left, 1)
        MPI.Request.Waitall([r1, r2, r3, r4])
        u[1:-1] = u[1:-1] + c * (u[:-2] - 2 * u[1:-1] + u[2:])
    s = 0.0
    for i in range(1, u.shape[0] - 1):
        s += u[i] * u[i]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def heat_slices_numba_mpi(u, c, nsteps):
    rank, size = numba_mpi.rank(), numba_mpi.size()
    for _ in range(nsteps):
        if rank > 0:
            numba_mpi.sendrecv(u[1:2], rank - 1, u[0:1], rank - 1, 1, 0)
        if rank < size - 1:
            numba_mpi.sendrecv(u[-2:-1], rank + 1, u[-1:], rank + 1, 0, 1)
        u[1:-1] = u[1:-1] + c * (u[:-2] - 2 * u[1:-1] + u[2:])
    s = 0.0
    for i in range(1, u.shape[0] - 1):
        s += u[i] * u[i]
    part, total = np.zeros(1), np.zeros(1)
    part[0] = s
    numba_mpi.allreduce(part, total)
    return total[0]


@ad.kernel
def jacobi_slices(u, nsteps, cart):
    up, down = cart.Shift(0, 1)
    left, right = cart.Shift(1, 1)
    for _ in range(nsteps):
        cart.Sendrecv(u[-2, :], down, 0, u[0, :], up, 0)
        cart.Sendrecv(u[1, :], up, 1, u[-1, :], down, 1)
        cart.Sendrecv(u[:, -2], right, 2, u[:, 0], left, 2)    # strided columns: packed
        cart.Sendrecv(u[:, 1], left, 3, u[:, -1], right, 3)
        u[1:-1, 1:-1] = 0.25 * (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:])
    s = 0.0
    for i in range(1, u.shape[0] - 1):
        for j in range(1, u.shape[1] - 1):
            s += u[i, j] * u[i, j]
    return cart.allreduce(s, op=MPI.SUM)


@ad.kernel
def ring_rank_tags(x, comm):
    """Each message tagged with its sender's rank: the send and receive tags of one call
    differ, and each adjoint must travel with its own message's tag."""
    rank, size = comm.rank, comm.size
    right, left = (rank + 1) % size, (rank - 1 + size) % size
    got = np.zeros_like(x)
    comm.Sendrecv(x[1:], right, rank, got[:-1], left, left)
    s = 0.0
    for i in range(x.shape[0]):
        s += np.sin(got[i]) * x[i]
    return comm.allreduce(s, op=MPI.SUM)


def _heat_args(comm=COMM):
    g = np.sin(np.linspace(0.0, np.pi, 17)) + 0.1 * np.cos(np.arange(17.0))
    u, _ = split(g, comm)
    return (u, 0.23, 5, comm), g


def _cart(comm=COMM):
    return comm.Create_cart(MPI.Compute_dims(comm.size, 2))


def _jacobi_args():
    x = np.linspace(0.0, 1.0, 13)[:, None]
    y = np.linspace(0.0, 1.0, 10)[None, :]
    g = np.sin(3.0 * x) * np.cos(2.0 * y) + 0.5
    # one process column (as Compute_dims gives at 2 and 3 ranks): plain Python's mpi4py
    # refuses strided buffers, so its columns may only go to PROC_NULL
    cart = COMM.Create_cart([COMM.size, 1])
    u, _ = local_block(g, cart)
    return (u, 4, cart), g


CASES = {
    "heat_slices": (heat_slices, lambda: _heat_args()[0]),
    "heat_slices_nonblocking": (heat_slices_nonblocking, lambda: _heat_args()[0]),
    "heat_slices_numba_mpi": (heat_slices_numba_mpi, lambda: _heat_args()[0][:3]),
    "jacobi_slices": (jacobi_slices, lambda: _jacobi_args()[0]),
    "ring_rank_tags": (ring_rank_tags,
                       lambda: (np.cos(np.arange(5.0) + COMM.rank) + 1.5, COMM)),
}


def _copy(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def _rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def _direction(args):
    rng = np.random.default_rng(300 + COMM.rank)
    return [rng.standard_normal(a.shape) if isinstance(a, np.ndarray) else
            (float(rng.standard_normal()) if isinstance(a, float) else None) for a in args]


def _fd(kernel, args, d, h=1e-6):
    """Central difference of the global loss along every rank's direction (collective)."""
    def at(sign):
        return kernel.py_func(*[a + sign * h * t if t is not None else a
                                for a, t in zip(_copy(args), d, strict=True)])
    return (at(1) - at(-1)) / (2 * h)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_primal_equals_plain_python(case, backend):
    kernel, make = CASES[case]
    args = make()
    plain = kernel.py_func(*_copy(args))
    got = ad.kernel(kernel.py_func, backend=backend)(*_copy(args))
    assert _rel(got, plain) <= 1e-12, (COMM.rank, got, plain)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_and_reverse_match_finite_differences(case, backend):
    """The loss is replicated (an allreduce): each rank's tangent is the global directional
    derivative, and the ranks' cotangents together give it once."""
    kernel, make = CASES[case]
    args = make()
    d = _direction(args)
    fd = _fd(kernel, args, d)
    _, tangent = ad.jvp(kernel, tuple(_copy(args)), tuple(d), backend=backend)
    assert _rel(tangent, fd) <= 1e-6, (COMM.rank, tangent, fd)
    _, pullback = ad.vjp(kernel, *_copy(args), backend=backend)
    cots = pullback(1.0)
    local = sum(float(np.sum(c * t)) for c, t in zip(cots, d, strict=True)
                if c is not None and t is not None)
    assert _rel(COMM.allreduce(local), fd) <= 1e-6, (COMM.rank, local, fd)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", [heat_slices, heat_slices_nonblocking])
def test_heat_slices_equal_the_loop_stencil(kernel, backend):
    """The slice-syntax stencil gives the loop-written one's loss and gradient."""
    args, _ = _heat_args()
    loss, grads = ad.value_and_grad(kernel, argnums=(0, 1), backend=backend)(*_copy(args))
    ref_loss, ref = ad.value_and_grad(heat_local, argnums=(0, 1), backend=backend)(
        *_copy(args))
    assert _rel(loss, ref_loss) <= 1e-12
    np.testing.assert_allclose(grads[0], ref[0], rtol=1e-12, atol=1e-15)
    assert _rel(grads[1], ref[1]) <= 1e-12


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", BACKENDS)
def test_numba_mpi_heat_equals_mpi4py_heat(backend):
    (u, c, nsteps, _), _ = _heat_args()
    loss, grads = ad.value_and_grad(heat_slices_numba_mpi, argnums=(0, 1), backend=backend)(
        u.copy(), c, nsteps)
    ref_loss, ref = ad.value_and_grad(heat_slices, argnums=(0, 1), backend=backend)(
        u.copy(), c, nsteps, COMM)
    assert _rel(loss, ref_loss) <= 1e-12
    np.testing.assert_allclose(grads[0], ref[0], rtol=1e-12, atol=1e-15)
    assert _rel(grads[1], ref[1]) <= 1e-12


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", BACKENDS)
def test_distributed_heat_slices_match_single_process(backend):
    """Loss and gradient on N ranks are the 1-rank run's (owned cells, the global boundary
    cells from the end ranks' halos, c summed over ranks)."""
    (u, c, nsteps, _), g = _heat_args()
    _, start = split(g, COMM)
    loss, (du, dc) = ad.value_and_grad(heat_slices, argnums=(0, 1), backend=backend)(
        u.copy(), c, nsteps, COMM)
    pieces = COMM.gather((start, du), root=0)
    dc = COMM.allreduce(dc)
    if COMM.rank == 0:
        ref_loss, (ref_du, ref_dc) = ad.value_and_grad(heat_slices, argnums=(0, 1),
                                                       backend=backend)(
            g.copy(), c, nsteps, MPI.COMM_SELF)
        full = np.zeros_like(g)
        for s, part in pieces:
            full[s:s + part.shape[0] - 2] = part[1:-1]
        full[0], full[-1] = pieces[0][1][0], pieces[-1][1][-1]
        assert _rel(loss, ref_loss) <= 1e-12
        np.testing.assert_allclose(full, ref_du, rtol=1e-12, atol=1e-14)
        assert _rel(dc, ref_dc) <= 1e-12


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", BACKENDS)
def test_jacobi_slices_equal_the_loop_stencil(backend):
    """Row and (strided, packed) column halos: the loop-written Jacobi's loss and gradient."""
    (u, nsteps, cart), _ = _jacobi_args()
    loss, du = ad.value_and_grad(jacobi_slices, argnums=0, backend=backend)(
        u.copy(), nsteps, cart)
    ref_loss, ref = ad.value_and_grad(jacobi_local, argnums=0, backend=backend)(
        u.copy(), np.zeros_like(u), nsteps, cart)
    assert _rel(loss, ref_loss) <= 1e-12
    np.testing.assert_allclose(du, ref, rtol=1e-12, atol=1e-15)


def strided_isend(u, comm):
    r = comm.Isend(u[:, 1], 0, 0)  # error here
    r.Wait()
    return 0.0


def strided_irecv(u, comm):
    r = comm.Irecv(u[:, -1], 0, 0)  # error here
    r.Wait()
    return 0.0


def strided_send_init(u, comm):
    r = comm.Send_init(u[:, 1], 0, 0)  # error here
    r.Free()
    return 0.0


def new_axis_send(u, comm):
    comm.Send(u[:, np.newaxis], 0, 0)  # error here
    return 0.0


def stepped_isend(u, comm):
    req = comm.Isend(u[::2], 0, 0)  # error here
    req.Wait()
    return 0.0


def _marked_line(fn) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(k for k, line in enumerate(lines) if "# error here" in line)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn, shape, words", [
    (strided_isend, (4, 5), "a non-blocking send of a non-contiguous array"),
    (strided_irecv, (4, 5), "a non-blocking receive into a non-contiguous array"),
    (strided_send_init, (4, 5), "a persistent request on a non-contiguous array (a strided "
                                "slice such as u[:, 1], which MPI reads"),
    (new_axis_send, (6,), "a slice with np.newaxis as an MPI buffer"),
    (stepped_isend, (6,), "a non-blocking send of a non-contiguous array")])
def test_buffer_mpi_cannot_use_is_refused_at_its_line(fn, shape, words, backend):
    """A non-contiguous slice (a stepped one too) cannot be a non-blocking buffer (MPI
    reads or writes it after the call returns, so it cannot be packed); a slice with a new
    axis is no buffer at all. Both are refused while lowering, on every rank, before any
    message is posted."""
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ad.kernel(fn, backend=backend)(np.zeros(shape), COMM)
    msg = str(info.value)
    assert msg.startswith(f"{__file__}:{_marked_line(fn)}: {words}"), msg
    assert "; " in msg, msg


@ad.kernel
def stepped_exchange(u, c, comm):
    right, left = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    recv = np.zeros(u.shape[0] // 2)
    comm.Sendrecv(u[::-2], right, 0, recv, left, 0)        # a reversed stepped slice, packed
    u[::2] = u[::2] + c * recv * recv
    comm.Sendrecv(u[::2], right, 1, u[1::2], left, 1)      # received into a stepped view
    return comm.allreduce(np.sum(u * u * u), op=MPI.SUM)


def _stepped_exchange_mpi4py(u, c, comm):
    """stepped_exchange as mpi4py takes it: contiguous copies in, a copy out."""
    right, left = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    recv = np.zeros(u.shape[0] // 2)
    comm.Sendrecv(u[::-2].copy(), right, 0, recv, left, 0)
    u[::2] = u[::2] + c * recv * recv
    odd = np.zeros(u.shape[0] // 2)
    comm.Sendrecv(u[::2].copy(), right, 1, odd, left, 1)
    u[1::2] = odd
    return comm.allreduce(np.sum(u * u * u), op=MPI.SUM)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_stepped_slices_as_blocking_buffers_match_mpi4py_and_finite_differences(backend):
    """A slice with a step as a blocking call's buffer (sent reversed, received into every
    other element) is its view, packed around the call, as a strided column is: the
    primal is mpi4py's on copies, each rank's gradient the finite differences of the
    global loss in its own elements."""
    u = np.linspace(0.2, 1.0, 6) + 0.1 * COMM.rank
    k = ad.kernel(stepped_exchange.py_func, backend=backend)
    mine, ref = u.copy(), u.copy()
    assert k(mine, 0.3, COMM) == pytest.approx(_stepped_exchange_mpi4py(ref, 0.3, COMM),
                                               rel=1e-14)
    np.testing.assert_allclose(mine, ref, rtol=1e-14)
    grad = ad.grad(k)(u.copy(), 0.3, COMM)
    h, fd = 1e-6, np.zeros((COMM.size, u.shape[0]))
    for who in range(COMM.size):
        for i in range(u.shape[0]):
            plus, minus = u.copy(), u.copy()
            if COMM.rank == who:
                plus[i] += h
                minus[i] -= h
            fd[who, i] = (_stepped_exchange_mpi4py(plus, 0.3, COMM) -
                          _stepped_exchange_mpi4py(minus, 0.3, COMM)) / (2 * h)
    np.testing.assert_allclose(grad, fd[COMM.rank], rtol=1e-6, atol=1e-9)


@ad.kernel
def expression_sends(x, comm):
    """Array expressions as send buffers, as mpi4py takes them (a temporary array)."""
    right, left = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    g = np.zeros(x.shape[0])
    comm.Allreduce(x * x + np.sin(x), g)
    m = np.zeros(x.shape[0])
    comm.Allreduce(2.0 * x[::-1], m, op=MPI.MAX)
    got = np.zeros(x.shape[0])
    comm.Sendrecv(x ** 2, right, 1, got, left, 1)
    every = np.zeros(x.shape[0] * comm.size)
    comm.Allgather(np.cos(x), every)
    return np.sum(g * x) + np.sum(m * m) + np.sum(got * x) + np.sum(every * every) * x[0]


def expression_receive(x, comm):
    g = np.zeros(x.shape[0])
    comm.Allreduce(x, g + 1.0)  # error here
    return g[0]


def expression_nonblocking(x, comm):
    g = np.zeros(x.shape[0])
    req = comm.Iallreduce(x * x, g)  # error here
    req.Wait()
    return g[0]


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_expressions_as_send_buffers_match_mpi4py_and_finite_differences(backend):
    """An array expression as a collective's or Sendrecv's send buffer is a fresh array of
    its elements: the primal is mpi4py's, the gradient the finite differences of the sum of
    the ranks' losses; an expression as a receive buffer is refused (nothing could read
    what MPI writes there), and so is one as a non-blocking call's buffer (MPI reads it after
    the call returns)."""
    x = np.linspace(0.2, 1.0, 5) + 0.37 * COMM.rank
    k = ad.kernel(expression_sends.py_func, backend=backend)
    assert k(x.copy(), COMM) == pytest.approx(expression_sends.py_func(x.copy(), COMM),
                                              rel=1e-14)
    v = np.random.default_rng(60 + COMM.rank).standard_normal(5)
    h = 1e-6
    fd = (COMM.allreduce(expression_sends.py_func(x + h * v, COMM)) -
          COMM.allreduce(expression_sends.py_func(x - h * v, COMM))) / (2 * h)
    grad = ad.grad(k)(x.copy(), COMM)
    assert COMM.allreduce(float(grad @ v)) == pytest.approx(fd, rel=1e-6)
    for refused in (expression_receive, expression_nonblocking):
        with pytest.raises(ad.UnsupportedConstruct) as info:
            ad.kernel(refused, backend=backend)(x.copy(), COMM)
        msg = str(info.value)
        assert msg.startswith(f"{__file__}:{_marked_line(refused)}: an array expression as "
                              f"an MPI buffer"), msg
