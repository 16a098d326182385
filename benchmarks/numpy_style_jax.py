"""The kernels of hpcad/kernels/numpy_style.py written in jax.numpy (functional updates with
`.at[...]`, the same loss), for the benchmark's `jax.grad` timings and as an independent
check of hpcad's gradients.

    jax_version(name)              -> (jax function, argnums of the table)
    jax_grad(name, args)           -> jitted gradient callable(*args), blocking until ready
    compare_gradients(name, ...)   -> largest relative difference of hpcad's gradient and jax's

`python -m benchmarks.numpy_style_jax` compares every kernel (needs jax, the bench extra).
"""
from __future__ import annotations

import argparse
import copy
import functools

import numpy as np

from hpcad.kernels.numpy_style import KERNELS

try:
    import jax
    import jax.numpy as jnp
except ImportError:      # jax is in the bench extra only; jax_version says so when asked
    jax = jnp = None


def jacobi_1d(A, B, tsteps):
    for _ in range(tsteps):
        B = B.at[1:-1].set(0.33333 * (A[:-2] + A[1:-1] + A[2:]))
        A = A.at[1:-1].set(0.33333 * (B[:-2] + B[1:-1] + B[2:]))
    return jnp.sum(A * A)


def jacobi_2d(A, B, tsteps):
    for _ in range(tsteps):
        B = B.at[1:-1, 1:-1].set(0.2 * (A[1:-1, 1:-1] + A[1:-1, :-2] + A[1:-1, 2:]
                                        + A[2:, 1:-1] + A[:-2, 1:-1]))
        A = A.at[1:-1, 1:-1].set(0.2 * (B[1:-1, 1:-1] + B[1:-1, :-2] + B[1:-1, 2:]
                                        + B[2:, 1:-1] + B[:-2, 1:-1]))
    return jnp.sum(A * A)


def heat_1d_inplace(u, alpha, nsteps):
    for _ in range(nsteps):
        u = u.at[1:-1].add(alpha * (u[:-2] - 2.0 * u[1:-1] + u[2:]))
    return jnp.sum(u ** 2)


def _heat_3d_step(A):
    """The new interior of PolyBench's heat-3d from buffer A."""
    c = A[1:-1, 1:-1, 1:-1]
    return (0.125 * (A[2:, 1:-1, 1:-1] - 2.0 * c + A[:-2, 1:-1, 1:-1])
            + 0.125 * (A[1:-1, 2:, 1:-1] - 2.0 * c + A[1:-1, :-2, 1:-1])
            + 0.125 * (A[1:-1, 1:-1, 2:] - 2.0 * c + A[1:-1, 1:-1, :-2]) + c)


def heat_3d(A, B, tsteps):
    for _ in range(tsteps):
        B = B.at[1:-1, 1:-1, 1:-1].set(_heat_3d_step(A))
        A = A.at[1:-1, 1:-1, 1:-1].set(_heat_3d_step(B))
    return jnp.sum(A * A)


def fdtd_2d(ex, ey, hz, fict):
    for t in range(fict.shape[0]):
        ey = ey.at[0, :].set(fict[t])
        ey = ey.at[1:, :].add(-0.5 * (hz[1:, :] - hz[:-1, :]))
        ex = ex.at[:, 1:].add(-0.5 * (hz[:, 1:] - hz[:, :-1]))
        hz = hz.at[:-1, :-1].add(-0.7 * (ex[:-1, 1:] - ex[:-1, :-1]
                                         + ey[1:, :-1] - ey[:-1, :-1]))
    return jnp.sum(hz * hz) + 0.5 * jnp.sum(ex * ey)


