"""An uneven 1-D decomposition as simulation codes write it: the root scatters a global field
with Scatterv (ranks own different numbers of cells), a time loop exchanges halos and
steps a stencil, Gatherv collects the field on the root. Its gradient equals the one-process
program's (the same kernel on MPI.COMM_SELF) to 1e-12, forward and reverse, on both backends."""
import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad

COMM = MPI.COMM_WORLD
BACKENDS = ["interp", pytest.param("numba", marks=pytest.mark.slow)]


@ad.kernel
def uneven_heat(u0, counts, displs, alpha, steps, comm):
    rank = comm.Get_rank()
    size = comm.Get_size()
    n = counts[rank]
    u = np.zeros(n + 2)
    comm.Scatterv([u0, counts, displs, MPI.DOUBLE], u[1:n + 1], root=0)
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    for _ in range(steps):
        comm.Sendrecv(u[n:n + 1], right, 0, u[0:1], left, 0)
        comm.Sendrecv(u[1:2], left, 1, u[n + 1:n + 2], right, 1)
        u[1:n + 1] = u[1:n + 1] + alpha * (u[0:n] - 2.0 * u[1:n + 1] + u[2:n + 2]) \
            + 0.05 * np.sin(u[1:n + 1])
    out = np.zeros(u0.shape[0])
    comm.Gatherv(u[1:n + 1], [out, counts, displs, MPI.DOUBLE], root=0)
    return np.sum(out * out * out)


def _split(total, size):
    """Uneven counts: the first ranks get one cell more, and the last rank two fewer."""
    base = [total // size + (1 if r < total % size else 0) for r in range(size)]
    if size > 1:
        base[0] += 2
        base[-1] -= 2
    counts = np.array(base, dtype=np.int64)
    displs = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    return counts, displs


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_uneven_decomposition_gradient_equals_one_process(backend):
    total, alpha, steps = 17, 0.2, 6
    u0 = np.cos(np.linspace(0.0, 2.0, total)) + 0.3
    counts, displs = _split(total, COMM.size)
    assert len(set(counts.tolist())) > 1   # uneven
    loss, (du, dalpha) = ad.value_and_grad(uneven_heat, argnums=(0, 3), backend=backend)(
        u0, counts, displs, alpha, steps, COMM)
    # each rank's result is its part of the loss (the root's sum; the others' zero)
    loss = COMM.allreduce(loss)
    dalpha = COMM.allreduce(dalpha)
    du = COMM.allreduce(du)   # the root's send buffer holds the whole gradient
    one = (np.array([total]), np.array([0]))
    ref_loss, (ref_du, ref_dalpha) = ad.value_and_grad(uneven_heat, argnums=(0, 3),
                                                       backend=backend)(
        u0, *one, alpha, steps, MPI.COMM_SELF)
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    np.testing.assert_allclose(du, ref_du, rtol=1e-12, atol=1e-14)
    assert abs(dalpha - ref_dalpha) <= 1e-12 * abs(ref_dalpha)
    # forward mode along a direction of u0 (given on the root, where the data lives)
    d = np.sin(np.arange(total) + 1.0)
    _, tangent = ad.jvp(uneven_heat, (u0, counts, displs, alpha, steps, COMM),
                        (d, None, None, None, None, None), backend=backend)
    assert abs(COMM.allreduce(tangent) - float(ref_du @ d)) <= 1e-10 * abs(ref_du @ d)
