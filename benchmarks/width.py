"""Benchmark: batched derivatives. One width-8 call (8 directions through one forward sweep,
or 8 seeds through one taped forward sweep and one reverse sweep) against 8 width-1 calls,
forward and reverse, on the heat (benchmarks/heat.py) and GMM (benchmarks/gmm.py) cases.
Target: width-8 reverse <= 0.5x the time of 8 separate reverse calls."""
from __future__ import annotations

import numpy as np

import hpcad as ad
from benchmarks import gmm, heat
from benchmarks.common import median_time

WIDTH = 8
SIZES = {"heat n=1e5 x200": ("heat", heat.SIZES["heat n=1e5 x200"]),
         "gmm d=10 K=25 N=1e4": ("gmm", gmm.SIZES["gmm d=10 K=25 N=1e4"])}


def _heat(size, mode: str, width: int):
    """(call, setup): one width-`width` heat derivative along random directions."""
    u0, alpha, steps = heat.make_args(size)
    rng = np.random.default_rng(0)
    lead = (width,) if width > 1 else ()
    shadow = rng.standard_normal(lead + u0.shape)
    scalar = rng.standard_normal(width) if width > 1 else 1.0
    if mode == "forward":
        df = ad.autodiff(heat.heat, mode="forward", activity=(ad.Duplicated, ad.Dual, ad.Const),
                         width=width)
        return (lambda u, s: df(u, s, alpha, scalar, steps),
                lambda: (u0.copy(), shadow.copy()))
    df = ad.autodiff(heat.heat, activity=(ad.Duplicated, ad.Active, ad.Const), width=width)
    return (lambda u, s: df(u, s, alpha, steps, seed=scalar),
            lambda: (u0.copy(), np.zeros_like(shadow)))


def _gmm(size, mode: str, width: int):
    args = gmm.make_args(size)
    rng = np.random.default_rng(0)
    lead = (width,) if width > 1 else ()
    tangents = [rng.standard_normal(lead + a.shape) for a in args[:3]]
    df = ad.autodiff(gmm.gmm_objective, mode=mode, activity=gmm.ACTIVITY, width=width)

    def setup():
        shadows = [t.copy() if mode == "forward" else np.zeros_like(t) for t in tangents]
        return (args[0], shadows[0], args[1], shadows[1], args[2], shadows[2], *args[3:])
    if mode == "forward":
        return lambda *flat: df(*flat), setup
    seed = np.ones(width) if width > 1 else 1.0
    return lambda *flat: df(*flat, seed=seed), setup


def run(spec) -> dict:
    case, size = spec
    make = _heat if case == "heat" else _gmm
    out = {"width": WIDTH}
    for mode in ("forward", "reverse"):
        one, one_setup = make(size, mode, 1)
        wide, wide_setup = make(size, mode, WIDTH)
        single_s = median_time(one, one_setup)
        batched_s = median_time(wide, wide_setup)
        out[mode] = {"separate_s": WIDTH * single_s, "batched_s": batched_s,
                     "batched_over_separate": batched_s / (WIDTH * single_s)}
    return out


HEADER = ("case", "mode", "8 x width-1 ms", "width-8 ms", "width-8 / (8 x width-1)")


def width_lines(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        for mode in ("forward", "reverse"):
            x = r[mode]
            lines.append(f"| {r['name']} | {mode} | {1e3 * x['separate_s']:.2f} | "
                         f"{1e3 * x['batched_s']:.2f} | {x['batched_over_separate']:.2f} |")
    return lines
