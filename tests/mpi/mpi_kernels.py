"""Distributed test kernels (each rank runs the same code on its part of the data)."""
import math

import numpy as np
from mpi4py import MPI

import hpcad as ad


@ad.kernel
def ring_sendrecv(x, w, comm):
    """Pass each rank's x to the right neighbour (periodic ring), combine, reduce."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    got = np.zeros_like(x)
    comm.Sendrecv(x, (rank + 1) % size, 7, got, (rank - 1 + size) % size, 7)
    s = 0.0
    for i in range(x.shape[0]):
        s += math.sin(got[i]) * x[i] * w
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def array_allreduce(x, comm):
    """Allreduce of an array, then a rank-dependent use of the reduced values."""
    total = np.zeros_like(x)
    comm.Allreduce(x, total, op=MPI.SUM)
    rank = comm.Get_rank()
    s = 0.0
    for i in range(x.shape[0]):
        s += (rank + 1.0) * total[i] * total[i] + x[i]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def scalar_allreduce_local(x, comm):
    """A per-rank (not replicated) result that depends on a global sum."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    total = comm.allreduce(s, op=MPI.SUM)
    comm.Barrier()
    return total * x[0] + comm.Get_size()


@ad.kernel
def halo_views(u, alpha, comm):
    """Halo exchange through views with PROC_NULL at the ends, then a stencil."""
    rank = comm.rank
    size = comm.size
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    n = u.shape[0]
    comm.Sendrecv(u[n - 2:n - 1], right, 0, u[0:1], left, 0)
    comm.Sendrecv(u[1:2], left, 1, u[n - 1:n], right, 1)
    s = 0.0
    for i in range(1, n - 1):
        v = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        s += v * v * v
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def heat_nonblocking(u, alpha, nsteps, comm):
    """heat_local of examples/heat_mpi.py with Isend/Irecv/Waitall halo exchanges."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    n = u.shape[0]
    tmp = np.zeros(n)
    for step in range(nsteps):
        r1 = comm.Irecv(u[0:1], left, 0)
        r2 = comm.Irecv(u[n - 1:n], right, 1)
        r3 = comm.Isend(u[n - 2:n - 1], right, 0)
        r4 = comm.Isend(u[1:2], left, 1)
        MPI.Request.Waitall([r1, r2, r3, r4])
        for i in range(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(1, n - 1):
        s += u[i] * u[i]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def blocking_pairs(x, comm):
    """Send/Recv ordered by rank parity around a ring."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    got = np.zeros_like(x)
    if rank % 2 == 0:
        comm.Send(x, (rank + 1) % size, 3)
        comm.Recv(got, (rank - 1 + size) % size, 3)
    else:
        comm.Recv(got, (rank - 1 + size) % size, 3)
        comm.Send(x, (rank + 1) % size, 3)
    s = 0.0
    for i in range(x.shape[0]):
        s += got[i] * got[i] * x[i]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def bcast_reduce(x, w, comm):
    """Root broadcasts its x; everyone combines with its own w; the sum goes back to root,
    which broadcasts the result again (scalars via 1-element arrays)."""
    shared = np.zeros_like(x)
    if comm.Get_rank() == 0:
        for i in range(x.shape[0]):
            shared[i] = x[i]
    comm.Bcast(shared, root=0)
    part = np.zeros(1)
    for i in range(x.shape[0]):
        part[0] += math.sin(shared[i] * w) + x[i] * w
    total = np.zeros(1)
    comm.Reduce(part, total, op=MPI.SUM, root=0)
    comm.Bcast(total, root=0)
    return total[0] * total[0]


