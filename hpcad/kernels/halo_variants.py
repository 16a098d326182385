"""The eight usual ways to exchange halos on a 2-D Cartesian decomposition (as halobench
compares them), each a time loop of a 5-point diffusion stencil on this rank's block `u` (a
one-cell halo; its edge cells at the domain's boundary stay fixed) with the global sum of
squares as the loss: VARIANTS maps a short name to the kernel. All give the same values and
gradients; tests/mpi/test_halo_variants.py checks it and benchmarks/halo.py times them.

Packed variants copy the four edges into the rows of `send` (4, k) in MPI's neighbour order
(-d0 = up, +d0 = down, -d1 = left, +d1 = right) and unpack the rows of `recv`, which starts
as the current halo so that a row from MPI.PROC_NULL leaves it unchanged."""
import numpy as np
from mpi4py import MPI

import hpcad as ad


@ad.kernel
def relax(u, v, alpha):
    n, m = u.shape
    for i in range(1, n - 1):
        for j in range(1, m - 1):
            v[i, j] = u[i, j] + alpha * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1]
                                         + u[i, j + 1] - 4.0 * u[i, j])
    for i in range(1, n - 1):
        for j in range(1, m - 1):
            u[i, j] = v[i, j]


@ad.kernel
def squares(u, cart):
    n, m = u.shape
    s = 0.0
    for i in range(1, n - 1):
        for j in range(1, m - 1):
            s += u[i, j] * u[i, j]
    return cart.allreduce(s)


@ad.kernel
def pack(u, send, recv):
    n, m = u.shape
    for j in range(1, m - 1):
        send[0, j - 1] = u[1, j]
        send[1, j - 1] = u[n - 2, j]
        recv[0, j - 1] = u[0, j]
        recv[1, j - 1] = u[n - 1, j]
    for i in range(1, n - 1):
        send[2, i - 1] = u[i, 1]
        send[3, i - 1] = u[i, m - 2]
        recv[2, i - 1] = u[i, 0]
        recv[3, i - 1] = u[i, m - 1]


@ad.kernel
def unpack(u, recv):
    n, m = u.shape
    for j in range(1, m - 1):
        u[0, j] = recv[0, j - 1]
        u[n - 1, j] = recv[1, j - 1]
    for i in range(1, n - 1):
        u[i, 0] = recv[2, i - 1]
        u[i, m - 1] = recv[3, i - 1]


@ad.kernel
def sendrecv(u, alpha, nsteps, cart):
    """(a) four Sendrecv calls on the halo slices themselves (hpcad packs the columns)."""
    up, down = cart.Shift(0, 1)
    left, right = cart.Shift(1, 1)
    n, m = u.shape
    v = np.zeros((n, m))
    for step in range(nsteps):
        cart.Sendrecv(u[n - 2, 1:m - 1], down, 0, u[0, 1:m - 1], up, 0)
        cart.Sendrecv(u[1, 1:m - 1], up, 1, u[n - 1, 1:m - 1], down, 1)
        cart.Sendrecv(u[1:n - 1, m - 2], right, 2, u[1:n - 1, 0], left, 2)
        cart.Sendrecv(u[1:n - 1, 1], left, 3, u[1:n - 1, m - 1], right, 3)
        relax(u, v, alpha)
    return squares(u, cart)


