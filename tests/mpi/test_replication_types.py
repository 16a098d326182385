"""Replication types at work (run by tests/test_mpi_launch.py at 2 and 3 ranks): a
distributed conjugate gradient and a parameter-fitting loop return, on every rank, the
gradient of the one-process program (the same kernel on MPI.COMM_SELF with the whole
vector) to 1e-12; the replicated parameters declared with params= come back complete on
every rank, summed by exactly one allreduce per gradient call."""
import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.backend import interp_mpi
from hpcad.ir.core import walk
from tests.mpi import replication_kernels as rk

COMM = MPI.COMM_WORLD
BACKENDS = ["interp", pytest.param("numba", marks=pytest.mark.slow)]
N = 13   # rows: an uneven split at 2 and 3 ranks


def _mine(full: np.ndarray) -> np.ndarray:
    return np.array_split(full, COMM.size)[COMM.rank].copy()


def _rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) /
                 max(float(np.max(np.abs(b))), 1e-300))


def _same_on_every_rank(value) -> bool:
    values = COMM.allgather(np.asarray(value))
    return all(np.array_equal(v, values[0]) for v in values)


def _fitting_problem():
    x = np.linspace(0.0, 1.0, N)
    u0, target = np.sin(np.pi * x) + 0.2, 0.8 * np.sin(np.pi * x) + 0.1 * x
    theta, kappa, nt = np.array([-0.3, 0.2, 0.05]), 0.4, 6
    return theta, kappa, u0, target, nt


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_distributed_cg_gradient_is_the_one_process_gradient(backend):
    b = np.cos(np.linspace(0.0, 3.0, N)) + 0.5
    sigma, nit = 0.5, 6
    grad = ad.value_and_grad(rk.cg_loss, argnums=(0, 1), backend=backend, params=("sigma",))
    loss, (db, dsigma) = grad(_mine(b), sigma, nit, COMM)
    ref_loss, (ref_db, ref_dsigma) = ad.value_and_grad(rk.cg_loss, argnums=(0, 1),
                                                       backend=backend)(b, sigma, nit,
                                                                        MPI.COMM_SELF)
    assert _rel(loss, ref_loss) <= 1e-12
    assert _rel(db, _mine(ref_db)) <= 1e-12, (COMM.rank, db, _mine(ref_db))
    assert _rel(dsigma, ref_dsigma) <= 1e-12, (COMM.rank, dsigma, ref_dsigma)
    assert _same_on_every_rank(dsigma)


def _cg_fd(b, sigma, nit, h=1e-6):
    """Central differences of the one-process loss in sigma and in b[0]."""
    def f(bb, s):
        return rk.cg_loss.py_func(bb, s, nit, MPI.COMM_SELF)
    e = np.zeros_like(b)
    e[0] = h
    return ((f(b, sigma + h) - f(b, sigma - h)) / (2 * h),
            (f(b + e, sigma) - f(b - e, sigma)) / (2 * h))


def test_one_process_cg_gradient_matches_finite_differences():
    b = np.cos(np.linspace(0.0, 3.0, N)) + 0.5
    db, dsigma = ad.grad(rk.cg_loss, argnums=(0, 1), backend="interp")(b, 0.5, 6,
                                                                        MPI.COMM_SELF)
    fd_sigma, fd_b0 = _cg_fd(b, 0.5, 6)
    assert _rel(dsigma, fd_sigma) <= 1e-6 and _rel(db[0], fd_b0) <= 1e-6


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_fitted_parameters_get_the_one_process_gradient_on_every_rank(backend):
    theta, kappa, u0, target, nt = _fitting_problem()
    grad = ad.grad(rk.fit_loss, argnums=(0, 1, 2), backend=backend,
                   params=("theta", "kappa"))
    dtheta, dkappa, du0 = grad(theta, kappa, _mine(u0), _mine(target), nt, COMM)
    ref = ad.grad(rk.fit_loss, argnums=(0, 1, 2), backend=backend)(
        theta, kappa, u0, target, nt, MPI.COMM_SELF)
    assert _rel(dtheta, ref[0]) <= 1e-12, (COMM.rank, dtheta, ref[0])
    assert _rel(dkappa, ref[1]) <= 1e-12, (COMM.rank, dkappa, ref[1])
    assert _rel(du0, _mine(ref[2])) <= 1e-12
    assert _same_on_every_rank(dtheta) and _same_on_every_rank(dkappa)


