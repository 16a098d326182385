"""An array a kernel writes, passed again as another argument (`smooth(u, u, alpha)` for a
kernel writing its second argument): the call computes an in-place update, while
derivatives take the arguments as distinct buffers, so they differentiate another function.
Every derivative refuses that call, on its first call and on a later (fast-path) one; the
same array passed twice and only read stays allowed, with the right gradient."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import BACKENDS


@ad.kernel
def smooth(u, out, alpha):
    for i in range(1, u.shape[0] - 1):
        out[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
    s = 0.0
    for i in range(u.shape[0]):
        s += out[i] * out[i]
    return s


@ad.kernel
def dot(x, y):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * y[i] * y[i]
    return s


U = np.linspace(0.0, 1.0, 8) ** 2
OVERLAP = "'out' and 'u' of kernel 'smooth' overlap in memory and the kernel writes 'out'"


def _calls(backend):
    return {
        "grad": lambda u, out: ad.grad(smooth, argnums=2, backend=backend)(u, out, 0.3),
        "value_and_grad": lambda u, out: ad.value_and_grad(smooth, argnums=(0, 2),
                                                           backend=backend)(u, out, 0.3),
        "jvp": lambda u, out: ad.jvp(smooth, (u, out, 0.3), (None, None, 1.0),
                                     backend=backend),
        "grad_and_hvp": lambda u, out: ad.grad_and_hvp(smooth, argnums=2,
                                                       backend=backend)(u, out, 0.3, 1.0),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("call", ["grad", "value_and_grad", "jvp", "grad_and_hvp"])
def test_a_written_array_passed_as_another_argument_is_refused(call, backend):
    run = _calls(backend)[call]
    run(U.copy(), np.zeros_like(U))          # distinct arrays: fine (and a fast path next)
    for out in (U, U[::-1]):                 # the same memory, or an overlapping view of it
        u = U.copy()
        with pytest.raises(ad.ArgumentError, match=OVERLAP):
            run(u, u if out is U else u[::-1])
        assert np.array_equal(u, U)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_same_array_passed_twice_and_only_read_is_differentiated(backend):
    x = np.array([0.5, -1.0, 2.0])
    for _ in range(2):   # the full path, then the fast one
        g = ad.grad(dot, argnums=(0, 1), backend=backend)(x, x)
        np.testing.assert_allclose(g[0], x * x, rtol=1e-14)
        np.testing.assert_allclose(g[1], 2 * x * x, rtol=1e-14)
