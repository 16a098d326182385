"""Derivatives of distributed kernels under mpiexec (run by tests/test_mpi_launch.py with
2 and 3 ranks): forward mode against central finite differences of the plain Python
function, reverse mode against forward mode (hpcad.testing.dot_test) and the gradient of the
global loss through its Taylor remainder (hpcad.testing.taylor_test), on both backends; the
distributed heat gradient against the single-process one."""

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.checkpoint.plan import Kind, Plan
from hpcad.kernels.mpi_stencils import heat_local, split
from hpcad.testing import dot_test, taylor_test
from tests.mpi import case_backends
from tests.mpi import mpi_kernels as mk

COMM = MPI.COMM_WORLD
# numba compiles each derivative on every rank (seconds apiece): the fast tier runs these on
# the interpreter, and numba under MPI through the examples (tests/test_mpi_launch.py)
BACKENDS = ["interp", pytest.param("numba", marks=pytest.mark.slow)]
CASES = mk.CASES
# The cases numba compiles (slow tier; all under HPCAD_ALL_MPI=1): with the numba cases of
# test_mpi_reductions and test_mpi_replicated, their primals and derivatives run every line
# of the numba backend's code generation, and call every function in the generated code,
# that all of those files' cases do (tests/mpi/numba_cases.py); the interpreter runs every
# case.
ON_NUMBA = ("heat_nonblocking", "gather_scatter", "blocking_pairs")


def _args(case):
    rng = np.random.default_rng(100 + COMM.rank)
    kernel, make = CASES[case]
    return kernel, make(rng) + (COMM,)


def _direction(args):
    rng = np.random.default_rng(200 + COMM.rank)
    return tuple(rng.standard_normal(a.shape) if isinstance(a, np.ndarray) else
                 (float(rng.standard_normal()) if isinstance(a, float) else None) for a in args)


def _shifted(args, d, h):
    return tuple(a + h * t if t is not None else a for a, t in zip(args, d, strict=True))


