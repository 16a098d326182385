"""Benchmark: memory against time for the 1-D heat gradient under checkpointing
(hpcad.checkpoint(f, snapshots=S, schedule="segments" | "revolve")): tape plus snapshot
bytes, and time relative to store-all, per policy. Writes a PNG of the curve next to the JSON when matplotlib
is installed."""
from __future__ import annotations

import numpy as np

import hpcad as ad
from benchmarks.common import median_time
from hpcad.checkpoint.budget import time_loop
from benchmarks.heat import heat, make_args

SIZES = {"heat n=1e5 x200": (100_000, 200), "heat n=1e7 x10": (10_000_000, 10)}
BUDGETS = (1.0, 0.25, 0.05)    # memory budgets, as fractions of the store-all tape


def _memory(kernel, state_bytes: int, snapshots) -> int:
    """Bytes the gradient keeps: its tape buffers, plus (checkpointed) the snapshots of the
    loop state and the copy of the final state."""
    tape = sum(t.nbytes for _, c in kernel.compiled.values() for t in c.tapes)
    if snapshots == "store_all":
        return tape
    return tape + state_bytes * (snapshots + 1)


def run(size) -> dict:
    n, steps = size
    u0, alpha, _ = make_args(size)
    row = {"policies": {}}
    args = (u0, alpha, steps)
    state = time_loop(heat.specialize(args).primal, args).state_bytes  # u; tmp is scratch
    policies = [("store_all", "segments")] + [(s, "segments") for s in (2, 4, 8, 16)] + \
        [(s, "revolve") for s in (2, 4, max(1, steps // 20))]
    for snapshots, schedule in policies:
        if snapshots != "store_all" and snapshots >= steps:
            continue
        k = ad.checkpoint(heat, snapshots=snapshots, schedule=schedule)
        rev = ad.autodiff(k, activity=(ad.Duplicated, ad.Active, ad.Const))
        du = np.zeros_like(u0)
        t = median_time(lambda u: rev(u, du, alpha, steps), lambda: (u0.copy(),))
        name = str(snapshots) if schedule == "segments" else f"revolve {snapshots}"
        row["policies"][name] = {"grad_s": t, "bytes": _memory(k, state, snapshots)}
    store_all = row["policies"]["store_all"]["bytes"]
    for fraction in BUDGETS:
        budget = max(int(fraction * store_all), 1)
        k = ad.checkpoint(heat, budget=budget)
        rev = ad.autodiff(k, activity=(ad.Duplicated, ad.Active, ad.Const))
        du = np.zeros_like(u0)
        try:
            t = median_time(lambda u: rev(u, du, alpha, steps), lambda: (u0.copy(),))
        except ad.HpcadError as e:      # a budget below the least the gradient needs
            row["policies"][f"budget {fraction:.0%}"] = {"error": str(e)}
            continue
        c = k.last_policy
        kept = _memory(k, state, c.snapshots or "store_all")
        label = f"{c.schedule} {c.snapshots}" if c.snapshots else "store all"
        row["policies"][f"budget {fraction:.0%}: {label}"] = {
            "grad_s": t, "bytes": kept, "budget_bytes": budget, "fits": kept <= budget,
            "estimate_bytes": c.estimate}
    row["policies"] = {name: p for name, p in row["policies"].items() if "error" not in p} | \
        {name: p for name, p in row["policies"].items() if "error" in p}
    base = row["policies"]["store_all"]
    for p in row["policies"].values():
        if "error" in p:
            continue
        p["time_vs_store_all"] = p["grad_s"] / base["grad_s"]
        p["memory_vs_store_all"] = p["bytes"] / base["bytes"]
    return row


def plot(rows: list[dict], path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for r in rows:
        pts = sorted((p["memory_vs_store_all"], p["time_vs_store_all"])
                     for p in r["policies"].values() if "error" not in p)
        ax.plot([m for m, _ in pts], [t for _, t in pts], "o-", label=r["name"])
    ax.set_xlabel("memory / store-all")
    ax.set_ylabel("gradient time / store-all")
    ax.set_title("heat 1-D: checkpointing")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
