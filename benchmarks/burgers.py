"""Benchmark: 1-D viscous Burgers (explicit, central differences), gradient w.r.t. the initial
state, the advection and the diffusion numbers. Sizes: cache-resident (n = 200000, 100
steps) and memory-bound (n = 10^7, 5 steps). Store-all, segments and the default plan are
compared in the checkpointing benchmark; this case reports gradient / primal."""
from __future__ import annotations

import numba
import numpy as np

import hpcad as ad
from benchmarks.common import median_time
from hpcad.kernels.stencils import burgers

SIZES = {"burgers n=2e5 x100": (200_000, 100), "burgers n=1e7 x5": (10_000_000, 5)}


def make_args(size):
    n, steps = size
    return np.sin(np.linspace(0.0, 3.0, n)) + 0.1, 0.05, 0.2, steps


def run(size) -> dict:
    u0, c, d, steps = make_args(size)
    def copy():
        return (u0.copy(),)
    primal = numba.njit(burgers.py_func, error_model="numpy")
    row = {"numba_primal_s": median_time(lambda u: primal(u, c, d, steps), copy),
           "hpcad_primal_s": median_time(lambda u: burgers(u, c, d, steps), copy)}
    rev = ad.autodiff(burgers, activity=(ad.Duplicated, ad.Active, ad.Active, ad.Const))
    du = np.zeros_like(u0)
    row["hpcad_grad_s"] = median_time(lambda u: rev(u, du, c, d, steps), copy)
    fwd = ad.autodiff(burgers, mode="forward",
                      activity=(ad.Duplicated, ad.Dual, ad.Dual, ad.Const))
    udot = np.ones_like(u0)
    row["hpcad_jvp_s"] = median_time(lambda u: fwd(u, udot, c, 1.0, d, 0.0, steps), copy)
    return row


def compile_probe() -> dict:
    """Run in a fresh process (see common.compile_times)."""
    import time

    from hpcad.backend.numba import STATS
    u0, c, d, steps = make_args((1000, 4))
    t = time.perf_counter()
    numba.njit(burgers.py_func, error_model="numpy").compile(
        tuple(numba.typeof(a) for a in (u0, c, d, steps)))
    primal_compile = time.perf_counter() - t
    rev = ad.autodiff(burgers, activity=(ad.Duplicated, ad.Active, ad.Active, ad.Const))
    du = np.zeros_like(u0)
    t = time.perf_counter()
    rev(u0.copy(), du, c, d, steps)
    first = time.perf_counter() - t
    return {"numba_primal_compile_s": primal_compile, "hpcad_grad_first_call_s": first,
            "hpcad_grad_run_s": median_time(lambda u: rev(u, du, c, d, steps),
                                            lambda: (u0.copy(),)),
            "compiled": STATS["compiled"]}
