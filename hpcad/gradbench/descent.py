"""Gradient descent as GradBench's particle and saddle evals define it (the `multivariate_argmin`
of their spec): kernels made for a cost kernel `cost(c, x)` and a kernel `grad_into(c, x, g)`
writing d cost / d x into g, so that the same solver serves every choice of AD mode. The
solver is itself a kernel, so a kernel calling it can be differentiated through it."""
from __future__ import annotations

import numpy as np

import hpcad as ad


def argmin_kernel(cost, grad_into, backend: str | None = None):
    """A kernel `argmin(c, x) -> cost at the minimum` moving x (in place) to the argmin of
    cost(c, .) from x: steps of eta * gradient, eta doubled after 10 accepted steps, halved
    after a rejected one; it stops when the gradient or the step is shorter than 1e-5."""
    @ad.kernel(backend=backend)
    def argmin(c, x):
        n = x.shape[0]
        g = np.zeros(n)
        trial = np.zeros(n)
        fx = cost(c, x)
        grad_into(c, x, g)
        eta = 1e-5
        i = 0
        while np.sqrt(np.sum(g * g)) > 1e-5:
            if i == 10:
                eta = 2.0 * eta
                i = 0
            else:
                for k in range(n):
                    trial[k] = x[k] - eta * g[k]
                if np.sqrt(np.sum((x - trial) ** 2)) <= 1e-5:
                    break
                f_trial = cost(c, trial)
                if f_trial < fx:
                    for k in range(n):
                        x[k] = trial[k]
                    fx = f_trial
                    grad_into(c, x, g)
                    i += 1
                else:
                    eta = eta / 2.0
                    i = 0
        return fx
    return argmin


def reverse_gradient(cost):
    """grad_into(c, x, g): g = d cost(c, x) / d x by reverse mode (ad.grad)."""
    @ad.kernel
    def grad_into(c, x, g):
        d = ad.grad(cost, argnums=1)(c, x)
        for k in range(x.shape[0]):
            g[k] = d[k]
    return grad_into


def forward_gradient(cost):
    """grad_into(c, x, g): g = d cost(c, x) / d x by forward mode, one ad.jvp along each
    coordinate direction."""
    @ad.kernel
    def grad_into(c, x, g):
        n = x.shape[0]
        e = np.zeros(n)
        for k in range(n):
            e[:] = 0.0
            e[k] = 1.0
            _, g[k] = ad.jvp(cost, (c, x), (None, e))
    return grad_into


GRADIENTS = {"r": reverse_gradient, "f": forward_gradient}
