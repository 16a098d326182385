"""`a += expr` on an array name inside a loop updates `a` in place (NumPy's semantics), so the
loop does not carry `a` as a new value: its derivatives are those of the in-place update,
checked against central finite differences on both backends."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import BACKENDS, relative_error


def shifted_sum(image, weights):
    out = np.zeros((image.shape[0] - 2, image.shape[1] - 2))
    for di in range(3):
        for dj in range(3):
            out += weights[di, dj] * image[di:di + out.shape[0], dj:dj + out.shape[1]]
    s = 0.0
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            s += out[i, j] * out[i, j]
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_array_augmented_in_a_loop_differentiates(backend):
    rng = np.random.default_rng(0)
    image, weights = rng.random((5, 6)), rng.standard_normal((3, 3))
    dimage, dweights = ad.grad(ad.kernel(shifted_sum), argnums=(0, 1),
                               backend=backend)(image, weights)
    v, w = rng.standard_normal(image.shape), rng.standard_normal(weights.shape)
    h = 1e-6
    fd = (shifted_sum(image + h * v, weights + h * w)
          - shifted_sum(image - h * v, weights - h * w)) / (2 * h)
    assert relative_error(np.vdot(dimage, v) + np.vdot(dweights, w), fd) < 1e-7
