"""HAND-WRITTEN reverse-mode adjoint of the 1-D explicit heat benchmark (benchmarks/heat.py),
storing the whole trajectory (one state per step, preallocated and reused)."""
import numba
import numpy as np


@numba.njit(cache=True, error_model="numpy")
def heat_forward_store(u, alpha, nsteps, trajectory):
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(n):
            trajectory[t, i] = u[i]
        for i in range(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@numba.njit(cache=True, error_model="numpy")
def heat_reverse(u, du, alpha, nsteps, trajectory):
    n = u.shape[0]
    for i in range(n):
        du[i] += 2.0 * u[i]
    dtmp = np.zeros(n)
    dalpha = 0.0
    for t in range(nsteps - 1, -1, -1):
        for i in range(1, n - 1):
            dtmp[i] = du[i]
            du[i] = 0.0
        for i in range(1, n - 1):
            g = dtmp[i]
            dalpha += g * (trajectory[t, i - 1] - 2.0 * trajectory[t, i] + trajectory[t, i + 1])
            du[i - 1] += alpha * g
            du[i] += (1.0 - 2.0 * alpha) * g
            du[i + 1] += alpha * g
    return dalpha


class HeatAdjoint:
    """loss, dalpha = adj(u, du, alpha, nsteps): u is overwritten, du receives d loss / d u0."""

    def __init__(self):
        self.trajectory = np.empty((0, 0))

    def __call__(self, u, du, alpha, nsteps):
        if self.trajectory.shape != (nsteps, u.shape[0]):
            self.trajectory = np.empty((nsteps, u.shape[0]))
        loss = heat_forward_store(u, alpha, nsteps, self.trajectory)
        return loss, heat_reverse(u, du, alpha, nsteps, self.trajectory)
