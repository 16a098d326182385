"""Neighbourhood collectives, topology queries, persistent requests and the MPI hpcad refuses,
under mpiexec (tests/test_mpi_launch.py: 2 and 3 ranks): forward and reverse mode against
central finite differences of the global function on both backends, width 3 against
separate calls, on non-periodic (PROC_NULL edges) and periodic grids (at 2 ranks a periodic
dimension of size 2 has the same rank on both sides, and one of size 1 the rank itself)."""

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.errors import ArgumentError, DifferentiationError, UnsupportedConstruct
from tests.ad.width_check import check_forward, check_reverse
from tests.mpi import BACKENDS, case_backends, interp_unless_all
from tests.mpi import topology_kernels as tk

COMM = MPI.COMM_WORLD
# (process grid, periodic): a row of ranks with PROC_NULL ends, a periodic column
GRIDS = {"rows": ([COMM.size, 1], False), "periodic-columns": ([1, COMM.size], True)}


def cartesian(grid: str):
    dims, periodic = GRIDS[grid]
    return COMM.Create_cart(dims, periods=[periodic, periodic])


def random_args(cart):
    rng = np.random.default_rng(10 + COMM.rank)
    return rng.standard_normal((4, 3)), rng.standard_normal(2), cart


def direction(args):
    rng = np.random.default_rng(20 + COMM.rank)
    return tuple(rng.standard_normal(a.shape) if isinstance(a, np.ndarray) and
                 a.dtype.kind == "f" else None for a in args)


def central_difference(kernel, args, d, h=1e-6):
    def at(sign):
        return kernel.py_func(*[a + sign * h * t if t is not None else
                                (a.copy() if isinstance(a, np.ndarray) else a)
                                for a, t in zip(args, d, strict=True)])
    return (at(1.0) - at(-1.0)) / (2 * h)


def relative(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def check_against_differences(kernel, args, backend, replicated):
    """jvp of this rank's output along everyone's direction, and the global directional
    derivative from vjp (each rank's output counts once, a replicated one once in all)."""
    d = direction(args)
    fd = central_difference(kernel, args, d)
    _, tangent = ad.jvp(kernel, args, d, backend=backend)
    assert relative(tangent, fd) <= 1e-6, (COMM.rank, tangent, fd)
    _, pullback = ad.vjp(kernel, *args, backend=backend)
    local = sum(float(np.sum(c * t)) for c, t in zip(pullback(1.0), d, strict=True)
                if c is not None and t is not None)
    expected = fd if replicated else COMM.allreduce(fd)
    assert relative(COMM.allreduce(local), expected) <= 1e-6, (COMM.rank, local, expected)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_neighbourhood_collectives_match_finite_differences(grid, backend):
    args = random_args(cartesian(grid))
    plain = tk.neighbourhood.py_func(*[a.copy() if isinstance(a, np.ndarray) else a
                                       for a in args])
    tk.neighbourhood.backend = backend
    try:
        got = tk.neighbourhood(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    finally:
        tk.neighbourhood.backend = None
    assert relative(got, plain) <= 1e-12
    check_against_differences(tk.neighbourhood, args, backend, replicated=False)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("grid, backend", case_backends(sorted(GRIDS), ("periodic-columns",)))
def test_batched_neighbourhood_collectives_equal_separate_calls(grid, backend):
    args = random_args(cartesian(grid))
    rng = np.random.default_rng(30 + COMM.rank)
    check_forward(tk.neighbourhood, args, 3, backend, rng)
    check_reverse(tk.neighbourhood, args, 3, backend, rng)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_persistent_requests_match_finite_differences(backend):
    x = np.random.default_rng(40 + COMM.rank).standard_normal(3)
    check_against_differences(tk.ring_persistent, (x, 3, COMM), backend, replicated=False)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", interp_unless_all())
def test_wtime_is_a_constant(backend):
    x = np.arange(1.0, 4.0)
    value, grad = ad.value_and_grad(tk.timed, backend=backend)(x)
    assert value == pytest.approx(float(x @ x) + 1.0, rel=1e-14)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-14)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kernel, args, why", [
    (tk.started_twice, (np.ones(2),), "starting a persistent request again"),
    (tk.waited_outside, (np.ones(2), 2), "not started in the same block"),
    (tk.alltoall_on_plain, (np.ones(2), np.ones(2)), "without a Cartesian topology"),
    (tk.start_plain_request, (np.ones(2),), "Start applies to persistent requests"),
    (tk.max_location, (np.ones(2),), "the reduction MPI.MAXLOC is not supported"),
    (tk.all_converged, (np.ones(2),),
     r"MPI.LAND is not supported .* as an integer with MPI.MIN"),
    (tk.processor_name, (), "returns a string")])