def _copies(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def _fd(kernel, args, d, h=1e-6):
    """Central difference of the plain Python function (a collective)."""
    plus = kernel.py_func(*_shifted(_copies(args), d, h))
    minus = kernel.py_func(*_shifted(_copies(args), d, -h))
    return (plus - minus) / (2 * h)


def _rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case, backend", case_backends(sorted(CASES), ON_NUMBA))
def test_primal_equals_plain_python(case, backend):
    """The kernel's value on every rank is what CPython computes running it undecorated
    (catches a load of a receive buffer moved above the MPI call that writes it)."""
    kernel, args = _args(case)
    plain = kernel.py_func(*_copies(args))
    kernel.backend = backend
    try:
        got = kernel(*_copies(args))
    finally:
        kernel.backend = None
    assert _rel(got, plain) <= 1e-12, (COMM.rank, got, plain)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case, backend", case_backends(sorted(CASES), ON_NUMBA))
def test_forward_matches_finite_differences(case, backend):
    """The tangent of this rank's output along everyone's direction is the central finite
    difference of the plain Python function (run undecorated on every rank)."""
    kernel, args = _args(case)
    d = _direction(args)
    fd_local = _fd(kernel, args, d)
    _, tangent = ad.jvp(kernel, args, d, backend=backend)
    assert _rel(tangent, fd_local) <= 1e-6, (COMM.rank, tangent, fd_local)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case, backend", case_backends(sorted(CASES), ON_NUMBA))
def test_reverse_is_the_adjoint_of_forward(case, backend):
    """<J v, w> = <v, J^T w> summed over the ranks (hpcad.testing.dot_test): reverse mode,
    with its seeding of per-rank and replicated outputs, transposes the forward mode that
    the finite differences above check."""
    kernel, args = _args(case)
    dot_test(kernel, args, backend=backend)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case, backend", case_backends(sorted(CASES), ON_NUMBA))
def test_gradient_of_the_global_loss_passes_taylor_test(case, backend):
    """The gradient is that of the global loss: the ranks' results summed, a result the same
    on every rank counted once (mk.PER_RANK says which, by hand); its Taylor remainder is
    second order (hpcad.testing.taylor_test)."""
    kernel, args = _args(case)
    taylor = taylor_test(kernel, args, backend=backend)
    plain = kernel.py_func(*_copies(args))
    expected = COMM.allreduce(plain) if case in mk.PER_RANK else plain
    assert _rel(taylor.value, expected) <= 1e-12, (COMM.rank, taylor.value, expected)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_nonblocking_heat_equals_sendrecv_heat(backend):
    n, alpha, steps = 41, 0.25, 12
    u0 = np.sin(np.linspace(0.0, np.pi, n)) + 0.1
    u, _ = split(u0, COMM)
    g1 = ad.grad(heat_local, argnums=(0, 1), backend=backend)(u, alpha, steps, COMM)
    g2 = ad.grad(mk.heat_nonblocking, argnums=(0, 1), backend=backend)(u, alpha, steps, COMM)
    np.testing.assert_allclose(g2[0], g1[0], rtol=1e-12, atol=1e-15)
    assert _rel(g2[1], g1[1]) <= 1e-12


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_distributed_heat_matches_single_process(backend):
    n, alpha, steps = 41, 0.25, 12
    u0 = np.sin(np.linspace(0.0, np.pi, n)) + 0.1
    u, start = split(u0, COMM)
    loss, (du, dalpha) = ad.value_and_grad(heat_local, argnums=(0, 1), backend=backend)(
        u, alpha, steps, COMM)
    owned = du[1:-1]
    pieces = COMM.gather((start, owned, du[0], du[-1]), root=0)
    dalpha = COMM.allreduce(dalpha)
    if COMM.rank == 0:
        serial = MPI.COMM_SELF
        ref_loss, (ref_du, ref_dalpha) = ad.value_and_grad(heat_local, argnums=(0, 1),
                                                           backend=backend)(u0, alpha, steps,
                                                                            serial)
        full = np.zeros(n)
        for s, part, lo, hi in pieces:
            full[s:s + part.shape[0]] = part
        full[0], full[-1] = pieces[0][2], pieces[-1][3]
        assert _rel(loss, ref_loss) <= 1e-12
        np.testing.assert_allclose(full, ref_du, rtol=1e-12, atol=1e-14)
        assert _rel(dalpha, ref_dalpha) <= 1e-12


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_cartesian_jacobi_matches_single_process(backend):
    from hpcad.kernels.mpi_stencils import jacobi_local, local_block
    cart = COMM.Create_cart(MPI.Compute_dims(COMM.size, 2))
    x = np.linspace(0.0, 1.0, 14)[:, None]
    y = np.linspace(0.0, 1.0, 11)[None, :]
    u0 = np.sin(3.0 * x) * np.cos(2.0 * y) + 0.5
    u, (r0, c0) = local_block(u0, cart)
    loss, du = ad.value_and_grad(jacobi_local, argnums=0, backend=backend)(
        u, np.zeros_like(u), 6, cart)
    pieces = cart.gather((r0, c0, du), root=0)
    if cart.rank == 0:
        single = MPI.COMM_SELF.Create_cart([1, 1])
        ref_loss, ref = ad.value_and_grad(jacobi_local, argnums=0, backend=backend)(
            u0, np.zeros_like(u0), 6, single)
        full = np.zeros_like(u0)
        for r, c, part in pieces:   # owned cells, plus halos that are global boundaries
            rows = slice(r - 1 if r == 1 else r, r + part.shape[0] - 2 +
                         (1 if r + part.shape[0] - 2 == u0.shape[0] - 1 else 0))
            cols = slice(c - 1 if c == 1 else c, c + part.shape[1] - 2 +
                         (1 if c + part.shape[1] - 2 == u0.shape[1] - 1 else 0))
            pr = slice(rows.start - (r - 1), rows.stop - (r - 1))
            pc = slice(cols.start - (c - 1), cols.stop - (c - 1))
            full[rows, cols] = part[pr, pc]
        assert _rel(loss, ref_loss) <= 1e-12
        np.testing.assert_allclose(full, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_split_subcommunicator(backend):
    """A communicator made with Split is passed in like any other."""
    sub = COMM.Split(COMM.rank % 2, COMM.rank)
    kernel, args = mk.ring_sendrecv, (np.random.default_rng(COMM.rank).standard_normal(4),
                                      0.5, sub)
    d = _direction(args)
    fd = _fd(kernel, args, d)
    _, tangent = ad.jvp(kernel, args, d, backend=backend)
    assert _rel(tangent, fd) <= 1e-6
    dot_test(kernel, args, backend=backend)   # (sums over the sub-communicator's ranks)


# slow on both backends: its plain Python reference compiles numba-mpi's functions in every
# process (seconds each; the 8-rank run on two cores spent half of this file's time
# there); the full tier runs it at 2 and 3 ranks
@pytest.mark.slow
@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_numba_mpi_functions(backend):
    """numba-mpi calls (markers/numba_mpi.toml) differentiate like mpi4py's; the output,
    read from an array Allreduce's receive buffer, is the same on every rank: it counts
    once, as an allreduce's result does."""
    args = (np.random.default_rng(COMM.rank).standard_normal(4), 0.6)
    d = _direction(args)
    fd = _fd(mk.numba_mpi_calls, args, d)
    _, tangent = ad.jvp(mk.numba_mpi_calls, args, d, backend=backend)
    assert _rel(tangent, fd) <= 1e-6
    dot_test(mk.numba_mpi_calls, args, backend=backend)   # (on COMM_WORLD: no comm argument)
    taylor = taylor_test(mk.numba_mpi_calls, args, backend=backend)
    assert _rel(taylor.value, mk.numba_mpi_calls.py_func(*_copies(args))) <= 1e-12


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpointed_distributed_heat_same_plan_and_gradient(backend):
    """With a snapshot budget the distributed gradient is unchanged, and every rank plans
    the same (equal plan hashes): recomputed segments communicate again on all ranks."""
    n, alpha, steps = 41, 0.25, 12
    u0 = np.sin(np.linspace(0.0, np.pi, n)) + 0.1
    u, _ = split(u0, COMM)
    ref = ad.grad(heat_local, argnums=(0, 1), backend=backend)(u, alpha, steps, COMM)
    k = ad.checkpoint(heat_local, snapshots=3)
    got = ad.grad(k, argnums=(0, 1), backend=backend)(u, alpha, steps, COMM)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1] == ref[1]
    revolve = ad.checkpoint(heat_local, snapshots=2, schedule="revolve")
    got = ad.grad(revolve, argnums=(0, 1), backend=backend)(u, alpha, steps, COMM)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1] == ref[1]
    text = ad.plan(k, u, alpha, steps, COMM)
    assert "3 snapshots" in text
    hashes = COMM.allgather(text.splitlines()[-1])
    assert len(set(hashes)) == 1


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_budget_distributed_heat_same_choice_and_gradient(backend):
    """Under a byte budget the ranks' local sizes differ (41 cells over 2 ranks; 13 or 14
    per rank over more than 3, so that the budgets below, in bytes, keep their meaning),
    yet they choose the same checkpointing (the largest rank decides), the gradient is
    unchanged, and the plans, with the chosen policy, hash equal; below one copy of the
    state, with each rank's snapshots in files of its own."""
    n, alpha, steps = 41 if COMM.size <= 3 else 2 + 13 * COMM.size + COMM.size // 2, 0.25, 12
    u0 = np.sin(np.linspace(0.0, np.pi, n)) + 0.1
    u, _ = split(u0, COMM)
    ref = ad.grad(heat_local, argnums=(0, 1), backend=backend)(u, alpha, steps, COMM)
    sizes = {}
    for budget in ("200B", "900B", "1MB"):   # (200 B: a one-step tape, u in files)
        k = ad.checkpoint(heat_local, budget=budget)
        got = ad.grad(k, argnums=(0, 1), backend=backend)(u, alpha, steps, COMM)
        np.testing.assert_array_equal(got[0], ref[0])
        assert got[1] == ref[1]
        choices = COMM.allgather(k.last_policy)
        assert all(c == choices[0] for c in choices)
        sizes[budget] = k.last_policy
        text = ad.plan(heat_local, u, alpha, steps, COMM, budget=budget)
        hashes = COMM.allgather(text.splitlines()[-1])
        assert len(set(hashes)) == 1
    assert sizes["1MB"].snapshots is None and sizes["900B"].snapshots is not None
    assert sizes["200B"].plan == Plan(Kind.REVOLVE, sizes["200B"].snapshots, lean=True, disk=True)
    assert sizes["200B"].estimate <= 200
    with pytest.raises(ad.HpcadError, match="one step's tape, with the snapshots in files"):
        ad.grad(ad.checkpoint(heat_local, budget="40B"), argnums=(0, 1))(u, alpha, steps, COMM)
