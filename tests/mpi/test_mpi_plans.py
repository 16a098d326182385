"""The planner never changes the answer under MPI (2 and 3 ranks): halo exchanges
(Sendrecv, Isend/Irecv with Waitall) and an allreduce inside a checkpointed time loop, on
ranks of different sizes. Every pinned plan (segments, revolve plain, lean and restarting,
snapshots in files: tests/generative/checks.py PLANS) and every memory budget between
store-all and tight gives the store-all gradient bit for bit on every rank (recomputed steps
send and receive again, alike on every rank), every rank chooses the same plan or every
rank refuses, and the store-all gradient matches central finite differences of the global
loss."""
import math

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from tests.generative import checks

COMM = MPI.COMM_WORLD


@ad.kernel
def halo_heat(u, w, c, nt, comm):
    n = u.shape[0]
    rank = comm.Get_rank()
    size = comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    tmp = np.zeros(n)
    for t in range(nt):
        comm.Sendrecv(u[n - 2:n - 1], right, 1, u[0:1], left, 1)
        comm.Sendrecv(u[1:2], left, 2, u[n - 1:n], right, 2)
        for i in range(1, n - 1):
            tmp[i] = u[i] + c * math.tanh(u[i - 1] - 2.0 * u[i] + u[i + 1]) * w[i]
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(1, n - 1):
        s += u[i] * u[i] + w[i]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def nonblocking_heat(u, w, c, nt, comm):
    n = u.shape[0]
    rank = comm.Get_rank()
    size = comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    for t in range(nt):
        r0 = comm.Irecv(u[0:1], left, 3)
        r1 = comm.Irecv(u[n - 1:n], right, 4)
        r2 = comm.Isend(u[n - 2:n - 1], right, 3)
        r3 = comm.Isend(u[1:2], left, 4)
        MPI.Request.Waitall([r0, r1, r2, r3])
        for i in range(1, n - 1):
            w[i] = w[i] + c * math.sin(u[i - 1] * u[i + 1])
        for i in range(1, n - 1):
            u[i] = u[i] + c * math.tanh(w[i] - u[i])
    s = 0.0
    for i in range(1, n - 1):
        s += u[i] * u[i] + w[i] * w[i]
    return s


@ad.kernel
def reduced_in_step(u, w, c, nt, comm):
    n = u.shape[0]
    s = 0.0
    for t in range(nt):
        g = 0.0
        for i in range(n):
            g += u[i] * w[i]
        g = comm.allreduce(g, op=MPI.SUM)
        for i in range(n):
            u[i] = u[i] + c * math.tanh(g * w[i] - u[i])
        s += g
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def cfl_heat(u, w, c, nt, comm):
    """Each step's dt from a global maximum (allreduce MAX), after a halo exchange."""
    n = u.shape[0]
    rank = comm.Get_rank()
    size = comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    tmp = np.zeros(n)
    for t in range(nt):
        comm.Sendrecv(u[n - 2:n - 1], right, 1, u[0:1], left, 1)
        comm.Sendrecv(u[1:2], left, 2, u[n - 1:n], right, 2)
        m = 0.0
        for i in range(n):
            m = max(m, abs(u[i]))
        dt = 0.3 / (1.0 + comm.allreduce(m, op=MPI.MAX))
        for i in range(1, n - 1):
            tmp[i] = u[i] + dt * c * (u[i - 1] - 2.0 * u[i] + u[i + 1]) * w[i]
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(1, n - 1):
        s += u[i] * u[i] + w[i]
    return comm.allreduce(s, op=MPI.SUM)


REPLICATED = {"halo_heat": True, "nonblocking_heat": False, "reduced_in_step": False,
              "cfl_heat": True, "converging_heat": True}


def arguments():
    """Ranks of different sizes (7 and 8 cells): the ranks plan for the largest."""
    rng = np.random.default_rng(40 + COMM.rank)
    n = 7 + COMM.rank % 2
    return rng.uniform(-1.0, 1.0, n), rng.uniform(-1.0, 1.0, n), 0.3, 6


def global_loss(kernel, args) -> float:
    local = kernel.py_func(*checks.copies(args), COMM)
    return local if REPLICATED[kernel.__name__] else COMM.allreduce(local)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(600)
@pytest.mark.parametrize("kernel, backend", [
    (k, b) if b == "interp" else pytest.param(k, b, marks=pytest.mark.slow)
    for k in (halo_heat, nonblocking_heat, reduced_in_step) for b in ("interp", "numba")]
    + [(cfl_heat, "interp")], ids=lambda x: getattr(x, "__name__", x))
def test_every_plan_and_budget_gives_the_store_all_gradient(kernel, backend):
    args = arguments()
    ref, out = checks.plan_outcomes(kernel, backend, args, extra=(COMM,))
    found = checks.plan_differences(ref, out, backend)
    assert not found, found
    # bit for bit, on every rank
    for what, chosen, got, _ in out:
        if chosen is not None:
            assert all(np.array_equal(a, b) for a, b in zip(got, ref[0], strict=True)), what
    mine = [(what, None if chosen is None else chosen) for what, chosen, _, _ in out]
    assert all(theirs == mine for theirs in COMM.allgather(mine))
    assert any(chosen is not None and chosen.checkpoints for _, chosen in mine), mine
    assert any(what.startswith("budget") and chosen is not None and chosen.checkpoints
               for what, chosen in mine), mine
    # the reference against central finite differences of the global loss
    rng = np.random.default_rng(60 + COMM.rank)
    v = (rng.standard_normal(args[0].shape), rng.standard_normal(args[1].shape), 0.7)
    h = 1e-6
    def moved(sign):
        return (args[0] + sign * h * v[0], args[1] + sign * h * v[1], args[2] + sign * h * v[2],
                args[3])
    fd = (global_loss(kernel, moved(1)) - global_loss(kernel, moved(-1))) / (2 * h)
    grads = ref[0]
    # (each rank's c is its own argument: its adjoint is that rank's part)
    pairing = COMM.allreduce(float(np.sum(grads[0] * v[0]) + np.sum(grads[1] * v[1])
                                   + grads[2] * v[2]))
    assert pairing == pytest.approx(fd, rel=1e-6, abs=1e-8)


