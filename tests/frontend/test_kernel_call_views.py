"""A kernel called on a view that hpcad passes as a copy (a slice with a step, a reversed
slice, a transpose, np.flip) writes through to the viewed elements, as NumPy's view does:
the calling kernel's value equals its plain Python function's, and its gradient central
finite differences. Those writes were lost (the callee wrote a temporary), a silent wrong
value and gradient."""
import inspect

import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import BACKENDS, SLOW


@ad.kernel
def scale_vector(v, c):
    for i in range(v.shape[0]):
        v[i] = v[i] * c + v[0]


@ad.kernel
def scale_matrix(M, c):
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            M[i, j] = M[i, j] * c + i - j


@ad.kernel
def weighted(v):
    s = 0.0
    for i in range(v.shape[0]):
        s += v[i] * (i + 1)
    return s


@ad.kernel
def through_vector_views(x, c):
    y = x.copy()
    scale_vector(y[::2], c)
    scale_vector(y[::-1], c)
    scale_vector(y[7:1:-3], c)
    scale_vector(np.flip(y[1:]), c)
    return np.sum(y * y * np.arange(9.0)) + weighted(y[::3]) + weighted(x[::-1])


@ad.kernel
def through_matrix_views(A, c):
    B = A.copy()
    scale_matrix(B.T, c)
    scale_matrix(B[::2, 1:], c)
    scale_matrix(B[:, ::-1].T, c)
    scale_vector(B[1, ::2], c)
    scale_matrix(np.transpose(B[1:, ::2]), c)
    return np.sum(B * B * np.arange(12.0).reshape(3, 4))


@ad.kernel
def into_an_argument(A, c):
    scale_matrix(A.T, c)
    scale_vector(A[::-1, 0], c)
    return np.sum(A * A)


def fd_gradient(f, x, c, h=1e-6):
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (f(x + e, c) - f(x - e, c)) / (2 * h)
    return g, (f(x.copy(), c + h) - f(x.copy(), c - h)) / (2 * h)


CASES = [(through_vector_views, (9,)), (through_matrix_views, (3, 4)),
         (into_an_argument, (3, 4))]


@pytest.mark.parametrize("kernel, shape, backend", [   # numba compiles for seconds: one fast
    pytest.param(k, shape, backend, id=f"{k.__name__}-{backend}",
                 marks=SLOW if backend == "numba" and k is not into_an_argument else ())
    for k, shape in CASES for backend in BACKENDS])
def test_writes_through_a_copied_view_reach_the_array(kernel, shape, backend):
    x = np.random.default_rng(11).standard_normal(shape)
    got, expected = x.copy(), x.copy()
    k = ad.kernel(kernel.py_func, backend=backend)
    assert k(got, 0.7) == pytest.approx(kernel.py_func(expected, 0.7), rel=1e-12)
    assert np.allclose(got, expected, rtol=1e-14)
    gx, gc = ad.grad(k, argnums=(0, 1))(x, 0.7)
    fx, fc = fd_gradient(kernel.py_func, x, 0.7)
    assert np.allclose(gx, fx, rtol=1e-6, atol=1e-7)
    assert gc == pytest.approx(fc, rel=1e-6)


@ad.kernel
def smooth_into(a, b):
    for i in range(1, a.shape[0] - 1):
        b[i] = 0.25 * a[i - 1] + 0.5 * a[i] + 0.25 * a[i + 1]


def smooth_into_own_reversal(z):
    smooth_into(z, z[::-1])   # error here
    return z[0]


def read_reversal_write_array(z):
    smooth_into(z[::-2], z)   # error here
    return z[0]


def copied_views_read_only(z):
    return weighted(z[::-1]) + weighted(z[::2]) * weighted(z)


@pytest.mark.parametrize("fn", [smooth_into_own_reversal, read_reversal_write_array])
def test_a_copied_view_of_an_array_another_argument_shows_is_refused_where_written(fn):
    """In NumPy the callee reads its own writes through the other argument at once; the
    copy hpcad passes would not (smooth_into(z, z[::-1]) gave Python's value only by
    chance: another value and gradient, silently)."""
    lines, start = inspect.getsourcelines(fn)
    line = start + next(k for k, text in enumerate(lines) if "# error here" in text)
    with pytest.raises(ad.UnsupportedConstruct, match=rf"{__file__}:{line}: calling kernel "
                       "'smooth_into' with '[ab]' a slice with a step, a transpose or "
                       "np.flip of an array that '[ab]' shows too, where the kernel writes "
                       "'b'.*pass a copy"):
        ad.kernel(fn, backend="interp")(np.linspace(0.0, 1.0, 9))


def test_copied_views_of_one_array_only_read_stay_allowed():
    z = np.linspace(0.0, 1.0, 9)
    k = ad.kernel(copied_views_read_only, backend="interp")
    assert k(z) == pytest.approx(copied_views_read_only(z), rel=1e-14)
