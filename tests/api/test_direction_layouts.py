"""A tangent given to `jvp`, or a direction given to `hvp`, is copied before the derivative
runs, so any array of the argument's shape is a valid one: Fortran-ordered, strided,
reversed or read-only (`np.broadcast_to`). Each is checked against the analytic derivative;
they were refused as shadows ("must be C-contiguous like 'tangent A'", "is read-only")."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.errors import ArgumentError
from tests.ad.harness import BACKENDS

backends = pytest.mark.parametrize("backend", BACKENDS)


@ad.kernel
def weighted_squares(A, c):
    s = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            s += c * A[i, j] ** 2 * (i + 2 * j + 1)
    return s


def weights(shape):
    i, j = np.indices(shape)
    return (i + 2 * j + 1).astype(float)


def layouts(values):
    """The same values in a Fortran-ordered, a reversed strided and a read-only array."""
    wide = np.zeros((values.shape[0], 2 * values.shape[1]))
    wide[:, ::2] = values[:, ::-1]
    return {"fortran": np.asfortranarray(values), "strided": wide[:, ::2][:, ::-1],
            "read-only": np.broadcast_to(values, values.shape)}


@backends
@pytest.mark.parametrize("layout", ["fortran", "strided", "read-only"])
@pytest.mark.parametrize("primal_order", ["C", "F"])
def test_jvp_takes_a_tangent_of_any_layout(backend, layout, primal_order):
    rng = np.random.default_rng(3)
    A = np.asarray(rng.standard_normal((4, 5)), order=primal_order)
    t = rng.standard_normal((4, 5))
    W = weights(A.shape)
    _, dot = ad.jvp(weighted_squares, (A, 0.7), (layouts(t)[layout], 0.0), backend=backend)
    assert dot == pytest.approx(np.sum(2 * 0.7 * A * W * t), rel=1e-12)


@backends
@pytest.mark.parametrize("layout", ["fortran", "strided", "read-only"])
def test_hvp_takes_a_direction_of_any_layout(backend, layout):
    rng = np.random.default_rng(4)
    A = rng.standard_normal((3, 4))
    v = rng.standard_normal((3, 4))
    hv = ad.hvp(weighted_squares, argnums=0, backend=backend)(A, 0.7, layouts(v)[layout])
    assert np.allclose(hv, 2 * 0.7 * weights(A.shape) * v, rtol=1e-12)


def test_a_tangent_of_another_shape_is_refused_naming_the_argument():
    A = np.ones((3, 4))
    with pytest.raises(ArgumentError, match=r"tangent for 'A' has shape \(4, 3\), expected "
                                            r"\(3, 4\)"):
        ad.jvp(weighted_squares, (A, 0.7), (np.ones((4, 3)), 0.0), backend="interp")
    with pytest.raises(ArgumentError, match=r"direction for 'A' has shape \(12,\)"):
        ad.hvp(weighted_squares, backend="interp")(A, 0.7, np.ones(12))
