"""Benchmark: batched derivatives. One width-8 call (8 directions through one forward sweep,
or 8 seeds through one taped forward sweep and one reverse sweep) against 8 width-1 calls,
forward and reverse, on the heat (benchmarks/heat.py) and GMM (benchmarks/gmm.py) cases.
Target: width-8 reverse <= 0.5x the time of 8 separate reverse calls.

The cost of W forward directions (W = 1, 4, 15, 28) on a memory-bound kernel and on bundle
adjustment's residuals (hpcad/gradbench/evals/ba.py): time of one width-W call / (W x one
width-1 call), with tangents lanes last in memory and (W, *shape) C-contiguous, both read
in place (the latter by the code's variant for any strides, backend/numba/lane_layout.py,
its lane loops blocked where they may be: backend/numba/vector.py write_blocked).
Target: <= 1 (W directions cost at most W single-direction sweeps)."""
from __future__ import annotations

import numpy as np

import hpcad as ad
from benchmarks import gmm, heat
from benchmarks.common import median_time

WIDTH = 8
COST_WIDTHS = (1, 4, 15, 28)
SIZES = {"heat n=1e5 x200": ("heat", heat.SIZES["heat n=1e5 x200"]),
         "gmm d=10 K=25 N=1e4": ("gmm", gmm.SIZES["gmm d=10 K=25 N=1e4"]),
         "fwd cost stream n=2e6": ("cost", ("stream", (2_000_000,))),
         "fwd cost ba n=49 m=7776 p=31843": ("cost", ("ba", (49, 7776, 31843)))}


@ad.kernel
def stream(x, y, out, a):
    """Memory-bound: three arrays streamed once, a few flops per element."""
    for i in range(x.shape[0]):
        out[i] = a * x[i] * x[i] + y[i]


def _placed(t, width: int, lanes_last: bool):
    """t (W, *shape) (width 1: shape), its memory lanes last or (W, *shape) C-contiguous."""
    if width == 1 or t.ndim == 1 or not lanes_last:
        return t
    out = np.moveaxis(np.empty(t.shape[1:] + t.shape[:1], t.dtype), -1, 0)
    out[...] = t
    return out


def _stream_case(size, width: int, lanes_last: bool):
    """(call, setup): a width-`width` forward derivative of `stream`."""
    (n,) = size
    rng = np.random.default_rng(0)
    lead = (width,) if width > 1 else ()
    x, y, out = rng.standard_normal(n), rng.standard_normal(n), np.ones(n)
    dx, dy, dout = (_placed(rng.standard_normal(lead + (n,)), width, lanes_last) for _ in range(3))
    da = rng.standard_normal(width) if width > 1 else 1.0
    df = ad.autodiff(stream, mode="forward", width=width,
                     activity=(ad.Duplicated, ad.Duplicated, ad.Duplicated, ad.Dual))
    args = (x, dx, y, dy, out, dout, 2.0, da)
    return df, lambda: args


def _ba_case(size, width: int, lanes_last: bool):
    from hpcad.gradbench.evals import ba
    n, m, p = size
    rng = np.random.default_rng(0)
    lead = (width,) if width > 1 else ()
    cams = 0.1 * rng.standard_normal((n, 11)) + np.array(
        [0.1, 0.2, 0.3, 0, 0, -5, 400, 5, 5, 0.05, 0.001])
    X, w = rng.standard_normal((m, 3)), 0.5 + 0.1 * rng.standard_normal(p)
    obs = np.stack([np.arange(p) % n, np.arange(p) % m], axis=1).astype(np.int64)
    feats = rng.standard_normal((p, 2))
    tangents = [_placed(rng.standard_normal(lead + shape), width, lanes_last)
                for shape in ((n, 11), (m, 3), (p,), (p, 2), (p,))]
    df = ad.autodiff(ba.residuals, mode="forward", activity=ba.ACTIVITY, width=width)
    args = (cams, tangents[0], X, tangents[1], w, tangents[2], obs, feats, np.empty((p, 2)),
            tangents[3], np.empty(p), tangents[4])
    return df, lambda: args


def _cost(kernel: str, size) -> dict:
    make = _stream_case if kernel == "stream" else _ba_case
    one = median_time(*make(size, 1, True))
    rows = []
    for width in COST_WIDTHS[1:]:
        row = {"width": width, "one_s": one}
        for layout, last in (("lanes_last", True), ("lanes_first", False)):
            try:
                wide = median_time(*make(size, width, last))
            except ad.ArgumentError as e:     # a version that takes only (W, *shape) C
                row[layout] = {"error": str(e).split(";")[0][:60]}
                continue
            row[layout] = {"wide_s": wide, "ratio": wide / (width * one)}
        rows.append(row)
    return {"kind": "cost", "rows": rows}


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
    if case == "cost":
        return _cost(*size)
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


COST_HEADER = ("case", "W", "width-1 ms", "width-W ms lanes last", "ratio lanes last",
               "width-W ms (W, ...) C", "ratio (W, ...) C")


def cost_lines(rows: list[dict]) -> list[str]:
    """The W-direction cost table: ratio = width-W time / (W x width-1 time)."""
    lines = ["| " + " | ".join(COST_HEADER) + " |", "|" + "---|" * len(COST_HEADER)]
    for r in rows:
        for x in r["rows"]:
            cells = [r["name"], str(x["width"]), f"{1e3 * x['one_s']:.2f}"]
            for layout in ("lanes_last", "lanes_first"):
                y = x[layout]
                cells += [y["error"], "-"] if "error" in y else \
                    [f"{1e3 * y['wide_s']:.2f}", f"{y['ratio']:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def width_lines(rows: list[dict]) -> list[str]:
    cost = [r for r in rows if r.get("kind") == "cost"]
    rows = [r for r in rows if r.get("kind") != "cost"]
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        for mode in ("forward", "reverse"):
            x = r[mode]
            lines.append(f"| {r['name']} | {mode} | {1e3 * x['separate_s']:.2f} | "
                         f"{1e3 * x['batched_s']:.2f} | {x['batched_over_separate']:.2f} |")
    return lines + ([""] + cost_lines(cost) if cost else [])