def test_refused_with_the_reason(kernel, args, why):
    with pytest.raises(UnsupportedConstruct, match=why):
        kernel(*(args + ((COMM,) if kernel is not tk.processor_name else (np.ones(1),))))


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kernel", [tk.recv_any, tk.irecv_any, tk.recv_init_any])
@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_any_source_receive_is_not_differentiated(kernel, mode):
    args = (np.ones(2), COMM) if kernel is tk.recv_any else (np.ones(2), np.ones(2), COMM)
    with pytest.raises(DifferentiationError, match="ANY_SOURCE"):
        if mode == "fwd":
            ad.jvp(kernel, args, tuple(np.ones(2) if isinstance(a, np.ndarray) else None
                                       for a in args), backend="interp")
        else:
            ad.vjp(kernel, *args, backend="interp")[1](1.0)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kernel", [tk.recv_any_tag, tk.irecv_any_tag])
def test_any_tag_receive_has_tangents_and_no_adjoint(kernel):
    """Forward mode: the tangent follows its value from the named source (checked against
    central differences); reverse mode is refused on every rank at the receive's line (it
    sent the adjoint with tag -1: an MPI invalid-tag error on one rank)."""
    one = kernel is tk.recv_any_tag
    rng = np.random.default_rng(40 + COMM.rank)
    x, y, d = rng.standard_normal(2), rng.standard_normal(2), rng.standard_normal(2)
    args = (x, COMM) if one else (x, y, COMM)
    tangents = (d, None) if one else (d, np.zeros(2), None)

    def at(h):
        return kernel.py_func(*((x + h * d, COMM) if one else (x + h * d, y.copy(), COMM)))
    fd = (at(1e-6) - at(-1e-6)) / 2e-6
    _, tangent = ad.jvp(kernel, args, tangents, backend="interp")
    assert abs(tangent - fd) <= 1e-6 * max(1.0, abs(fd))
    with pytest.raises(DifferentiationError, match="ANY_TAG cannot be differentiated"):
        ad.vjp(kernel, *args, backend="interp")[1](1.0)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_sendrecv_any_tag_with_differing_send_tags(backend):
    """A Sendrecv received with ANY_TAG from a peer whose send tag differs from this rank's:
    the reverse sweep hung (each rank waited for its adjoint with its own send tag, the
    peer sent it with the peer's); forward and reverse against central differences of the
    summed loss."""
    rng = np.random.default_rng(60 + COMM.rank)
    x, d = rng.standard_normal(3), rng.standard_normal(3)
    k = tk.sendrecv_any_tag
    fd = (k.py_func(x + 1e-6 * d, COMM) - k.py_func(x - 1e-6 * d, COMM)) / 2e-6
    _, tangent = ad.jvp(k, (x, COMM), (d, None), backend=backend)
    assert abs(tangent - fd) <= 1e-6 * max(1.0, abs(fd))
    _, pullback = ad.vjp(k, x, COMM, backend=backend)
    total = COMM.allreduce(float(np.dot(pullback(1.0)[0], d)))
    expected = COMM.allreduce(fd)
    assert abs(total - expected) <= 1e-6 * max(1.0, abs(expected))


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_intercommunicators_and_windows_are_refused():
    local = COMM.Split(COMM.rank % 2, COMM.rank)
    inter = local.Create_intercomm(0, COMM, 1 - COMM.rank % 2, tag=7)
    try:
        with pytest.raises(ArgumentError, match="intercommunicators"):
            tk.first(np.ones(2), inter)
    finally:
        inter.Free()
        local.Free()
    with pytest.raises(UnsupportedConstruct, match="one-sided"):
        tk.window(np.ones(2))
    win = MPI.Win.Create(np.ones(2), comm=COMM)
    try:
        with pytest.raises(ArgumentError, match="one-sided"):
            tk.first(win, COMM)
    finally:
        win.Free()