@ad.kernel
def local_heat(u, c, nt, comm):
    """A time loop with no communication (each step restartable from its state), the loss
    an allreduce."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nt):
        for i in range(1, n - 1):
            tmp[i] = u[i] + c * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return comm.allreduce(s, op=MPI.SUM)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
def test_a_budget_between_the_ranks_tapes_plans_alike(backend):
    """A budget that one rank's store-all tape fits and another's does not: the smaller rank
    never asked whether the steps can restart, the larger did; they chose different plans
    (restarting revolve on one, revolve with a tape on the other: a PlanMismatch on every
    rank). Now the ranks agree on it: one plan, the store-all gradient."""
    def tape(n):
        k = ad.checkpoint(local_heat, budget=10**12)
        ad.grad(k, argnums=(0, 1), backend=backend)(np.linspace(0.0, 1.0, n), 0.3, 6,
                                                    MPI.COMM_SELF)
        return k.last_policy.estimate
    small, large = tape(6), tape(12)
    u = np.linspace(0.0, 1.0, 6 if COMM.rank % 2 == 0 else 12) + 0.1 * COMM.rank
    ref = ad.grad(local_heat, argnums=(0, 1), backend=backend)(u.copy(), 0.3, 6, COMM)
    for budget in (small, (small + large) // 2, large - 8):
        k = ad.checkpoint(local_heat, budget=budget)
        got = ad.grad(k, argnums=(0, 1), backend=backend)(u.copy(), 0.3, 6, COMM)
        np.testing.assert_array_equal(got[0], ref[0])
        assert got[1] == ref[1]
        plans = COMM.allgather(k.last_policy.plan)
        assert all(p == plans[0] for p in plans) and plans[0].checkpoints, plans


@ad.kernel
def converging_heat(u, w, c, nt, comm):
    """A time loop that stops when a global residual (allreduce) is small."""
    n = u.shape[0]
    rank = comm.Get_rank()
    size = comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    tmp = np.zeros(n)
    for t in range(nt):
        comm.Sendrecv(u[n - 2:n - 1], right, 1, u[0:1], left, 1)
        comm.Sendrecv(u[1:2], left, 2, u[n - 1:n], right, 2)
        r = 0.0
        for i in range(1, n - 1):
            tmp[i] = u[i] + c * math.tanh(u[i - 1] - 2.0 * u[i] + u[i + 1]) * w[i]
            r += (tmp[i] - u[i]) ** 2
        for i in range(1, n - 1):
            u[i] = tmp[i]
        if comm.allreduce(r, op=MPI.SUM) < 0.05:
            break
    s = 0.0
    for i in range(1, n - 1):
        s += u[i] * u[i] + w[i]
    return comm.allreduce(s, op=MPI.SUM)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(300)
def test_a_time_loop_stopped_by_a_global_residual_stores_all_on_every_rank():
    """`break` on an allreduce of the residual: the loop's step count is only known when it
    ends, so it is not checkpointed. A snapshot count stores all with a warning naming the
    loop and the store-all gradient (FD's) on every rank; a budget is refused on every rank,
    naming the loop and saying it leaves early."""
    args = arguments()
    ref = checks.planned_run(checks.planned(converging_heat), "interp", args, (COMM,))
    line = converging_heat.py_func.__code__.co_firstlineno + 9   # (the decorator's line)
    k = ad.checkpoint(converging_heat, 3, schedule="revolve")
    with pytest.warns(ad.HpcadWarning, match=rf"no time loop hpcad can checkpoint \(.*:{line}: "
                                             r"this time loop is a `while` loop, or a `for` "
                                             r"loop that leaves early"):
        got = checks.planned_run(k, "interp", args, (COMM,))
    assert all(np.array_equal(a, b) for a, b in zip(got[0], ref[0], strict=True))
    k = ad.checkpoint(converging_heat, budget=64)
    with pytest.raises(ad.HpcadError, match=rf":{line}: this time loop is a `while` loop, or "
                                            r"a `for` loop that leaves early") as e:
        checks.planned_run(k, "interp", args, (COMM,))
    assert all(m == str(e.value) for m in COMM.allgather(str(e.value)))
    rng = np.random.default_rng(60 + COMM.rank)
    v = (rng.standard_normal(args[0].shape), rng.standard_normal(args[1].shape), 0.7)
    h = 1e-6
    def moved(sign):
        return (args[0] + sign * h * v[0], args[1] + sign * h * v[1], args[2] + sign * h * v[2],
                args[3])
    fd = (global_loss(converging_heat, moved(1)) - global_loss(converging_heat, moved(-1))) \
        / (2 * h)
    pairing = COMM.allreduce(float(np.sum(ref[0][0] * v[0]) + np.sum(ref[0][1] * v[1])
                                   + ref[0][2] * v[2]))
    assert pairing == pytest.approx(fd, rel=1e-6, abs=1e-8)