def horizontal_diffusion(in_field, coeff):
    ni, nj, nk = coeff.shape
    lap = 4.0 * in_field[1:ni + 3, 1:nj + 3, :] - (
        in_field[2:ni + 4, 1:nj + 3, :] + in_field[0:ni + 2, 1:nj + 3, :]
        + in_field[1:ni + 3, 2:nj + 4, :] + in_field[1:ni + 3, 0:nj + 2, :])
    flx = lap[1:, 1:nj + 1, :] - lap[:-1, 1:nj + 1, :]
    gradx = in_field[2:ni + 3, 2:nj + 2, :] - in_field[1:ni + 2, 2:nj + 2, :]
    flx = jnp.where(flx * gradx > 0.0, 0.0, flx)
    fly = lap[1:ni + 1, 1:, :] - lap[1:ni + 1, :-1, :]
    grady = in_field[2:ni + 2, 2:nj + 3, :] - in_field[2:ni + 2, 1:nj + 2, :]
    fly = jnp.where(fly * grady > 0.0, 0.0, fly)
    out = in_field[2:ni + 2, 2:nj + 2, :] - coeff * (
        flx[1:, :, :] - flx[:-1, :, :] + fly[:, 1:, :] - fly[:, :-1, :])
    return jnp.sum(out * out)


def vertical_advection(wcon, u, utens, dtr):
    nk = u.shape[2]
    a = -0.25 * wcon[:, :, :-1]
    c = 0.25 * wcon[:, :, 1:]
    b = dtr - a - c
    d = dtr * u + utens
    cp = [c[:, :, 0] / b[:, :, 0]]
    dp = [d[:, :, 0] / b[:, :, 0]]
    for k in range(1, nk):
        m = b[:, :, k] - a[:, :, k] * cp[k - 1]
        cp.append(c[:, :, k] / m)
        dp.append((d[:, :, k] - a[:, :, k] * dp[k - 1]) / m)
    x = [dp[nk - 1]]
    for k in range(nk - 2, -1, -1):
        x.insert(0, dp[k] - cp[k] * x[0])
    return jnp.sum((jnp.stack(x, axis=2) - u) ** 2)


def laplace_2d(u, nsweeps):
    for _ in range(nsweeps):
        u = u.at[1:-1, 1:-1].set(0.25 * (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2]
                                         + u[1:-1, 2:]))
    r = u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4.0 * u[1:-1, 1:-1]
    return jnp.sum(r * r)


def burgers_1d(u, nu, dt, dx, nsteps):
    for _ in range(nsteps):
        c = u[1:-1]
        back = c - u[:-2]
        fwd = u[2:] - c
        u = u.at[1:-1].set(c - dt / dx * jnp.where(c > 0.0, c * back, c * fwd)
                           + nu * dt / dx ** 2 * (fwd - back))
    return jnp.sum(u ** 2)


def conv2d(image, weights):
    kh, kw = weights.shape
    oh = image.shape[0] - kh + 1
    ow = image.shape[1] - kw + 1
    out = jnp.zeros((oh, ow))
    for di in range(kh):
        for dj in range(kw):
            out = out + weights[di, dj] * image[di:di + oh, dj:dj + ow]
    return jnp.sum(jnp.tanh(out) ** 2)


def gemm(alpha, beta, C, A, B):
    C = alpha * A @ B + beta * C
    return jnp.sum(C * C)


def atax(A, x):
    y = A.T @ (A @ x)
    return jnp.dot(y, y)


def bicg(A, p, r):
    q = A @ p
    s = r @ A
    return jnp.dot(q, q) + jnp.sum(jnp.sin(s))


