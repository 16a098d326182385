"""Benchmark: 3-D 7-point heat steps with two buffers swapped each step
(hpcad/kernels/stencils3d.py); gradient of the final state's squared norm w.r.t. the
initial state. Sizes: 160^3 x 10 steps and 256^3 x 3 steps (both beyond the caches)."""
from __future__ import annotations

import numba
import numpy as np

import hpcad as ad
from benchmarks.common import median_time
from benchmarks.jacobi import probe_compile
from hpcad.kernels.stencils3d import heat3d

SIZES = {"heat3d 160^3 x10": (160, 10), "heat3d 256^3 x3": (256, 3)}
ACTIVITY = (ad.Duplicated, ad.Duplicated, ad.Const)


def make_args(size):
    n, steps = size
    x = np.linspace(0.0, 1.0, n)
    u = np.sin(3.0 * x)[:, None, None] * np.cos(2.0 * x)[None, :, None] \
        * np.cos(x)[None, None, :]
    return u, u.copy(), steps


def run(size) -> dict:
    u0, v0, steps = make_args(size)
    def copies():
        return (u0.copy(), v0.copy())
    primal = numba.njit(heat3d.py_func, error_model="numpy")
    row = {"numba_primal_s": median_time(lambda u, v: primal(u, v, steps), copies),
           "hpcad_primal_s": median_time(lambda u, v: heat3d(u, v, steps), copies)}
    rev = ad.autodiff(heat3d, activity=ACTIVITY)
    du, dv = np.zeros_like(u0), np.zeros_like(v0)
    row["hpcad_grad_s"] = median_time(lambda u, v: rev(u, du, v, dv, steps), copies)
    fwd = ad.autodiff(heat3d, mode="forward", activity=ACTIVITY)
    udot, vdot = np.ones_like(u0), np.zeros_like(v0)
    row["hpcad_jvp_s"] = median_time(lambda u, v: fwd(u, udot, v, vdot, steps), copies)
    return row


def compile_probe() -> dict:
    """Run in a fresh process (see common.compile_times)."""
    return probe_compile(heat3d, make_args((12, 3)), ACTIVITY)
