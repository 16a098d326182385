"""Benchmark: 2-D Jacobi 5-point sweeps with two buffers swapped each step; gradient of the
final state's squared norm w.r.t. the initial state. Sizes: 500 x 500 x 100 steps
(cache-resident) and 4000 x 4000 x 5 steps (memory-bound)."""
from __future__ import annotations

import numba
import numpy as np

import hpcad as ad
from benchmarks.common import jax_available, median_time
from benchmarks.reference.jacobi_adjoint import JacobiAdjoint
from hpcad.kernels.stencils import jacobi

SIZES = {"jacobi 500^2 x100": (500, 100), "jacobi 4000^2 x5": (4000, 5)}


def make_args(size):
    n, steps = size
    x = np.linspace(0.0, 1.0, n)
    u = np.sin(3.0 * x)[:, None] * np.cos(2.0 * x)[None, :]
    return u, u.copy(), steps


def jax_grad():
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)

    def loss(u, v, nsteps):
        def step(_, uv):
            u, v = uv
            inner = 0.25 * (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:])
            return v.at[1:-1, 1:-1].set(inner), u
        u, v = jax.lax.fori_loop(0, nsteps, step, (u, v))
        return jnp.sum(u * u)

    g = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)
    return lambda u, v, nsteps: jax.block_until_ready(g(u, v, nsteps))


def run(size) -> dict:
    u0, v0, steps = make_args(size)
    def copies():
        return (u0.copy(), v0.copy())
    primal = numba.njit(jacobi.py_func, error_model="numpy")
    row = {"numba_primal_s": median_time(lambda u, v: primal(u, v, steps), copies),
           "hpcad_primal_s": median_time(lambda u, v: jacobi(u, v, steps), copies)}
    rev = ad.autodiff(jacobi, activity=(ad.Duplicated, ad.Duplicated, ad.Const))
    du, dv = np.zeros_like(u0), np.zeros_like(v0)
    row["hpcad_grad_s"] = median_time(lambda u, v: rev(u, du, v, dv, steps), copies)
    fwd = ad.autodiff(jacobi, mode="forward", activity=(ad.Duplicated, ad.Duplicated, ad.Const))
    udot, vdot = np.ones_like(u0), np.zeros_like(v0)
    row["hpcad_jvp_s"] = median_time(lambda u, v: fwd(u, udot, v, vdot, steps), copies)
    reference = JacobiAdjoint()
    row["handwritten_grad_s"] = median_time(lambda u, v: reference(u, du, v, dv, steps), copies)
    if jax_available():
        g = jax_grad()
        row["jax_grad_s"] = median_time(lambda: g(u0, v0, steps))
    return row


def compile_probe() -> dict:
    """Run in a fresh process (see common.compile_times)."""
    return probe_compile(jacobi, make_args((50, 3)),
                         (ad.Duplicated, ad.Duplicated, ad.Const))


def probe_compile(kernel, args, activity) -> dict:
    import time

    from hpcad.backend.numba import STATS
    t = time.perf_counter()
    numba.njit(kernel.py_func, error_model="numpy").compile(
        tuple(numba.typeof(a) for a in args))
    primal_compile = time.perf_counter() - t
    rev = ad.autodiff(kernel, activity=activity)
    flat = []
    for a, act in zip(args, activity, strict=True):
        flat.append(a)
        if act is ad.Duplicated:
            flat.append(np.zeros_like(a))
    def copies():
        return tuple(x.copy() if isinstance(x, np.ndarray) else x for x in flat)
    t = time.perf_counter()
    rev(*copies())
    first = time.perf_counter() - t
    return {"numba_primal_compile_s": primal_compile, "hpcad_grad_first_call_s": first,
            "hpcad_grad_run_s": median_time(rev, copies), "compiled": STATS["compiled"]}
