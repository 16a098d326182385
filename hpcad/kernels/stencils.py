"""Stencil time-steppers on one or two dimensions, each returning a scalar loss of its final
state: the 1-D explicit heat equation (serial, with numba.prange, and with a misfit to a
target), 2-D Jacobi sweeps with two swapped buffers (serial and prange), and 1-D viscous
Burgers. Every kernel updates its first argument (the state) in place."""
import numba
import numpy as np

import hpcad as ad


@ad.kernel
def heat(u, alpha, nsteps):
    """1-D explicit heat, `nsteps` in place; the loss is the final state's sum of squares."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def heat_misfit(u, target, alpha, nsteps):
    """1-D explicit heat; the loss is the squared misfit of the final state to `target`."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for step in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    loss = 0.0
    for i in range(n):
        misfit = u[i] - target[i]
        loss += misfit * misfit
    return loss


@ad.kernel
def heat_prange(u, alpha, nsteps):
    """`heat` with every loop a numba.prange."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in numba.prange(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in numba.prange(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in numba.prange(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def jacobi(u, v, nsteps):
    """2-D Jacobi 5-point sweeps, `v` the second buffer; the loss is the final sum of squares."""
    n, m = u.shape
    for step in range(nsteps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                v[i, j] = 0.25 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1])
        u, v = v, u
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += u[i, j] * u[i, j]
    return s


@ad.kernel
def jacobi_prange(u, v, nsteps):
    """`jacobi` with the outer loops a numba.prange."""
    n, m = u.shape
    for step in range(nsteps):
        for i in numba.prange(1, n - 1):
            for j in range(1, m - 1):
                v[i, j] = 0.25 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1])
        u, v = v, u
    s = 0.0
    for i in numba.prange(n):
        for j in range(m):
            s += u[i, j] * u[i, j]
    return s


@ad.kernel
def burgers(u, c, d, nsteps):
    """1-D viscous Burgers (explicit, central differences): advection number `c`, diffusion
    number `d`; the loss is the final state's sum of squares."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] - c * u[i] * (u[i + 1] - u[i - 1]) \
                + d * (u[i + 1] - 2.0 * u[i] + u[i - 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s
