"""Benchmark: parallel adjoints against serial ones. For 1-D heat, 2-D Jacobi and a
Lennard-Jones force loop, written once with `range` and once with numba.prange: the serial
primal and gradient, and the parallel primal and gradient at 1 and 2 threads. Primals are the
kernels' own source under plain numba.njit. Target: (parallel grad / parallel primal) /
(serial grad / serial primal) <= 1.2 at every thread count."""
from __future__ import annotations

import numba
import numpy as np

import hpcad as ad
from benchmarks.common import autodiff_setups, median_time, plain_numba
from hpcad.kernels import particles, stencils

SIZES = {"heat n=2e5 x50": ("heat", (200_000, 50)),
         "jacobi 500^2 x20": ("jacobi", (500, 20)),
         "lennard-jones n=1000": ("lj", (1000,))}
THREADS = (1, 2)
TARGET = 1.2


def _heat(size):
    n, steps = size
    u = np.sin(np.linspace(0.0, 3.0, n)) + 0.1
    return ((stencils.heat, stencils.heat_prange), (u, 0.2, steps),
            (ad.Duplicated, ad.Active, ad.Const))


def _jacobi(size):
    n, steps = size
    x = np.linspace(0.0, 1.0, n)
    u = np.sin(3.0 * x)[:, None] * np.cos(2.0 * x)[None, :]
    return ((stencils.jacobi, stencils.jacobi_prange), (u, u.copy(), steps),
            (ad.Duplicated, ad.Duplicated, ad.Const))


def _lj(size):
    x = particles.lattice(size[0])
    return ((particles.lj_forces, particles.lj_forces_prange), (x, np.zeros_like(x), 1.0, 1.0),
            (ad.Duplicated, ad.Duplicated, ad.Active, ad.Active))


CASES = {"heat": _heat, "jacobi": _jacobi, "lj": _lj}


def _timings(kernel, parallel: bool, args, activity) -> tuple[float, float]:
    """Median seconds of the primal (plain numba) and of the gradient (hpcad, numba)."""
    primal = plain_numba(kernel, parallel=parallel)
    rev = ad.autodiff(kernel, activity=activity)
    copies, flat = autodiff_setups(args, activity)
    return median_time(lambda *a: primal(*a), copies), median_time(lambda *a: rev(*a), flat)


def run(spec) -> dict:
    name, size = spec
    (serial, parallel), args, activity = CASES[name](size)
    top = numba.config.NUMBA_NUM_THREADS
    sp, sg = _timings(serial, False, args, activity)
    row = {"serial_primal_s": sp, "serial_grad_s": sg, "serial_ratio": sg / sp, "threads": {}}
    for t in [t for t in THREADS if t <= top]:
        numba.set_num_threads(t)
        pp, pg = _timings(parallel, True, args, activity)
        row["threads"][t] = {"primal_s": pp, "grad_s": pg, "ratio": pg / pp,
                             "quotient": (pg / pp) / (sg / sp)}
    numba.set_num_threads(top)
    row["threading_layer"] = numba.threading_layer()
    return row


HEADER = ("case", "threads", "serial primal ms", "serial grad ms", "serial grad/primal",
          "parallel primal ms", "parallel grad ms", "parallel grad/primal",
          f"quotient (target <= {TARGET})")


def parallel_adjoint_lines(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        for t, x in r["threads"].items():
            cells = (r["name"], str(t), f"{1e3 * r['serial_primal_s']:.2f}",
                     f"{1e3 * r['serial_grad_s']:.2f}", f"{r['serial_ratio']:.2f}",
                     f"{1e3 * x['primal_s']:.2f}", f"{1e3 * x['grad_s']:.2f}",
                     f"{x['ratio']:.2f}", f"{x['quotient']:.2f}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines
