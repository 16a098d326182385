"""Gradients and Jacobians of distributed losses, entry by entry, against central finite
differences of the global loss (run by tests/test_mpi_launch.py at 2 and 3 ranks): an
entry is perturbed on the rank that owns it, and the global loss is the result itself
where it is the same on every rank (a value read from a collective's receive buffer, as
from `comm.allreduce`), else the sum of the ranks' results."""

import warnings

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from tests.mpi import case_backends
from tests.mpi import mpi_kernels as mk

COMM = MPI.COMM_WORLD
RING = COMM.Create_cart([COMM.size], periods=[True])   # COMM's processes, another communicator
# numba compiles each derivative on every rank (seconds apiece): the fast tier runs these on
# the interpreter, and numba under MPI through the examples (tests/test_mpi_launch.py)
BACKENDS = ["interp", pytest.param("numba", marks=pytest.mark.slow)]

# kernel, this rank's arguments (rng, rank -> tuple; sizes may differ between ranks where
# the kernel allows it), the arguments to differentiate
CASES = {
    "allreduce_buffer_loss": (mk.allreduce_buffer_loss,
                              lambda r, rank: (r.standard_normal(3 + rank % 2), COMM), 0),
    "allreduce_buffer_steps": (mk.allreduce_buffer_steps,
                               lambda r, rank: (r.standard_normal(3) / 2, COMM), 0),
    "allreduce_buffer_while": (mk.allreduce_buffer_while,
                               lambda r, rank: (r.standard_normal(3 + rank % 2) / 2, COMM), 0),
    "allreduce_buffer_local": (mk.allreduce_buffer_local,
                               lambda r, rank: (r.standard_normal(3 + rank % 2), COMM), 0),
    # a trip count and a switch passed as plain integers: the same on every rank (the result
    # is one global loss), or a trip count that differs (each rank's result counts)
    "allreduce_trip_count": (mk.allreduce_trip_count,
                             lambda r, rank: (r.standard_normal(3) / 2, 3, True, COMM), 0),
    "allreduce_trip_count_per_rank": (mk.allreduce_trip_count,
                                      lambda r, rank: (r.standard_normal(3) / 2, 2 + rank,
                                                       False, COMM), 0),
    # sizes from array shapes: the same on every rank (one global loss) or uneven
    "global_mean_square": (mk.global_mean_square,
                           lambda r, rank: (r.standard_normal(3), COMM), 0),
    "global_mean_square_uneven": (mk.global_mean_square,
                                  lambda r, rank: (r.standard_normal(3 + rank % 2), COMM), 0),
    "allgather_all_entries": (mk.allgather_all_entries,
                              lambda r, rank: (r.standard_normal(3), COMM), 0),
    "allgather_sum": (mk.allgather_sum, lambda r, rank: (r.standard_normal(3), COMM), 0),
    "allgather_own_entry": (mk.allgather_own_entry,
                            lambda r, rank: (r.standard_normal(3), COMM), 0),
    "bcast_buffer": (mk.bcast_buffer, lambda r, rank: (r.standard_normal(3), COMM), 0),
    "bcast_reduce": (mk.bcast_reduce, lambda r, rank: (r.standard_normal(3), 0.8, COMM),
                     (0, 1)),
    "numba_mpi_calls": (mk.numba_mpi_calls, lambda r, rank: (r.standard_normal(4), 0.6),
                        (0, 1)),
    # numba-mpi's COMM_WORLD and the communicator argument replicate one value together
    "numba_mpi_and_comm": (mk.numba_mpi_and_comm, lambda r, rank: (r.standard_normal(3), COMM),
                           0),
    "two_communicators": (mk.two_communicators,
                          lambda r, rank: (r.standard_normal(3), COMM, RING), 0),
    "scalar_allreduce_local": (mk.scalar_allreduce_local,
                               lambda r, rank: (r.standard_normal(3 + rank % 2) + 2, COMM), 0),
    "ring_sendrecv": (mk.ring_sendrecv, lambda r, rank: (r.standard_normal(4), 0.7, COMM),
                      (0, 1)),
}
PER_RANK = mk.PER_RANK


def _global_loss(kernel, args, per_rank: bool) -> float:
    value = kernel.py_func(*(a.copy() if isinstance(a, np.ndarray) else a for a in args))
    if per_rank:
        return COMM.allreduce(value)
    values = COMM.allgather(value)   # a replicated result: the same on every rank
    assert max(values) - min(values) <= 1e-12 * max(abs(v) for v in values), values
    return value


def _shifted(args, n: int, j: int, h: float) -> tuple:
    """args with entry j of args[n] moved by h (on this rank only)."""
    out = list(args)
    if isinstance(args[n], np.ndarray):
        out[n] = args[n].copy()
        out[n].reshape(-1)[j] += h
    else:
        out[n] = args[n] + h
    return tuple(out)


def _fd_gradient(kernel, args, n: int, per_rank: bool, h: float = 1e-6):
    """d global loss / d (this rank's) args[n], entry by entry, one rank at a time."""
    counts = COMM.allgather(int(np.size(args[n])))
    mine = np.zeros(counts[COMM.rank])
    for owner, count in enumerate(counts):
        for j in range(count):
            plus, minus = (_global_loss(kernel, _shifted(args, n, j, s) if owner == COMM.rank
                                        else args, per_rank) for s in (h, -h))
            if owner == COMM.rank:
                mine[j] = (plus - minus) / (2 * h)
    return mine.reshape(np.shape(args[n])) if isinstance(args[n], np.ndarray) else mine[0]


