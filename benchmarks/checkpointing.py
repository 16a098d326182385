"""Benchmark: memory against time of gradients under checkpointing (heat 1-D, Burgers 1-D,
Jacobi 2-D): store-all (also the default plan when no budget is set), segments and revolve
with fixed snapshot counts, and memory budgets of 100/25/5 % of store-all; tape plus snapshot
bytes and time relative to store-all per policy, and the largest difference of its gradient
from the store-all one (relative to the gradient's largest entry). Writes a PNG of the curves
next to the JSON when matplotlib is installed."""
from __future__ import annotations

import gc
import importlib

import numpy as np

import hpcad as ad
from benchmarks.common import median_time
from hpcad.checkpoint.budget import time_loop

SIZES = {"heat n=1e5 x200": ("heat", (100_000, 200)), "heat n=1e7 x10": ("heat", (10_000_000, 10)),
         "burgers n=2e5 x100": ("burgers", (200_000, 100)),
         "burgers n=1e7 x5": ("burgers", (10_000_000, 5)),
         "jacobi 500^2 x100": ("jacobi", (500, 100)), "jacobi 4000^2 x5": ("jacobi", (4000, 5))}
BUDGETS = (1.0, 0.25, 0.05)    # memory budgets, as fractions of the store-all tape


def _memory(kernel) -> int:
    """Bytes of memory the gradient keeps, as measured: its tape buffers and its arena of
    snapshots of the loop state (segments: with a copy of the final state), less snapshots
    in files (`disk_bytes` of a budget's row)."""
    return sum(sum(c.held_bytes()) for _, c in kernel.compiled.values())


def _memory_then_release(kernel) -> int:
    """_memory, then the kernel's buffers handed back: a run holds one policy's tape at a
    time (several 800 MB tapes held at once left the later policies of a run up to 25 %
    slower, with the same code)."""
    kept = _memory(kernel)
    for _, c in kernel.compiled.values():
        c.buffers.release()
    gc.collect()
    return kept


def _timed_gradient(kernel, args) -> float:
    """Median time of the in-place reverse derivative (float arrays duplicated, float
    scalars active, the rest constant); the arrays are fresh copies for every run."""
    activity, arrays = [], []
    for k, a in enumerate(args):
        if isinstance(a, np.ndarray):
            activity.append(ad.Duplicated)
            arrays.append(k)
        else:
            activity.append(ad.Active if isinstance(a, float) else ad.Const)
    rev = ad.autodiff(kernel, activity=tuple(activity))
    shadows = {k: np.zeros_like(args[k]) for k in arrays}

    def call(*copies):
        fresh = dict(zip(arrays, copies, strict=True))
        flat = []
        for k, a in enumerate(args):
            flat.append(fresh.get(k, a))
            if k in shadows:
                flat.append(shadows[k])
        return rev(*flat)
    t = median_time(call, lambda: tuple(args[k].copy() for k in arrays))
    for s in shadows.values():      # one more call from zero shadows: the gradient
        s[:] = 0.0
    scalars = call(*(args[k].copy() for k in arrays))[1:]   # (after the primal result)
    return t, np.concatenate([s.ravel() for s in shadows.values()]
                             + [np.asarray(scalars, float).ravel()])


def _difference(grad, ref) -> float:
    """Largest difference from the store-all gradient, relative to its largest entry."""
    return float(np.max(np.abs(grad - ref)) / max(np.max(np.abs(ref)), 1e-300))


def run(case) -> dict:
    module_name, size = case
    module = importlib.import_module(f"benchmarks.{module_name}")
    kernel = getattr(module, module_name)
    args = module.make_args(size)
    steps = args[-1]
    row = {"policies": {}}
    loop = time_loop(kernel.specialize(args).primal, args)   # None: no checkpointable loop
    policies, ref = [("store_all", "segments")], None   # (store-all first: the reference)
    if loop is not None:
        policies += [(s, "segments") for s in (2, 4, 8, 16)] + \
            [(s, "revolve") for s in (2, 4, max(1, steps // 20))]
    for snapshots, schedule in policies:
        if snapshots != "store_all" and snapshots >= steps:
            continue
        k = ad.checkpoint(kernel, snapshots=snapshots, schedule=schedule)
        t, grad = _timed_gradient(k, args)
        ref = grad if snapshots == "store_all" else ref
        name = str(snapshots) if schedule == "segments" else f"revolve {snapshots}"
        row["policies"][name] = {"grad_s": t, "bytes": _memory_then_release(k),
                                 "grad_difference": _difference(grad, ref)}
    k = ad.checkpoint(kernel, "auto")          # the default plan (no budget set)
    t, grad = _timed_gradient(k, args)
    c = k.last_policy
    row["policies"][f"default: {c.plan.describe()}"] = {
        "grad_s": t, "bytes": _memory_then_release(k), "grad_difference": _difference(grad, ref)}
    store_all = row["policies"]["store_all"]["bytes"]
    for fraction in BUDGETS:
        budget = max(int(fraction * store_all), 1)
        k = ad.checkpoint(kernel, budget=budget)
        try:
            t, grad = _timed_gradient(k, args)
        except ad.HpcadError as e:      # a budget below the least the gradient needs
            row["policies"][f"budget {fraction:.0%}"] = {"error": str(e)}
            continue
        c = k.last_policy
        disk = sum(c.disk_bytes() for _, c in k.compiled.values())
        kept = _memory_then_release(k)
        label = c.plan.describe()
        row["policies"][f"budget {fraction:.0%}: {label}"] = {
            "grad_s": t, "bytes": kept, "budget_bytes": budget, "fits": kept <= budget,
            "estimate_bytes": c.estimate, "disk_bytes": disk,
            "grad_difference": _difference(grad, ref)}
    row["policies"] = {name: p for name, p in row["policies"].items() if "error" not in p} | \
        {name: p for name, p in row["policies"].items() if "error" in p}
    base = row["policies"]["store_all"]
    for p in row["policies"].values():
        if "error" in p:
            continue
        p["time_vs_store_all"] = p["grad_s"] / base["grad_s"]
        p["memory_vs_store_all"] = p["bytes"] / base["bytes"] if base["bytes"] else 1.0
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
    ax.set_title("checkpointing: memory against time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
