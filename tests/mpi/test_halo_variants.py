"""The eight halo-exchange variants of hpcad/kernels/halo_variants.py under mpiexec (2 and 3
ranks: tests/test_mpi_launch.py): each one's value and gradient equal the Sendrecv
variant's to 1e-12, on a row and on a periodic column of ranks (so that both the row and the
column exchanges meet real neighbours, PROC_NULL and, at 2 ranks, one rank on both sides);
the Sendrecv variant against central finite differences and against the one-process
program."""

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.kernels.halo_variants import VARIANTS, sendrecv
from hpcad.kernels.mpi_stencils import local_block
from tests.ad.width_check import check_forward, check_reverse
from tests.mpi import ALL_NUMBA, BACKENDS

COMM = MPI.COMM_WORLD
# compiled by default: one variant of each kind of exchange (all under HPCAD_ALL_MPI=1)
ON_NUMBA = ("sendrecv", "waitall", "persistent", "neighbor_alltoall")
GRIDS = {"rows": ([COMM.size, 1], False), "periodic-columns": ([1, COMM.size], True)}
ALPHA, STEPS = 0.1, 4


def initial():
    x = np.linspace(0.0, 1.0, 13)[:, None]
    y = np.linspace(0.0, 1.0, 10)[None, :]
    return np.sin(3.0 * x) * np.cos(2.0 * y) + 0.5


def block(grid: str):
    dims, periodic = GRIDS[grid]
    cart = COMM.Create_cart(dims, periods=[periodic, periodic])
    u, corner = local_block(initial(), cart)
    return cart, u, corner


def relative(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def value_and_gradient(kernel, u, cart, backend):
    """The loss, this rank's gradient and the whole alpha gradient (summed over cart)."""
    loss, (du, dalpha) = ad.value_and_grad(kernel, argnums=(0, 1), backend=backend)(
        u.copy(), ALPHA, STEPS, cart)
    return loss, du, cart.allreduce(dalpha)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_every_variant_equals_sendrecv(grid, backend):
    cart, u, _ = block(grid)
    loss, du, dalpha = value_and_gradient(sendrecv, u, cart, backend)
    for name, kernel in VARIANTS.items():
        if backend == "numba" and not ALL_NUMBA and name not in ON_NUMBA:
            continue
        got_loss, got_du, got_dalpha = value_and_gradient(kernel, u, cart, backend)
        assert relative(got_loss, loss) <= 1e-12, name
        np.testing.assert_allclose(got_du, du, rtol=1e-12, atol=1e-14, err_msg=name)
        assert relative(got_dalpha, dalpha) <= 1e-12, name
        if name != "sendrecv":   # mpi4py receives into contiguous buffers only
            assert relative(kernel.py_func(u.copy(), ALPHA, STEPS, cart), loss) <= 1e-12


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_sendrecv_variant_matches_finite_differences(grid, backend):
    """Forward and reverse along a random direction of every rank's block and of alpha,
    against central differences of hpcad's primal (the output is replicated)."""
    cart, u, _ = block(grid)
    rng = np.random.default_rng(50 + COMM.rank)
    du_dir = rng.standard_normal(u.shape)
    da_dir = float(COMM.bcast(rng.standard_normal()))
    h = 1e-6
    sendrecv.backend = "interp"
    try:
        fd = (sendrecv(u + h * du_dir, ALPHA + h * da_dir, STEPS, cart) -
              sendrecv(u - h * du_dir, ALPHA - h * da_dir, STEPS, cart)) / (2 * h)
    finally:
        sendrecv.backend = None
    _, tangent = ad.jvp(sendrecv, (u.copy(), ALPHA, STEPS, cart),
                        (du_dir, da_dir, None, None), backend=backend)
    assert relative(tangent, fd) <= 1e-6, (COMM.rank, tangent, fd)
    _, du, dalpha = value_and_gradient(sendrecv, u, cart, backend)
    total = COMM.allreduce(float(np.sum(du * du_dir))) + dalpha * da_dir
    assert relative(total, fd) <= 1e-6, (COMM.rank, total, fd)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_sendrecv_variant_matches_single_process(backend):
    """On the non-periodic grid, the value and the gradient of the owned cells (and of the
    fixed boundary cells) equal the one-process program's."""
    cart, u, (r0, c0) = block("rows")
    loss, du, dalpha = value_and_gradient(sendrecv, u, cart, backend)
    pieces = COMM.gather((r0, c0, du), root=0)
    if COMM.rank != 0:
        return
    u0 = initial()
    single = MPI.COMM_SELF.Create_cart([1, 1])
    ref_loss, ref_du, ref_dalpha = value_and_gradient(sendrecv, u0, single, backend)
    full = np.zeros_like(u0)
    for r, c, part in pieces:   # owned cells, plus halos that are global boundaries
        rows = slice(r - 1 if r == 1 else r, r + part.shape[0] - 2 +
                     (1 if r + part.shape[0] - 2 == u0.shape[0] - 1 else 0))
        cols = slice(c - 1 if c == 1 else c, c + part.shape[1] - 2 +
                     (1 if c + part.shape[1] - 2 == u0.shape[1] - 1 else 0))
        full[rows, cols] = part[rows.start - (r - 1):rows.stop - (r - 1),
                                cols.start - (c - 1):cols.stop - (c - 1)]
    assert relative(loss, ref_loss) <= 1e-12
    np.testing.assert_allclose(full, ref_du, rtol=1e-12, atol=1e-14)
    assert relative(dalpha, ref_dalpha) <= 1e-12


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_batched_neighbour_variant_equals_separate_calls(grid):
    cart, u, _ = block(grid)
    rng = np.random.default_rng(60 + COMM.rank)
    kernel = VARIANTS["neighbor_alltoall"]
    check_forward(kernel, (u, ALPHA, STEPS, cart), 3, "interp", rng)
    check_reverse(kernel, (u, ALPHA, STEPS, cart), 3, "interp", rng)
