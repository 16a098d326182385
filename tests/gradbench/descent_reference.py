"""Plain-NumPy gradient descent, the spec's `multivariate_argmin` written again without hpcad:
the references of saddle and particle (tests/gradbench/test_saddle.py, test_particle.py,
evals.py)."""
import numpy as np


def argmin(cost, gradient, x):
    """x moved to the argmin of cost from x, with the analytic `gradient`."""
    x = np.array(x, dtype=np.float64)
    fx, gx, eta, i = cost(x), gradient(x), 1e-5, 0
    while np.linalg.norm(gx) > 1e-5:
        if i == 10:
            eta, i = 2.0 * eta, 0
            continue
        trial = x - eta * gx
        if np.linalg.norm(x - trial) <= 1e-5:
            break
        f_trial = cost(trial)
        if f_trial < fx:
            x, fx, gx, i = trial, f_trial, gradient(trial), i + 1
        else:
            eta, i = eta / 2.0, 0
    return x


def saddle_reference(start):
    """x and y of the saddle point, by NumPy descent with the analytic gradients of
    f(x, y) = |x|^2 - |y|^2 (the inner argmax does not depend on x: d/dx max_y f = 2x)."""
    def f(x, y):
        return x @ x - y @ y

    def max_over_y(x):
        return f(x, argmin(lambda y: -f(x, y), lambda y: 2.0 * y, start))

    x = argmin(max_over_y, lambda x: 2.0 * x, start)
    y = argmin(lambda y: -f(x, y), lambda y: 2.0 * y, start)
    return np.concatenate([x, y])


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


def particle_reference(w0):
    w = argmin(lambda wv: miss_and_derivative(wv[0])[0],
               lambda wv: np.array([miss_and_derivative(wv[0])[1]]), [w0])
    return float(w[0])