def test_one_process_fitting_gradient_matches_finite_differences():
    theta, kappa, u0, target, nt = _fitting_problem()
    dtheta, dkappa = ad.grad(rk.fit_loss, argnums=(0, 1), backend="interp")(
        theta, kappa, u0, target, nt, MPI.COMM_SELF)

    def f(th, ka):
        return rk.fit_loss.py_func(th, ka, u0, target, nt, MPI.COMM_SELF)
    h = 1e-6
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        assert _rel(dtheta[j], (f(theta + e, kappa) - f(theta - e, kappa)) / (2 * h)) <= 1e-6
    assert _rel(dkappa, (f(theta, kappa + h) - f(theta, kappa - h)) / (2 * h)) <= 1e-6


def _counted_calls(monkeypatch, run):
    """run() while counting the interpreter's MPI calls by kind."""
    counts: dict[str, int] = {}
    for kind, rule in list(interp_mpi.RUN.items()):
        def counted(op, comm, args, kind=kind, rule=rule):
            counts[kind] = counts.get(kind, 0) + 1
            return rule(op, comm, args)
        monkeypatch.setitem(interp_mpi.RUN, kind, counted)
    run()
    monkeypatch.undo()
    return counts


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_params_cost_one_allreduce_per_gradient_call(monkeypatch):
    theta, kappa, u0, target, nt = _fitting_problem()
    args = (theta, kappa, _mine(u0), _mine(target), nt, COMM)
    declared = ad.grad(rk.fit_loss, argnums=(0, 1, 2), backend="interp",
                       params=("theta", "kappa"))
    shares = ad.grad(rk.fit_loss, argnums=(0, 1, 2), backend="interp")
    declared(*args), shares(*args)   # (the first calls agree on the plan: mpi_job.py)
    with_params = _counted_calls(monkeypatch, lambda: declared(*args))
    without = _counted_calls(monkeypatch, lambda: shares(*args))
    messages = (with_params | without).keys() - {"rank", "size"}   # (queries, no message)
    extra = {k: with_params.get(k, 0) - without.get(k, 0) for k in messages}
    assert {k: v for k, v in extra.items() if v} == {"allreduce": 1}, (with_params, without)
    assert with_params["sendrecv"] >= 2 * nt   # (the count sees the time loop's messages)
    spec = rk.fit_loss.specialize(args)
    rev = [fn for key, fn in spec.derivatives.items() if key[0] == "reverse" and key[-1]]
    (reduction,) = [op for op in walk(rev[0].body) if op.name == "mpi.allreduce"]
    assert reduction.parent is rev[0].body   # after the sweep, outside every loop


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_params_that_differ_between_ranks_are_refused_on_every_rank():
    theta, kappa, u0, target, nt = _fitting_problem()
    theta = theta + 1e-3 * (COMM.rank == 1)
    grad = ad.grad(rk.fit_loss, argnums=0, backend="interp", params=("theta", "kappa"))
    with pytest.raises(ad.ArgumentError, match="params= declares 'theta' of kernel"):
        grad(theta, kappa, _mine(u0), _mine(target), nt, COMM)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_vjp_with_params_gives_the_complete_gradient():
    theta, kappa, u0, target, nt = _fitting_problem()
    _, pullback = ad.vjp(rk.fit_loss, theta, kappa, _mine(u0), _mine(target), nt, COMM,
                         backend="interp", params=(0, 1))
    dtheta, dkappa = pullback(1.0)[:2]
    ref = ad.grad(rk.fit_loss, argnums=(0, 1), backend="interp")(
        theta, kappa, u0, target, nt, MPI.COMM_SELF)
    assert _rel(dtheta, ref[0]) <= 1e-12 and _rel(dkappa, ref[1]) <= 1e-12


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_check_params_switch_trusts_the_caller(monkeypatch):
    """HPCAD_CHECK_PARAMS=0 skips the comparison: each rank's share at its own values is
    summed as declared (here: the sum of the ranks' gradients at their own theta)."""
    theta, kappa, u0, target, nt = _fitting_problem()
    theta = theta + 1e-3 * COMM.rank
    args = (theta, kappa, _mine(u0), _mine(target), nt, COMM)
    monkeypatch.setenv("HPCAD_CHECK_PARAMS", "0")
    summed = ad.grad(rk.fit_loss, argnums=0, backend="interp", params=("theta", "kappa"))(*args)
    monkeypatch.delenv("HPCAD_CHECK_PARAMS")
    share = ad.grad(rk.fit_loss, argnums=0, backend="interp")(*args)
    # undeclared, the loss is per-rank (theta may differ), so summed over the ranks: size
    # times the declared loss, which is one global output
    expected = COMM.allreduce(share) / COMM.size
    assert _rel(summed, expected) <= 1e-12


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["rev", "fwd"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_jacobian_with_params_gives_the_complete_derivative(mode, backend):
    """jacobian's params= as grad's: the replicated parameters' rows (reverse: their
    adjoints summed over the ranks) and columns (forward: moved on every rank at once)
    are the one-process derivative on every rank."""
    theta, kappa, u0, target, nt = _fitting_problem()
    jac = ad.jacobian(rk.fit_loss, argnums=(0, 1, 2), mode=mode, backend=backend,
                      params=("theta", "kappa"))
    dtheta, dkappa, du0 = jac(theta, kappa, _mine(u0), _mine(target), nt, COMM)
    ref = ad.grad(rk.fit_loss, argnums=(0, 1, 2), backend="interp")(
        theta, kappa, u0, target, nt, MPI.COMM_SELF)
    assert _rel(dtheta, ref[0]) <= 1e-12, (COMM.rank, dtheta, ref[0])
    assert _rel(dkappa, ref[1]) <= 1e-12, (COMM.rank, dkappa, ref[1])
    assert _rel(du0, _mine(ref[2])) <= 1e-12
    assert _same_on_every_rank(dtheta) and _same_on_every_rank(dkappa)


def _directions():
    rng = np.random.default_rng(5)
    return rng.standard_normal(3), 0.7, rng.standard_normal(N)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_hvp_with_params_gives_the_complete_product(backend):
    """hvp's and grad_and_hvp's params= as grad's: H v's entries for the replicated
    parameters (the tangent of their summed gradient) and the gradient are the
    one-process ones on every rank; the per-rank entries are this rank's share."""
    theta, kappa, u0, target, nt = _fitting_problem()
    vt, vk, vu = _directions()
    args = (theta, kappa, _mine(u0), _mine(target), nt, COMM)
    fn = ad.grad_and_hvp(rk.fit_loss, argnums=(0, 1, 2), backend=backend,
                         params=("theta", "kappa"))
    _, g, hv = fn(*args, (vt, vk, _mine(vu)))
    hv_only = ad.hvp(rk.fit_loss, argnums=(0, 1, 2), backend=backend,
                     params=(0, 1))(*args, (vt, vk, _mine(vu)))
    one = (theta, kappa, u0, target, nt, MPI.COMM_SELF)
    _, ref_g, ref_hv = ad.grad_and_hvp(rk.fit_loss, argnums=(0, 1, 2), backend="interp")(
        *one, (vt, vk, vu))
    for got in (hv, hv_only):
        assert _rel(got[0], ref_hv[0]) <= 1e-12, (COMM.rank, got[0], ref_hv[0])
        assert _rel(got[1], ref_hv[1]) <= 1e-12, (COMM.rank, got[1], ref_hv[1])
        assert _rel(got[2], _mine(ref_hv[2])) <= 1e-12
        assert _same_on_every_rank(got[0]) and _same_on_every_rank(got[1])
    assert _rel(g[0], ref_g[0]) <= 1e-12 and _rel(g[1], ref_g[1]) <= 1e-12


def test_one_process_hvp_matches_finite_differences_of_the_gradient():
    theta, kappa, u0, target, nt = _fitting_problem()
    vt, vk, vu = _directions()
    grad = ad.grad(rk.fit_loss, argnums=(0, 1, 2), backend="interp")
    hv = ad.hvp(rk.fit_loss, argnums=(0, 1, 2), backend="interp")(
        theta, kappa, u0, target, nt, MPI.COMM_SELF, (vt, vk, vu))
    h = 1e-5
    up = grad(theta + h * vt, kappa + h * vk, u0 + h * vu, target, nt, MPI.COMM_SELF)
    down = grad(theta - h * vt, kappa - h * vk, u0 - h * vu, target, nt, MPI.COMM_SELF)
    for j in range(3):
        assert _rel(hv[j], (np.asarray(up[j]) - np.asarray(down[j])) / (2 * h)) <= 1e-6


def _root_problem():
    rng = np.random.default_rng(40 + COMM.rank)
    u = rng.random(4 + COMM.rank)   # uneven on purpose
    p = np.array([0.5, 0.3]) if COMM.rank == 0 else np.array([7.0, -2.0])
    return u, p


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_a_result_replicated_by_a_collective_in_a_time_loop_counts_once():
    """p, an argument that differs between ranks on entry, is broadcast from rank 0 in
    every step, so the result is the same on every rank and counts once: reverse and
    forward Jacobians of the whole program against its central differences (rank 0's u
    and p perturbed, then each other rank's u). Before the analysis took the loop to run,
    p after it was per-rank (what came in, had the loop not run), the result counted once
    per rank, and every derivative came out `size` times too large."""
    u, p = _root_problem()
    k = rk.root_updates_parameters
    value = k(u.copy(), p.copy(), 3, COMM)
    assert _same_on_every_rank(value)
    ju = ad.jacobian(k, argnums=0, backend="interp")(u.copy(), p.copy(), 3, COMM)
    jp = ad.jacobian(k, argnums=1, backend="interp")(u.copy(), p.copy(), 3, COMM)
    jp_fwd = ad.jacobian(k, argnums=1, mode="fwd", backend="interp")(u.copy(), p.copy(), 3,
                                                                    COMM)
    np.testing.assert_allclose(jp_fwd, jp, rtol=1e-12, atol=1e-15)
    h, wrong = 1e-6, []
    for owner in range(COMM.size):
        for name, got, x in (("u", ju, u), ("p", jp, p)):
            if name == "p" and owner != 0:   # only rank 0's p reaches the result
                continue
            for j in range(COMM.bcast(x.shape[0], root=owner)):
                up, down = u.copy(), u.copy()
                pu, pd = p.copy(), p.copy()
                if COMM.rank == owner:
                    (up if name == "u" else pu)[j] += h
                    (down if name == "u" else pd)[j] -= h
                fd = (k(up, pu, 3, COMM) - k(down, pd, 3, COMM)) / (2 * h)
                if COMM.rank == owner and abs(got[j] - fd) > 1e-7 * max(1.0, abs(fd)):
                    wrong.append((COMM.rank, name, j, got[j], fd))
    if COMM.rank != 0 and np.any(jp != 0.0):   # their entry p is overwritten unread
        wrong.append((COMM.rank, "p", jp))
    wrong = sum(COMM.allgather(wrong), [])   # (every rank fails together)
    assert not wrong, wrong


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_the_derivative_refuses_a_zero_step_call_that_would_count_otherwise(monkeypatch):
    """With no step, p is each rank's own and the result per-rank: the derivative, built
    for a loop that runs, stops at the loop's line on every rank; the kernel itself runs."""
    monkeypatch.setenv("HPCAD_MPI_ABORT", "0")   # every rank fails the assertion
    u, p = _root_problem()
    k = rk.root_updates_parameters
    k(u.copy(), p.copy(), 0, COMM)
    for mode in ("rev", "fwd"):
        with pytest.raises(ad.KernelAssertionError, match="runs no iteration in this call"):
            ad.jacobian(k, argnums=1, mode=mode, backend="interp")(u.copy(), p.copy(), 0,
                                                                   COMM)


@ad.kernel
def _slice_broadcast(x, theta, comm):
    comm.Bcast(theta[0:2], root=0)
    return comm.allreduce(np.sum(x * x)) * theta[0] + theta[1] ** 2


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_a_result_read_from_a_broadcast_slice_counts_once():
    """theta[0:2] broadcast from rank 0 (theta[2] left as each rank has it): the result reads
    only the broadcast elements, so it is one value for all ranks and counts once; the
    gradient of the whole program along a random direction matches central differences
    (it was summed over the ranks: `size` times)."""
    rng = np.random.default_rng(60 + COMM.rank)
    x, theta = rng.random(3 + COMM.rank), rng.random(3)
    dx, dt = rng.standard_normal(x.shape), rng.standard_normal(3)
    k, h = _slice_broadcast, 1e-6
    fd = (k(x + h * dx, theta + h * dt, COMM) - k(x - h * dx, theta - h * dt, COMM)) / (2 * h)
    assert _same_on_every_rank(fd)
    gx, gt = ad.grad(k, argnums=(0, 1), backend="interp")(x, theta, COMM)
    total = COMM.allreduce(float(np.sum(gx * dx) + np.sum(gt * dt)))
    assert abs(total - fd) <= 1e-6 * max(1.0, abs(fd)), (COMM.rank, total, fd)


@ad.kernel
def _broadcast_if_asked(x, p, sync, comm):
    if sync:
        comm.Bcast(p, root=0)
    return comm.allreduce(np.sum(x * x)) * p[0]


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_a_result_replicated_by_a_collective_under_a_flag_is_refused():
    """`if sync: comm.Bcast(p)` with sync the same on every rank: the result is one value
    for all ranks when sync is true and each rank's part when it is false, and one
    derivative serves both, so the gradient is refused at the `if` on every rank, whatever
    sync holds (it was summed over the ranks when sync was true: `size` times the
    gradient). The same kernel without the branch's collective counts as FD says."""
    rng = np.random.default_rng(70 + COMM.rank)
    x, p = rng.random(3), rng.random(2)
    for sync in (True, False):
        with pytest.raises(ad.DifferentiationError, match=r"test_replication_types.py:\d+: "
                           r"whether the returned value is one value for all ranks"):
            ad.grad(_broadcast_if_asked, argnums=(0, 1), backend="interp")(x, p, sync, COMM)
    dx, dp = rng.standard_normal(3), rng.standard_normal(2)
    k, h = _broadcast_always, 1e-6
    fd = (k(x + h * dx, p + h * dp, COMM) - k(x - h * dx, p - h * dp, COMM)) / (2 * h)
    assert _same_on_every_rank(fd)
    gx, gp = ad.grad(k, argnums=(0, 1), backend="interp")(x, p, COMM)
    total = COMM.allreduce(float(np.sum(gx * dx) + np.sum(gp * dp)))
    assert abs(total - fd) <= 1e-6 * max(1.0, abs(fd)), (COMM.rank, total, fd)


@ad.kernel
def _broadcast_always(x, p, comm):
    comm.Bcast(p, root=0)
    return comm.allreduce(np.sum(x * x)) * p[0]


@ad.kernel
def _allreduce_on_some_steps(x, nsteps, comm):
    g = np.zeros(2)
    for step in range(nsteps):
        g[0] += x[step % x.shape[0]]
        if step % 3 == 0:
            comm.Allreduce(MPI.IN_PLACE, g, op=MPI.SUM)
    return g[0] * g[1] + g[0]


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_a_collective_on_some_steps_of_a_time_loop_is_refused():
    """An Allreduce every third step: the result is the same on every rank when the last
    step reduced (nsteps = 4) and per-rank otherwise (nsteps = 5); the derivative cannot
    count it both ways, and refuses at the `if` (it summed it over the ranks: `size` times
    the gradient for nsteps = 4)."""
    x = np.random.default_rng(90 + COMM.rank).random(3)
    for nsteps in (4, 5):
        with pytest.raises(ad.DifferentiationError, match="depends on which branch"):
            ad.grad(_allreduce_on_some_steps, backend="interp")(x, nsteps, COMM)


@ad.kernel
def _summed_array(x, comm):
    g = np.empty_like(x)
    comm.Allreduce(x, g, op=MPI.SUM)
    return g


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_a_returned_array_the_same_on_every_rank_is_each_ranks_part_with_a_warning():
    """A returned array counts as each rank's part even where it is the same on every rank
    (README, MPI): vjp sums the ranks' cotangents, which central differences of the global
    pairing sum_r <ct_r, f(x)_r> confirm, and hpcad warns that the same cotangent on every
    rank gives `size` times the gradient of one loss of the array."""
    rng = np.random.default_rng(80 + COMM.rank)
    x, dx, ct = rng.random(4), rng.standard_normal(4), rng.standard_normal(4)
    k, h = _summed_array, 1e-6
    fd = COMM.allreduce(float(np.sum(ct * (k(x + h * dx, COMM) - k(x - h * dx, COMM)))) / (2 * h))
    _, pullback = ad.vjp(k, x, COMM, backend="interp")
    with pytest.warns(ad.HpcadWarning, match=rf"same cotangent on all {COMM.size} ranks gives "
                      rf"{COMM.size} times the gradient"):
        gx, _ = pullback(ct)
    total = COMM.allreduce(float(np.sum(gx * dx)))
    assert abs(total - fd) <= 1e-6 * max(1.0, abs(fd)), (COMM.rank, total, fd)
