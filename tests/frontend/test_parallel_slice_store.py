"""In a kernel declared parallel=True, a slice assignment (`b[1:-1] = expr`, a loop nest that
carries no reduction) becomes a parallel loop and gives the serial kernel's numbers."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import BACKENDS


def three_point_average(a, b):
    b[1:-1] = 0.25 * a[:-2] + 0.5 * a[1:-1] + 0.25 * a[2:]
    s = 0.0
    for i in range(b.shape[0]):
        s += b[i] * b[i]
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_slice_store_in_a_parallel_kernel_matches_numpy(backend):
    a = np.random.default_rng(0).random(9)
    b, b_ref = np.zeros(9), np.zeros(9)
    got = ad.kernel(three_point_average, parallel=True, backend=backend)(a, b)
    expected = three_point_average(a, b_ref)
    assert got == pytest.approx(expected, rel=1e-14)
    assert np.allclose(b, b_ref, rtol=1e-14, atol=0.0)
