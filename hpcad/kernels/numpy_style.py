"""Well-known array kernels written as a numba user writes them: NumPy array syntax (slices,
broadcasting, ufuncs, reductions, `@`) inside plain functions, with no decorator, so that the
same function can be given to `numba.njit`, `hpcad.kernel`, `hpcad.kernel(parallel=True)`.

Each kernel takes its sizes from its arrays and returns a scalar loss of its result. `KERNELS`
maps a name to the function, a factory `make_inputs(n, seed)` of fresh arguments (kernels may
write their arguments), the argument positions a gradient is taken with respect to, and a
test size and a benchmark size for `n`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------
# Stencils
# ---------------------------------------------------------------------------------------------


def jacobi_1d(A, B, tsteps):
    """PolyBench's 1-D Jacobi: two buffers, three-point average, `tsteps` double sweeps."""
    for t in range(tsteps):
        B[1:-1] = 0.33333 * (A[:-2] + A[1:-1] + A[2:])
        A[1:-1] = 0.33333 * (B[:-2] + B[1:-1] + B[2:])
    return np.sum(A * A)


def jacobi_2d(A, B, tsteps):
    """PolyBench's 2-D Jacobi: five-point average between two buffers."""
    for t in range(tsteps):
        B[1:-1, 1:-1] = 0.2 * (A[1:-1, 1:-1] + A[1:-1, :-2] + A[1:-1, 2:]
                               + A[2:, 1:-1] + A[:-2, 1:-1])
        A[1:-1, 1:-1] = 0.2 * (B[1:-1, 1:-1] + B[1:-1, :-2] + B[1:-1, 2:]
                               + B[2:, 1:-1] + B[:-2, 1:-1])
    return np.sum(A * A)


def heat_1d_inplace(u, alpha, nsteps):
    """Explicit 1-D heat updated in place with `+=`: NumPy evaluates the right-hand side,
    which reads the neighbours being overwritten, before storing any element."""
    for t in range(nsteps):
        u[1:-1] += alpha * (u[:-2] - 2.0 * u[1:-1] + u[2:])
    return np.sum(u ** 2)


def heat_3d(A, B, tsteps):
    """PolyBench's 3-D heat: seven-point explicit diffusion between two buffers."""
    for t in range(tsteps):
        B[1:-1, 1:-1, 1:-1] = (
            0.125 * (A[2:, 1:-1, 1:-1] - 2.0 * A[1:-1, 1:-1, 1:-1] + A[:-2, 1:-1, 1:-1])
            + 0.125 * (A[1:-1, 2:, 1:-1] - 2.0 * A[1:-1, 1:-1, 1:-1] + A[1:-1, :-2, 1:-1])
            + 0.125 * (A[1:-1, 1:-1, 2:] - 2.0 * A[1:-1, 1:-1, 1:-1] + A[1:-1, 1:-1, :-2])
            + A[1:-1, 1:-1, 1:-1])
        A[1:-1, 1:-1, 1:-1] = (
            0.125 * (B[2:, 1:-1, 1:-1] - 2.0 * B[1:-1, 1:-1, 1:-1] + B[:-2, 1:-1, 1:-1])
            + 0.125 * (B[1:-1, 2:, 1:-1] - 2.0 * B[1:-1, 1:-1, 1:-1] + B[1:-1, :-2, 1:-1])
            + 0.125 * (B[1:-1, 1:-1, 2:] - 2.0 * B[1:-1, 1:-1, 1:-1] + B[1:-1, 1:-1, :-2])
            + B[1:-1, 1:-1, 1:-1])
    return np.sum(A * A)


def fdtd_2d(ex, ey, hz, fict):
    """2-D finite-difference time domain (Yee scheme), one step per source value in `fict`."""
    for t in range(fict.shape[0]):
        ey[0, :] = fict[t]
        ey[1:, :] = ey[1:, :] - 0.5 * (hz[1:, :] - hz[:-1, :])
        ex[:, 1:] = ex[:, 1:] - 0.5 * (hz[:, 1:] - hz[:, :-1])
        hz[:-1, :-1] = hz[:-1, :-1] - 0.7 * (ex[:-1, 1:] - ex[:-1, :-1]
                                             + ey[1:, :-1] - ey[:-1, :-1])
    return np.sum(hz * hz) + 0.5 * np.sum(ex * ey)


