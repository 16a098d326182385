"""GradBench eval `particle`: a charged particle from (0, 8) at velocity (0.75, 0), pushed by
the field of charges at (10, 10 - w) and (10, 0), integrated by Euler steps until it crosses
the x axis; gradient descent on w makes it cross at the origin. The force is minus the
gradient of the potential, taken inside the trajectory kernel (nested AD); `ff`, `fr`, `rf`,
`rr` take the outer (descent) and inner (force) derivatives in forward or reverse mode."""
from __future__ import annotations

import numpy as np

import hpcad as ad
from hpcad.gradbench.descent import GRADIENTS, argmin_kernel
from hpcad.gradbench.protocol import evaluation


@ad.kernel
def potential(x, w):
    """The potential at point x of the two charges, for control w."""
    a = np.sqrt((x[0] - 10.0) ** 2 + (x[1] - (10.0 - w)) ** 2)
    b = np.sqrt((x[0] - 10.0) ** 2 + x[1] ** 2)
    return 1.0 / a + 1.0 / b


@ad.kernel
def force_reverse(x, w, force):
    """force = -grad_x potential(x, w), reverse mode."""
    g = ad.grad(potential, argnums=0)(x, w)
    force[0] = -g[0]
    force[1] = -g[1]


@ad.kernel
def force_forward(x, w, force):
    """force = -grad_x potential(x, w), forward mode: one ad.jvp per coordinate."""
    e = np.zeros(2)
    for k in range(2):
        e[:] = 0.0
        e[k] = 1.0
        _, d = ad.jvp(potential, (x, w), (e, None))
        force[k] = -d


FORCES = {"r": force_reverse, "f": force_forward}


def trajectory(force):
    """A kernel `miss(c, wv) -> x0(t_f)^2`, the squared distance from the origin where the
    particle crosses the x axis for w = wv[0] (c unused: the solver's cost signature)."""
    @ad.kernel
    def miss(c, wv):
        w = wv[0]
        x = np.zeros(2)
        x[1] = 8.0
        xdot = np.zeros(2)
        xdot[0] = 0.75
        acc = np.zeros(2)
        dt = 0.1
        while x[1] + dt * xdot[1] > 0.0:
            force(x, w, acc)
            for k in range(2):
                x[k] = x[k] + dt * xdot[k]
                xdot[k] = xdot[k] + dt * acc[k]
        dt_f = -x[1] / xdot[1]
        x_f = x[0] + dt_f * xdot[0]
        return x_f * x_f
    return miss


def variant(outer: str, inner: str, backend: str | None = None):
    """The eval function `outer + inner` (e.g. "fr"): w0 -> the w found."""
    miss = trajectory(FORCES[inner])
    argmin = argmin_kernel(miss, GRADIENTS[outer](miss), backend)

    def run(w0: float) -> float:
        wv = np.array([w0])
        argmin(0.0, wv)
        return float(wv[0])
    return run


def prepare(raw) -> float:
    return float(raw["w"])


FUNCTIONS = {name: evaluation(prepare=prepare, output=float)(variant(name[0], name[1]))
             for name in ("ff", "fr", "rf", "rr")}


def warm() -> None:
    for ev in FUNCTIONS.values():
        ev.run(0.0)