def conjugate_gradient(A, b, x, niters):
    r = b - A @ x
    p = r
    rs = jnp.dot(r, r)
    for _ in range(niters):
        Ap = A @ p
        alpha = rs / jnp.dot(p, Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = jnp.dot(r, r)
        p = r + (rs_new / rs) * p
        rs = rs_new
    return jnp.sum(x * x)


def power_iteration(A, v, niters):
    for _ in range(niters):
        w = A @ v
        v = w / jnp.linalg.norm(w)
    return v @ A @ v


def softmax(x, w):
    e = jnp.exp(x - jnp.max(x, axis=1, keepdims=True))
    return jnp.sum(w * e / jnp.sum(e, axis=1, keepdims=True))


def mlp(x, W1, b1, W2, b2, t):
    h = jnp.maximum(x @ W1 + b1, 0.0)
    z = h @ W2 + b2
    e = jnp.exp(z - jnp.max(z))
    p = e / jnp.sum(e, axis=1, keepdims=True)
    return -jnp.sum(t * jnp.log(p))


def logistic_regression(X, y, w, b, lam):
    z = X @ w + b
    return jnp.mean(jnp.log(1.0 + jnp.exp(-y * z))) + 0.5 * lam * jnp.dot(w, w)


def gaussian_loglik(x, mu, log_sigma):
    z = (x - mu) / jnp.exp(log_sigma)
    return jnp.sum(-0.5 * z * z - log_sigma) - 0.5 * x.size * jnp.log(2.0 * jnp.pi)


def huber(pred, target, delta):
    r = pred - target
    c = jnp.clip(r, -delta, delta)
    return jnp.sum(c * (r - 0.5 * c))


def nbody(pos, vel, mass, dt, softening, nsteps):
    for _ in range(nsteps):
        sep = [pos[None, :, k] - pos[:, None, k] for k in range(3)]
        inv_r3 = (sep[0] ** 2 + sep[1] ** 2 + sep[2] ** 2 + softening ** 2) ** -1.5
        acc = jnp.stack([(d * inv_r3) @ mass for d in sep], axis=1)
        vel = vel + dt * acc
        pos = pos + dt * vel
    return 0.5 * jnp.sum(mass * jnp.sum(vel ** 2, axis=1)) + jnp.sum(pos ** 2)


def arc_distance(theta_1, phi_1, theta_2, phi_2):
    temp = (jnp.sin((theta_2 - theta_1) / 2) ** 2
            + jnp.cos(theta_1) * jnp.cos(theta_2) * jnp.sin((phi_2 - phi_1) / 2) ** 2)
    return jnp.sum(2 * jnp.arctan2(jnp.sqrt(temp), jnp.sqrt(1 - temp)))


JAX_KERNELS = {f.__name__: f for f in (
    jacobi_1d, jacobi_2d, heat_1d_inplace, heat_3d, fdtd_2d, horizontal_diffusion,
    vertical_advection, laplace_2d, burgers_1d, conv2d, gemm, atax, bicg, conjugate_gradient,
    power_iteration, softmax, mlp, logistic_regression, gaussian_loglik, huber, nbody,
    arc_distance)}


def jax_version(name: str):
    """-> (the jax.numpy version of kernel `name`, taking NumPy arrays too; the table's
    argnums). float64 is enabled."""
    if jax is None:
        raise RuntimeError("jax is not installed: install the bench extra "
                           "(pip install -e '.[bench]') to compare with jax.grad")
    jax.config.update("jax_enable_x64", True)
    fn = JAX_KERNELS[name]

    @functools.wraps(fn)
    def on_jax_arrays(*args):
        return fn(*(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args))
    return on_jax_arrays, KERNELS[name].argnums


def jax_grad(name: str, args: tuple):
    """jax.jit(jax.grad) of kernel `name` for arguments like `args` (their Python ints are
    static: step counts); the callable blocks until the gradient is computed."""
    fn, argnums = jax_version(name)
    static = tuple(k for k, a in enumerate(args) if isinstance(a, int))
    g = jax.jit(jax.grad(fn, argnums=argnums), static_argnums=static)
    return lambda *a: jax.block_until_ready(g(*a))


def compare_gradients(name: str, n: int | None = None, seed: int = 0,
                      backend: str = "numba") -> float:
    """Largest relative difference (max norm, per argument) between hpcad.grad of the table's
    function and jax.grad of its jax.numpy version, at size n (default: the test size)."""
    import hpcad as ad
    spec = KERNELS[name]
    args = spec.make_inputs(spec.test_size if n is None else n, seed)
    fn, argnums = jax_version(name)
    expected = jax.grad(fn, argnums=argnums)(*copy.deepcopy(args))
    got = ad.grad(ad.kernel(spec.function), argnums=argnums, backend=backend)(*args)
    worst = 0.0
    for a, b in zip(got, expected, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-300)
        worst = max(worst, float(np.max(np.abs(a - b), initial=0.0)) / scale)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numba", choices=("numba", "interp"))
    parser.add_argument("--names", default=",".join(KERNELS))
    options = parser.parse_args()
    for name in options.names.split(","):
        try:
            print(f"{name:22s} {compare_gradients(name, backend=options.backend):.1e}")
        except Exception as error:      # report every kernel, then go on to the next
            print(f"{name:22s} {type(error).__name__}: {str(error).splitlines()[0]}")


if __name__ == "__main__":
    main()