def horizontal_diffusion(in_field, coeff):
    """Fourth-order horizontal diffusion of a weather code: a Laplacian, fluxes limited with
    `np.where` (set to zero where they would sharpen a gradient), their divergence.
    in_field has a halo of two on each horizontal side: shape (ni + 4, nj + 4, nk)."""
    ni, nj, nk = coeff.shape
    lap = 4.0 * in_field[1:ni + 3, 1:nj + 3, :] - (
        in_field[2:ni + 4, 1:nj + 3, :] + in_field[0:ni + 2, 1:nj + 3, :]
        + in_field[1:ni + 3, 2:nj + 4, :] + in_field[1:ni + 3, 0:nj + 2, :])
    flx = lap[1:, 1:nj + 1, :] - lap[:-1, 1:nj + 1, :]
    gradx = in_field[2:ni + 3, 2:nj + 2, :] - in_field[1:ni + 2, 2:nj + 2, :]
    flx = np.where(flx * gradx > 0.0, 0.0, flx)
    fly = lap[1:ni + 1, 1:, :] - lap[1:ni + 1, :-1, :]
    grady = in_field[2:ni + 2, 2:nj + 3, :] - in_field[2:ni + 2, 1:nj + 2, :]
    fly = np.where(fly * grady > 0.0, 0.0, fly)
    out = in_field[2:ni + 2, 2:nj + 2, :] - coeff * (
        flx[1:, :, :] - flx[:-1, :, :] + fly[:, 1:, :] - fly[:, :-1, :])
    return np.sum(out * out)


def vertical_advection(wcon, u, utens, dtr):
    """Implicit vertical advection: per column (i, j) a tridiagonal system along k, solved by
    the Thomas algorithm with every step vectorized over the i/j plane. wcon holds the
    vertical velocity on the nk + 1 faces; dtr is the inverse time step."""
    nk = u.shape[2]
    a = -0.25 * wcon[:, :, :-1]
    c = 0.25 * wcon[:, :, 1:]
    b = dtr - a - c
    d = dtr * u + utens
    cp = np.empty_like(u)
    dp = np.empty_like(u)
    x = np.empty_like(u)
    cp[:, :, 0] = c[:, :, 0] / b[:, :, 0]
    dp[:, :, 0] = d[:, :, 0] / b[:, :, 0]
    for k in range(1, nk):
        m = b[:, :, k] - a[:, :, k] * cp[:, :, k - 1]
        cp[:, :, k] = c[:, :, k] / m
        dp[:, :, k] = (d[:, :, k] - a[:, :, k] * dp[:, :, k - 1]) / m
    x[:, :, nk - 1] = dp[:, :, nk - 1]
    for k in range(nk - 2, -1, -1):
        x[:, :, k] = dp[:, :, k] - cp[:, :, k] * x[:, :, k + 1]
    return np.sum((x - u) ** 2)


def laplace_2d(u, nsweeps):
    """Jacobi smoothing of Laplace's equation in place (NumPy semantics: each sweep reads the
    old values), then the sum of squares of the residual."""
    for s in range(nsweeps):
        u[1:-1, 1:-1] = 0.25 * (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:])
    r = u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4.0 * u[1:-1, 1:-1]
    return np.sum(r * r)


def burgers_1d(u, nu, dt, dx, nsteps):
    """Viscous 1-D Burgers: upwind advection chosen per point with `np.where`, central
    diffusion; `un` is a copy of the previous state, `c` a view into it."""
    for s in range(nsteps):
        un = u.copy()
        c = un[1:-1]
        back = c - un[:-2]
        fwd = un[2:] - c
        u[1:-1] = (c - dt / dx * np.where(c > 0.0, c * back, c * fwd)
                   + nu * dt / dx ** 2 * (fwd - back))
    return np.sum(u ** 2)


def conv2d(image, weights):
    """Valid 2-D cross-correlation as a sum of shifted slices, then tanh and squares."""
    kh, kw = weights.shape
    oh = image.shape[0] - kh + 1
    ow = image.shape[1] - kw + 1
    out = np.zeros((oh, ow))
    for di in range(kh):
        for dj in range(kw):
            out += weights[di, dj] * image[di:di + oh, dj:dj + ow]
    return np.sum(np.tanh(out) ** 2)


# ---------------------------------------------------------------------------------------------
# Linear algebra
# ---------------------------------------------------------------------------------------------


def gemm(alpha, beta, C, A, B):
    """PolyBench's GEMM, C = alpha A B + beta C, written into C."""
    C[:] = alpha * A @ B + beta * C
    return np.sum(C * C)


def atax(A, x):
    """PolyBench's ATAX, y = A^T (A x)."""
    y = A.T @ (A @ x)
    return np.dot(y, y)


def bicg(A, p, r):
    """PolyBench's BiCG kernel: q = A p and s = r^T A."""
    q = A @ p
    s = r @ A
    return np.dot(q, q) + np.sum(np.sin(s))


def conjugate_gradient(A, b, x, niters):
    """`niters` conjugate-gradient steps on A x = b from the guess x (updated in place)."""
    r = b - A @ x
    p = r.copy()
    rs = np.dot(r, r)
    for it in range(niters):
        Ap = A @ p
        alpha = rs / np.dot(p, Ap)
        x += alpha * p
        r -= alpha * Ap
        rs_new = np.dot(r, r)
        p = r + (rs_new / rs) * p
        rs = rs_new
    return np.sum(x * x)


