"""Lennard-Jones particles: the forces on `n` particles in 3-D from all the others (no
cut-off) and the total potential energy, serial and with a numba.prange over the particles.
Each particle sums over all the others, so an iteration writes only its own row of the forces
(the pair's energy is split half and half between its two particles)."""
import numba
import numpy as np

import hpcad as ad


@ad.kernel
def lj_forces(x, f, eps, sigma):
    """Forces on the particles at `x` (n, 3) written into `f` (n, 3); returns the energy."""
    n = x.shape[0]
    s2 = sigma * sigma
    e = 0.0
    for i in range(n):
        fx = 0.0
        fy = 0.0
        fz = 0.0
        ei = 0.0
        for j in range(n):
            if j != i:
                dx = x[i, 0] - x[j, 0]
                dy = x[i, 1] - x[j, 1]
                dz = x[i, 2] - x[j, 2]
                r2 = dx * dx + dy * dy + dz * dz
                q = s2 / r2
                q6 = q * q * q
                ei += 2.0 * eps * (q6 * q6 - q6)
                c = 24.0 * eps * (2.0 * q6 * q6 - q6) / r2
                fx += c * dx
                fy += c * dy
                fz += c * dz
        f[i, 0] = fx
        f[i, 1] = fy
        f[i, 2] = fz
        e += ei
    return e


@ad.kernel
def lj_forces_prange(x, f, eps, sigma):
    """`lj_forces` with the loop over particles a numba.prange."""
    n = x.shape[0]
    s2 = sigma * sigma
    e = 0.0
    for i in numba.prange(n):
        fx = 0.0
        fy = 0.0
        fz = 0.0
        ei = 0.0
        for j in range(n):
            if j != i:
                dx = x[i, 0] - x[j, 0]
                dy = x[i, 1] - x[j, 1]
                dz = x[i, 2] - x[j, 2]
                r2 = dx * dx + dy * dy + dz * dz
                q = s2 / r2
                q6 = q * q * q
                ei += 2.0 * eps * (q6 * q6 - q6)
                c = 24.0 * eps * (2.0 * q6 * q6 - q6) / r2
                fx += c * dx
                fy += c * dy
                fz += c * dz
        f[i, 0] = fx
        f[i, 1] = fy
        f[i, 2] = fz
        e += ei
    return e


def lattice(n: int, spacing: float = 1.2, jitter: float = 0.05, seed: int = 0) -> np.ndarray:
    """`n` particles on a jittered cubic lattice (no two closer than spacing - 2 jitter)."""
    side = int(np.ceil(n ** (1.0 / 3.0)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    rng = np.random.default_rng(seed)
    return spacing * grid[:n].astype(float) + rng.uniform(-jitter, jitter, (n, 3))
