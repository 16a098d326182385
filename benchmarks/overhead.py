"""Benchmark: call overhead on 50-element kernels. Per kernel, the median per-call time (over
batches of calls) of the kernel's source under plain numba.njit, the hpcad kernel call, the
`ad.grad` call, and the compiled reverse derivative called directly (its numba dispatcher
with ready arguments: shadows, seed and tape buffers), so that the kernel call's overhead is
hpcad call - numba call and grad's is grad call - compiled derivative. `dot` keeps no tape;
`heat` (a time loop that overwrites its state) keeps one: its grad plans once per call key.
Then the warm start: a new process, with the disk cache already holding the kernel and its
gradient, imports hpcad (timed on its own) and calls the kernel and its grad once.
Targets (issue 23): kernel call overhead <= 1 us, grad overhead <= 3 us, warm start
<= 0.3 s to the first result."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import hpcad as ad
from benchmarks.common import ROOT, plain_numba

N = 50
SIZES = {"overhead 50 elements": (N, 400, 25)}   # (elements, calls per batch, batches)


@ad.kernel
def dot(x, w, n):
    s = 0.0
    for i in range(n):
        s += w[i] * x[i] * x[i]
    return s


@ad.kernel
def heat(u, alpha, steps):
    for _step in range(steps):
        for i in range(1, u.shape[0] - 1):
            u[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
    return np.sum(u * u)


def make_args(name: str, n: int = N) -> tuple:
    rng = np.random.default_rng(0)
    if name == "dot":
        return rng.random(n), rng.random(n), n
    return rng.random(n), 0.1, 2


KERNELS = {"dot": (dot, 0), "heat": (heat, (0, 1))}


def per_call(fn, calls: int, batches: int) -> float:
    """Median over batches of the mean seconds of one fn() in a batch of `calls`."""
    fn()
    times = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return float(np.median(times))


def _derivative_alone(k, args):
    """The compiled reverse derivative of k's last grad, as a no-argument call of its numba
    dispatcher: each of its parameters from its name (an argument, `d_<argument>` a zero
    shadow of it, `seed` 1.0), then its tape buffers and vector arguments."""
    (fn, compiled), = [(f, c) for f, c in k.compiled.values() if f.name.endswith(".rev")]
    values = dict(zip(k.arg_names, args))
    flat = []
    for name in (a.name for a in fn.args):
        if name in values:
            flat.append(values[name].copy() if isinstance(values[name], np.ndarray)
                        else values[name])
        elif name.startswith("d_") and name[2:] in values:
            flat.append(np.zeros_like(values[name[2:]]))
        elif name == "seed":
            flat.append(1.0)
        else:
            raise RuntimeError(f"overhead benchmark: unknown derivative parameter {name}")
    buffers = list(compiled.tapes)
    extra = [compiled.mpi_handles] if compiled.mpi_handles is not None else []
    flat += buffers + extra + list(compiled.vector_args)
    dispatcher = compiled.dispatcher
    return lambda: dispatcher(*flat)


def _row(name: str, size) -> dict:
    n, calls, batches = size
    k, argnums = KERNELS[name]
    args = make_args(name, n)
    plain = plain_numba(k)
    g = ad.grad(k, argnums=argnums)
    copy = (lambda: plain(args[0].copy(), *args[1:])) if name == "heat" else \
        (lambda: plain(*args))
    times = {"numba_s": per_call(copy, calls, batches),
             "hpcad_call_s": per_call(lambda: k(args[0].copy(), *args[1:]) if name == "heat"
                                      else k(*args), calls, batches),
             "grad_s": per_call(lambda: g(*args), calls, batches)}
    times["derivative_s"] = per_call(_derivative_alone(k, args), calls, batches)
    if name == "heat":   # the state copy the numba and hpcad calls time, on its own
        times["copy_s"] = per_call(lambda: args[0].copy(), calls, batches)
    times["call_overhead_s"] = times["hpcad_call_s"] - times["numba_s"]
    times["grad_overhead_s"] = times["grad_s"] - times["derivative_s"]
    return times


def run_script(code: str, cache_dir: str, env: dict) -> dict:
    """common.run_script with more environment variables (PYTHONDONTWRITEBYTECODE: an
    empty value is removed)."""
    env = {**os.environ, "HPCAD_CACHE_DIR": cache_dir, "PYTHONPATH": str(ROOT), **env}
    env = {key: value for key, value in env.items() if value}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=900, cwd=str(ROOT))
    if out.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


_WARM = """
import json, time
import numpy, numba
t0 = time.perf_counter()
import hpcad
t1 = time.perf_counter()
from benchmarks.overhead import KERNELS, make_args
import hpcad as ad
k, argnums = KERNELS["{name}"]
args = make_args("{name}")
t2 = time.perf_counter()
k(*args)
t3 = time.perf_counter()
ad.grad(k, argnums=argnums)(*args)
t4 = time.perf_counter()
from hpcad.backend.numba import STATS
print(json.dumps({{"import_s": t1 - t0, "first_call_s": t3 - t2, "first_grad_s": t4 - t3,
                  "compiled": STATS["compiled"]}}))
