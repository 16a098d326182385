"""Ocean-model kernels written as numba users write them (3-D stencils over 4-D fields with
`[..., tau]`, loops over tuples of offsets, a tridiagonal solve per column in a numba.njit
helper that compares shapes), for tests/frontend/test_ocean_kernels.py. They live outside
the test module so that pytest does not rewrite their `assert`s (the plain functions are
the primal's reference)."""
import numba
import numpy as np

import hpcad as ad

SLOPE_C = 1e-3


@numba.njit
def taper(s):
    return 0.5 * (1.0 + np.tanh((SLOPE_C - np.abs(s)) / SLOPE_C))


@ad.kernel
def east_slopes(temp, salt, drdT, dzw, tau):
    """Tapered slopes on the east faces from both vertical neighbours: offsets as tuples,
    the top level's missing neighbour skipped by `continue`, fields read as [..., tau];
    their weighted sum."""
    t = temp[..., tau]
    s = salt[..., tau]
    nx, ny, nz = t.shape
    out = np.zeros((nx, ny, nz))
    for i in range(nx - 1):
        for j in range(ny):
            for k in range(nz - 1):
                acc = 0.0
                for kr in (0, 1):
                    if k == 0 and kr == 0:
                        continue
                    for ip in (0, 1):
                        kk = k + kr - 1
                        drodx = drdT[i + ip, j, k] * (t[i + 1, j, k] - t[i, j, k]) + s[i, j, k]
                        drodz = drdT[i + ip, j, k] * (t[i + ip, j, kk + 1] - t[i + ip, j, kk])
                        sx = -drodx / (min(0.0, drodz) - 1e-20)
                        acc += dzw[kk] * max(0.2, taper(sx)) * sx
                out[i, j, k] = acc
    return np.sum(out * drdT)


@numba.njit
def solve_tridiag(a, b, c, d):
    assert a.shape == b.shape and a.shape == c.shape and a.shape == d.shape
    n = a.shape[0]
    for i in range(1, n):
        w = a[i] / b[i - 1]
        b[i] += -w * c[i - 1]
        d[i] += -w * d[i - 1]
    out = np.empty_like(a)
    out[-1] = d[-1] / b[-1]
    for i in range(n - 2, -1, -1):
        out[i] = (d[i] - c[i] * out[i + 1]) / b[i]
    return out


@ad.kernel
def implicit_mixing(tke, kappa, kbot, dt):
    """One implicit vertical-diffusion step per water column, from its bottom level kbot-1
    up (land columns, kbot 0, are skipped); the new level in tke[..., 1]."""
    nx, ny, nz = kappa.shape
    a = np.empty(nz)
    b = np.empty(nz)
    c = np.empty(nz)
    d = np.empty(nz)
    tke[..., 1] = 0.0
    for i in range(nx):
        for j in range(ny):
            ks = kbot[i, j] - 1
            if ks < 0:
                continue
            a[...] = -dt * kappa[i, j, :]
            c[...] = -dt * kappa[i, j, :]
            b[...] = 1.0 + 2.0 * dt * kappa[i, j, :]
            a[ks] = 0.0
            c[-1] = 0.0
            d[ks:] = tke[i, j, ks:, 0]
            tke[i, j, ks:, 1] = solve_tridiag(a[ks:], b[ks:], c[ks:], d[ks:])
    return np.sum(tke[..., 1] * tke[..., 1])


@ad.kernel
def vertical_sums(drdT, dTdz, dzw):
    """NumPy style: both vertical neighbours' weighted tapered slopes summed with slices
    whose end is `-1 + kr or None` (the axis's end where kr is 1, also written with
    conditional expressions), a start chosen by a conditional expression, and a local def."""
    def damp(sx):
        return 0.5 * (1.0 + np.tanh((SLOPE_C - np.abs(sx)) / SLOPE_C))

    sumz = np.zeros_like(drdT)
    for kr in range(2):
        ki = 0 if kr == 1 else 1
        s = drdT[:, ki:] * dTdz[:, : -1 + kr or None] * drdT[:, : None if kr else -1] * 1e-3
        sumz[:, ki:] += dzw[np.newaxis, : -1 if kr == 0 else None] * np.maximum(0.2, damp(s)) * s
    return np.sum(sumz * sumz[:, ::-1])