@ad.kernel
def max_residual(x, comm):
    """A global max (as used for residual norms) inside a loss."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    top = comm.allreduce(s, op=MPI.MAX)
    low = comm.allreduce(s, op=MPI.MIN)
    return top * 2.0 + low + comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def gather_scatter(x, comm):
    """Gather onto root 0, transform there, scatter back; then allgather and alltoall."""
    size = comm.Get_size()
    n = x.shape[0]
    everything = np.zeros(size * n)
    comm.Gather(x, everything, root=0)
    if comm.Get_rank() == 0:
        for i in range(size * n):
            everything[i] = math.sin(everything[i]) * (i + 1.0)
    mine = np.zeros(n)
    comm.Scatter(everything, mine, root=0)
    seen = np.zeros(size * n)
    comm.Allgather(mine, seen)
    moved = np.zeros(size * n)
    comm.Alltoall(seen, moved)
    s = 0.0
    for i in range(size * n):
        s += moved[i] * moved[i] * (comm.Get_rank() + 1.0)
    for i in range(n):
        s += mine[i] * x[i]
    return comm.allreduce(s, op=MPI.SUM)


import numba_mpi  # noqa: E402


@ad.kernel
def numba_mpi_calls(x, w):
    """The same halo pattern written with numba-mpi (always COMM_WORLD)."""
    rank = numba_mpi.rank()
    size = numba_mpi.size()
    got = np.zeros_like(x)
    numba_mpi.sendrecv(x, (rank + 1) % size, got, (rank - 1 + size) % size, 5, 5)
    part = np.zeros(1)
    for i in range(x.shape[0]):
        part[0] += got[i] * x[i] * w
    total = np.zeros(1)
    numba_mpi.allreduce(part, total)
    numba_mpi.barrier()
    return total[0]


@ad.kernel
def numba_mpi_and_comm(x, comm):
    """numba-mpi's allreduce (COMM_WORLD) and the communicator argument's in one loss: both
    values are the same on every rank, so their sum is one global output (it counted once per
    rank, size times the gradient, when the two replications did not combine)."""
    part = np.zeros(1)
    for i in range(x.shape[0]):
        part[0] += x[i] * x[i] * x[i]
    total = np.zeros(1)
    numba_mpi.allreduce(part, total)
    return total[0] + comm.allreduce(math.sin(x[0]), op=MPI.SUM)


@ad.kernel
def two_communicators(x, comm, cart):
    """Allreduces over two communicator arguments that hold the same processes (a Cartesian
    communicator made from the other): their product is one global output (it counted once
    per rank, size times the gradient, when the two were taken as unrelated)."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return comm.allreduce(s, op=MPI.SUM) * cart.allreduce(math.sin(s), op=MPI.SUM)


@ad.kernel
def halo_buffer_steps(x, w, nsteps, comm):
    """Each step receives the left neighbour's x into a buffer that only the receive writes,
    then reads it nonlinearly: the reverse sweep must not re-read the buffer (it holds the
    last step's values by then)."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    got = np.zeros_like(x)
    for t in range(nsteps):
        comm.Sendrecv(x, (rank + 1) % size, 7, got, (rank - 1 + size) % size, 7)
        for i in range(x.shape[0]):
            x[i] = x[i] + w * math.sin(got[i])
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return comm.allreduce(s, op=MPI.SUM)


# Receive buffers read inside a loop whose only write of them is the MPI call: the loads
# must stay after the call in each iteration (ir/effects.py declares what each call writes).

@ad.kernel
def cg_allreduce_loop(x, comm):
    """The CG idiom: a dot product reduced by an array Allreduce, read back each iteration."""
    loc = np.zeros(1)
    glob = np.zeros(1)
    s = 0.0
    for it in range(3):
        loc[0] = 0.0
        for i in range(x.shape[0]):
            loc[0] += x[i] * x[i] * (it + 1.0)
        comm.Allreduce(loc, glob)
        rr = glob[0]
        s += rr * x[0]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def reduce_loop(x, comm):
    """Reduce onto root 0 in a loop; the root reads the result each iteration."""
    part = np.zeros(1)
    total = np.zeros(1)
    s = 0.0
    for it in range(3):
        part[0] = math.sin(x[it % x.shape[0]] * (it + 1.0))
        comm.Reduce(part, total, op=MPI.SUM, root=0)
        if comm.Get_rank() == 0:
            s += total[0] * total[0]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def allgather_loop(x, comm):
    """Allgather of a changing value in a loop, its first entries read each iteration."""
    mine = np.zeros(1)
    everyone = np.zeros(comm.Get_size())
    s = 0.0
    for it in range(3):
        mine[0] = x[0] * (it + 1.0) + x[1]
        comm.Allgather(mine, everyone)
        s += everyone[0] * everyone[comm.Get_size() - 1] * x[1]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def sendrecv_loop(x, comm):
    """A ring Sendrecv in a loop; element 0 of the receive buffer read each iteration."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    out = np.zeros(1)
    got = np.zeros(1)
    s = 0.0
    for it in range(3):
        out[0] = x[it % x.shape[0]] * (it + 2.0)
        comm.Sendrecv(out, (rank + 1) % size, 4, got, (rank - 1 + size) % size, 4)
        s += math.sin(got[0]) * x[0]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def irecv_wait_loop(x, comm):
    """Irecv + Isend + Wait in a loop; the received element read after the wait."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    out = np.zeros(1)
    got = np.zeros(1)
    s = 0.0
    for it in range(3):
        out[0] = x[it % x.shape[0]] + it
        r1 = comm.Irecv(got, (rank - 1 + size) % size, 6)
        r2 = comm.Isend(out, (rank + 1) % size, 6)
        MPI.Request.Waitall([r1, r2])
        s += got[0] * got[0] * x[1]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def allreduce_buffer_loss(x, comm):
    """The CG idiom: a local dot product, an array Allreduce, the loss read from its
    receive buffer (the same on every rank: one global loss)."""
    loc = np.zeros(1)
    for i in range(x.shape[0]):
        loc[0] += x[i] * x[i]
    glob = np.zeros(1)
    comm.Allreduce(loc, glob, op=MPI.SUM)
    return glob[0]


@ad.kernel
def scalar_allreduce_loss(x, comm):
    """allreduce_buffer_loss with the scalar allreduce."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def allreduce_buffer_steps(x, comm):
    """CG-like steps: each reduces a dot product into a buffer, reads rr from it (at the
    step's index, the same on every rank) and updates x with it; the loss is arithmetic
    on the last rr."""
    loc = np.zeros(3)
    glob = np.zeros(3)
    rr = 0.0
    for step in range(3):
        for i in range(x.shape[0]):
            loc[step] += x[i] * x[i]
        comm.Allreduce(loc, glob, op=MPI.SUM)
        rr = glob[step]
        for i in range(x.shape[0]):
            x[i] = x[i] - 0.05 * rr * x[i]
    return 0.5 * rr * rr + 1.0


