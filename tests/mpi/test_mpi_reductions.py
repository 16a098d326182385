"""Reductions and scalar collectives under mpiexec (2 and 3 ranks, tests/test_mpi_launch.py):
MPI.IN_PLACE, None buffers, array MAX/MIN/PROD, Scan/Exscan, Sendrecv_replace, lower-case
bcast/reduce/gather/allgather/scatter/scan/exscan and numba-mpi's gather/scatter/allgather
and allreduce/reduce with Operator.MAX/MIN,
forward and reverse against central finite differences of the global function on both
backends, and at width 3; MAX/MIN ties against the hand-written owner (the lowest rank),
PROD with zero entries against the product of the others."""
import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.errors import KernelAssertionError, UnsupportedConstruct
from tests.ad.width_check import check_forward, check_reverse
from tests.mpi import BACKENDS, case_backends
from tests.mpi import reduction_kernels as rk

COMM = MPI.COMM_WORLD


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


# The cases numba compiles (slow tier; all under HPCAD_ALL_MPI=1): with the numba cases of
# test_mpi_derivatives and test_mpi_replicated (at width 3: test_width_mpi's), their primals
# and derivatives run every line of the numba backend's code generation, and call every
# function in the generated code, that all of those files' cases do
# (tests/mpi/numba_cases.py)
ON_NUMBA = ("in_place", "scalars")
ON_NUMBA_AT_WIDTH_3 = ("scalars",)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case, backend", case_backends(sorted(rk.CASES), ON_NUMBA))
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
@pytest.mark.parametrize("case, backend", case_backends(sorted(rk.CASES),
                                                        ON_NUMBA_AT_WIDTH_3))
def test_reductions_at_width_3(case, backend):
    kernel, args = _args(case)
    rng = np.random.default_rng(700 + COMM.rank)
    check_forward(kernel, args, 3, backend, rng)
    check_reverse(kernel, args, 3, backend, rng)


def _ties():
    """Per element: all ranks tie; rank order; ranks >= 1 tie on the MAX; ranks >= 1 tie
    on the MIN."""
    r = COMM.rank
    return np.array([1.0, float(r), 2.0 if r >= 1 else 0.0, -1.0 if r != 0 else 5.0])


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_max_min_ties_go_to_the_lowest_rank(backend):
    """The derivative of each element's MAX and MIN goes whole to the lowest rank holding
    it (finite differences are not defined at ties: the owners are written out)."""
    size, r = COMM.size, COMM.rank
    max_owner = [0, size - 1, 1, 0]
    min_owner = [0, 0, 0, 1]
    expected = np.array([(i + 1.0) * (max_owner[i] == r) + (i + 10.0) * (min_owner[i] == r)
                         for i in range(4)])
    got = ad.grad(rk.extremum_weights, argnums=0, backend=backend)(_ties(), COMM)
    np.testing.assert_array_equal(got, expected)
    d = np.random.default_rng(800 + r).standard_normal(4)
    _, tangent = ad.jvp(rk.extremum_weights, (_ties(), COMM), (d, None), backend=backend)
    assert _rel(tangent, COMM.allreduce(float(expected @ d))) <= 1e-14


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_prod_with_zero_entries_is_the_product_of_the_others(backend):
    r = COMM.rank
    x = np.array([0.0 if r == 0 else 2.0, 0.0, r + 1.5])
    everyone = np.array(COMM.allgather(x))
    others = np.array([np.prod(np.delete(everyone[:, i], r)) for i in range(3)])
    got = ad.grad(rk.product_weights, argnums=0, backend=backend)(x, COMM)
    np.testing.assert_allclose(got, others * np.arange(1.0, 4.0), rtol=1e-15, atol=0)
    assert got[0] != 0.0 if r == 0 else got[0] == 0.0


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_results_mpi4py_gives_as_none_are_nan():
    x = np.array([COMM.rank + 2.0])
    got = rk.missing_values(x, COMM)
    size = COMM.size
    if COMM.rank == 0:
        assert got[0] == sum(k + 2.0 for k in range(size)) and got[1] == 2.0
        assert np.isnan(got[2])
    else:
        assert np.isnan(got[0]) and np.isnan(got[1])
        assert got[2] == sum(k + 2.0 for k in range(COMM.rank))


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_unsupported_uses_say_what_and_where(monkeypatch):
    monkeypatch.setenv("HPCAD_MPI_ABORT", "0")   # every rank fails the count check
    x = np.ones(2)
    with pytest.raises(UnsupportedConstruct, match=r"reduction_kernels.py:\d+: MPI.IN_PLACE"):
        ad.kernel(rk.bad_in_place)(x, COMM)
    with pytest.raises(UnsupportedConstruct, match="Scan/Exscan with op=MAX"):
        ad.kernel(rk.bad_scan)(x, COMM)
    with pytest.raises(KernelAssertionError, match="numba_mpi.gather's count"):
        ad.kernel(rk.bad_count, backend="interp")(x, 1.0)
