"""Timing and reporting shared by the benchmark cases: medians of repeats after a warm-up,
machine and version facts, and cold-compile / cached-start measurements in fresh processes."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPEATS = int(os.environ.get("HPCAD_BENCH_REPEATS", "5"))
ROOT = Path(__file__).resolve().parent.parent


def median_time(fn, setup=None, repeats: int = REPEATS) -> float:
    """Median seconds of fn() over `repeats` runs after one warm-up; setup() runs untimed
    before each (e.g. to copy inputs a kernel overwrites)."""
    args = setup() if setup else ()
    fn(*args)
    times = []
    for _ in range(repeats):
        args = setup() if setup else ()
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def plain_numba(kernel, parallel: bool = False):
    """The kernel's own Python source under plain numba.njit (callee kernels too): the primal
    a numba user would have without hpcad."""
    import types

    import numba

    import hpcad as ad
    f = kernel.py_func
    scope = dict(f.__globals__)
    for name in f.__code__.co_names:
        obj = scope.get(name)
        if isinstance(obj, ad.Kernel):
            scope[name] = plain_numba(obj, parallel)
    clone = types.FunctionType(f.__code__, scope, f.__name__, f.__defaults__, f.__closure__)
    return numba.njit(clone, error_model="numpy", parallel=parallel)


def autodiff_setups(args, activity):
    """(copies, flat): setups for median_time of a primal taking fresh copies of `args`, and of
    `ad.autodiff` with `activity` taking them with a zero shadow after each Duplicated one."""
    import hpcad as ad

    def copies():
        return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)

    def flat():
        out = []
        for a, act in zip(copies(), activity, strict=True):
            out.append(a)
            if act is ad.Duplicated:
                out.append(np.zeros_like(a))
        return tuple(out)
    return copies, flat


def machine_info() -> dict:
    import numba
    info = {"python": sys.version.split()[0], "numpy": np.__version__,
            "numba": numba.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    try:
        import jax
        info["jax"] = jax.__version__
    except ImportError:
        info["jax"] = None
    from hpcad import __version__
    info["hpcad"] = __version__
    return info


def jax_available() -> bool:
    try:
        import jax  # noqa: F401
        return True
    except ImportError:
        return False


def run_script(code: str, cache_dir: str) -> dict:
    """Run python code in a fresh process with HPCAD_CACHE_DIR set; it prints one JSON line."""
    env = dict(os.environ, HPCAD_CACHE_DIR=cache_dir, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=900, cwd=str(ROOT))
    if out.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


_COMPILE_SCRIPT = """
import json, time
import numpy, numba
@numba.njit
def _warm(x):
    return x + 1
_warm(1)
t0 = time.perf_counter()
from benchmarks.{case} import compile_probe
start = time.perf_counter() - t0
result = compile_probe()
result["hpcad_start_s"] = start
print(json.dumps(result))
"""


def compile_times(case: str) -> dict:
    """Cold compile of the numba primal and of hpcad's reverse derivative (empty cache), then
    a second process that finds the cache: its start-up beyond importing numpy/numba."""
    with tempfile.TemporaryDirectory() as cache:
        cold = run_script(_COMPILE_SCRIPT.format(case=case), cache)
        warm = run_script(_COMPILE_SCRIPT.format(case=case), cache)
    return {"primal_compile_s": cold["numba_primal_compile_s"],
            "grad_compile_s": cold["hpcad_grad_first_call_s"] - cold["hpcad_grad_run_s"],
            "cached_start_s": warm["hpcad_start_s"] + warm["hpcad_grad_first_call_s"]
            - warm["hpcad_grad_run_s"],
            "cached_compiles": warm["compiled"]}


def write_json(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine_info(), "repeats": REPEATS, "rows": rows},
                               indent=2))
