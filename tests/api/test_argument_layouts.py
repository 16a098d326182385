"""A kernel's meaning can depend on its arguments' layout: `A.ravel()` is a view of a
C-contiguous array (writes through it reach `A`) and a copy of a Fortran-ordered or strided
one, as in NumPy. jvp, vjp, jacobian and check_grad copy the caller's arrays before running
the derivative; each copy keeps the array's layout, so they compute the function the
caller's array gives. Checked against central differences of the plain Python function
(NumPy), which takes the arrays as given."""
import numpy as np
import pytest

import hpcad as ad


def through_ravel(A, c):
    r = A.ravel()
    r[3] = c * 2.0          # reaches A only where A is C-contiguous
    return np.sum(A * A) + c * np.sum(r)


def scaled_through_ravel(A, c):
    r = A.ravel()
    r[3] = c * 2.0
    return A * c


kernel = ad.kernel(backend="interp")(through_ravel)
array_kernel = ad.kernel(backend="interp")(scaled_through_ravel)


def arrays():
    values = np.random.default_rng(3).uniform(-1.0, 1.0, (4, 3))
    wide = np.zeros((4, 6))
    wide[:, ::2] = values
    return {"C": values.copy(), "fortran": np.asfortranarray(values), "strided": wide[:, ::2]}


LAYOUTS = ["C", "fortran", "strided"]


def like(A, values):
    """`values` in an array of A's layout."""
    out = np.zeros((4, 6))[:, ::2] if not (A.flags.c_contiguous or A.flags.f_contiguous) \
        else np.zeros_like(A)
    out[...] = values
    return out


def central(f, A, c, V, dc, h=1e-6):
    """Central differences of f along (V, dc), in arrays of A's layout."""
    return (f(like(A, A + h * V), c + h * dc) - f(like(A, A - h * V), c - h * dc)) / (2 * h)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_jvp_and_vjp_keep_the_arguments_layout(layout):
    A = arrays()[layout]
    V = np.random.default_rng(4).standard_normal(A.shape)
    c = 0.7
    assert A.flags.c_contiguous == (layout == "C")
    expected = through_ravel(like(A, A), c)
    fd = central(through_ravel, A, c, V, 0.3)
    value, tangent = ad.jvp(kernel, (A, c), (V, 0.3))
    assert value == pytest.approx(expected, rel=1e-12)
    assert tangent == pytest.approx(fd, rel=1e-7)
    out, pullback = ad.vjp(kernel, A, c)
    gA, gc = pullback(1.0)
    assert out == pytest.approx(expected, rel=1e-12)
    assert np.sum(gA * V) + 0.3 * gc == pytest.approx(fd, rel=1e-7)
    assert ad.check_grad(kernel, A, c) < 1e-6


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_jacobian_keeps_the_arguments_layout(layout, mode):
    A = arrays()[layout]
    V = np.random.default_rng(5).standard_normal(A.shape)
    J = ad.jacobian(array_kernel, argnums=0, mode=mode)(A, 0.7)
    fd = np.array([central(lambda X, c, i=i, j=j: scaled_through_ravel(X, c)[i, j],
                           A, 0.7, V, 0.0) for i in range(4) for j in range(3)])
    np.testing.assert_allclose(np.tensordot(J, V, 2).ravel(), fd, rtol=1e-7, atol=1e-9)
