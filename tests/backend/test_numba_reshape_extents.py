"""Reshapes with an inferred extent (-1) in a function that has a parallel loop: numba's
parallel array analysis takes the tuple passed to reshape as the result's shape, -1
included, and then gave a slice of `t.reshape((-1,))` the length 1 (a wrong loss, and a
loop over the slice's true length writing where numba's bounds said it could not). The
generated code passes every extent that may be negative through helpers.inferred_extent.
Each reshape form here (a literal -1, a -1 among other extents, a -1 known only at run
time) is checked on numba against plain Python and the interpreter, and its gradient
against central differences."""
import numpy as np
import pytest

import hpcad as ad


def reshapes(u, w, m):
    n = u.shape[0]
    s = 0.0
    for i in ad.prange(n):
        s += w[i] * u[i]
    t = np.zeros((n, 3, 2))
    for i in range(n):
        for j in range(3):
            for k in range(2):
                t[i, j, k] = u[i] * (j - k + 1)
    flat = t[2:, :, :].reshape(-1)
    for i in range(1, flat.shape[0]):
        flat[i] = flat[i] + 0.5 * np.tanh(flat[i - 1])
    rows = t.reshape(-1, 3)[1:]          # (2n - 1, 3)
    for i in range(rows.shape[0]):
        s += rows[i, 0] * rows[i, 2]
    cols = t.reshape(2, m)[:, 1:]        # m == -1 at run time: (2, 3n - 1)
    for j in range(cols.shape[1]):
        s += cols[0, j] * cols[1, j]
    return s + np.sum(t * t)


KERNEL = {b: ad.kernel(backend=b, parallel=True)(reshapes) for b in ("interp", "numba")}


def args():
    rng = np.random.default_rng(7)
    return rng.standard_normal(6), rng.standard_normal(6), -1


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_reshape_extents_beside_a_parallel_loop(backend):
    u, w, m = args()
    ref = reshapes(u.copy(), w.copy(), m)
    assert KERNEL[backend](u.copy(), w.copy(), m) == pytest.approx(ref, rel=1e-13)
    grad = ad.grad(KERNEL[backend], argnums=0)(u.copy(), w.copy(), m)
    fd = np.empty_like(u)
    for i in range(u.shape[0]):
        up, dn = u.copy(), u.copy()
        up[i] += 1e-6
        dn[i] -= 1e-6
        fd[i] = (reshapes(up, w.copy(), m) - reshapes(dn, w.copy(), m)) / 2e-6
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