def power_iteration(A, v, niters):
    """`niters` normalized power-iteration steps, then the Rayleigh quotient."""
    for it in range(niters):
        w = A @ v
        v = w / np.linalg.norm(w)
    return v @ A @ v


# ---------------------------------------------------------------------------------------------
# Machine learning and statistics
# ---------------------------------------------------------------------------------------------


def softmax(x, w):
    """Row-wise softmax shifted by each row's maximum, one row at a time; weighted sum."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        e = np.exp(x[i] - x[i].max())
        out[i] = e / np.sum(e)
    return np.sum(w * out)


def mlp(x, W1, b1, W2, b2, t):
    """A two-layer perceptron: relu hidden layer, softmax output, cross-entropy to t."""
    h = np.maximum(x @ W1 + b1, 0.0)
    z = h @ W2 + b2
    e = np.exp(z - np.max(z))
    p = e / np.sum(e, axis=1).reshape((-1, 1))
    return -np.sum(t * np.log(p))


def logistic_regression(X, y, w, b, lam):
    """Mean logistic loss of labels y in {-1, 1} plus an L2 penalty."""
    z = X @ w + b
    return np.mean(np.log(1.0 + np.exp(-y * z))) + 0.5 * lam * np.dot(w, w)


def gaussian_loglik(x, mu, log_sigma):
    """Log-likelihood of the rows of x under independent normals (mu, exp(log_sigma)),
    broadcast over the rows."""
    z = (x - mu) / np.exp(log_sigma)
    return np.sum(-0.5 * z * z - log_sigma) - 0.5 * x.size * np.log(2.0 * np.pi)


def huber(pred, target, delta):
    """Huber loss written with np.clip: quadratic inside [-delta, delta], linear outside."""
    r = pred - target
    c = np.clip(r, -delta, delta)
    return np.sum(c * (r - 0.5 * c))


def nbody(pos, vel, mass, dt, softening, nsteps):
    """Softened gravitational N-body, semi-implicit Euler: pairwise separations by
    broadcasting, accelerations by matrix-vector products; loss is kinetic energy plus the
    positions' spread."""
    for s in range(nsteps):
        x = pos[:, 0]
        y = pos[:, 1]
        z = pos[:, 2]
        dx = x[None, :] - x[:, None]
        dy = y[None, :] - y[:, None]
        dz = z[None, :] - z[:, None]
        inv_r3 = (dx ** 2 + dy ** 2 + dz ** 2 + softening ** 2) ** -1.5
        vel[:, 0] += dt * ((dx * inv_r3) @ mass)
        vel[:, 1] += dt * ((dy * inv_r3) @ mass)
        vel[:, 2] += dt * ((dz * inv_r3) @ mass)
        pos += dt * vel
    return 0.5 * np.sum(mass * np.sum(vel ** 2, axis=1)) + np.sum(pos ** 2)


def arc_distance(theta_1, phi_1, theta_2, phi_2):
    """Great-circle distances between point pairs (haversine), summed."""
    temp = (np.sin((theta_2 - theta_1) / 2) ** 2
            + np.cos(theta_1) * np.cos(theta_2) * np.sin((phi_2 - phi_1) / 2) ** 2)
    distance = 2 * np.arctan2(np.sqrt(temp), np.sqrt(1 - temp))
    return np.sum(distance)


# ---------------------------------------------------------------------------------------------
# Inputs: make_inputs(n, seed) -> a fresh tuple of arguments
# ---------------------------------------------------------------------------------------------


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _two_buffers(shape, steps):
    def make(n: int, seed: int) -> tuple:
        rng = _rng(seed)
        full = tuple(n for _ in range(shape))
        return rng.random(full), rng.random(full), steps
    return make


def _heat_1d_inputs(n: int, seed: int) -> tuple:
    return _rng(seed).random(n), 0.2, 3


def _fdtd_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return (rng.random((n, n + 1)), rng.random((n, n + 1)), rng.random((n, n + 1)),
            rng.random(3))


def _hdiff_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return rng.random((n + 4, n + 5, 3)), 0.025 * rng.random((n, n + 1, 3))


def _vadv_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return (rng.uniform(-1.0, 1.0, (n, n + 1, 6)), rng.random((n, n + 1, 5)),
            rng.random((n, n + 1, 5)), 4.0)


def _laplace_inputs(n: int, seed: int) -> tuple:
    return _rng(seed).random((n, n + 1)), 3


def _burgers_inputs(n: int, seed: int) -> tuple:
    x = np.linspace(0.0, 1.0, n)
    u = np.sin(2.0 * np.pi * x) + 0.1 * _rng(seed).random(n)
    return u, 0.05, 0.01, 1.0 / n, 3


