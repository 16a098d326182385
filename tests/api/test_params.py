"""params= on one process (README, MPI): declared replicated parameters are named or given
by position; on one rank, or in a kernel without a communicator, their gradient is the
ordinary one; the deferred reduction is one allreduce appended to the adjoint, which
`hpcad show-ir --grad --params` shows. (Under mpiexec: tests/mpi/test_replication_types.py.)"""
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.cli import main
from tests.mpi import replication_kernels as rk

BACKENDS = ["interp", pytest.param("numba", marks=pytest.mark.slow)]
KERNELS = Path(rk.__file__)


def _fitting_args(comm=MPI.COMM_SELF):
    x = np.linspace(0.0, 1.0, 9)
    return (np.array([-0.3, 0.2, 0.05]), 0.4, np.sin(np.pi * x) + 0.2, 0.8 * np.sin(np.pi * x),
            4, comm)


@ad.kernel
def local_fit(theta, x):
    s = 0.0
    for i in range(x.shape[0]):
        s += (theta[0] * x[i] + theta[1] - x[i] * x[i]) ** 2
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_params_on_one_rank_change_nothing(backend):
    args = _fitting_args()
    plain = ad.grad(rk.fit_loss, argnums=(0, 1), backend=backend)(*args)
    declared = ad.grad(rk.fit_loss, argnums=(0, 1), backend=backend,
                       params=("theta", 1))(*args)
    np.testing.assert_allclose(declared[0], plain[0], rtol=1e-14)
    assert declared[1] == pytest.approx(plain[1], rel=1e-14)


def test_params_in_a_kernel_without_a_communicator_are_harmless():
    theta, x = np.array([0.5, -0.2]), np.linspace(0.0, 1.0, 5)
    g = ad.grad(local_fit, backend="interp", params="theta")(theta, x)
    h = 1e-6
    fd = [(local_fit.py_func(theta + h * e, x) - local_fit.py_func(theta - h * e, x)) / (2 * h)
          for e in np.eye(2)]
    np.testing.assert_allclose(g, fd, rtol=1e-6)


@pytest.mark.parametrize("params, message", [
    (("phi",), "'phi' is not an argument of kernel 'fit_loss'"),
    ((7,), "7 is not an argument"),
    (("comm",), "argument 'comm' is an MPI communicator; only numbers and arrays"),
])
def test_bad_params_are_argument_errors(params, message):
    with pytest.raises(ad.ArgumentError, match=message):
        ad.grad(rk.fit_loss, backend="interp", params=params)(*_fitting_args())


def test_params_of_two_dtypes_cannot_share_one_message():
    args = list(_fitting_args())
    args[0] = args[0].astype(np.float32)
    target = args[3]
    with pytest.raises(ad.DifferentiationError, match="must share one float dtype"):
        ad.grad(rk.fit_loss, argnums=(0, 3), backend="interp",
                params=("theta", "target"))(*args[:3], target, *args[4:])


def test_show_ir_shows_the_one_deferred_reduction(capsys):
    sig = "float64[::1], float64, float64[::1], float64[::1], int64, !comm"
    assert main(["show-ir", f"{KERNELS}:fit_loss", "--sig", sig, "--grad",
                 "--params", "theta,kappa"]) == 0
    text = capsys.readouterr().out
    reductions = [line for line in text.splitlines() if "mpi.allreduce " in line]
    assert len(reductions) == 1 and "%shares, %params_sum, %comm" in reductions[0]
    assert main(["plan", f"{KERNELS}:fit_loss", "--sig", sig, "--params", "theta,kappa"]) == 0
    plan = capsys.readouterr().out
    assert "arguments theta replicated over comm, kappa replicated over comm, u0 per-rank" \
        in plan
    assert "result 0 replicated over comm (one global output" in plan
    assert "the gradients of theta, kappa summed over the ranks once" in plan
    api = ad.plan(rk.fit_loss, *_fitting_args(), params=("theta", "kappa"))
    assert _replication_lines(api) == _replication_lines(plan)


def _replication_lines(plan: str) -> list[str]:
    return [line for line in plan.splitlines() if line.startswith(("replication",
                                                                   "adjoint reductions"))]
