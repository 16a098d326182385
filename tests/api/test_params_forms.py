"""`params=` on jacobian, hvp and grad_and_hvp as on grad (names or positions; without MPI a
kernel's derivatives are already complete, so they change nothing): the results match
central finite differences, and a name that is not an argument is refused as grad refuses
it. Under MPI: tests/mpi/test_replication_types.py."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST


@ad.kernel
def loss(theta, u, c):
    s = 0.0
    for i in range(u.shape[0]):
        s += np.sin(theta[0] * u[i]) + theta[1] * u[i] * u[i] * c
    return s + theta[0] * theta[1]


def _fd_grad(theta, u, c, h=1e-6):
    out = np.empty(2)
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        out[j] = (loss.py_func(theta + e, u, c) - loss.py_func(theta - e, u, c)) / (2 * h)
    return out


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_params_on_jacobian_and_hvp_match_finite_differences(backend):
    theta, u, c, v = np.array([0.4, -0.7]), np.linspace(-1.0, 1.0, 5), 0.3, np.array([1.0, 2.0])
    for params in (("theta",), (0,), "theta"):
        for mode in ("rev", "fwd"):
            jac = ad.jacobian(loss, mode=mode, backend=backend, params=params)(theta, u, c)
            np.testing.assert_allclose(jac, _fd_grad(theta, u, c), rtol=1e-7)
        hv = ad.hvp(loss, backend=backend, params=params)(theta, u, c, v)
        h = 1e-5
        fd = (_fd_grad(theta + h * v, u, c) - _fd_grad(theta - h * v, u, c)) / (2 * h)
        np.testing.assert_allclose(hv, fd, rtol=1e-5, atol=1e-7)
        value, g, hv2 = ad.grad_and_hvp(loss, backend=backend, params=params)(theta, u, c, v)
        np.testing.assert_allclose(g, _fd_grad(theta, u, c), rtol=1e-7)
        np.testing.assert_allclose(hv2, hv, rtol=1e-14)


@pytest.mark.parametrize("make, extra", [
    (lambda: ad.jacobian(loss, params=("gamma",)), ()),
    (lambda: ad.hvp(loss, params=("gamma",)), (np.ones(2),)),
    (lambda: ad.grad(loss, params=("gamma",)), ()),
], ids=["jacobian", "hvp", "grad"])
def test_params_naming_no_argument_are_refused_alike(make, extra):
    args = (np.array([0.4, -0.7]), np.ones(3), 0.3)
    with pytest.raises(ad.ArgumentError, match=r"params=\('gamma',\): 'gamma' is not an "
                                               r"argument of kernel 'loss'"):
        make()(*args, *extra)
