"""Benchmark: a 2-D step of two coupled fields, each updated from a 5-point stencil of
itself and a difference of the other, two buffers per field swapped each step
(hpcad/kernels/stencils3d.py); gradient of the final states' squared norms w.r.t. all four
arrays. Sizes: 500 x 500 x 50 steps (cache-resident) and 3000 x 3000 x 3 (memory-bound)."""
from __future__ import annotations

import numba
import numpy as np

import hpcad as ad
from benchmarks.common import median_time
from benchmarks.jacobi import probe_compile
from hpcad.kernels.stencils3d import coupled

SIZES = {"coupled 500^2 x50": (500, 50), "coupled 3000^2 x3": (3000, 3)}
ACTIVITY = (ad.Duplicated,) * 4 + (ad.Const,)


def make_args(size):
    n, steps = size
    x = np.linspace(0.0, 1.0, n)
    u = np.sin(3.0 * x)[:, None] * np.cos(2.0 * x)[None, :]
    v = np.cos(2.0 * x)[:, None] * np.sin(x)[None, :]
    return u, v, u.copy(), v.copy(), steps


def run(size) -> dict:
    *arrays, steps = make_args(size)
    def copies():
        return tuple(a.copy() for a in arrays)
    primal = numba.njit(coupled.py_func, error_model="numpy")
    row = {"numba_primal_s": median_time(lambda *a: primal(*a, steps), copies),
           "hpcad_primal_s": median_time(lambda *a: coupled(*a, steps), copies)}
    rev = ad.autodiff(coupled, activity=ACTIVITY)
    shadows = [np.zeros_like(a) for a in arrays]
    row["hpcad_grad_s"] = median_time(
        lambda *a: rev(*[x for p in zip(a, shadows, strict=True) for x in p], steps), copies)
    fwd = ad.autodiff(coupled, mode="forward", activity=ACTIVITY)
    dots = [np.ones_like(arrays[0])] + [np.zeros_like(a) for a in arrays[1:]]
    row["hpcad_jvp_s"] = median_time(
        lambda *a: fwd(*[x for p in zip(a, dots, strict=True) for x in p], steps), copies)
    return row


def compile_probe() -> dict:
    """Run in a fresh process (see common.compile_times)."""
    return probe_compile(coupled, make_args((20, 3)), ACTIVITY)
