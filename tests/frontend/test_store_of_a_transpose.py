"""`B[:, :] = B.T` and `B[0, :] = np.flip(B[:, 0])` store a transpose (a flip) of the target
into it, which NumPy does through a temporary where they overlap, and so does hpcad
(arrays.fill): they were refused as "giving a name to a transposed array", which only a
name bound to one (`At = A.T`, a copy in hpcad) is. Value against the plain function,
gradient against central differences."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import BACKENDS


def transpose_in_place(A):
    B = A.copy()
    B[:, :] = B.T
    B[0, :] = np.flip(B[:, 0])
    A[:, :] = A.T * 2.0
    return np.sum(B * np.arange(16.0).reshape(4, 4) * B) + np.sum(A * A * B)


@pytest.mark.parametrize("backend", BACKENDS)
def test_storing_a_transpose_of_the_target(backend):
    A = np.random.default_rng(8).standard_normal((4, 4))
    got, expected = A.copy(), A.copy()
    k = ad.kernel(transpose_in_place, backend=backend)
    assert k(got) == pytest.approx(transpose_in_place(expected), rel=1e-13)
    assert np.array_equal(got, expected)
    g = ad.grad(k)(A)
    fd = np.zeros_like(A)
    for i in np.ndindex(A.shape):
        e = np.zeros_like(A)
        e[i] = 1e-6
        fd[i] = (transpose_in_place(A + e) - transpose_in_place(A - e)) / 2e-6
    assert np.allclose(g, fd, rtol=1e-6, atol=1e-7)


def test_a_name_bound_to_a_transpose_of_a_written_array_is_still_refused():
    def named(A):
        At = A.T
        A[0, 0] = 5.0
        return np.sum(At)
    with pytest.raises(ad.UnsupportedConstruct, match="giving a name to a transposed array"):
        ad.kernel(named, backend="interp")(np.ones((2, 2)))
