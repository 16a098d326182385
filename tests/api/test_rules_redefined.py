"""Custom rules given again (defvjp/defjvp) after a kernel calling the custom kernel was
differentiated: the caller's derivatives, fast call paths included, and a kernel taking a
derivative of that caller inside it, use the new rules (they kept the old ones, silently).
The rules below are wrong on purpose, so that which one ran shows: hpcad uses what they
say (README)."""
import numpy as np
import pytest

import hpcad as ad


@ad.custom_vjp
@ad.kernel
def square(x):
    return x * x


@ad.kernel
def square_fwd(x):
    return x * x, x


@ad.kernel
def bwd_2(x, r, g):
    return 2.0 * r * g


@ad.kernel
def bwd_5(x, r, g):
    return 5.0 * r * g


@ad.kernel
def jvp_3(x, dx):
    return x * x, 3.0 * x * dx


@ad.kernel
def jvp_7(x, dx):
    return x * x, 7.0 * x * dx


@ad.kernel
def total(u):
    s = 0.0
    for i in range(u.shape[0]):
        s += square(u[i])
    return s


@ad.kernel
def first_partial(u):
    return ad.grad(total)(u)[0]


U = np.linspace(0.1, 1.0, 4)


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_callers_take_the_new_rules(backend):
    square.defvjp(square_fwd, bwd_2)
    square.defjvp(jvp_3)
    g = ad.grad(total, backend=backend)
    try:
        for factor, bwd, jvp in ((2.0, bwd_2, jvp_3), (5.0, bwd_5, jvp_7),
                                 (2.0, bwd_2, jvp_3)):
            square.defvjp(square_fwd, bwd)
            square.defjvp(jvp)
            tangent = 3.0 if factor == 2.0 else 7.0
            np.testing.assert_allclose(g(U), factor * U, rtol=1e-12)     # a kept call
            np.testing.assert_allclose(g(U), factor * U, rtol=1e-12)     # its fast path
            np.testing.assert_allclose(ad.vjp(total, U, backend=backend)[1](1.0)[0],
                                       factor * U, rtol=1e-12)
            _, dot = ad.jvp(total, (U,), (np.ones(4),), backend=backend)
            assert dot == pytest.approx(tangent * U.sum(), rel=1e-12)
            assert first_partial(U) == pytest.approx(factor * U[0], rel=1e-12)
    finally:
        square.defvjp(square_fwd, bwd_2)
        square.defjvp(jvp_3)