@ad.kernel
def red_black(u, alpha, nsteps, cart):
    """(b) blocking Send/Recv, ranks with an even coordinate sending first."""
    up, down = cart.Shift(0, 1)
    left, right = cart.Shift(1, 1)
    c0, c1 = cart.Get_coords(cart.Get_rank())
    n, m = u.shape
    k = n - 2 if n > m else m - 2
    v = np.zeros((n, m))
    send = np.zeros((4, k))
    recv = np.zeros((4, k))
    for step in range(nsteps):
        pack(u, send, recv)
        if c0 % 2 == 0:
            cart.Send(send[1, 0:m - 2], down, 0)
            cart.Recv(recv[0, 0:m - 2], up, 0)
            cart.Send(send[0, 0:m - 2], up, 1)
            cart.Recv(recv[1, 0:m - 2], down, 1)
        else:
            cart.Recv(recv[0, 0:m - 2], up, 0)
            cart.Send(send[1, 0:m - 2], down, 0)
            cart.Recv(recv[1, 0:m - 2], down, 1)
            cart.Send(send[0, 0:m - 2], up, 1)
        if c1 % 2 == 0:
            cart.Send(send[3, 0:n - 2], right, 2)
            cart.Recv(recv[2, 0:n - 2], left, 2)
            cart.Send(send[2, 0:n - 2], left, 3)
            cart.Recv(recv[3, 0:n - 2], right, 3)
        else:
            cart.Recv(recv[2, 0:n - 2], left, 2)
            cart.Send(send[3, 0:n - 2], right, 2)
            cart.Recv(recv[3, 0:n - 2], right, 3)
            cart.Send(send[2, 0:n - 2], left, 3)
        unpack(u, recv)
        relax(u, v, alpha)
    return squares(u, cart)


@ad.kernel
def isend_recv(u, alpha, nsteps, cart):
    """(c) Isend, then a blocking Recv, then Wait, one direction at a time."""
    up, down = cart.Shift(0, 1)
    left, right = cart.Shift(1, 1)
    n, m = u.shape
    k = n - 2 if n > m else m - 2
    v = np.zeros((n, m))
    send = np.zeros((4, k))
    recv = np.zeros((4, k))
    for step in range(nsteps):
        pack(u, send, recv)
        r = cart.Isend(send[1, 0:m - 2], down, 0)
        cart.Recv(recv[0, 0:m - 2], up, 0)
        r.Wait()
        r = cart.Isend(send[0, 0:m - 2], up, 1)
        cart.Recv(recv[1, 0:m - 2], down, 1)
        r.Wait()
        r = cart.Isend(send[3, 0:n - 2], right, 2)
        cart.Recv(recv[2, 0:n - 2], left, 2)
        r.Wait()
        r = cart.Isend(send[2, 0:n - 2], left, 3)
        cart.Recv(recv[3, 0:n - 2], right, 3)
        r.Wait()
        unpack(u, recv)
        relax(u, v, alpha)
    return squares(u, cart)


@ad.kernel
def irecv_send(u, alpha, nsteps, cart):
    """(d) Irecv, then a blocking Send, then Wait, one direction at a time."""
    up, down = cart.Shift(0, 1)
    left, right = cart.Shift(1, 1)
    n, m = u.shape
    k = n - 2 if n > m else m - 2
    v = np.zeros((n, m))
    send = np.zeros((4, k))
    recv = np.zeros((4, k))
    for step in range(nsteps):
        pack(u, send, recv)
        r = cart.Irecv(recv[0, 0:m - 2], up, 0)
        cart.Send(send[1, 0:m - 2], down, 0)
        r.Wait()
        r = cart.Irecv(recv[1, 0:m - 2], down, 1)
        cart.Send(send[0, 0:m - 2], up, 1)
        r.Wait()
        r = cart.Irecv(recv[2, 0:n - 2], left, 2)
        cart.Send(send[3, 0:n - 2], right, 2)
        r.Wait()
        r = cart.Irecv(recv[3, 0:n - 2], right, 3)
        cart.Send(send[2, 0:n - 2], left, 3)
        r.Wait()
        unpack(u, recv)
        relax(u, v, alpha)
    return squares(u, cart)


@ad.kernel
def waitall(u, alpha, nsteps, cart):
    """(e) four Irecv and four Isend, one Waitall for all eight."""
    up, down = cart.Shift(0, 1)
    left, right = cart.Shift(1, 1)
    n, m = u.shape
    k = n - 2 if n > m else m - 2
    v = np.zeros((n, m))
    send = np.zeros((4, k))
    recv = np.zeros((4, k))
    for step in range(nsteps):
        pack(u, send, recv)
        r0 = cart.Irecv(recv[0, 0:m - 2], up, 0)
        r1 = cart.Irecv(recv[1, 0:m - 2], down, 1)
        r2 = cart.Irecv(recv[2, 0:n - 2], left, 2)
        r3 = cart.Irecv(recv[3, 0:n - 2], right, 3)
        s0 = cart.Isend(send[1, 0:m - 2], down, 0)
        s1 = cart.Isend(send[0, 0:m - 2], up, 1)
        s2 = cart.Isend(send[3, 0:n - 2], right, 2)
        s3 = cart.Isend(send[2, 0:n - 2], left, 3)
        MPI.Request.Waitall([r0, r1, r2, r3, s0, s1, s2, s3])
        unpack(u, recv)
        relax(u, v, alpha)
    return squares(u, cart)


