"""Benchmark: call overhead on 50-element kernels. Per kernel, the median per-call CPU
time (over batches of calls) of the kernel's source under plain numba.njit, the hpcad
kernel call, the `ad.grad` call, and the compiled reverse derivative called directly (its
numba dispatcher with ready arguments: shadows, seed and tape buffers), so that the kernel
call's overhead is hpcad call - numba call and grad's is grad call - compiled derivative.
`dot` keeps no tape; `heat` (a time loop that overwrites its state) keeps one: its grad
plans once per call key. Then the warm start: new processes, with the disk cache already
holding the kernel and its gradient, import hpcad (timed on its own) and call the kernel
and its grad once (medians over WARM_PROCESSES processes, wall and CPU seconds; to the
first result from `import hpcad` on, and from the process's start with `import numpy,
numba` too), beside numba's own cached warm start (from after its imports). Targets
(issue 23): kernel call overhead <= 1 us, grad overhead <= 3 us, warm start <= 0.3 s to
the first result."""
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
    """Median over batches of the mean CPU seconds (time.process_time) of one fn() in a
    batch of `calls`: on a shared machine the wall time of a few microseconds' call
    counts the other processes' turns too (with 4-5 processes per core, 4-5x)."""
    fn()
    times = []
    for _ in range(batches):
        t0 = time.process_time()
        for _ in range(calls):
            fn()
        times.append((time.process_time() - t0) / calls)
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


WARM_PROCESSES = 5   # warm processes per measurement: medians of each time


_WARM = """
import json, time
def now():
    return time.perf_counter(), time.process_time()
tp = now()
import numpy, numba
t0 = now()
import hpcad
t1 = now()
from benchmarks.overhead import KERNELS, make_args
import hpcad as ad
k, argnums = KERNELS["{name}"]
args = make_args("{name}")
t2 = now()
k(*args)
t3 = now()
ad.grad(k, argnums=argnums)(*args)
t4 = now()
from hpcad.backend.numba import STATS
times = {{"numba_import": (tp, t0), "import": (t0, t1), "first_call": (t2, t3),
         "first_grad": (t3, t4)}}
out = {{f"{{key}}_s": b[0] - a[0] for key, (a, b) in times.items()}}
out.update({{f"{{key}}_cpu_s": b[1] - a[1] for key, (a, b) in times.items()}})
print(json.dumps(dict(out, compiled=STATS["compiled"])))
"""


_NUMBA_WARM = """
import json, time
import numpy as np, numba
t0, c0 = time.perf_counter(), time.process_time()

@numba.njit(cache=True, error_model="numpy")
def dot(x, w, n):
    s = 0.0
    for i in range(n):
        s += w[i] * x[i] * x[i]
    return s

dot(np.ones(50), np.ones(50), 50)
print(json.dumps({"first_call_s": time.perf_counter() - t0,
                  "first_call_cpu_s": time.process_time() - c0}))
"""


def _medians(runs: list[dict]) -> dict:
    return {key: float(np.median([r[key] for r in runs])) for key in runs[0]}


def numba_warm_start(processes: int = WARM_PROCESSES) -> dict:
    """numba's own warm start for `dot` (njit(cache=True), after a process that fills the
    cache; medians over `processes` processes, wall and CPU seconds): the first call of a
    cached function refreshes numba's whole target context (every lowering registry, and
    scipy.linalg for BLAS), which hpcad's loader skips (backend/numba/numba_cache.py)."""
    with tempfile.TemporaryDirectory() as where:
        script = Path(where) / "numba_dot.py"
        script.write_text(_NUMBA_WARM)
        env = {**os.environ, "NUMBA_CACHE_DIR": where}
        runs = [subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                               env=env, timeout=900, check=True)
                for _ in range(processes + 1)][1:]
    return _medians([json.loads(r.stdout.strip().splitlines()[-1]) for r in runs])


def warm_start(name: str, processes: int = WARM_PROCESSES) -> dict:
    """A process that compiles (cold), then `processes` that find the disk cache (warm):
    medians of each time (wall and CPU seconds; on a busy machine the CPU times are the
    steadier). All may keep Python's bytecode (in a temporary PYTHONPYCACHEPREFIX), as an
    installed package does, whatever PYTHONDONTWRITEBYTECODE says here."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as pyc:
        env = {"PYTHONPYCACHEPREFIX": pyc, "PYTHONDONTWRITEBYTECODE": ""}
        cold = run_script(_WARM.format(name=name), cache, env)
        runs = [run_script(_WARM.format(name=name), cache, env) for _ in range(processes)]
    for r in runs:
        r["to_first_result_s"] = r["import_s"] + r["first_call_s"] + r["first_grad_s"]
        r["to_first_result_cpu_s"] = (r["import_cpu_s"] + r["first_call_cpu_s"]
                                      + r["first_grad_cpu_s"])
        # with `import numpy, numba` (which import hpcad needs), from the process's start
        r["from_start_cpu_s"] = r["numba_import_cpu_s"] + r["to_first_result_cpu_s"]
    warm = _medians(runs)
    warm["compiled"] = max(r["compiled"] for r in runs)
    warm["cold_first_grad_s"] = cold["first_grad_s"]
    return warm


def run(size) -> dict:
    return {"kernels": {name: {**_row(name, size), "warm": warm_start(name)}
                        for name in KERNELS}, "numba_warm": numba_warm_start()}


HEADER = ("case", "kernel", "numba call us", "hpcad call us", "call overhead us", "grad us",
          "derivative alone us", "grad overhead us", "warm import s", "warm first call s",
          "warm first grad s", "warm to first result s", "warm to first result cpu s",
          "warm with numba import cpu s", "warm compiles", "numba warm first call s",
          "numba warm first call cpu s")


def overhead_lines(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        for name, x in r["kernels"].items():
            w = x["warm"]
            cells = (r["name"], name, *(f"{1e6 * x[key]:.2f}" for key in (
                "numba_s", "hpcad_call_s", "call_overhead_s", "grad_s", "derivative_s",
                "grad_overhead_s")), *(f"{w[key]:.3f}" for key in (
                    "import_s", "first_call_s", "first_grad_s", "to_first_result_s",
                    "to_first_result_cpu_s", "from_start_cpu_s")), str(w["compiled"]),
                *(f"{r['numba_warm'][key]:.3f}" for key in ("first_call_s", "first_call_cpu_s")))
            lines.append("| " + " | ".join(cells) + " |")
    return lines
