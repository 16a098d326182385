"""hpcad.testing under mpiexec (run by tests/test_mpi_launch.py with 2 and 3 ranks): dot_test
and taylor_test pass on the distributed heat with its diffusivity named replicated (uneven
local sizes), and fail, with their figures and on every rank alike, on a deliberately wrong
custom adjoint (the dot test) and the gradient it gives (the Taylor test: first order); an
argument named replicated that differs between ranks is an ArgumentError; the README's
example runs as written."""
import math
import re
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.kernels.mpi_stencils import heat_local, split
from hpcad.testing import DerivativeTestFailure, dot_test, taylor_test
from tests.mpi import BACKENDS, interp_unless_all

COMM = MPI.COMM_WORLD


@ad.custom_vjp
@ad.kernel
def global_energy(x, comm):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return comm.allreduce(s, op=MPI.SUM)


@ad.kernel
def global_energy_fwd(x, comm):
    return global_energy(x, comm)


@ad.kernel
def global_energy_bwd(x, comm, g, dx):
    total = comm.allreduce(g, op=MPI.SUM)
    for i in range(x.shape[0]):
        dx[i] += 3.0 * x[i] * total     # wrong on purpose: the derivative is 2 x


@ad.kernel
def global_energy_jvp(x, comm, dx):
    d = 0.0
    for i in range(x.shape[0]):
        d += 2.0 * x[i] * dx[i]
    return global_energy(x, comm), comm.allreduce(d, op=MPI.SUM)


global_energy.defvjp(global_energy_fwd, global_energy_bwd)
global_energy.defjvp(global_energy_jvp)


@ad.kernel
def smoothed_energy(x, w, comm):
    """A halo from the left neighbour, then the (wrongly differentiated) global energy."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    halo = np.zeros(1)
    comm.Sendrecv(x[x.shape[0] - 1:], (rank + 1) % size, 5, halo, (rank - 1 + size) % size, 5)
    y = np.empty_like(x)
    y[0] = math.sin(x[0] + halo[0])
    for i in range(1, x.shape[0]):
        y[i] = math.sin(x[i] * w + x[i - 1])
    return global_energy(y, comm)


def _heat():
    u0 = np.sin(np.linspace(0.0, np.pi, 41)) + 0.1
    return split(u0, COMM)[0], 0.25, 6, COMM


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_dot_and_taylor_tests_pass_on_distributed_heat(backend):
    args = _heat()
    dot = dot_test(heat_local, args, params=("alpha",), backend=backend)
    assert dot.relative_error <= 1e-10 and dot.forward != 0.0
    taylor = taylor_test(heat_local, args, params=("alpha",), backend=backend)
    assert all(abs(rate - 2.0) < 0.1 for rate in taylor.rates), taylor
    # the loss it tests is the global one: the replicated result counts once
    assert taylor.value == pytest.approx(heat_local.py_func(*_copies(args)), rel=1e-12)
    assert COMM.allgather((dot, taylor)) == [(dot, taylor)] * COMM.size


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_per_rank_alpha_is_tested_as_each_rank_own_input():
    """Without params=, each rank perturbs its own alpha: still one function of all the
    ranks' inputs, whose derivatives the tests check."""
    args = _heat()
    dot_test(heat_local, args, backend="interp")
    taylor_test(heat_local, args, argnums=(0, "alpha"), backend="interp")


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", ["trip_count", "mean", "mean_uneven"])
def test_results_count_as_ad_grad_counts_them(case):
    """A result made replicated by an integer argument or array shapes the same on every
    rank (ad.grad's verdict, compared at the call) counts once in the tests' loss too, and
    where the shapes differ it is each rank's part: both tests pass, the loss is the
    global one."""
    from tests.mpi import mpi_kernels as mk
    rng = np.random.default_rng(50 + COMM.rank)
    kernel, args, replicated = {
        "trip_count": (mk.allreduce_trip_count, (rng.standard_normal(3) / 2, 3, True, COMM),
                       True),
        "mean": (mk.global_mean_square, (rng.standard_normal(3), COMM), True),
        "mean_uneven": (mk.global_mean_square, (rng.standard_normal(3 + COMM.rank % 2), COMM),
                        False)}[case]
    dot = dot_test(kernel, args, argnums=0, backend="interp")
    assert dot.relative_error <= 1e-10 and dot.forward != 0.0
    taylor = taylor_test(kernel, args, argnums=0, backend="interp")
    assert all(abs(rate - 2.0) < 0.1 for rate in taylor.rates), taylor
    value = kernel.py_func(*_copies(args))
    assert taylor.value == pytest.approx(value if replicated else COMM.allreduce(value),
                                         rel=1e-12)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", interp_unless_all())
def test_dot_test_fails_on_a_wrong_custom_adjoint(backend):
    x = np.random.default_rng(10 + COMM.rank).standard_normal(5)
    with pytest.raises(DerivativeTestFailure, match="dot test of 'smoothed_energy' failed") \
            as failed:
        dot_test(smoothed_energy, (x, 0.7, COMM), backend=backend)
    result = failed.value.result
    # the forward rule is right (2 x), the reverse rule not (3 x)
    assert result.relative_error > 0.1
    assert isinstance(failed.value, AssertionError) and isinstance(failed.value, ad.HpcadError)
    assert COMM.allgather(result) == [result] * COMM.size


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", interp_unless_all())
def test_taylor_test_reports_first_order_for_a_wrong_gradient(backend):
    x = np.random.default_rng(20 + COMM.rank).standard_normal(5)
    with pytest.raises(DerivativeTestFailure, match=r"shrinks at rate [01]\.\d\d <") as failed:
        taylor_test(smoothed_energy, (x, 0.7, COMM), backend=backend)
    assert all(abs(rate - 1.0) < 0.1 for rate in failed.value.result.rates)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_replicated_argument_that_differs_between_ranks_is_refused():
    u, _, steps, comm = _heat()
    with pytest.raises(ad.ArgumentError, match="'alpha' .* differs between ranks"):
        dot_test(heat_local, (u, 0.25 + COMM.rank, steps, comm), params="alpha",
                 backend="interp")


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_readme_example_passes():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    example = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S)
                   if "from hpcad.testing import" in block)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    namespace["test_heat_derivatives"]()


@ad.kernel
def group_energy(x, w, comm, sub):
    """A value the same on every rank of a communicator from Split (one per group); the
    tests run over comm, the kernel's first communicator."""
    comm.Barrier()
    s = 0.0
    for i in range(x.shape[0]):
        s += math.sin(w * x[i]) * x[i]
    return sub.allreduce(s, op=MPI.SUM)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_tests_count_a_split_communicator_value_once_per_group():
    """ad.grad counts a value replicated over a Split communicator once per group; the tests
    judge it by the same global loss (they took it once in all: the dot test failed)."""
    sub = COMM.Split(COMM.rank % 2, COMM.rank)
    x = np.random.default_rng(30 + COMM.rank).standard_normal(4)
    dot = dot_test(group_energy, (x, 0.8, COMM, sub), backend="interp")
    assert dot.relative_error <= 1e-10 and dot.forward != 0.0
    taylor = taylor_test(group_energy, (x, 0.8, COMM, sub), argnums=0, backend="interp")
    assert all(abs(rate - 2.0) < 0.1 for rate in taylor.rates), taylor
    mine = group_energy.py_func(x.copy(), 0.8, COMM, sub)
    assert taylor.value == pytest.approx(COMM.allreduce(mine if sub.rank == 0 else 0.0))
    sub.Free()


def _copies(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
