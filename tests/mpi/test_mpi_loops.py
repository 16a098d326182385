"""MPI calls inside time loops under mpiexec (2 and 3 ranks, tests/test_mpi_launch.py):
forward and reverse mode against central finite differences of the global loss (the sum of
the ranks' results), on both backends."""
import warnings

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from tests.mpi import case_backends
from tests.mpi import loop_kernels as lk

COMM = MPI.COMM_WORLD


def _args(case):
    kernel, make = lk.CASES[case]
    return kernel, make(np.random.default_rng(700 + COMM.rank), COMM.size) + (COMM,)


def _direction(args):
    rng = np.random.default_rng(800 + COMM.rank)
    return tuple(rng.standard_normal(a.shape) if isinstance(a, np.ndarray) and
                 a.dtype.kind == "f" else None for a in args)


def _global(kernel, args, d, h):
    """The global loss (every rank's result is its own part) at args + h d."""
    moved = [a + h * t if t is not None else (a.copy() if isinstance(a, np.ndarray) else a)
             for a, t in zip(args, d, strict=True)]
    return COMM.allreduce(kernel.py_func(*moved))


def _rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(240)
@pytest.mark.parametrize(("case", "backend"),
                         case_backends(sorted(lk.CASES), on_numba={"allgather_fresh"}))
def test_loop_calls_match_finite_differences(case, backend):
    """A receive buffer allocated inside the time loop (by the kernel, or by hpcad for PROD
    and Scan) needs no primal copy in the reverse sweep: its adjoint's shape suffices."""
    kernel, args = _args(case)
    d = _direction(args)
    h = 1e-6
    fd = (_global(kernel, args, d, h) - _global(kernel, args, d, -h)) / (2 * h)
    k = ad.kernel(kernel.py_func, backend=backend)
    g = ad.grad(k, argnums=0)(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    rev = COMM.allreduce(float(np.dot(g, d[0])))
    tangents = tuple(t if t is not None else
                     (np.zeros_like(a) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                      else None) for a, t in zip(args, d, strict=True))
    _, tan = ad.jvp(k, tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args),
                    tangents)
    fwd = COMM.allreduce(float(tan))
    assert _rel(rev, fd) < 1e-6, (rev, fd)
    assert _rel(fwd, fd) < 1e-6, (fwd, fd)


CHECKPOINTS = {
    "segments": lambda k: ad.checkpoint(k, snapshots=2),
    "revolve": lambda k: ad.checkpoint(k, snapshots=2, schedule="revolve"),
    "budget": lambda k: ad.checkpoint(k, budget=400),
}


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(240)
@pytest.mark.parametrize(("policy", "backend"),
                         case_backends(sorted(CHECKPOINTS), on_numba={"revolve"}))
def test_scratch_in_loop_is_checkpointed(policy, backend):
    """Sendrecv_replace copies through a buffer allocated in every step: no state, so the
    loop is checkpointed (no 'no time loop' warning) and its gradient is the store-all one,
    bitwise, which agrees with finite differences."""
    rng = np.random.default_rng(900 + COMM.rank)
    u = rng.random(5) + 0.5
    k = ad.kernel(lk.replace_halo.py_func, backend=backend)
    ref = ad.grad(k, argnums=(0, 1))(u.copy(), 0.3, 6, COMM)
    d = rng.standard_normal(5)
    h = 1e-6
    fd = (lk.replace_halo.py_func(u + h * d, 0.3, 6, COMM)
          - lk.replace_halo.py_func(u - h * d, 0.3, 6, COMM)) / (2 * h)
    assert _rel(COMM.allreduce(float(ref[0] @ d)), fd) < 1e-6
    checkpointed = CHECKPOINTS[policy](ad.kernel(lk.replace_halo.py_func, backend=backend))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ad.HpcadWarning)
        got = ad.grad(checkpointed, argnums=(0, 1))(u.copy(), 0.3, 6, COMM)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1] == ref[1]
    if policy == "budget":
        assert checkpointed.last_policy.plan.checkpoints


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(240)
@pytest.mark.parametrize(("policy", "backend"),
                         case_backends(sorted(CHECKPOINTS), on_numba={"segments"}))
def test_exchange_after_the_loop(policy, backend):
    """A halo exchange after the checkpointed loop writes the state's ghost cells: the
    reverse sweep runs the loop's steps with the state's values at the loop's end, and the
    state ends with the primal's final values (its ghost cells had the loop's end values)."""
    rng = np.random.default_rng(950 + COMM.rank)
    u0 = rng.random(6) + 0.5
    kinds = (ad.Duplicated, ad.Active, ad.Const, ad.Const)

    def reverse(k):
        u, du = u0.copy(), np.zeros(6)
        loss, da = ad.autodiff(k, activity=kinds, backend=backend)(u, du, 0.2, 5, COMM)
        return loss, da, du, u

    ref = reverse(ad.kernel(lk.heat_final_halo.py_func))
    final = u0.copy()
    lk.heat_final_halo.py_func(final, 0.2, 5, COMM)
    np.testing.assert_array_equal(ref[3], final)
    h = 1e-6
    fd = (lk.heat_final_halo.py_func(u0.copy(), 0.2 + h, 5, COMM)
          - lk.heat_final_halo.py_func(u0.copy(), 0.2 - h, 5, COMM)) / (2 * h)
    assert _rel(COMM.allreduce(ref[1]), fd) < 1e-6
    checkpointed = CHECKPOINTS[policy](ad.kernel(lk.heat_final_halo.py_func))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ad.HpcadWarning)
        got = reverse(checkpointed)
    assert got[:2] == ref[:2]
    np.testing.assert_array_equal(got[2], ref[2])
    np.testing.assert_array_equal(got[3], final)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
def test_budget_sizes_loops_over_ranks(backend):
    """Loops whose trip counts come from the rank or the communicator's size are sized
    for a budget (each rank its own, the largest decides): a budget below the store-all
    tape checkpoints (it was refused: 'trip counts are only known while it runs'), with
    the store-all gradient."""
    rng = np.random.default_rng(990 + COMM.rank)
    u = rng.random(4) + 0.5
    k = ad.kernel(lk.rank_sweeps.py_func, backend=backend)
    ref = ad.grad(k, argnums=(0, 1))(u.copy(), 0.3, 6, COMM)
    d = rng.standard_normal(4)
    h = 1e-6
    fd = (lk.rank_sweeps.py_func(u + h * d, 0.3, 6, COMM)
          - lk.rank_sweeps.py_func(u - h * d, 0.3, 6, COMM)) / (2 * h)
    assert _rel(COMM.allreduce(float(ref[0] @ d)), fd) < 1e-6
    # (the largest rank's step tape grows with the size: 100 B per rank stays below the
    # store-all tape and above one step's at 2, 3 and 8 ranks)
    checkpointed = ad.checkpoint(ad.kernel(lk.rank_sweeps.py_func, backend=backend),
                                 budget=100 * (COMM.size + 1))
    got = ad.grad(checkpointed, argnums=(0, 1))(u.copy(), 0.3, 6, COMM)
    assert checkpointed.last_policy.plan.checkpoints
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1] == ref[1]
