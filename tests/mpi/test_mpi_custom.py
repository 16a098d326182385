"""Custom derivative rules in distributed kernels (run by tests/test_mpi_launch.py under
mpiexec -n 2 and -n 3): a global norm whose rules communicate (an allreduce in fwd and bwd),
called by a kernel that exchanges halos, checked against finite differences of the global
function in both modes on both backends, and at width 3 (the rules called once per
direction) against separate unbatched calls; and a deliberately doubled rule is honored."""
import math

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from tests.ad.width_check import check_forward, check_reverse  # noqa: E402

COMM = MPI.COMM_WORLD
# numba compiles each derivative on every rank (seconds apiece): the fast tier runs these on
# the interpreter, and numba under MPI through the examples (tests/test_mpi_launch.py)
BACKENDS = ["interp", pytest.param("numba", marks=pytest.mark.slow)]


@ad.custom_vjp
@ad.kernel
def global_norm(x, comm):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return math.sqrt(comm.allreduce(s, op=MPI.SUM))


@ad.kernel
def global_norm_fwd(x, comm):
    n = global_norm(x, comm)
    return n, n


@ad.kernel
def global_norm_bwd(x, comm, n, g, dx):
    # every rank's output is the same norm: their cotangents add up
    total = comm.allreduce(g, op=MPI.SUM)
    for i in range(x.shape[0]):
        dx[i] += total * x[i] / n


@ad.kernel
def global_norm_jvp(x, comm, dx):
    n = global_norm(x, comm)
    d = 0.0
    for i in range(x.shape[0]):
        d += x[i] * dx[i]
    return n, comm.allreduce(d, op=MPI.SUM) / n


global_norm.defvjp(global_norm_fwd, global_norm_bwd)
global_norm.defjvp(global_norm_jvp)


@ad.kernel
def halo_then_norm(x, w, comm):
    """Each rank takes its left neighbour's last value (a periodic halo), smooths, and
    returns its weight times the global norm of the smoothed field."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    halo = np.zeros(1)
    comm.Sendrecv(x[x.shape[0] - 1:], (rank + 1) % size, 5, halo, (rank - 1 + size) % size, 5)
    y = np.empty_like(x)
    y[0] = 0.5 * (x[0] + halo[0])
    for i in range(1, x.shape[0]):
        y[i] = 0.5 * (x[i] + x[i - 1]) * w
    return (rank + 1.0) * global_norm(y, comm)


@ad.custom_vjp
@ad.kernel
def doubled_square_sum(x, comm):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def doubled_fwd(x, comm):
    return doubled_square_sum(x, comm)


@ad.kernel
def doubled_bwd(x, comm, g, dx):
    total = comm.allreduce(g, op=MPI.SUM)
    for i in range(x.shape[0]):
        dx[i] += 2.0 * (2.0 * x[i]) * total     # twice the true derivative


doubled_square_sum.defvjp(doubled_fwd, doubled_bwd)


def _fd(kernel, args, d, h=1e-6):
    pairs = list(zip(args, d, strict=True))
    plus = kernel.py_func(*[a + h * t if t is not None else a for a, t in pairs])
    minus = kernel.py_func(*[a - h * t if t is not None else a for a, t in pairs])
    return (plus - minus) / (2 * h)


def _rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def _case():
    rng = np.random.default_rng(300 + COMM.rank)
    args = (rng.standard_normal(6) + 1.0, 0.8, COMM)
    rng_d = np.random.default_rng(400 + COMM.rank)
    return args, (rng_d.standard_normal(6), float(rng_d.standard_normal()), None)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_communicating_rule_in_halo_kernel_matches_finite_differences(backend):
    args, d = _case()
    fd_local = _fd(halo_then_norm, args, d)
    _, tangent = ad.jvp(halo_then_norm, args, d, backend=backend)
    assert _rel(tangent, fd_local) <= 1e-6, (COMM.rank, tangent, fd_local)
    # each rank's output counts once: the pullback of all outputs is the FD of their sum
    _, pullback = ad.vjp(halo_then_norm, *args, backend=backend)
    cots = pullback(1.0)
    local = sum(float(np.sum(c * t)) for c, t in zip(cots, d, strict=True) if c is not None)
    assert _rel(COMM.allreduce(local), COMM.allreduce(fd_local)) <= 1e-6


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_doubled_rule_is_honored_under_mpi(backend):
    x = np.random.default_rng(500 + COMM.rank).standard_normal(5)
    g = ad.grad(doubled_square_sum, backend=backend)(x, COMM)
    # every rank's output is the global sum of squares: d(sum of outputs)/dx = size * 2x
    np.testing.assert_allclose(g, 2.0 * COMM.size * 2.0 * x, rtol=1e-12)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_communicating_rule_at_width_3_equals_separate_calls(backend):
    args, _ = _case()
    rng = np.random.default_rng(600 + COMM.rank)
    check_forward(halo_then_norm, args, 3, backend, rng)
    check_reverse(halo_then_norm, args, 3, backend, rng)