"""


_NUMBA_WARM = """
import json, time
import numpy as np, numba
t0 = time.perf_counter()

@numba.njit(cache=True, error_model="numpy")
def dot(x, w, n):
    s = 0.0
    for i in range(n):
        s += w[i] * x[i] * x[i]
    return s

dot(np.ones(50), np.ones(50), 50)
print(json.dumps({"first_call_s": time.perf_counter() - t0}))
"""


def numba_warm_start() -> float:
    """numba's own warm start for `dot` (njit(cache=True), a second process): the first
    call of a cached function loads numba's compiler context, which every warm start
    pays."""
    with tempfile.TemporaryDirectory() as where:
        script = Path(where) / "numba_dot.py"
        script.write_text(_NUMBA_WARM)
        env = {**os.environ, "NUMBA_CACHE_DIR": where}
        runs = [subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                               env=env, timeout=900, check=True) for _ in range(2)]
    return json.loads(runs[-1].stdout.strip().splitlines()[-1])["first_call_s"]


def warm_start(name: str) -> dict:
    """A process that compiles (cold), then one that finds the disk cache (warm). Both may
    keep Python's bytecode (in a temporary PYTHONPYCACHEPREFIX), as an installed package
    does, whatever PYTHONDONTWRITEBYTECODE says here."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as pyc:
        env = {"PYTHONPYCACHEPREFIX": pyc, "PYTHONDONTWRITEBYTECODE": ""}
        cold = run_script(_WARM.format(name=name), cache, env)
        warm = run_script(_WARM.format(name=name), cache, env)
    warm["to_first_result_s"] = warm["import_s"] + warm["first_call_s"] + warm["first_grad_s"]
    warm["cold_first_grad_s"] = cold["first_grad_s"]
    return warm


def run(size) -> dict:
    return {"kernels": {name: {**_row(name, size), "warm": warm_start(name)}
                        for name in KERNELS}, "numba_warm_first_call_s": numba_warm_start()}


HEADER = ("case", "kernel", "numba call us", "hpcad call us", "call overhead us", "grad us",
          "derivative alone us", "grad overhead us", "warm import s", "warm first call s",
          "warm first grad s", "warm to first result s", "warm compiles",
          "numba warm first call s")


def overhead_lines(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        for name, x in r["kernels"].items():
            w = x["warm"]
            cells = (r["name"], name, *(f"{1e6 * x[key]:.2f}" for key in (
                "numba_s", "hpcad_call_s", "call_overhead_s", "grad_s", "derivative_s",
                "grad_overhead_s")), *(f"{w[key]:.3f}" for key in (
                    "import_s", "first_call_s", "first_grad_s", "to_first_result_s")),
                str(w["compiled"]), f"{r['numba_warm_first_call_s']:.3f}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines
