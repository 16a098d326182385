"""Benchmark: hpcad's GradBench tool (hpcad/gradbench) against JAX (benchmarks/gradbench_jax.py)
and GradBench's manual C++ tool, per eval, function and size: medians of repeats.

Every eval module in hpcad/gradbench/evals and each of its FUNCTIONS gets rows. Inputs come
from the generators here, made as the eval drivers make theirs, at GradBench's default sizes
that fit 2 cores (SIZES below; `--quick`: tiny ones). With a GradBench checkout in
$HPCAD_GRADBENCH_DIR the manual tool runs through GradBench's own eval driver at the same
sizes (hpcad/gradbench/run.py; `--no-validation` where the driver has it) and its timings are
read from the protocol; an eval without a generator here takes the inputs that driver sent.
hpcad's and JAX's times are of the compiled work only: inputs are parsed before timing;
both run on one thread (BLAS and XLA: see below and gradbench_jax.one_thread_client)."""
from __future__ import annotations

import itertools
import os
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.common import REPEATS, median_time

# one thread for BLAS (hpcad's matrix products, e.g. kmeans'), as for XLA (gradbench_jax.py):
# only effective before the BLAS library numba calls is loaded, i.e. before the first product
# in this process (`--cases gradbench` alone, or first)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

SIZES = {"gradbench": "default"}
# eval -> size set -> the eval driver's size options (GradBench's defaults that fit 2 cores)
GRID: dict[str, dict[str, dict[str, list]]] = {
    "hello": {"default": {}, "quick": {}},
    "lse": {"default": {"n": [80000, 1280000]}, "quick": {"n": [1000]}},
    "llsq": {"default": {"n": [1024, 16392], "m": [128]}, "quick": {"n": [64], "m": [8]}},
    "ode": {"default": {"n": [10000, 100000], "s": [10, 100]}, "quick": {"n": [100], "s": [10]}},
    "det": {"default": {"l": [9, 10]}, "quick": {"l": [5]}},
    "kmeans": {"default": {"k": [10, 100, 1000], "n": [1000, 10000], "d": [8, 16]},
               "quick": {"k": [4], "n": [100], "d": [3]}},
    "gmm": {"default": {"d": [2, 10, 20, 32, 64], "k": [5, 10, 25, 50, 100], "n": [1000]},
            "quick": {"d": [3], "k": [4], "n": [50]}},
    # ba, ht, lstm, particle, saddle: their sizes go here (else the driver's defaults).
}


def _seeded() -> None:
    np.random.seed(31337)   # the drivers' seed


def lse_inputs(g):
    _seeded()
    return [(f"n={n}", {"x": np.random.rand(n).tolist()}) for n in g["n"]]


def llsq_inputs(g):
    _seeded()
    pairs = sorted(itertools.product(g["n"], g["m"]), key=lambda v: v[0] * v[1])
    return [(f"n={n},m={m}", {"x": np.random.rand(m).tolist(), "n": n}) for n, m in pairs]


def ode_inputs(g):
    _seeded()
    pairs = sorted(itertools.product(g["n"], g["s"]), key=lambda v: v[0] * v[1])
    return [(f"n={n},s={s}", {"x": np.random.rand(n).tolist(), "s": s}) for n, s in pairs]


def det_inputs(g):
    _seeded()
    return [(f"{ell}", {"A": np.random.rand(ell * ell).tolist(), "ell": ell}) for ell in g["l"]]


def kmeans_inputs(g):
    _seeded()
    out = []
    for k, n, d in sorted(itertools.product(g["k"], g["n"], g["d"]),
                          key=lambda v: v[0] * v[1] * v[2]):
        points = np.random.rand(n, d).tolist()
        out.append((f"k={k},n={n},d={d}", {"points": points, "centroids": points[-k:]}))
    return out


def gmm_inputs(g):
    out = []
    for d, k in itertools.product(g["d"], g["k"]):
        rng, n = np.random.default_rng(31337), g["n"][0]
        out.append((f"d={d},k={k},n={n}", {
            "d": d, "k": k, "n": n, "m": 0, "gamma": 1.0,
            "x": rng.normal(size=(n, d)).tolist(), "alpha": rng.normal(size=k).tolist(),
            "mu": rng.uniform(size=(k, d)).tolist(), "q": rng.normal(size=(k, d)).tolist(),
            "l": rng.normal(size=(k, d * (d - 1) // 2)).tolist()}))
    return out


INPUTS: dict[str, Callable[[dict], list]] = {
    "hello": lambda g: [("x=1.5", 1.5)], "lse": lse_inputs, "llsq": llsq_inputs,
    "ode": ode_inputs, "det": det_inputs, "kmeans": kmeans_inputs, "gmm": gmm_inputs}


def written_evals() -> list[str]:
    import hpcad.gradbench.evals as package
    from hpcad.gradbench import EVALS
    found = {m.name for m in pkgutil.iter_modules(package.__path__)}
    return [e for e in EVALS if e in found]


def driver_args(eval_name: str, sizes: str) -> list[str]:
    args = []
    for option, values in GRID.get(eval_name, {}).get(sizes, {}).items():
        args += [f"-{option}" if len(option) == 1 else f"--{option}", *map(str, values)]
    return args + ["--min-runs", str(REPEATS), "--min-seconds", "0"]


def manual_runs(eval_name: str, sizes: str, root: Path) -> tuple[dict, list]:
    """(function, description) -> the manual tool's median seconds, and the driver's
    evaluates as (function, description, input)."""
    from hpcad.gradbench.run import manual_tool, relay
    source = (root / "python/gradbench/gradbench/evals" / eval_name / "run.py").read_text()
    extra = ["--no-validation"] if "--no-validation" in source else []
    inputs: list = []
    outcomes = relay(eval_name, driver_args(eval_name, sizes) + extra, manual_tool(root),
                     root, inputs)
    times = {(o.function, o.description): o.median_ns / 1e9 for o in outcomes
             if o.success and o.median_ns is not None}
    sent = [(o.function, o.description, inp) for o, inp in zip(outcomes, inputs, strict=True)]
    return times, sent


def evaluates(eval_name: str, functions, sizes: str, sent: list) -> list:
    """(function, description, input) for every function at every size."""
    if eval_name in INPUTS:
        made = INPUTS[eval_name](GRID[eval_name][sizes])
        return [(f, desc, inp) for desc, inp in made for f in functions]
    return sent


def time_row(eval_name: str, function: str, description: str, raw, jax_fns: dict,
             manual: dict) -> dict:
    from hpcad.gradbench.protocol import function as evaluation
    ev = evaluation(eval_name, function)
    prepared = ev.prepare(raw)
    row = {"eval": eval_name, "function": function, "description": description,
           "hpcad_s": median_time(lambda: ev.run(prepared)),
           "manual_s": manual.get((function, description))}
    if function in jax_fns.get(eval_name, {}):
        prepare, run = jax_fns[eval_name][function]
        args = prepare(raw)
        row["jax_s"] = median_time(lambda: run(*args))
    return row


def run(sizes: str) -> dict:
    from benchmarks.gradbench_jax import functions as jax_functions
    from hpcad.gradbench.protocol import module
    jax_fns = jax_functions()
    given = os.environ.get("HPCAD_GRADBENCH_DIR")
    rows = []
    for eval_name in written_evals():
        print(f"  gradbench {eval_name} ...", file=sys.stderr, flush=True)
        manual, sent = manual_runs(eval_name, sizes, Path(given)) if given else ({}, [])
        todo = evaluates(eval_name, list(module(eval_name).FUNCTIONS), sizes, sent)
        if not todo:
            rows.append({"eval": eval_name, "function": "-", "description":
                         "no inputs: add a generator here or set HPCAD_GRADBENCH_DIR"})
        rows += [time_row(eval_name, f, desc, raw, jax_fns, manual) for f, desc, raw in todo]
    return {"rows": rows, "manual_from": given}


HEADER = ("eval", "function", "size", "hpcad ms", "JAX ms", "manual ms", "JAX/hpcad",
          "manual/hpcad")


def _ms(x) -> str:
    return "-" if x is None else f"{1e3 * x:.3f}"


def _ratio(a, b) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}"


def gradbench_lines(results: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for result in results:
        for r in result["rows"]:
            h, j, m = r.get("hpcad_s"), r.get("jax_s"), r.get("manual_s")
            cells = (r["eval"], r["function"], r["description"], _ms(h), _ms(j), _ms(m),
                     _ratio(j, h), _ratio(m, h))
            lines.append("| " + " | ".join(cells) + " |")
    return lines