def _setup(case):
    kernel, make, argnums = CASES[case]
    args = make(np.random.default_rng(300 + COMM.rank), COMM.rank)
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    fd = tuple(_fd_gradient(kernel, args, n, case in PER_RANK) for n in nums)
    return kernel, args, argnums, fd if isinstance(argnums, tuple) else fd[0]


def _mismatches(got, want, what) -> list[str]:
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    return [f"{what} on rank {COMM.rank}: {g}, expected {w}"
            for g, w in zip(got, want, strict=True) if not np.allclose(g, w, rtol=1e-6, atol=1e-7)]


def _assert_everywhere(mismatches: list[str]) -> None:
    """Fail on every rank together, so that no rank runs ahead into the next collective."""
    everywhere = [m for ms in COMM.allgather(mismatches) for m in ms]
    assert not everywhere, "\n".join(everywhere)

# The cases numba compiles (slow tier; all under HPCAD_ALL_MPI=1): with the numba cases of
# test_mpi_derivatives, test_mpi_reductions and test_width_mpi, their gradients and
# Jacobians run every line of the numba backend's code generation, and call every function
# in the generated code, that all of those files' cases do (tests/mpi/numba_cases.py,
# widths 1 and 4); the interpreter runs every case. Which results count once is decided
# before code generation, the same for both backends.
ON_NUMBA = ("allreduce_buffer_while", "numba_mpi_calls")


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case, backend", case_backends(sorted(CASES), ON_NUMBA))
def test_gradient_and_jacobians_match_finite_differences_of_the_global_loss(case, backend):
    kernel, args, argnums, fd = _setup(case)
    got = {"grad": ad.grad(kernel, argnums=argnums, backend=backend)(*args)}
    for mode in ("rev", "fwd"):
        got[f"jacobian mode={mode}"] = ad.jacobian(kernel, argnums=argnums, mode=mode,
                                                   backend=backend)(*args)
    # one lane at a time too: each call seeds one entry of one rank
    got["jacobian mode=fwd batch=1"] = ad.jacobian(kernel, argnums=argnums, mode="fwd",
                                                   batch=1, backend=backend)(*args)
    _assert_everywhere([m for what, g in got.items() for m in _mismatches(g, fd, what)])


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_buffer_loss_has_the_gradient_of_the_scalar_allreduce_loss(backend):
    """`comm.Allreduce(loc, glob); return glob[0]` is the same loss as
    `return comm.allreduce(s)`: the same gradient, not `size` times it."""
    x = np.random.default_rng(COMM.rank).standard_normal(4)
    buffered = ad.grad(mk.allreduce_buffer_loss, backend=backend)(x, COMM)
    scalar = ad.grad(mk.scalar_allreduce_loss, backend=backend)(x, COMM)
    _assert_everywhere(_mismatches(buffered, scalar, "Allreduce-buffer loss gradient") +
                       _mismatches(buffered, 2 * x, "Allreduce-buffer loss gradient"))


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", ["allreduce_trip_count", "global_mean_square",
                                  "allreduce_buffer_loss", "allreduce_trip_count_per_rank"])
def test_hvp_is_the_derivative_of_the_gradient(case):
    """grad_and_hvp's gradient is grad's (checked against finite differences above), and
    its H v the central difference of grad along v, every rank moving its own inputs: one
    global loss, whether the ranks' integer arguments and shapes make the result
    replicated or per-rank."""
    kernel, make, _ = CASES[case]
    args = make(np.random.default_rng(300 + COMM.rank), COMM.rank)
    v = np.random.default_rng(400 + COMM.rank).standard_normal(args[0].shape)
    grad = ad.grad(kernel, backend="interp")
    _, g, hv = ad.grad_and_hvp(kernel, backend="interp")(*args, v)
    h = 1e-6
    fd = (grad(args[0] + h * v, *args[1:]) - grad(args[0] - h * v, *args[1:])) / (2 * h)
    _assert_everywhere(_mismatches(g, grad(*args), "grad_and_hvp's gradient") +
                       _mismatches(hv, fd, "H v"))


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_equal_float_argument_that_keeps_the_result_per_rank_is_named():
    """dt * glob[0], dt a float argument (per-rank unless declared) with the same value on
    every rank: the result is summed over the ranks (size times the loss every rank
    prints), and a warning names dt and params=. Declared, the loss counts once; a dt
    that differs between ranks warns of nothing."""
    kernel = mk.scaled_allreduce_loss
    x = np.random.default_rng(COMM.rank).standard_normal(3)
    with pytest.warns(ad.HpcadWarning, match=r"float argument\(s\) 'dt'.*params=\('dt',\)"):
        summed = ad.grad(kernel, backend="interp")(x, 0.3, COMM)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ad.HpcadWarning)
        once = ad.grad(kernel, backend="interp", params=("dt",))(x, 0.3, COMM)
        ad.grad(kernel, backend="interp")(x, 0.3 + COMM.rank, COMM)
    fd = _fd_gradient(kernel, (x, 0.3, COMM), 0, per_rank=False)
    _assert_everywhere(_mismatches(summed, COMM.size * fd, "per-rank dt * glob[0]") +
                       _mismatches(once, fd, "declared dt * glob[0]"))
