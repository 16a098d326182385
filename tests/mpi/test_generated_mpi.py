"""Generated distributed kernels (tests/generative/grammar.py, `mpi_kernels`) under mpiexec
at 2 and 3 ranks: halo exchanges (Sendrecv, Isend/Irecv with Wait/Waitall, waited in any
order), collectives in loops (sum, MAX/MIN/PROD, Reduce to a root then Bcast, Allgather,
Gather/Scatter, Scan/Exscan), on the communicator argument or MPI.COMM_WORLD named in the
body, receive buffers read in loops, replicated, per-rank and root-only losses. The primal on each
backend equals the plain Python function run under mpi4py on the same ranks; the reverse
gradient of the global loss (the replicated value once, per-rank values summed) equals the
forward tangent (dot test) and central finite differences. Every rank reaches the same
verdict (outcomes are gathered), so hypothesis generates and shrinks in step on all ranks.
Under every checkpointing plan and memory budget the gradient is the store-all one, and
every rank plans alike."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given
from mpi4py import MPI

import hpcad as ad
from tests.generative import checks, found, grammar, profiles
from tests.generative.profiles import generative

COMM = MPI.COMM_WORLD
NUMBA_EVERY = 10


def rank_args(gen):
    return checks.make_args(gen, rank=COMM.rank)


def global_value(gen, local: float) -> float:
    """The loss whose gradient hpcad gives: a replicated loss once, per-rank losses summed."""
    return local if gen.replicated else COMM.allreduce(local)


def check_primal(gen, backend, args) -> None:
    checks.check_primal(gen, backend, args, extra=(COMM,))


def check_derivatives(gen, backend, args) -> None:
    v = checks.direction(gen, rank=COMM.rank)
    k = checks.load(gen, "hpcad").main
    _, pullback = ad.vjp(k, *checks.copies(args), COMM, backend=backend)
    cots = pullback(1.0)
    rev = COMM.allreduce(checks.pair(cots, v))
    fwd = global_value(gen, checks.tangent(gen, backend, args, v, extra=(COMM,)))
    if not (np.isfinite(rev) and np.isfinite(fwd)) or checks.rel(rev, fwd) > checks.DOT_RTOL:
        checks.fail(gen, f"rank {COMM.rank}: dot test on {backend}: jvp {fwd!r} vs "
                         f"<v, grad> {rev!r}")
    fd = checks.finite_difference(gen, args, v, checks.FD_STEP, extra=(COMM,))
    coarse = checks.finite_difference(gen, args, v, 10 * checks.FD_STEP, extra=(COMM,))
    fd, coarse = global_value(gen, fd), global_value(gen, coarse)
    smooth = COMM.allreduce(int(np.isfinite(fd) and checks.rel(fd, coarse) <= 1e-4)) == COMM.size
    if smooth and checks.rel(rev, fd) > checks.FD_RTOL and abs(rev - fd) > 1e-7:
        checks.fail(gen, f"rank {COMM.rank}: gradient on {backend} vs central FD of the "
                         f"global loss: <v, grad> {rev!r} vs FD {fd!r}")


def outcome(check, gen, *args) -> str:
    try:
        with checks.reporting(gen):
            check(gen, *args)
    except checks.KernelMismatch as e:   # gathered by agree()
        return str(e)
    return ""


def agree(messages: str) -> None:
    """Raise on every rank if a check failed on any."""
    found = [f"[rank {r}] {m}" for r, m in enumerate(COMM.allgather(messages)) if m]
    if found:
        raise AssertionError("\n".join(found))


def usable(gen) -> bool:
    ref, _ = checks.plain_run(gen, rank_args(gen), extra=(COMM,))
    return COMM.allreduce(int(checks.usable(ref))) == COMM.size


def check_all(gen, numba: bool) -> None:
    args = rank_args(gen)
    for backend in ["interp"] + (["numba"] if numba else []):
        agree(outcome(check_primal, gen, backend, args))
        agree(outcome(check_derivatives, gen, backend, args))


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(found.MPI_CASES))
def test_found_mpi_kernels_match_python_and_finite_differences(name, request):
    feature, _, gen = found.MPI_CASES[name]
    found.expect_known_bug(request, feature)
    check_all(gen, numba=True)


@pytest.mark.slow
@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(profiles.time_limit(600))
@generative(ci_examples=40, agree=COMM.bcast)
@given(gen=grammar.mpi_kernels())
def test_generated_mpi_kernels_match_python_and_finite_differences(gen):
    assume(usable(gen))
    check_all(gen, numba=checks.on_numba_too(gen, NUMBA_EVERY))


PLAN_STEPS = 4    # the generated time loops run 1-3 steps: more, for checkpointing to split


def check_plans(gen, backend, args) -> None:
    """checks.check_plans on every rank, and every rank chose the same plan (or refused) for
    each budget."""
    out = checks.check_plans(gen, backend, args, extra=(COMM,))
    mine = [(what, "refused" if chosen is None else chosen) for what, chosen, _, _ in out]
    everyone = COMM.allgather(mine)
    if any(theirs != mine for theirs in everyone):
        checks.fail(gen, f"rank {COMM.rank}: the ranks planned differently: {everyone}")


@pytest.mark.slow
@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(profiles.time_limit(600, per_example=60))
@generative(ci_examples=6, agree=COMM.bcast)
@given(gen=grammar.mpi_kernels())
def test_generated_mpi_kernels_give_the_store_all_gradient_under_any_plan(gen):
    gen = replace(gen, nt=PLAN_STEPS)
    assume(usable(gen))
    args = rank_args(gen)
    for backend in ["interp"] + (["numba"] if checks.on_numba_too(gen, 2 * NUMBA_EVERY) else []):
        agree(outcome(check_plans, gen, backend, args))
