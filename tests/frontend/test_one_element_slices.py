"""Slices of at most one element broadcast as NumPy broadcasts a length-1 axis: `pos[:, 0:1]`
(the pairwise differences `x.T - x` of N-body codes), `a[-1:]`, `a[:1]`, `a[i:i + 1]`. The
primal equals numba.njit's, the derivatives match central finite differences, forward
against reverse, on both backends; such a slice that is empty where it would broadcast
stops the kernel (NumPy refuses it too), and one that needs no broadcast may be empty."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST, on_backends
from tests.ad.kernels import Case
from tests.frontend.construct_check import check_construct


@ad.kernel
def pairwise_energy(pos, mass):
    x = pos[:, 0:1]
    y = pos[:, 1:2]
    dx = x.T - x
    dy = y.T - y
    r2 = dx ** 2 + dy ** 2 + 0.1
    inv = 1.0 / np.sqrt(r2)
    return np.sum(inv * (mass[:, np.newaxis] * mass[np.newaxis, :])) + np.sum(pos[:, -1:] * pos)


@ad.kernel
def rows_against_ends(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        s += np.sum(a[i:i + 1] * b) + np.sum(np.sin(b[:1] * a))
    return s + np.sum(b[-1:] * a)


CASES = [Case("pairwise_energy", pairwise_energy,
              lambda rng: (rng.standard_normal((5, 3)), rng.uniform(0.5, 1.5, 5))),
         Case("rows_against_ends", rows_against_ends,
              lambda rng: (rng.standard_normal(4), rng.standard_normal(6)))]


@on_backends(CASES, numba=("pairwise_energy",))
def test_one_element_slices_broadcast_as_in_numba(case, backend):
    check_construct(case, backend)


def differences_of_first_column(pos):
    x = pos[:, 0:1]
    return np.sum(x.T - x)


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_an_empty_one_element_slice_that_would_broadcast_stops_the_kernel(backend):
    with pytest.raises(ad.KernelAssertionError, match="a slice of one element .* is empty"):
        ad.kernel(differences_of_first_column, backend=backend)(np.ones((3, 0)))


def copy_one(a, b, k):
    a[k:k + 1] = b[k:k + 1] * 2.0


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_an_empty_one_element_slice_that_needs_no_broadcast_is_fine(backend):
    a, b = np.zeros(3), np.arange(3.0)
    ad.kernel(copy_one, backend=backend)(a, b, 3)
    np.testing.assert_array_equal(a, np.zeros(3))
    ad.kernel(copy_one, backend=backend)(a, b, 1)
    np.testing.assert_array_equal(a, [0.0, 2.0, 0.0])
