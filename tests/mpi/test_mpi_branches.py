"""One collective reached through rank-dependent branches with different buffers per branch
(tests/mpi/branch_kernels.py), under mpiexec at 2 and 3 ranks: forward and reverse against
central finite differences of the global function (the sum of the ranks' results), on both
backends. Where the ranks decided differently whether the call carries a derivative, one
rank posted a derivative message the others did not: a hang, or a wrong derivative."""
import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from tests.ad.width_check import check_forward, check_reverse
from tests.mpi import branch_kernels as bk
from tests.mpi import case_backends

COMM = MPI.COMM_WORLD


def _rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case, backend", case_backends(sorted(bk.CASES),
                                                        ("reduce_in_place", "bcast_branches")))
def test_branches_match_finite_differences(case, backend):
    """The tangent summed over ranks and the cotangents' pairing with the direction, summed
    over ranks, both equal the central difference of the summed results."""
    kernel = bk.CASES[case]
    x = np.random.default_rng(800 + COMM.rank).uniform(0.5, 1.5, 4)
    d = np.random.default_rng(900 + COMM.rank).standard_normal(4)
    h = 1e-6
    fd = COMM.allreduce((kernel.py_func(x + h * d, COMM) - kernel.py_func(x - h * d, COMM))
                        / (2 * h))
    value, tangent = ad.jvp(kernel, (x.copy(), COMM), (d, None), backend=backend)
    assert _rel(value, kernel.py_func(x.copy(), COMM)) <= 1e-12
    total = COMM.allreduce(tangent)
    assert _rel(total, fd) <= 1e-6, (COMM.rank, total, fd)
    _, pullback = ad.vjp(kernel, x.copy(), COMM, backend=backend)
    cot = pullback(1.0)[0]
    total = COMM.allreduce(float(np.sum(cot * d)))
    assert _rel(total, fd) <= 1e-6, (COMM.rank, total, fd)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case, backend", case_backends(sorted(bk.CASES), ("reduce_in_place",)))
def test_branches_at_width_3(case, backend):
    x = np.random.default_rng(1000 + COMM.rank).uniform(0.5, 1.5, 4)
    rng = np.random.default_rng(1100 + COMM.rank)
    check_forward(bk.CASES[case], (x, COMM), 3, backend, rng)
    check_reverse(bk.CASES[case], (x, COMM), 3, backend, rng)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_constant_argument_beside_a_varied_buffer_of_its_kind_is_refused():
    """c has no shadow, but another rank could reach its Bcast where this one reaches the
    Bcast of x's squares: every rank refuses, naming c and what to do."""
    x, c = np.ones(4), np.ones(4)
    with pytest.raises(ad.DifferentiationError, match="argument 'c' .* mark 'c' Duplicated"):
        ad.autodiff(bk.bcast_constant_argument, mode="forward",
                    activity=(ad.Duplicated, ad.Const, ad.Const),
                    backend="interp")(x, np.ones(4), c, COMM)
