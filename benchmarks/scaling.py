"""Benchmark: thread scaling of parallel (prange) kernels and their gradients: 1-D heat and
2-D Jacobi written with numba.prange, at 1, 2, ... threads (up to the machine's cores).
Parallel efficiency = t(1) / (threads * t(threads)); the gradient's efficiency is compared
with the primal's (target: >= 0.9 of it) and gradient/primal is reported per thread count."""
from __future__ import annotations

import os

import numba
import numpy as np

import hpcad as ad
from benchmarks.common import autodiff_setups, median_time, plain_numba
from hpcad.kernels.stencils import heat_prange as heat
from hpcad.kernels.stencils import jacobi_prange as jacobi

SIZES = {"heat prange n=1e6 x20": ("heat", (1_000_000, 20)),
         "jacobi prange 1000^2 x20": ("jacobi", (1000, 20))}


def _case(name, size):
    if name == "heat":
        n, steps = size
        u = np.sin(np.linspace(0.0, 3.0, n)) + 0.1
        return heat, (u, 0.2, steps), (ad.Duplicated, ad.Active, ad.Const)
    n, steps = size
    x = np.linspace(0.0, 1.0, n)
    u = np.sin(3.0 * x)[:, None] * np.cos(2.0 * x)[None, :]
    return jacobi, (u, u.copy(), steps), (ad.Duplicated, ad.Duplicated, ad.Const)


def thread_counts() -> list[int]:
    top = numba.config.NUMBA_NUM_THREADS
    counts = [1, 2, 4, 8, 16]
    return [t for t in counts if t <= top] or [1]


def run(size) -> dict:
    name, shape = size
    kernel, args, activity = _case(name, shape)
    primal = plain_numba(kernel, parallel=True)
    rev = ad.autodiff(kernel, activity=activity)
    copies, flat = autodiff_setups(args, activity)

    row = {"threading_layer": None, "threads": {}}
    for t in thread_counts():
        numba.set_num_threads(t)
        tp = median_time(lambda *a: primal(*a), copies)
        tg = median_time(lambda *a: rev(*a), flat)
        row["threads"][t] = {"primal_s": tp, "grad_s": tg, "grad_over_primal": tg / tp}
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    row["threading_layer"] = numba.threading_layer()
    base = row["threads"][1]
    for t, r in row["threads"].items():
        r["primal_efficiency"] = base["primal_s"] / (t * r["primal_s"])
        r["grad_efficiency"] = base["grad_s"] / (t * r["grad_s"])
    row["cores"] = os.cpu_count()
    return row
