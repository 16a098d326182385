"""Kernels of tests/mpi/test_replication_types.py: a distributed conjugate gradient and a
parameter-fitting time loop, rows split over the ranks with one halo cell each side."""
import numpy as np
from mpi4py import MPI

import hpcad as ad


@ad.kernel
def cg_loss(b, sigma, nit, comm):
    """nit steps of conjugate gradients on (sigma I + 1-D Laplacian) x = b (zero Dirichlet
    ends), the dot products summed by array Allreduce; loss 0.5 |x|^2 over all ranks."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    n = b.shape[0]
    x = np.zeros(n)
    r = b.copy()
    p = np.zeros(n + 2)   # the search direction with a halo cell each side
    ap = np.zeros(n)
    loc = np.zeros(1)
    glob = np.zeros(1)
    for i in range(n):
        p[i + 1] = r[i]
        loc[0] += r[i] * r[i]
    comm.Allreduce(loc, glob, op=MPI.SUM)
    rr = glob[0]
    for it in range(nit):
        comm.Sendrecv(p[n:n + 1], right, 0, p[0:1], left, 0)
        comm.Sendrecv(p[1:2], left, 1, p[n + 1:n + 2], right, 1)
        loc[0] = 0.0
        for i in range(n):
            ap[i] = (2.0 + sigma) * p[i + 1] - p[i] - p[i + 2]
            loc[0] += p[i + 1] * ap[i]
        comm.Allreduce(loc, glob, op=MPI.SUM)
        alpha = rr / glob[0]
        loc[0] = 0.0
        for i in range(n):
            x[i] += alpha * p[i + 1]
            r[i] -= alpha * ap[i]
            loc[0] += r[i] * r[i]
        comm.Allreduce(loc, glob, op=MPI.SUM)
        beta = glob[0] / rr
        rr = glob[0]
        for i in range(n):
            p[i + 1] = r[i] + beta * p[i + 1]
    loc[0] = 0.0
    for i in range(n):
        loc[0] += 0.5 * x[i] * x[i]
    comm.Allreduce(loc, glob, op=MPI.SUM)
    return glob[0]


@ad.kernel
def fit_loss(theta, kappa, u0, target, nt, comm):
    """nt explicit steps of u' = kappa u_xx + theta[0] u + theta[1] u^2 + theta[2] (halo
    exchange each step), then the misfit to target summed over the ranks plus a penalty
    on the parameters: a loss to fit theta and kappa, the same on every rank."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    n = u0.shape[0]
    u = np.zeros(n + 2)
    new = np.zeros(n + 2)
    for i in range(n):
        u[i + 1] = u0[i]
    for t in range(nt):
        comm.Sendrecv(u[n:n + 1], right, 0, u[0:1], left, 0)
        comm.Sendrecv(u[1:2], left, 1, u[n + 1:n + 2], right, 1)
        for i in range(1, n + 1):
            lap = u[i - 1] - 2.0 * u[i] + u[i + 1]
            new[i] = u[i] + 0.1 * (kappa * lap + theta[0] * u[i] + theta[1] * u[i] * u[i]
                                   + theta[2])
        for i in range(1, n + 1):
            u[i] = new[i]
    s = 0.0
    for i in range(n):
        s += (u[i + 1] - target[i]) ** 2
    penalty = 0.01 * (theta[0] * theta[0] + theta[1] * theta[1] + theta[2] * theta[2])
    return comm.allreduce(s, op=MPI.SUM) + penalty + 0.01 * kappa * kappa


@ad.kernel
def root_updates_parameters(u, p, nsteps, comm):
    """Rank 0 updates the parameters p every step and broadcasts them into p, which on the
    other ranks holds anything on entry: after a step p is the same on every rank, so the
    result is one value for all ranks (counted once) whenever the loop runs."""
    for t in range(nsteps):
        if comm.Get_rank() == 0:
            p[0] = p[0] * 0.9 + 0.1 * p[1] * p[1]
        comm.Bcast(p, root=0)
        for i in range(u.shape[0]):
            u[i] = u[i] + 0.1 * p[0] * np.sin(u[i])
    s = 0.0
    for i in range(u.shape[0]):
        s += u[i] * u[i]
    return comm.allreduce(s) + p[0] * p[1]
