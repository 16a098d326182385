"""PNG plots of a benchmark run, written by the runner next to its JSON: the derivative/primal
time ratios per case (ratios.png) and the thread and MPI rank scaling of primal and gradient
(scaling.png); the checkpointing case draws its memory-vs-time curve itself. Each function
returns the matplotlib Figure it saved, or None when matplotlib is not installed."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# (row key, label) of the ratios drawn per case; a case lacking one leaves a gap
RATIOS = (("grad_over_primal", "gradient / primal"), ("jvp_over_primal", "JVP / primal"),
          ("grad_over_handwritten", "gradient / hand-written adjoint"))


def pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def ratios(rows: list[dict], path: Path):
    """Grouped bars: one group per case, one bar per ratio in RATIOS."""
    plt = pyplot()
    if plt is None or not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.9 * len(rows)), layout="constrained")
    y = np.arange(len(rows))[::-1] * (len(RATIOS) + 1.0)
    for k, (key, label) in enumerate(RATIOS):
        values = [r.get(key, np.nan) for r in rows]
        ax.barh(y + len(RATIOS) - 1 - k, values, height=0.9, label=label)
    ax.set_yticks(y + (len(RATIOS) - 1) / 2, [r["name"] for r in rows])
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xlabel("time ratio (lower is better)")
    ax.set_title("hpcad derivative cost per case")
    fig.legend(loc="outside lower center", ncol=len(RATIOS), fontsize=8, frameon=False)
    fig.savefig(path, dpi=100)
    return fig


def scaling(threads: list[dict], ranks: list[dict], path: Path):
    """Parallel efficiency of primal (dashed) and gradient (solid): left, against threads
    (strong scaling, prange kernels); right, against MPI ranks (weak scaling)."""
    plt = pyplot()
    panels = [(rows, key, title) for rows, key, title in
              ((threads, "threads", "threads (strong scaling)"),
               (ranks, "ranks", "MPI ranks (weak scaling)")) if rows]
    if plt is None or not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False,
                             layout="constrained")
    for ax, (rows, key, title) in zip(axes[0], panels, strict=True):
        for r in rows:
            counts = sorted(r[key], key=int)    # JSON makes the counts strings
            x = [int(c) for c in counts]
            line, = ax.plot(x, [r[key][c]["grad_efficiency"] for c in counts], "o-",
                            label=f"{r['name']} gradient")
            ax.plot(x, [r[key][c]["primal_efficiency"] for c in counts], "s--",
                    color=line.get_color(), label=f"{r['name']} primal")
        ticks = sorted({int(c) for r in rows for c in r[key]})
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(c) for c in ticks])
        ax.set_ylim(0, 1.3)
        ax.set_xlabel(title)
        ax.set_ylabel("parallel efficiency")
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)
    return fig
