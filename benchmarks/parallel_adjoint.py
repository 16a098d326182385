"""Benchmark: parallel adjoints against serial ones. For 1-D heat, 2-D Jacobi and a
Lennard-Jones force loop, written once with `range` and once with numba.prange: the serial
primal and gradient, and the parallel primal and gradient at 1 and 2 threads. Primals are the
kernels' own source under plain numba.njit. Target: (parallel grad / parallel primal) /
(serial grad / serial primal) <= 1.2 at every thread count. All six (serial primal and
gradient, parallel ones at 1 and 2 threads) run interleaved, one round after another in a
rotated order, so that a slow spell on a shared machine falls on all of a round; the table
gives medians, the median and quartiles of the per-round quotient and of the parallel
primal (the spread), the quotient by CPU time (robust to waiting for a core; at two
threads it counts a spinning worker too), the load average before and after, and the
parallel regions per time step of the primal and of the gradient's reverse sweep."""
from __future__ import annotations

import os
import time

import numba
import numpy as np

import hpcad as ad
from benchmarks.common import REPEATS, autodiff_setups, plain_numba
from hpcad.cli import default_activity
from hpcad.kernels import particles, stencils
from hpcad.passes.regions import regions_per_step

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


ROUNDS = max(8 * REPEATS, 41)


def _variants(kernels, args, activity, threads) -> dict:
    """{name: (fn, setup, threads)}: the serial primal and gradient (at one thread), the
    parallel ones at each of `threads`."""
    copies, flat = autodiff_setups(args, activity)
    out = {}
    for label, kernel, parallel in (("serial", kernels[0], False), ("parallel", kernels[1], True)):
        primal = plain_numba(kernel, parallel=parallel)
        rev = ad.autodiff(kernel, activity=activity)
        for t in threads if parallel else (1,):
            key = f"{label}@{t}" if parallel else label
            out[f"{key}_primal"] = (lambda *a, f=primal: f(*a), copies, t)
            out[f"{key}_grad"] = (lambda *a, f=rev: f(*a), flat, t)
    return out


def _time_once(fn, setup, threads) -> tuple[float, float]:
    """Wall seconds and CPU seconds (all the process's threads) of one call."""
    args = setup()
    numba.set_num_threads(threads)
    t0, c0 = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - t0, time.process_time() - c0


def _interleaved(variants: dict) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Wall and CPU seconds of each variant over ROUNDS rounds, each round running every
    variant once, in an order rotated from round to round: a slow spell on the shared
    machine falls on all the variants of a round, serial and parallel, not on one
    variant's repeats."""
    names = list(variants)
    times = {n: [] for n in names}
    for n in names:
        _time_once(*variants[n])
    for r in range(ROUNDS):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            times[n].append(_time_once(*variants[n]))
    wall = {n: np.array([w for w, _ in t]) for n, t in times.items()}
    return wall, {n: np.array([c for _, c in t]) for n, t in times.items()}


def _quartiles(x: np.ndarray) -> list[float]:
    return [float(q) for q in np.percentile(x, (25, 50, 75))]


def _regions(kernels, args) -> dict:
    """Parallel regions per time step (passes/regions.py): the parallel primal's, and the
    parallel gradient's reverse sweep's."""
    k = kernels[1]
    spec = k.specialize(k.bind(args))
    grad = spec.derivative("reverse", default_activity(spec), True)
    return {"primal": regions_per_step(spec.primal).primal,
            "reverse": regions_per_step(grad).reverse}


def run(spec) -> dict:
    name, size = spec
    kernels, args, activity = CASES[name](size)
    top = numba.config.NUMBA_NUM_THREADS
    threads = [t for t in THREADS if t <= top]
    load = os.getloadavg()[0]
    s, cpu = _interleaved(_variants(kernels, args, activity, threads))
    numba.set_num_threads(top)
    med = {n: float(np.median(x)) for n, x in s.items()}
    cpu_med = {n: float(np.median(x)) for n, x in cpu.items()}
    row = {"rounds": ROUNDS, "regions_per_step": _regions(kernels, args),
           "serial_primal_s": med["serial_primal"], "serial_grad_s": med["serial_grad"],
           "serial_ratio": med["serial_grad"] / med["serial_primal"],
           "load_average": [load, os.getloadavg()[0]], "threads": {}}
    for t in threads:
        primal, grad = f"parallel@{t}_primal", f"parallel@{t}_grad"
        per_round = (s[grad] / s[primal]) / (s["serial_grad"] / s["serial_primal"])
        ratio = med[grad] / med[primal]
        row["threads"][t] = {"primal_s": med[primal], "grad_s": med[grad], "ratio": ratio,
                             "quotient": ratio / row["serial_ratio"],
                             "per_round_quotient": _quartiles(per_round),
                             # CPU time: what the work costs, not how long the thread
                             # waited for a core (a worker that spins counts, though)
                             "cpu_quotient": (cpu_med[grad] / cpu_med[primal])
                             / (cpu_med["serial_grad"] / cpu_med["serial_primal"]),
                             "cpu_s": {n: cpu_med[n] for n in (primal, grad, "serial_primal",
                                                               "serial_grad")},
                             "spread_s": {n: _quartiles(x) for n, x in s.items()}}
    row["threading_layer"] = numba.threading_layer()
    return row


HEADER = ("case", "threads", "regions/step primal", "regions/step reverse",
          "serial primal ms", "serial grad ms", "serial grad/primal", "parallel primal ms",
          "parallel grad ms", "parallel grad/primal", f"quotient (target <= {TARGET})",
          "per-round quotient median [q25-q75]", "parallel primal q25-q75 ms",
          "quotient by CPU time", "load")


def parallel_adjoint_lines(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        for t, x in r["threads"].items():
            q25, q50, q75 = x["per_round_quotient"]
            p25, _, p75 = x["spread_s"][f"parallel@{t}_primal"]
            cells = (r["name"], str(t), str(r["regions_per_step"]["primal"]),
                     str(r["regions_per_step"]["reverse"]),
                     f"{1e3 * r['serial_primal_s']:.2f}", f"{1e3 * r['serial_grad_s']:.2f}",
                     f"{r['serial_ratio']:.2f}", f"{1e3 * x['primal_s']:.2f}",
                     f"{1e3 * x['grad_s']:.2f}", f"{x['ratio']:.2f}", f"{x['quotient']:.2f}",
                     f"{q50:.2f} [{q25:.2f}-{q75:.2f}]", f"{1e3 * p25:.2f}-{1e3 * p75:.2f}",
                     f"{x['cpu_quotient']:.2f}",
                     "-".join(f"{a:.1f}" for a in r["load_average"]))
            lines.append("| " + " | ".join(cells) + " |")
    return lines
