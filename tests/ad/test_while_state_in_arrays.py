"""Reverse mode of a while loop that carries no scalar (its state lives in arrays, as in an
Euler integration until a crossing) against central differences, on both backends."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import BACKENDS


@ad.kernel
def fall(v0, g):
    x = np.zeros(2)
    x[1] = 1.0
    v = np.zeros(2)
    v[0] = v0
    while x[1] + 0.1 * v[1] > 0.0:
        for k in range(2):
            x[k] = x[k] + 0.1 * v[k]
        v[1] = v[1] - 0.1 * g * (1.0 + x[0] * x[0])
    return x[0] * x[0] + x[1]


def fall_py(v0, g):
    x, v = np.array([0.0, 1.0]), np.array([v0, 0.0])
    while x[1] + 0.1 * v[1] > 0.0:
        x = x + 0.1 * v
        v[1] = v[1] - 0.1 * g * (1.0 + x[0] * x[0])
    return x[0] * x[0] + x[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_reverse_of_a_while_loop_without_carried_scalars(backend):
    v0, g = 0.75, 9.8
    got = ad.grad(fall, argnums=(0, 1), backend=backend)(v0, g)
    eps = 1e-7
    expected = ((fall_py(v0 + eps, g) - fall_py(v0 - eps, g)) / (2 * eps),
                (fall_py(v0, g + eps) - fall_py(v0, g - eps)) / (2 * eps))
    assert np.allclose(got, expected, rtol=1e-6)
