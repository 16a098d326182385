"""Benchmark: ADBench's Gaussian mixture model objective (d = 10, K = 25, N = 10000), the
loop-based kernel of examples/gmm.py; gradient w.r.t. alphas, means and icf."""
from __future__ import annotations

import numpy as np

import hpcad as ad
from benchmarks.common import jax_available, median_time, plain_numba
from hpcad.kernels.gmm import gmm_objective

SIZES = {"gmm d=10 K=25 N=1e4": (10, 25, 10_000)}


ACTIVITY = (ad.Duplicated, ad.Duplicated, ad.Duplicated, ad.Const, ad.Const, ad.Const)


def make_args(size):
    d, k, n = size
    rng = np.random.default_rng(0)
    icf = 0.1 * rng.standard_normal((k, d + d * (d - 1) // 2))
    return (rng.standard_normal(k), rng.standard_normal((k, d)), icf,
            rng.standard_normal((n, d)), 1.0, 0)


def jax_grad(d):
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp
    jax.config.update("jax_enable_x64", True)
    rows, cols = zip(*[(r, c) for c in range(d) for r in range(c + 1, d)], strict=True)
    rows, cols = np.array(rows), np.array(cols)

    def objective(alphas, means, icf, x, gamma, m):
        n = x.shape[0]
        k = alphas.shape[0]
        qdiag = jnp.exp(icf[:, :d])
        sum_qs = jnp.sum(icf[:, :d], axis=1)
        lower = jnp.zeros((k, d, d)).at[:, rows, cols].set(icf[:, d:])
        xc = x[:, None, :] - means[None, :, :]
        qx = qdiag[None] * xc + jnp.einsum("kij,nkj->nki", lower, xc)
        main = alphas[None] + sum_qs[None] - 0.5 * jnp.sum(qx * qx, axis=2)
        n_dof = d + m + 1
        frob = jnp.sum(qdiag * qdiag, axis=1) + jnp.sum(icf[:, d:] ** 2, axis=1)
        prior = jnp.sum(0.5 * gamma * gamma * frob - m * sum_qs) \
            - k * n_dof * d * (jnp.log(gamma) - 0.5 * jnp.log(2.0))
        return (-n * d * 0.5 * jnp.log(2 * jnp.pi) + jnp.sum(logsumexp(main, axis=1))
                - n * logsumexp(alphas) + prior)

    g = jax.jit(jax.grad(objective, argnums=(0, 1, 2)), static_argnums=(5,))
    return lambda *args: jax.block_until_ready(g(*args))


def run(size) -> dict:
    args = make_args(size)
    primal = plain_numba(gmm_objective)
    row = {"numba_primal_s": median_time(lambda: primal(*args)),
           "hpcad_primal_s": median_time(lambda: gmm_objective(*args))}
    rev = ad.autodiff(gmm_objective, activity=ACTIVITY)
    shadows = [np.zeros_like(a) for a in args[:3]]
    flat = [args[0], shadows[0], args[1], shadows[1], args[2], shadows[2], *args[3:]]
    row["hpcad_grad_s"] = median_time(lambda: rev(*flat))
    fwd = ad.autodiff(gmm_objective, mode="forward", activity=ACTIVITY)
    dots = [np.ones_like(a) for a in args[:3]]
    flat_fwd = [args[0], dots[0], args[1], dots[1], args[2], dots[2], *args[3:]]
    row["hpcad_jvp_s"] = median_time(lambda: fwd(*flat_fwd))
    if jax_available():
        g = jax_grad(size[0])
        row["jax_grad_s"] = median_time(lambda: g(*args))
    return row


def compile_probe() -> dict:
    """Run in a fresh process (see common.compile_times)."""
    import time

    from hpcad.backend.numba import STATS
    args = make_args((3, 4, 20))
    t = time.perf_counter()
    primal = plain_numba(gmm_objective)
    primal(*args)
    primal_compile = time.perf_counter() - t
    rev = ad.autodiff(gmm_objective, activity=ACTIVITY)
    flat = [args[0], np.zeros_like(args[0]), args[1], np.zeros_like(args[1]), args[2],
            np.zeros_like(args[2]), *args[3:]]
    t = time.perf_counter()
    rev(*flat)
    first = time.perf_counter() - t
    return {"numba_primal_compile_s": primal_compile, "hpcad_grad_first_call_s": first,
            "hpcad_grad_run_s": median_time(lambda: rev(*flat)), "compiled": STATS["compiled"]}
