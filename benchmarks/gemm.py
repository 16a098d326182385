"""Benchmark: a GEMM-like kernel in NumPy syntax (PolyBench gemm, D = alpha A B + beta C,
then the scalar sum of D * W, whose cotangent D̄ = W is a full matrix); gradient w.r.t. A,
B and C. Its matrix products lower to BLAS (linalg.matmul) in the primal and in both
derivatives, so hpcad's primal should match numba.njit's np.dot and the gradient cost
about three products. (With a rank-one cotangent, e.g. u·(D v), XLA rewrites the adjoint
products into matrix-vector products, which hpcad does not.)"""
from __future__ import annotations

import numpy as np

import hpcad as ad
from benchmarks.common import jax_available, median_time, plain_numba

SIZES = {"gemm n=500": (500,), "gemm n=1000": (1000,)}


@ad.kernel
def gemm(alpha, beta, A, B, C, W):
    D = alpha * (A @ B) + beta * C
    s = 0.0
    for i in range(D.shape[0]):
        for j in range(D.shape[1]):
            s += D[i, j] * W[i, j]
    return s


ACTIVITY = (ad.Const, ad.Const, ad.Duplicated, ad.Duplicated, ad.Duplicated, ad.Const)


def make_args(size):
    (n,) = size
    rng = np.random.default_rng(0)
    return (1.5, 0.5, rng.standard_normal((n, n)), rng.standard_normal((n, n)),
            rng.standard_normal((n, n)), rng.standard_normal((n, n)))


def _with_shadows(args, fill):
    out = list(args[:2])
    for a in args[2:5]:
        out += [a, fill(a)]
    return out + list(args[5:])


def jax_grad():
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)

    def objective(alpha, beta, A, B, C, W):
        return jnp.sum((alpha * (A @ B) + beta * C) * W)

    g = jax.jit(jax.grad(objective, argnums=(2, 3, 4)))
    return lambda *args: jax.block_until_ready(g(*args))


def run(size) -> dict:
    args = make_args(size)
    primal = plain_numba(gemm)
    row = {"numba_primal_s": median_time(lambda: primal(*args)),
           "hpcad_primal_s": median_time(lambda: gemm(*args))}
    rev = ad.autodiff(gemm, activity=ACTIVITY)
    flat = _with_shadows(args, np.zeros_like)
    row["hpcad_grad_s"] = median_time(lambda: rev(*flat))
    fwd = ad.autodiff(gemm, mode="forward", activity=ACTIVITY)
    flat_fwd = _with_shadows(args, np.ones_like)
    row["hpcad_jvp_s"] = median_time(lambda: fwd(*flat_fwd))
    if jax_available():
        g = jax_grad()
        row["jax_grad_s"] = median_time(lambda: g(*args))
    return row


def compile_probe() -> dict:
    """Run in a fresh process (see common.compile_times)."""
    import time

    from hpcad.backend.numba import STATS
    args = make_args((8,))
    t = time.perf_counter()
    primal = plain_numba(gemm)
    primal(*args)
    primal_compile = time.perf_counter() - t
    rev = ad.autodiff(gemm, activity=ACTIVITY)
    flat = _with_shadows(args, np.zeros_like)
    t = time.perf_counter()
    rev(*flat)
    first = time.perf_counter() - t
    return {"numba_primal_compile_s": primal_compile, "hpcad_grad_first_call_s": first,
            "hpcad_grad_run_s": median_time(lambda: rev(*flat)), "compiled": STATS["compiled"]}
