"""Reductions and scalar collectives under mpiexec (2 and 3 ranks, tests/test_mpi_launch.py):
MPI.IN_PLACE, None buffers, array MAX/MIN/PROD, Scan/Exscan, Sendrecv_replace, lower-case
bcast/reduce/gather/allgather/scatter/scan/exscan and numba-mpi's gather/scatter/allgather,
forward and reverse against central finite differences of the global function on both
backends, and at width 3; MAX/MIN ties against the hand-written owner (the lowest rank),
PROD with zero entries against the product of the others."""
import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from tests.ad.width_check import check_forward, check_reverse
from tests.mpi import reduction_kernels as rk

COMM = MPI.COMM_WORLD
BACKENDS = ["interp", pytest.param("numba", marks=pytest.mark.slow)]


def _args(case):
    kernel, make, with_comm = rk.CASES[case]
    args = make(np.random.default_rng(500 + COMM.rank))
    return kernel, args + (COMM,) if with_comm else args


def _direction(args):
    rng = np.random.default_rng(600 + COMM.rank)
    return tuple(rng.standard_normal(a.shape) if isinstance(a, np.ndarray) else
                 (float(rng.standard_normal()) if isinstance(a, float) else None) for a in args)


def _call(kernel, args, d, h):
    return kernel.py_func(*[a + h * t if t is not None else
                            (a.copy() if isinstance(a, np.ndarray) else a)
                            for a, t in zip(args, d, strict=True)])


def _rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(rk.CASES))
def test_reductions_match_finite_differences(case, backend):
    """The primal equals plain Python's; the tangent equals this rank's central difference
    along every rank's direction; the cotangents, summed over ranks, the difference of the
    summed outputs (each rank's output is its own)."""
    kernel, args = _args(case)
    d = _direction(args)
    h = 1e-6
    fd = (_call(kernel, args, d, h) - _call(kernel, args, d, -h)) / (2 * h)
    plain = _call(kernel, args, d, 0.0)
    kernel.backend = backend
    try:
        assert _rel(kernel(*[a.copy() if isinstance(a, np.ndarray) else a for a in args]),
                    plain) <= 1e-12
    finally:
        kernel.backend = None
    _, tangent = ad.jvp(kernel, args, d, backend=backend)
    assert _rel(tangent, fd) <= 1e-6, (COMM.rank, tangent, fd)
    _, pullback = ad.vjp(kernel, *args, backend=backend)
    cots = pullback(1.0)
    local = sum(float(np.sum(c * t)) for c, t in zip(cots, d, strict=True) if c is not None)
    total, expected = COMM.allreduce(local), COMM.allreduce(fd)
    assert _rel(total, expected) <= 1e-6, (COMM.rank, total, expected)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(rk.CASES))
def test_reductions_at_width_3(case, backend):
    kernel, args = _args(case)
    rng = np.random.default_rng(700 + COMM.rank)
    check_forward(kernel, args, 3, backend, rng)
    check_reverse(kernel, args, 3, backend, rng)
