"""Kernels of tests/mpi/test_topology.py: neighbourhood collectives and topology queries on
a Cartesian communicator, persistent requests on a ring, and kernels hpcad must refuse."""
import numba_mpi
import numpy as np
from mpi4py import MPI

import hpcad as ad


@ad.kernel
def neighbourhood(x, y, cart):
    """Neighbor_alltoall of x's squares into a buffer that starts as 2x (PROC_NULL blocks
    keep that), Neighbor_allgather of y's squares; weighted by the coordinates and the
    topology, which are constants. The output is this rank's (not replicated)."""
    blocks = 2 * cart.Get_dim()
    k = x.shape[1]
    n = y.shape[0]
    send = np.empty((blocks, k))
    recv = np.empty((blocks, k))
    mine = np.empty(n)
    near = np.empty((blocks, n))
    for b in range(blocks):
        for i in range(k):
            send[b, i] = x[b, i] * x[b, i] + 0.5 * b
            recv[b, i] = 2.0 * x[b, i]
        for i in range(n):
            near[b, i] = y[i] * (b + 1.0)
    for i in range(n):
        mine[i] = y[i] * y[i]
    cart.Neighbor_alltoall(send, recv)
    cart.Neighbor_allgather(mine, near)
    dims, periods, coords = cart.Get_topo()
    c0, c1 = cart.Get_coords(cart.Get_rank())
    weight = 1.0 + c0 + 2 * c1 + 0.25 * periods[0] + 0.5 * (dims[0] * dims[1] - cart.ndim)
    s = 0.0
    for b in range(blocks):
        for i in range(k):
            s += recv[b, i] * x[b, i] * weight
        for i in range(n):
            s += near[b, i] * near[b, i] * (b + 1.0) + 0.0 * coords[1]
    return s


@ad.kernel
def timed(x):
    """MPI.Wtime and numba_mpi.wtime: constants to the derivative."""
    t0 = MPI.Wtime()
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    t1 = numba_mpi.wtime()
    return s + 0.0 * (t1 - t0) + (1.0 if t1 >= t0 else 1e3)


@ad.kernel
def ring_persistent(x, nsteps, comm):
    """A value travels round the ring nsteps times through persistent requests started and
    waited for one at a time."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    right = (rank + 1) % size
    left = (rank + size - 1) % size
    n = x.shape[0]
    out = np.zeros(n)
    got = np.zeros(n)
    for i in range(n):
        out[i] = x[i]
    send = comm.Send_init(out, right, 5)
    recv = comm.Recv_init(got, left, 5)
    s = 0.0
    for step in range(nsteps):
        recv.Start()
        send.Start()
        recv.Wait()
        send.Wait()
        for i in range(n):
            s += got[i] * x[i]
            out[i] = 0.5 * got[i] * got[i] + x[i]
    send.Free()
    recv.Free()
    return s


@ad.kernel
def started_twice(x, comm):
    req = comm.Send_init(x, 0, 1)
    req.Start()
    req.Start()
    req.Wait()
    return x[0]


@ad.kernel
def waited_outside(x, nsteps, comm):
    req = comm.Recv_init(x, 0, 1)
    for step in range(nsteps):
        req.Start()
    req.Wait()
    return x[0]


@ad.kernel
def all_converged(x, comm):
    for t in range(3):
        x[0] = x[0] * 0.5
        if comm.allreduce(x[0] < 0.1, op=MPI.LAND):
            break
    return x[0]


@ad.kernel
def max_location(x, comm):
    value, owner = comm.allreduce((x[0], comm.Get_rank()), op=MPI.MAXLOC)
    return value


@ad.kernel
def start_plain_request(x, comm):
    req = comm.Isend(x, comm.Get_rank(), 0)
    req.Start()
    req.Wait()
    return x[0]


@ad.kernel
def recv_any(x, comm):
    if comm.Get_rank() == 0:
        comm.Send(x, 1, 0)
    elif comm.Get_rank() == 1:
        comm.Recv(x, MPI.ANY_SOURCE, 0)
    return x[0] * x[0]


@ad.kernel
def recv_any_tag(x, comm):
    if comm.Get_rank() == 0:
        comm.Send(x, 1, 5)
    elif comm.Get_rank() == 1:
        comm.Recv(x, 0, MPI.ANY_TAG)
    return x[0] * x[0]


@ad.kernel
def irecv_any_tag(x, y, comm):
    req = comm.Irecv(y, (comm.Get_rank() - 1) % comm.Get_size(), tag=MPI.ANY_TAG)
    comm.Send(x, (comm.Get_rank() + 1) % comm.Get_size(), 3)
    req.Wait()
    return y[0] * x[0]


@ad.kernel
def sendrecv_any_tag(x, comm):
    """A ring Sendrecv whose send tag differs between ranks, received with mpi4py's
    default recvtag (ANY_TAG), twice."""
    r, n = comm.Get_rank(), comm.Get_size()
    b = np.zeros_like(x)
    comm.Sendrecv(x, (r + 1) % n, r + 10, b, (r - 1) % n)
    c = np.zeros_like(x)
    e = b + x
    comm.Sendrecv(e, (r - 1) % n, 2 * r + 1, c, (r + 1) % n, MPI.ANY_TAG)
    return np.sum(b * b * x) + np.sum(c * c * c)


@ad.kernel
def irecv_any(x, y, comm):
    req = comm.Irecv(y, MPI.ANY_SOURCE, 0)
    comm.Send(x, (comm.Get_rank() + 1) % comm.Get_size(), 0)
    req.Wait()
    return y[0] * x[0]


@ad.kernel
def recv_init_any(x, y, comm):
    req = comm.Recv_init(y, MPI.ANY_SOURCE, 0)
    req.Start()
    comm.Send(x, (comm.Get_rank() + 1) % comm.Get_size(), 0)
    req.Wait()
    return y[0] * x[0]


@ad.kernel
def alltoall_on_plain(x, y, comm):
    comm.Neighbor_alltoall(x, y)
    return y[0]


@ad.kernel
def processor_name(x):
    name = MPI.Get_processor_name()
    return x[0] + len(name)


@ad.kernel
def window(x):
    win = MPI.Win.Create(x)
    win.Free()
    return x[0]


@ad.kernel
def first(x, comm):
    return x[0] * comm.Get_rank()