def _conv2d_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return rng.random((n + 2, n + 3)), 0.3 * rng.standard_normal((3, 3))


def _gemm_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return 1.5, 1.2, rng.random((n, n + 1)), rng.random((n, n + 2)), rng.random((n + 2, n + 1))


def _atax_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return rng.random((n + 1, n)), rng.random(n)


def _bicg_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return rng.random((n + 1, n)), rng.random(n), rng.random(n + 1)


def _spd(rng: np.random.Generator, n: int) -> np.ndarray:
    m = rng.random((n, n))
    return m @ m.T + n * np.eye(n)


def _cg_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return _spd(rng, n), rng.random(n), rng.random(n), 3


def _power_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return _spd(rng, n), rng.random(n) + 0.5, 4


def _softmax_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return rng.standard_normal((n, n + 2)), rng.random((n, n + 2))


def _mlp_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    batch, hidden, classes = n, n + 2, 3
    labels = rng.integers(0, classes, batch)
    return (rng.standard_normal((batch, n)), 0.5 * rng.standard_normal((n, hidden)),
            0.1 * rng.standard_normal(hidden), 0.5 * rng.standard_normal((hidden, classes)),
            0.1 * rng.standard_normal(classes), np.eye(classes)[labels])


def _logistic_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return (rng.standard_normal((2 * n, n)), np.where(rng.random(2 * n) > 0.5, 1.0, -1.0),
            0.3 * rng.standard_normal(n), 0.1, 0.01)


def _gaussian_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return (rng.standard_normal((n + 1, n)), 0.5 * rng.standard_normal(n),
            0.3 * rng.standard_normal(n))


def _huber_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return 2.0 * rng.standard_normal(n), rng.standard_normal(n), 0.7


def _nbody_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return (rng.standard_normal((n, 3)), 0.1 * rng.standard_normal((n, 3)),
            rng.random(n) + 0.5, 0.01, 0.1, 3)


def _arc_inputs(n: int, seed: int) -> tuple:
    rng = _rng(seed)
    return tuple(rng.uniform(-1.5, 1.5, n) for _ in range(4))


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumpyKernel:
    """A kernel of this module, how to make its arguments, and what a gradient is taken of."""
    function: Callable
    make_inputs: Callable[[int, int], tuple]
    argnums: tuple[int, ...]
    test_size: int
    bench_size: int

    @property
    def name(self) -> str:
        return self.function.__name__


KERNELS: dict[str, NumpyKernel] = {k.name: k for k in (
    NumpyKernel(jacobi_1d, _two_buffers(1, 3), (0, 1), 8, 100_000),
    NumpyKernel(jacobi_2d, _two_buffers(2, 3), (0, 1), 6, 500),
    NumpyKernel(heat_1d_inplace, _heat_1d_inputs, (0, 1), 8, 100_000),
    NumpyKernel(heat_3d, _two_buffers(3, 2), (0, 1), 5, 60),
    NumpyKernel(fdtd_2d, _fdtd_inputs, (0, 1, 2, 3), 5, 500),
    NumpyKernel(horizontal_diffusion, _hdiff_inputs, (0, 1), 3, 64),
    NumpyKernel(vertical_advection, _vadv_inputs, (0, 1, 2, 3), 3, 64),
    NumpyKernel(laplace_2d, _laplace_inputs, (0,), 6, 500),
    NumpyKernel(burgers_1d, _burgers_inputs, (0, 1), 10, 100_000),
    NumpyKernel(conv2d, _conv2d_inputs, (0, 1), 5, 256),
    NumpyKernel(gemm, _gemm_inputs, (0, 1, 2, 3, 4), 4, 256),
    NumpyKernel(atax, _atax_inputs, (0, 1), 4, 1000),
    NumpyKernel(bicg, _bicg_inputs, (0, 1, 2), 4, 1000),
    NumpyKernel(conjugate_gradient, _cg_inputs, (0, 1, 2), 5, 500),
    NumpyKernel(power_iteration, _power_inputs, (0, 1), 4, 500),
    NumpyKernel(softmax, _softmax_inputs, (0, 1), 3, 1000),
    NumpyKernel(mlp, _mlp_inputs, (1, 2, 3, 4), 4, 256),
    NumpyKernel(logistic_regression, _logistic_inputs, (2, 3), 4, 1000),
    NumpyKernel(gaussian_loglik, _gaussian_inputs, (1, 2), 4, 1000),
    NumpyKernel(huber, _huber_inputs, (0, 1), 8, 100_000),
    NumpyKernel(nbody, _nbody_inputs, (0, 1, 2), 4, 500),
    NumpyKernel(arc_distance, _arc_inputs, (0, 1, 2, 3), 8, 100_000),
)}