@ad.kernel
def waitall_per_dim(u, alpha, nsteps, cart):
    """(f) Irecv and Isend with a Waitall per dimension: rows first, then columns."""
    up, down = cart.Shift(0, 1)
    left, right = cart.Shift(1, 1)
    n, m = u.shape
    k = n - 2 if n > m else m - 2
    v = np.zeros((n, m))
    send = np.zeros((4, k))
    recv = np.zeros((4, k))
    for step in range(nsteps):
        pack(u, send, recv)
        r0 = cart.Irecv(recv[0, 0:m - 2], up, 0)
        r1 = cart.Irecv(recv[1, 0:m - 2], down, 1)
        s0 = cart.Isend(send[1, 0:m - 2], down, 0)
        s1 = cart.Isend(send[0, 0:m - 2], up, 1)
        MPI.Request.Waitall([r0, r1, s0, s1])
        r2 = cart.Irecv(recv[2, 0:n - 2], left, 2)
        r3 = cart.Irecv(recv[3, 0:n - 2], right, 3)
        s2 = cart.Isend(send[3, 0:n - 2], right, 2)
        s3 = cart.Isend(send[2, 0:n - 2], left, 3)
        MPI.Request.Waitall([r2, r3, s2, s3])
        unpack(u, recv)
        relax(u, v, alpha)
    return squares(u, cart)


@ad.kernel
def persistent(u, alpha, nsteps, cart):
    """(g) persistent requests made once (Send_init/Recv_init), Startall/Waitall each
    step."""
    up, down = cart.Shift(0, 1)
    left, right = cart.Shift(1, 1)
    n, m = u.shape
    k = n - 2 if n > m else m - 2
    v = np.zeros((n, m))
    send = np.zeros((4, k))
    recv = np.zeros((4, k))
    r0 = cart.Recv_init(recv[0, 0:m - 2], up, 0)
    r1 = cart.Recv_init(recv[1, 0:m - 2], down, 1)
    r2 = cart.Recv_init(recv[2, 0:n - 2], left, 2)
    r3 = cart.Recv_init(recv[3, 0:n - 2], right, 3)
    s0 = cart.Send_init(send[1, 0:m - 2], down, 0)
    s1 = cart.Send_init(send[0, 0:m - 2], up, 1)
    s2 = cart.Send_init(send[3, 0:n - 2], right, 2)
    s3 = cart.Send_init(send[2, 0:n - 2], left, 3)
    for step in range(nsteps):
        pack(u, send, recv)
        MPI.Prequest.Startall([r0, r1, r2, r3, s0, s1, s2, s3])
        MPI.Request.Waitall([r0, r1, r2, r3, s0, s1, s2, s3])
        unpack(u, recv)
        relax(u, v, alpha)
    r0.Free()
    r1.Free()
    r2.Free()
    r3.Free()
    s0.Free()
    s1.Free()
    s2.Free()
    s3.Free()
    return squares(u, cart)


@ad.kernel
def neighbor_alltoall(u, alpha, nsteps, cart):
    """(h) one Neighbor_alltoall of the four packed edges."""
    n, m = u.shape
    k = n - 2 if n > m else m - 2
    v = np.zeros((n, m))
    send = np.zeros((4, k))
    recv = np.zeros((4, k))
    for step in range(nsteps):
        pack(u, send, recv)
        cart.Neighbor_alltoall(send, recv)
        unpack(u, recv)
        relax(u, v, alpha)
    return squares(u, cart)


VARIANTS = {"sendrecv": sendrecv, "red_black": red_black, "isend_recv": isend_recv,
            "irecv_send": irecv_send, "waitall": waitall, "waitall_per_dim": waitall_per_dim,
            "persistent": persistent, "neighbor_alltoall": neighbor_alltoall}
