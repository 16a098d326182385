"""np.trace(a, offset) of a matrix in kernels (hpcad/frontend/library.py), as numba has it:
values equal numba.njit's of the same source for wide, tall, empty and float32 matrices and
offsets past either end (a float32 matrix sums in float64, as numba's starts from the integer
0); the gradient of a loss through it equals central differences (QuantEcon's shorrocks
index and quadratic sums call it); what numba's does not take is refused at its line."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.errors import UnsupportedConstruct
from tests.ad.harness import njit_of


def trace(a):
    return np.trace(a)


def trace_at(a, k):
    return np.trace(a, k)


def trace_by_keyword(a, k):
    return np.trace(a, offset=k)


MATRICES = [np.arange(6.0).reshape(2, 3), np.arange(6.0).reshape(3, 2), np.zeros((0, 3)),
            np.arange(9.0).reshape(3, 3) - 4.0, np.ones((2, 2), np.float32)]


def test_values_equal_numbas():
    for a in MATRICES:
        got = ad.kernel(trace, backend="interp")(a)
        want = njit_of(trace)(a)
        assert got == want and type(got) is type(want)
        for k in (-4, -1, 0, 1, 2, 5):
            want = njit_of(trace_at)(a, k)
            assert ad.kernel(trace_at, backend="interp")(a, k) == want
            assert ad.kernel(trace_by_keyword, backend="interp")(a, k) == want


def shorrocks(p):
    m = p.shape[0]
    return (m - np.trace(p)) / (m - 1) + np.trace(p @ p, 1) ** 2


def test_gradient_equals_central_differences():
    p = np.random.default_rng(0).uniform(0.1, 1.0, (4, 4))
    g = ad.grad(shorrocks, backend="interp")(p)
    fd = np.zeros(p.shape)
    for idx in np.ndindex(p.shape):
        hi, lo = p.copy(), p.copy()
        hi[idx] += 1e-6
        lo[idx] -= 1e-6
        fd[idx] = (shorrocks(hi) - shorrocks(lo)) / 2e-6
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def of_a_cube(a):
    return np.trace(a)


def with_axes(a):
    return np.trace(a, 0, 0, 1)


def with_float_offset(a):
    return np.trace(a, 1.5)


@pytest.mark.parametrize("fn, a, words", [
    (of_a_cube, np.zeros((2, 2, 2)), "3-D array"),
    (with_axes, np.zeros((2, 2)), "axis1, axis2"),
    (with_float_offset, np.zeros((2, 2)), "not an integer"),
])
def test_refused_at_its_line(fn, a, words):
    with pytest.raises(UnsupportedConstruct, match=words) as e:
        ad.kernel(fn, backend="interp")(a)
    assert "test_trace.py" in str(e.value)