@ad.kernel
def allreduce_trip_count(x, nsteps, flip, comm):
    """A value read from an Allreduce's buffer, carried through `for t in range(nsteps)`
    and a branch on `flip`, plain integer and boolean arguments: where they are the same on
    every rank the result is too (one global loss), where nsteps differs it is each rank's
    part of a sum."""
    loc = np.zeros(1)
    glob = np.zeros(1)
    for i in range(x.shape[0]):
        loc[0] += x[i] * x[i]
    comm.Allreduce(loc, glob, op=MPI.SUM)
    s = glob[0]
    for t in range(nsteps):
        s = 0.5 * s + 0.1 * s * s
    if flip:
        s = -s
    return s


@ad.kernel
def global_mean_square(x, comm):
    """The mean of x**2 over all ranks' entries, n = x.shape[0] on each: the same on every
    rank where the ranks' shapes are (one global loss), else each rank's part of a sum."""
    n = x.shape[0]
    size = comm.Get_size()
    loc = np.zeros(1)
    for i in range(n):
        loc[0] += x[i] * x[i]
    glob = np.zeros(1)
    comm.Allreduce(loc, glob, op=MPI.SUM)
    return glob[0] / (n * size)


@ad.kernel
def allgather_all_entries(x, comm):
    """A loop over all n * size entries of an Allgather's buffer (n = x.shape[0])."""
    n = x.shape[0]
    size = comm.Get_size()
    allx = np.zeros(n * size)
    comm.Allgather(x, allx)
    s = 0.0
    for i in range(n * size):
        s += math.cos(allx[i]) * (i + 1.0)
    return s


@ad.kernel
def scaled_allreduce_loss(x, dt, comm):
    """glob[0] times a float argument: per-rank unless dt is declared in params=."""
    loc = np.zeros(1)
    for i in range(x.shape[0]):
        loc[0] += x[i] * x[i]
    glob = np.zeros(1)
    comm.Allreduce(loc, glob, op=MPI.SUM)
    return dt * glob[0]


@ad.kernel
def allreduce_buffer_while(x, comm):
    """CG's loop: iterate while the reduced residual, read from the buffer, is large."""
    loc = np.zeros(1)
    glob = np.zeros(1)
    rr = 1.0
    it = 0
    while rr > 1e-3 and it < 4:
        loc[0] = 0.0
        for i in range(x.shape[0]):
            x[i] = x[i] - 0.25 * x[i] * x[i]
            loc[0] += x[i] * x[i]
        comm.Allreduce(loc, glob, op=MPI.SUM)
        rr = glob[0]
        it += 1
    return rr


@ad.kernel
def allreduce_buffer_local(x, comm):
    """A per-rank result made from a replicated one: each rank's value counts."""
    loc = np.zeros(1)
    for i in range(x.shape[0]):
        loc[0] += math.sin(x[i])
    glob = np.zeros(1)
    comm.Allreduce(loc, glob, op=MPI.SUM)
    return glob[0] * x[0]


