"""Plain-NumPy gradient descent, the spec's `multivariate_argmin` written again without hpcad:
the references of tests/gradbench/test_particle.py and test_saddle.py."""
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
