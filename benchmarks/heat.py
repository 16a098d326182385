"""Benchmark: 1-D explicit heat, gradient w.r.t. the initial state and the diffusivity.
Sizes: cache-resident (n = 100000, 200 steps) and memory-bound (n = 10^7, 10 steps)."""
from __future__ import annotations

import time

import numba
import numpy as np

import hpcad as ad
from benchmarks.common import jax_available, median_time
from benchmarks.reference.heat_adjoint import HeatAdjoint
from hpcad.kernels.stencils import heat

SIZES = {"heat n=1e5 x200": (100_000, 200), "heat n=1e7 x10": (10_000_000, 10)}


def make_args(size):
    n, steps = size
    return np.sin(np.linspace(0.0, 3.0, n)) + 0.1, 0.2, steps


def jax_grad():
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)

    def loss(u, alpha, nsteps):
        def step(_, u):
            return u.at[1:-1].set(u[1:-1] + alpha * (u[:-2] - 2.0 * u[1:-1] + u[2:]))
        u = jax.lax.fori_loop(0, nsteps, step, u)
        return jnp.sum(u * u)

    g = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)
    return lambda u, alpha, nsteps: jax.block_until_ready(g(u, alpha, nsteps))


def run(size) -> dict:
    u0, alpha, steps = make_args(size)
    def copy():
        return (u0.copy(),)
    primal = numba.njit(heat.py_func, error_model="numpy")
    row = {"numba_primal_s": median_time(lambda u: primal(u, alpha, steps), copy),
           "hpcad_primal_s": median_time(lambda u: heat(u, alpha, steps), copy)}
    rev = ad.autodiff(heat, activity=(ad.Duplicated, ad.Active, ad.Const))
    du = np.zeros_like(u0)
    row["hpcad_grad_s"] = median_time(lambda u: rev(u, du, alpha, steps), copy)
    fwd = ad.autodiff(heat, mode="forward", activity=(ad.Duplicated, ad.Dual, ad.Const))
    udot = np.ones_like(u0)
    row["hpcad_jvp_s"] = median_time(lambda u: fwd(u, udot, alpha, 1.0, steps), copy)
    reference = HeatAdjoint()
    row["handwritten_grad_s"] = median_time(lambda u: reference(u, du, alpha, steps), copy)
    if jax_available():
        g = jax_grad()
        row["jax_grad_s"] = median_time(lambda: g(u0, alpha, steps))
    return row


def compile_probe() -> dict:
    """Run in a fresh process (see common.compile_times): cold compile of the numba primal
    and hpcad's first gradient call (lowering, AD, codegen, numba compile or cache load)."""
    from hpcad.backend.numba import STATS
    u0, alpha, steps = make_args((1000, 4))
    t = time.perf_counter()
    numba.njit(heat.py_func, error_model="numpy").compile(
        tuple(numba.typeof(a) for a in (u0, alpha, steps)))
    primal_compile = time.perf_counter() - t
    rev = ad.autodiff(heat, activity=(ad.Duplicated, ad.Active, ad.Const))
    du = np.zeros_like(u0)
    t = time.perf_counter()
    rev(u0.copy(), du, alpha, steps)
    first = time.perf_counter() - t
    return {"numba_primal_compile_s": primal_compile, "hpcad_grad_first_call_s": first,
            "hpcad_grad_run_s": median_time(lambda u: rev(u, du, alpha, steps),
                                            lambda: (u0.copy(),)),
            "compiled": STATS["compiled"]}