@ad.kernel
def allgather_sum(x, comm):
    """Each rank's local sum gathered everywhere, then summed (nonlinearly) on each rank."""
    loc = np.zeros(1)
    for i in range(x.shape[0]):
        loc[0] += x[i] * math.cos(x[i])
    seen = np.zeros(comm.Get_size())
    comm.Allgather(loc, seen)
    s = 0.0
    for r in range(seen.shape[0]):
        s += seen[r] * seen[r] * (r + 1.0)
    return s


@ad.kernel
def allgather_own_entry(x, comm):
    """Reading the gathered buffer at this rank's index gives a per-rank value."""
    loc = np.zeros(1)
    for i in range(x.shape[0]):
        loc[0] += x[i] * x[i]
    seen = np.zeros(comm.Get_size())
    comm.Allgather(loc, seen)
    return seen[comm.Get_rank()] * seen[0]


@ad.kernel
def bcast_buffer(x, comm):
    """Root fills a buffer from its x and broadcasts it; the loss is read from it."""
    buf = np.zeros(2)
    if comm.Get_rank() == 0:
        for i in range(x.shape[0]):
            buf[0] += x[i] * x[i]
        buf[1] = math.sin(x[0])
    comm.Bcast(buf, root=0)
    return buf[0] * buf[1]


# the kernels the derivative tests run, with their per-rank arguments (rng -> tuple)
@ad.kernel
def halo_python_loops(u, alpha, comm):
    """Halo exchange, then a stencil written with zip/enumerate over slices and an assert."""
    assert alpha > 0.0, "alpha must be positive"
    rank = comm.rank
    size = comm.size
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    n = u.shape[0]
    comm.Sendrecv(u[n - 2:n - 1], right, 0, u[0:1], left, 0)
    comm.Sendrecv(u[1:2], left, 1, u[n - 1:n], right, 1)
    s = 0.0
    for i, (a, b, c) in enumerate(zip(u[:-2], u[1:-1], u[2:])):
        v = b + alpha * (a - 2.0 * b + c)
        s += (i + 1.0) * v * v * v
    return comm.allreduce(s, op=MPI.SUM)


CASES = {
    "ring_sendrecv": (ring_sendrecv, lambda r: (r.standard_normal(5), 0.7)),
    "array_allreduce": (array_allreduce, lambda r: (r.standard_normal(4),)),
    "scalar_allreduce_local": (scalar_allreduce_local, lambda r: (r.standard_normal(4) + 2,)),
    "halo_views": (halo_views, lambda r: (r.standard_normal(6), 0.3)),
    "halo_python_loops": (halo_python_loops, lambda r: (r.standard_normal(6), 0.3)),
    "heat_nonblocking": (heat_nonblocking, lambda r: (r.standard_normal(7), 0.2, 4)),
    "blocking_pairs": (blocking_pairs, lambda r: (r.standard_normal(3),)),
    "bcast_reduce": (bcast_reduce, lambda r: (r.standard_normal(4), 0.8)),
    "max_residual": (max_residual, lambda r: (r.standard_normal(5),)),
    "gather_scatter": (gather_scatter, lambda r: (r.standard_normal(2),)),
    "halo_buffer_steps": (halo_buffer_steps, lambda r: (r.standard_normal(4), 0.7, 3)),
    "cg_allreduce_loop": (cg_allreduce_loop, lambda r: (r.standard_normal(4),)),
    "reduce_loop": (reduce_loop, lambda r: (r.standard_normal(4),)),
    "allgather_loop": (allgather_loop, lambda r: (r.standard_normal(2),)),
    "sendrecv_loop": (sendrecv_loop, lambda r: (r.standard_normal(3),)),
    "irecv_wait_loop": (irecv_wait_loop, lambda r: (r.standard_normal(3),)),
    "allreduce_buffer_loss": (allreduce_buffer_loss, lambda r: (r.standard_normal(3),)),
    "allreduce_buffer_steps": (allreduce_buffer_steps, lambda r: (r.standard_normal(3) / 2,)),
    "allreduce_buffer_local": (allreduce_buffer_local, lambda r: (r.standard_normal(3),)),
    "allgather_sum": (allgather_sum, lambda r: (r.standard_normal(3),)),
    "allgather_own_entry": (allgather_own_entry, lambda r: (r.standard_normal(3),)),
    "bcast_buffer": (bcast_buffer, lambda r: (r.standard_normal(3),)),
}

# the cases whose result differs between ranks (each rank's counts in the global loss);
# the others return a value that is the same on every rank (counted once)
PER_RANK = {"scalar_allreduce_local", "allreduce_buffer_local", "allgather_own_entry",
            "allreduce_trip_count_per_rank", "global_mean_square_uneven"}
