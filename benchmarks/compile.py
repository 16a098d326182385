"""Benchmark: cold compile seconds of each kernel's primal, reverse derivative (grad), forward
derivative (jvp) and forward derivative at width 28, each in a fresh process with an empty
cache directory, with the generated source's lines and where the time went (hpcad's own
passes and code generation, numba's typing and lowering, LLVM). The kernels are the
project's stencils and GMM, and small GradBench-shaped kernels written here from GradBench's
specs (lse, llsq, ode, det, kmeans, lstm); and GradBench's nested-AD evals (saddle, particle),
whose four variants (outer and inner derivative each forward or reverse) are kernels taking
derivatives of kernels: their compile is a primal compile of the solver with the derivatives
inlined."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import hpcad as ad
from benchmarks.common import ROOT
from hpcad.kernels.gmm import gmm_objective
from hpcad.kernels.stencils import burgers, heat, jacobi

MODES = ("primal", "grad", "jvp", "fwd28")
WARM = "helpers cached"
WIDTH = 28


@ad.kernel
def lse(x):
    """log(sum(exp(x))), shifted by the largest element."""
    mx = x[0]
    for i in range(1, x.shape[0]):
        if x[i] > mx:
            mx = x[i]
    s = 0.0
    for i in range(x.shape[0]):
        s += math.exp(x[i] - mx)
    return mx + math.log(s)


@ad.kernel
def llsq(x, n):
    """Half the squared residual of a polynomial fit of sign(t) on n points of [-1, 1]."""
    s = 0.0
    for i in range(n):
        t = -1.0 + 2.0 * i / (n - 1)
        y = 1.0 if t > 0.0 else -1.0
        p = 0.0
        tj = 1.0
        for j in range(x.shape[0]):
            p += x[j] * tj
            tj *= t
        r = y - p
        s += r * r
    return 0.5 * s


@ad.kernel
def ode(x, y, steps):
    """Fourth-order Runge-Kutta on y' = f(y), f_0 = x_0, f_i = x_i y_{i-1}, over [0, 2];
    the loss is the final y's last element."""
    n = x.shape[0]
    h = 2.0 / steps
    k1 = np.zeros(n)
    k2 = np.zeros(n)
    k3 = np.zeros(n)
    k4 = np.zeros(n)
    tmp = np.zeros(n)
    for _ in range(steps):
        k1[0] = x[0]
        for i in range(1, n):
            k1[i] = x[i] * y[i - 1]
        for i in range(n):
            tmp[i] = y[i] + 0.5 * h * k1[i]
        k2[0] = x[0]
        for i in range(1, n):
            k2[i] = x[i] * tmp[i - 1]
        for i in range(n):
            tmp[i] = y[i] + 0.5 * h * k2[i]
        k3[0] = x[0]
        for i in range(1, n):
            k3[i] = x[i] * tmp[i - 1]
        for i in range(n):
            tmp[i] = y[i] + h * k3[i]
        k4[0] = x[0]
        for i in range(1, n):
            k4[i] = x[i] * tmp[i - 1]
        for i in range(n):
            y[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
    return y[n - 1]


@ad.kernel
def det(a):
    """The determinant of a square matrix by elimination (no pivoting)."""
    n = a.shape[0]
    d = 1.0
    for k in range(n):
        d *= a[k, k]
        for i in range(k + 1, n):
            f = a[i, k] / a[k, k]
            for j in range(k + 1, n):
                a[i, j] -= f * a[k, j]
    return d


@ad.kernel
def kmeans(points, centers):
    """The sum over points of the squared distance to the nearest center."""
    cost = 0.0
    for i in range(points.shape[0]):
        best = math.inf
        for k in range(centers.shape[0]):
            dist = 0.0
            for j in range(points.shape[1]):
                diff = points[i, j] - centers[k, j]
                dist += diff * diff
            if dist < best:
                best = dist
        cost += best
    return cost


@ad.kernel
def lstm(main, extra, state, seq):
    """GradBench's LSTM objective: layers of LSTM cells over a character sequence; the loss
    is the mean cross-entropy of each next character. main: (2 layers, 4 b) weights and
    biases; extra: (3, b) input weight, output weight and bias; state: (2 layers, b)
    hidden and cell states (updated in place); seq: (c, b)."""
    layers = main.shape[0] // 2
    b = seq.shape[1]
    x = np.zeros(b)
    ypred = np.zeros(b)
    total = 0.0
    for t in range(seq.shape[0] - 1):
        for j in range(b):
            x[j] = seq[t, j] * extra[0, j]
        for lay in range(layers):
            for j in range(b):
                hid = state[2 * lay, j]
                forget = 1.0 / (1.0 + math.exp(-(x[j] * main[2 * lay, j]
                                                 + main[2 * lay + 1, j])))
                ingate = 1.0 / (1.0 + math.exp(-(hid * main[2 * lay, b + j]
                                                 + main[2 * lay + 1, b + j])))
                outgate = 1.0 / (1.0 + math.exp(-(x[j] * main[2 * lay, 2 * b + j]
                                                  + main[2 * lay + 1, 2 * b + j])))
                change = math.tanh(hid * main[2 * lay, 3 * b + j]
                                   + main[2 * lay + 1, 3 * b + j])
                cell = state[2 * lay + 1, j] * forget + ingate * change
                state[2 * lay + 1, j] = cell
                state[2 * lay, j] = outgate * math.tanh(cell)
                x[j] = state[2 * lay, j]
        s = 0.0
        for j in range(b):
            ypred[j] = math.exp(x[j] * extra[1, j] + extra[2, j])
            s += ypred[j]
        for j in range(b):
            total += seq[t + 1, j] * math.log(ypred[j] / s)
    return -total / ((seq.shape[0] - 1) * b)


def _rng(*shape):
    return np.random.default_rng(0).random(shape)


# kernel name -> (kernel, its arguments at a small size)
KERNELS = {
    "lse": (lse, lambda: (_rng(20),)),
    "llsq": (llsq, lambda: (_rng(6), 30)),
    "ode": (ode, lambda: (_rng(8), _rng(8), 10)),
    "det": (det, lambda: (_rng(5, 5) + 5.0 * np.eye(5),)),
    "kmeans": (kmeans, lambda: (_rng(30, 3), _rng(4, 3))),
    "lstm": (lstm, lambda: (_rng(4, 12), _rng(3, 3), _rng(4, 3), _rng(5, 3))),
    "gmm": (gmm_objective, lambda: (_rng(4), _rng(4, 3), _rng(4, 6), _rng(20, 3), 1.0, 0)),
    "heat": (heat, lambda: (_rng(100), 0.2, 4)),
    "burgers": (burgers, lambda: (_rng(100), 0.1, 0.2, 4)),
    "jacobi": (jacobi, lambda: (_rng(12, 12), _rng(12, 12), 3)),
}


def _activity(args, mode: str) -> tuple:
    def kind(a):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return ad.Duplicated
        if isinstance(a, float):
            return ad.Active if mode == "grad" else ad.Dual
        return ad.Const
    return tuple(kind(a) for a in args)


def _flat(args, activity, width: int) -> list:
    """The arguments of an autodiff derivative: each active one followed by its shadow
    (ones: any direction compiles the same code)."""
    flat = []
    for a, act in zip(args, activity):
        flat.append(a.copy() if isinstance(a, np.ndarray) else a)
        if act is ad.Duplicated:
            flat.append(np.ones(((width,) if width > 1 else ()) + a.shape))
        elif act is ad.Dual:
            flat.append(np.ones(width) if width > 1 else 1.0)
    return flat


# nested-AD eval -> its module in hpcad.gradbench.evals and the argument of one run
NESTED = {"saddle": ("saddle", lambda: np.array([1.0, 1.0])),
          "particle": ("particle", lambda: 0.0)}
NESTED_MODES = ("ff", "fr", "rf", "rr")


def _call(name: str, mode: str):
    """A function that runs kernel `name` in `mode` once (a nested eval: its variant)."""
    if name in NESTED:
        import importlib
        module, arg = NESTED[name]
        ev = importlib.import_module(f"hpcad.gradbench.evals.{module}").FUNCTIONS[mode]
        return lambda: ev.run(arg())
    k, make = KERNELS[name]
    args = make()
    if mode == "primal":
        return lambda: k(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    activity = _activity(args, mode)
    width = WIDTH if mode == "fwd28" else 1
    df = ad.autodiff(k, mode="reverse" if mode == "grad" else "forward",
                     activity=activity, width=width)
    return lambda: df(*_flat(args, activity, width))


class _Timer:
    """Seconds spent in a method, counted once however deeply its calls nest."""

    def __init__(self, owner, method: str):
        self.total, self.depth = 0.0, 0
        inner = getattr(owner, method)

        def timed(*a, **kw):
            self.depth += 1
            t = time.process_time()
            try:
                return inner(*a, **kw)
            finally:
                self.depth -= 1
                if self.depth == 0:
                    self.total += time.process_time() - t
        setattr(owner, method, timed)


def probe(name: str, mode: str) -> dict:
    """Run in a fresh process with an empty cache: the first call's seconds (less a later
    call's), split into numba (typing, lowering) and LLVM (optimization, machine code), the
    rest being hpcad's; and the lines of the source it generated."""
    import numba
    from numba.core import codegen, dispatcher

    from hpcad.backend.numba import STATS
    numba.njit(lambda x: x + 1)(1)           # numba's own first-use cost, not the kernel's
    numba_t = _Timer(dispatcher.Dispatcher, "compile")
    llvm = [_Timer(codegen.CPUCodeLibrary, m) for m in
            ("_optimize_functions", "_optimize_final_module", "_finalize_final_module")]
    libraries = []
    finalize = codegen.CPUCodeLibrary.finalize

    def kept(self):
        libraries.append(self)
        return finalize(self)
    codegen.CPUCodeLibrary.finalize = kept
    run = _call(name, mode)
    t = time.process_time()
    run()
    first = time.process_time() - t
    again = []
    for _ in range(3):
        t = time.process_time()
        run()
        again.append(time.process_time() - t)
    total = first - float(np.median(again))
    llvm_s = sum(x.total for x in llvm)
    cache = Path(os.environ["HPCAD_CACHE_DIR"])
    lines = sum(len(p.read_text().splitlines()) for p in cache.glob("*.py")
                if not p.name.startswith("helper_"))     # helpers.py's entries
    ir = sum(len(lib.get_llvm_str().splitlines()) for lib in libraries
             if getattr(lib, "_final_module", None) is not None)
    return {"kernel": name, "mode": mode, "compile_s": total,
            "hpcad_s": total - numba_t.total, "numba_s": numba_t.total - llvm_s,
            "llvm_s": llvm_s, "source_lines": lines, "llvm_lines": ir,
            "compiled": STATS["compiled"]}


_SCRIPT = "import json; from benchmarks.compile import probe; " \
          "print(json.dumps(probe({name!r}, {mode!r})))"


def measure(name: str, mode: str, warm_helpers: bool = False) -> dict:
    """probe(name, mode) in a fresh process with fresh cache directories: hpcad's, and
    numba's (mpi.py's functions), as a new user has. warm_helpers: hpcad's cache holds the
    functions every generated module calls (backend/numba/helpers.py: compiled once per
    machine), from a first process that compiled the same thing, and nothing else."""
    with tempfile.TemporaryDirectory(prefix="hpcad-compile-") as cache:
        env = dict(os.environ, HPCAD_CACHE_DIR=cache, NUMBA_CACHE_DIR=f"{cache}/numba",
                   PYTHONPATH=str(ROOT))
        script = [sys.executable, "-c", _SCRIPT.format(name=name, mode=mode)]
        if warm_helpers:
            subprocess.run(script, capture_output=True, env=env, timeout=900, cwd=str(ROOT))
            for p in Path(cache).iterdir():
                if p.name != ".key" and not p.name.startswith("helper_"):
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
        out = subprocess.run(script, capture_output=True, text=True, env=env, timeout=900,
                             cwd=str(ROOT))
    if out.returncode != 0:
        return {"kernel": name, "mode": mode, "error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(size) -> dict:
    """One kernel (size: (kernel name, modes)): every mode's cold compile, and the ratios
    of the derivatives' to the primal's; the primal's and the gradient's again with the
    helpers every generated module calls already in the cache (compiled once per machine:
    keys "primal helpers cached", "grad helpers cached")."""
    name, modes = size
    row = {m: measure(name, m) for m in modes if m in MODES + NESTED_MODES}
    for m in ("primal", "grad"):
        if m in modes:
            row[f"{m} {WARM}"] = measure(name, m, warm_helpers=True)
    for suffix in ("", f" {WARM}"):
        primal = row.get(f"primal{suffix}", {}).get("compile_s")
        for m in modes:
            got = row.get(f"{m}{suffix}", {})
            if primal and "compile_s" in got:
                got["over_primal"] = got["compile_s"] / primal
    return row


SIZES = {**{name: (name, MODES) for name in KERNELS},
         **{name: (name, NESTED_MODES) for name in NESTED}}

HEADER = ("kernel", "primal s", "grad s", "jvp s", "fwd28 s", "grad/primal",
          "grad hpcad/numba/llvm s", f"primal s, {WARM}", f"grad s, {WARM}",
          f"grad/primal, {WARM}", f"grad hpcad/numba/llvm s, {WARM}", "lines primal",
          "lines grad", "lines jvp", "lines fwd28",
          "IR lines primal", "IR lines grad")
NESTED_HEADER = ("nested eval", *(f"{m} s" for m in NESTED_MODES), "all s",
                 *(f"{m} hpcad/numba/llvm s" for m in NESTED_MODES),
                 *(f"lines {m}" for m in NESTED_MODES))


def _split(got: dict) -> str:
    return "/".join(f"{got[k]:.2f}" for k in ("hpcad_s", "numba_s", "llvm_s")) \
        if "hpcad_s" in got else "-"


def table_lines(rows: list[dict]) -> list[str]:
    def cell(r, mode, key, fmt="{:.2f}"):
        got = r.get(mode, {})
        return fmt.format(got[key]) if key in got else got.get("error", "-")[:30]
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    nested = ["| " + " | ".join(NESTED_HEADER) + " |", "|" + "---|" * len(NESTED_HEADER)]
    for r in rows:
        if r["name"] in NESTED:
            total = sum(r[m].get("compile_s", math.nan) for m in NESTED_MODES if m in r)
            cells = (r["name"], *(cell(r, m, "compile_s") for m in NESTED_MODES),
                     f"{total:.2f}", *(_split(r.get(m, {})) for m in NESTED_MODES),
                     *(cell(r, m, "source_lines", "{}") for m in NESTED_MODES))
            nested.append("| " + " | ".join(cells) + " |")
            continue
        cells = (r["name"], *(cell(r, m, "compile_s") for m in MODES),
                 cell(r, "grad", "over_primal"), _split(r.get("grad", {})),
                 cell(r, f"primal {WARM}", "compile_s"), cell(r, f"grad {WARM}", "compile_s"),
                 cell(r, f"grad {WARM}", "over_primal"), _split(r.get(f"grad {WARM}", {})),
                 *(cell(r, m, "source_lines", "{}") for m in MODES),
                 *(cell(r, m, "llvm_lines", "{}") for m in ("primal", "grad")))
        lines.append("| " + " | ".join(cells) + " |")
    return lines + ([""] + nested if len(nested) > 2 else [])
