"""GradBench's particle eval (hpcad/gradbench/evals/particle.py), every mode pair, against
plain NumPy: the Euler trajectory with the analytic force and its derivative in w carried
alongside by hand (the Hessian of the 1/r potentials), and the same descent on w; both
backends (numba in the slow tier)."""
import numpy as np
import pytest

from hpcad.gradbench.evals import particle
from tests.ad.harness import INTERP_FAST
from tests.gradbench.descent_reference import argmin


def field(x, charge):
    """(-grad p, the Jacobian of -grad p in x) of the potential 1/|x - charge|."""
    d = x - charge
    r = np.sqrt(d @ d)
    return d / r ** 3, np.eye(2) / r ** 3 - 3.0 * np.outer(d, d) / r ** 5


def miss_and_derivative(w):
    """x0(t_f)^2 and its derivative in w."""
    x, xdot = np.array([0.0, 8.0]), np.array([0.75, 0.0])
    dx, dxdot = np.zeros(2), np.zeros(2)
    dt = 0.1
    while x[1] + dt * xdot[1] > 0.0:
        f1, j1 = field(x, np.array([10.0, 10.0 - w]))
        f2, j2 = field(x, np.array([10.0, 0.0]))
        force = f1 + f2
        dforce = j1 @ dx + j2 @ dx - j1 @ np.array([0.0, -1.0])   # the charge moves with w
        x, dx = x + dt * xdot, dx + dt * dxdot
        xdot, dxdot = xdot + dt * force, dxdot + dt * dforce
    dt_f = -x[1] / xdot[1]
    d_dt_f = -dx[1] / xdot[1] + x[1] * dxdot[1] / xdot[1] ** 2
    x_f = x[0] + dt_f * xdot[0]
    dx_f = dx[0] + d_dt_f * xdot[0] + dt_f * dxdot[0]
    return x_f * x_f, 2.0 * x_f * dx_f


def reference(w0):
    w = argmin(lambda wv: miss_and_derivative(wv[0])[0],
               lambda wv: np.array([miss_and_derivative(wv[0])[1]]), [w0])
    return float(w[0])


def test_reference_derivative_matches_differences():
    eps = 1e-6
    fd = (miss_and_derivative(eps)[0] - miss_and_derivative(-eps)[0]) / (2 * eps)
    assert miss_and_derivative(0.0)[1] == pytest.approx(fd, rel=1e-6)


@pytest.mark.parametrize("backend", INTERP_FAST)
@pytest.mark.parametrize("name", ["ff", "fr", "rf", "rr"])
def test_particle_matches_numpy_descent(name, backend):
    got = particle.variant(name[0], name[1], backend)(0.0)
    assert got == pytest.approx(reference(0.0), rel=1e-9)
