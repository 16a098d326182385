"""Outside check: third-party kernels run under hpcad as written, from a checkout passed as a
path (none of their code lives here). Two forms of corpus:
- NPBench (github.com/spcl/npbench, a folder with `bench_info/`): every `@nb.jit(...)`/
  `@numba.njit` line of its numba variants becomes `@hpcad.kernel`;
- a folder of plain NumPy files of the numpy-benchmarks form
  (github.com/serge-sans-paille/numpy-benchmarks, its `benchmarks/` folder): each file's
  `#setup: ...` line makes the inputs, its `#run: f(...)` line names the function, which is
  made a kernel with `hpcad.kernel(f)`; the reference is the plain Python function itself.

    python -m benchmarks.outside_check /tmp/npbench [--only gemm,atax] [--variants n,np,npr]
        [--backend numba|interp] [--timeout 300] [--out /tmp/outside.json]
    python -m benchmarks.outside_check /tmp/numpy-benchmarks/benchmarks [--only rosen] ...

For each benchmark and numba variant, in a fresh process (a crash or a hang costs one row):
the inputs come from the benchmark's own `initialize` at small sizes; the primal is compared
with numba's on the same inputs (returned values and arrays updated in place); then the
reverse derivative w.r.t. each float array and float scalar argument is checked against
central finite differences of numba's primal along a random direction of that argument
(steps from 1e-7 to 1e-1). An argument whose derivative and differences are both at rounding
level is checked again at inputs moved by 3% (a derivative zero only at the benchmark's
inputs), and named as at rounding level where it is flat there too. A kernel that updates
arrays in place gets random cotangents for their exit values (hpcad.autodiff); one that returns
arrays gets a random cotangent for them (hpcad.vjp). float32 inputs, and the arrays a kernel
makes as float32 (`dtype=np.float32` in its source), are float64 for the derivative check
(finite differences of a function rounded to float32 say little).

Each row reads `works` (the detail names the arguments checked), `wrong` (a silent wrong
answer: the primal or the derivative disagrees; a derivative's detail says whether it
agrees at inputs moved by 3%, as where the function jumps at the benchmark's own inputs),
`error` (the exception's type and first line), `flat` (every derivative zero, at both
points), `no grad` (nothing float to differentiate), `timeout` or `skip` (the file has no
function of the benchmark's name, or numba's own kernel fails on the inputs).

For the numpy-benchmarks form, integer literals of the `#setup:` and `#run:` lines above CAP
are made CAP (the sizes; SETUP_EDITS first rewrites the few lines whose sizes are tied to one
another, SIZES_KEPT names sizes the function itself needs), and the primal and the finite
differences are those of the plain Python function on the same inputs; everything else is as
above."""
from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("n", "np", "npr")        # nopython; parallel=True; prange. o/op/opr: object mode
CAP = 32                              # integer size parameters larger than this are capped
SIZES = {"stockham_fft": {"R": 2, "K": 4}, "lenet": {"N": 2, "H": 28, "W": 28},
         "spmv": {"M": 32, "N": 32, "nnz": 64}, "nbody": {"N": 8, "tEnd": 0.2, "dt": 0.05},
         "azimint_hist": {"N": 64, "npt": 8}, "azimint_naive": {"N": 64, "npt": 8},
         "resnet": {"N": 2, "W": 8, "H": 8, "C1": 8, "C2": 4},
         "conv2d_bias": {"N": 2, "C_in": 3, "C_out": 4, "K": 2, "H": 8, "W": 8},
         "mlp": {"C_in": 3, "N": 4, "S0": 16, "S1": 16, "S2": 16}}
PRIMAL_RTOL = 1e-9                    # numba's fastmath may reassociate; hpcad does not
PRIMAL_RTOL_F32 = 1e-5                # float32 results: the interpreter's NumPy rounds otherwise
GRAD_RTOL = 1e-5
STEPS = (1e-6, 1e-5, 1e-7, 1e-4, 1e-3, 1e-2, 1e-1)   # of finite differences, in this order
FLAT = 1e-8                           # both sides below this times |L| + 1: 'flat'
FLOAT32 = re.compile(r"\bfloat32\b")
DECORATOR = re.compile(r"^(\s*)@(?:nb|numba)\.(?:jit|njit)\b(\(.*\))?\s*$", re.M)


# -- one kernel, in its own process ------------------------------------------------------------
def load_module(path: Path, name: str, **names):
    """The module at path, with `names` bound in its globals before it runs."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(names)
    spec.loader.exec_module(module)
    return module


def kernel_source(source: str, backend: str | None) -> str:
    """The module's source with each numba decorator replaced by hpcad's (parallel=True kept
    where hpcad.kernel takes it; the backend where one is asked for)."""
    import inspect

    import hpcad
    takes_parallel = "parallel" in inspect.signature(hpcad.kernel).parameters

    def swap(m: re.Match) -> str:
        options = [f"backend={backend!r}"] if backend else []
        if takes_parallel and "parallel=True" in (m.group(2) or ""):
            options.append("parallel=True")
        return f"{m.group(1)}@hpcad.kernel" + (f"({', '.join(options)})" if options else "")

    return DECORATOR.sub(swap, source)


def parameters(info: dict) -> dict:
    params = dict(info["parameters"]["S"])
    small = SIZES.get(info["short_name"], SIZES.get(info["module_name"]))
    if small:
        return {**params, **small}
    return {k: min(v, CAP) if isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in params.items()}


def inputs(npbench: Path, info: dict) -> list:
    folder = npbench / "npbench" / "benchmarks" / info["relative_path"]
    data = parameters(info)
    init = info.get("init")
    if init:
        np.random.seed(42)
        module = load_module(folder / f"{info['module_name']}.py", "npbench_init")
        out = getattr(module, init["func_name"])(*(data[a] for a in init["input_args"]))
        if len(init["output_args"]) == 1:
            out = (out,)
        data.update(zip(init["output_args"], out))
    return [data[a] for a in info["input_args"]]


def copies(args: list) -> list:
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def as_tuple(out) -> tuple:
    return out if isinstance(out, tuple) else () if out is None else (out,)


def mismatch(got, want) -> float:
    """Largest relative difference of two values (inf where shapes or kinds differ; booleans
    and integers: 0 where equal, else inf)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return float("inf")
    if got.size == 0:
        return 0.0
    if want.dtype.kind in "biu":
        return 0.0 if np.array_equal(got, want) else float("inf")
    scale = max(float(np.max(np.abs(want))), 1e-300)
    return float(np.max(np.abs(got.astype(want.dtype) - want))) / scale


def primal_error(fn, ref, args: list, whose: str = "numba's") -> str | None:
    """None when fn agrees with ref on args (results and arrays updated in place)."""
    a, b = copies(args), copies(args)
    got, want = as_tuple(fn(*a)), as_tuple(ref(*b))
    if len(got) != len(want):
        return f"returns {len(got)} values, {whose[:-2]} {len(want)}"
    pairs = [(f"result {i}", g, w) for i, (g, w) in enumerate(zip(got, want))]
    pairs += [(f"argument {i}", g, w) for i, (g, w) in enumerate(zip(a, b))
              if isinstance(w, np.ndarray)]
    for what, g, w in pairs:
        err = mismatch(g, w)
        if not err <= (PRIMAL_RTOL_F32 if np.asarray(w).dtype == np.float32 else PRIMAL_RTOL):
            return f"{what} differs from {whose} by {err:.1e} (relative)"
    return None


def is_float_array(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def is_float_scalar(a) -> bool:
    return isinstance(a, (float, np.floating))


def promoted(args: list) -> list:
    return [a.astype(np.float64) if is_float_array(a) else
            float(a) if isinstance(a, np.float32) else a for a in args]


class Probe:
    """The random direction and cotangents of one derivative check, and the scalar function
    L(args) = <cotangents, outputs> they define (evaluated with numba's primal)."""

    def __init__(self, ref, args: list):
        rng = np.random.default_rng(7)
        self.ref, self.args = ref, args
        self.direction = [rng.standard_normal(a.shape) if is_float_array(a) else
                          float(rng.standard_normal()) if is_float_scalar(a) else None
                          for a in args]
        out = as_tuple(ref(*copies(args)))
        self.returns_arrays = any(isinstance(o, np.ndarray) for o in out)
        self.out_seed = [rng.standard_normal(np.shape(o)) if self.wanted(o) else None
                         for o in out]
        self.arg_seed = [rng.standard_normal(a.shape) if is_float_array(a) and
                         not self.returns_arrays else None for a in args]
        self.scale = abs(self.loss(args)) + 1.0

    def wanted(self, o) -> bool:
        floating = np.asarray(o).dtype.kind == "f"
        return floating and (isinstance(o, np.ndarray) or not self.returns_arrays)

    def loss(self, args: list) -> float:
        a = copies(args)
        out = as_tuple(self.ref(*a))
        total = sum(float(np.sum(s * o)) for s, o in zip(self.out_seed, out) if s is not None)
        return total + sum(float(np.sum(s * x)) for s, x in zip(self.arg_seed, a)
                           if s is not None)

    def finite_difference(self, eps: float, only: int) -> float:
        """Central differences of L along the direction of argument `only`."""
        def moved(sign):
            return [a + sign * eps * d if k == only else a
                    for k, (a, d) in enumerate(zip(self.args, self.direction))]
        return (self.loss(moved(1.0)) - self.loss(moved(-1.0))) / (2 * eps)

    def check(self, grads: list, k: int) -> tuple[str, str]:
        """('ok' | 'bad' | 'flat', figures) for argument k: hpcad's <gradient, direction>
        against central differences at several steps (agreement to GRAD_RTOL at any step is
        no coincidence); 'flat' where both are at the level of L's rounding, so the comparison
        says nothing."""
        exact = float(np.sum(grads[k] * self.direction[k]))
        flat = FLAT * self.scale
        fds = []
        for eps in STEPS:
            fds.append(self.finite_difference(eps, k))
            if abs(exact) <= flat and abs(fds[-1]) <= flat:   # (two zeros agree: no check)
                return "flat", f"{exact:.1e} vs {fds[-1]:.1e}"
            if abs(exact - fds[-1]) <= GRAD_RTOL * max(abs(fds[-1]), abs(exact), 1e-12):
                return "ok", ""
        err = min(abs(exact - f) / max(abs(f), abs(exact), 1e-12) for f in fds)
        return "bad", f"{exact:.6e} vs finite differences {fds[0]:.6e} " \
                      f"(relative error {err:.1e})"


def moved_inputs(args: list) -> list:
    """The float arguments moved by a few percent of their magnitude in a random direction:
    a point where a derivative that is zero at the benchmark's inputs (a correlation of
    columns that are multiples of one another) is not."""
    rng = np.random.default_rng(11)
    return [a + 0.03 * (float(np.mean(np.abs(a))) + 1e-3) * rng.standard_normal(a.shape)
            if is_float_array(a) else a for a in args]


def reverse_grads(kern, probe: Probe) -> list:
    """hpcad's reverse derivative: one gradient (or None) per argument."""
    import hpcad as ad
    args = copies(probe.args)
    if probe.returns_arrays:
        _, vjp_fn = ad.vjp(kern, *args)
        seeds = list(probe.out_seed)      # None for an integer result (no cotangent)
        return list(vjp_fn(tuple(seeds) if len(seeds) > 1 else seeds[0]))
    activity = [ad.Duplicated if is_float_array(a) else ad.Active if is_float_scalar(a)
                else ad.Const for a in args]
    flat, shadows = [], []
    for a, act, s in zip(args, activity, probe.arg_seed):
        flat.append(a)
        if act is ad.Duplicated:
            shadows.append(s.copy())
            flat.append(shadows[-1])
    floats = [s for s in probe.out_seed if s is not None]
    df = ad.autodiff(kern, activity=activity, ret=ad.Active if floats else ad.Const)
    seed = None if not floats else float(floats[0]) if len(floats) == 1 else \
        tuple(float(s) for s in floats)
    scalar_grads = iter(df(*flat, seed=seed)[1:])
    shadow_iter = iter(shadows)
    return [next(shadow_iter) if act is ad.Duplicated else
            next(scalar_grads) if act is ad.Active else None for act in activity]


def gradient_check(kern, ref, args: list, names: list[str]) -> tuple[str, str]:
    """(status, detail): each float argument's reverse derivative against central
    differences of numba's primal along a random direction of that argument alone; one whose
    two sides are both at rounding level ('flat') is checked again at inputs moved a little,
    and named as at rounding level (not checked) only where it is flat there too."""
    args = promoted(args)
    floats = [k for k, a in enumerate(args) if is_float_array(a) or is_float_scalar(a)]
    if not floats:
        return "no grad", ""
    probe = Probe(ref, args)
    if not any(s is not None for s in probe.out_seed + probe.arg_seed):
        return "no grad", ""
    grads = reverse_grads(kern, probe)
    verdicts = {k: probe.check(grads, k) for k in floats}
    flat = [k for k in floats if verdicts[k][0] == "flat"]
    where = ""
    if flat:
        again = Probe(ref, moved_inputs(args))
        grads_again = reverse_grads(kern, again)
        where = " (at inputs moved by 3%)"
        verdicts.update({k: again.check(grads_again, k) for k in flat})
    bad = [k for k in floats if verdicts[k][0] == "bad"]
    if bad:
        k = bad[0]
        note = ""
        if k not in flat:   # a jump of the function at the inputs, or wrong everywhere?
            again = Probe(ref, moved_inputs(args))
            agrees = again.check(reverse_grads(kern, again), k)[0] != "bad"
            note = "; at inputs moved by 3% they agree" if agrees else \
                "; at inputs moved by 3% too"
        return "wrong", f"derivative w.r.t. {names[k]}{where if k in flat else ''}: " \
                        f"{verdicts[k][1]}{note}"
    zero = [names[k] for k in floats if verdicts[k][0] == "flat"]
    checked = [names[k] for k in floats if verdicts[k][0] == "ok"]
    detail = f"FD per argument: {', '.join(checked) or 'none'}" + \
        (f"; at rounding level (no check): {', '.join(zero)}" if zero else "")
    return ("works" if checked else "flat"), detail


def check_one(npbench: Path, info: dict, variant_file: Path, backend: str | None) -> dict:
    """Runs in the child process: the row of one benchmark variant."""
    import hpcad
    ref = getattr(load_module(variant_file, "npbench_numba"), info["func_name"], None)
    if ref is None:
        return {"status": "skip", "stage": "load",
                "detail": f"the file defines no function {info['func_name']!r}"}
    if not isinstance(ref, numba.core.dispatcher.Dispatcher):   # its decorator line lost '@'
        ref = numba.njit(ref)
    args = inputs(npbench, info)
    try:
        ref(*copies(args))
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]
        return {"status": "skip", "stage": "numba",
                "detail": f"numba's own kernel fails: {type(e).__name__}: {first}"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / variant_file.name      # same name and lines in hpcad's messages
        path.write_text(kernel_source(variant_file.read_text(), backend))
        stage = "load"
        try:
            kern = getattr(load_module(path, "npbench_hpcad", hpcad=hpcad), info["func_name"])
            if not isinstance(kern, hpcad.Kernel):
                kern = hpcad.kernel(kern)
            stage = "primal"
            err = primal_error(kern, ref, args)
            if err:
                return {"status": "wrong", "stage": stage, "detail": err}
            stage = "gradient"
            if FLOAT32.search(variant_file.read_text()):
                ref, kern = in_float64(variant_file, Path(tmp), info["func_name"], backend)
            status, detail = gradient_check(kern, ref, args, info["input_args"])
        except Exception as e:   # the row records it; nothing is hidden
            first = (str(e).strip().splitlines() or [""])[0]
            first = first.replace(f"{tmp}/float64/", "").replace(f"{tmp}/", "")
            return {"status": "error", "stage": stage, "detail": f"{type(e).__name__}: {first}"}
    return {"status": status, "stage": "gradient", "detail": detail}


def in_float64(variant_file: Path, tmp: Path, name: str, backend: str | None,
               numba_form: bool = True):
    """The reference (numba's, or the plain function's) and hpcad's kernel with the kernel's
    own float32 arrays made float64 (as the inputs are, for the derivative check: finite
    differences of a function rounded to float32 say little)."""
    import hpcad
    source = FLOAT32.sub("float64", variant_file.read_text())
    path = tmp / "float64" / variant_file.name
    path.parent.mkdir()
    path.write_text(source)
    ref = getattr(load_module(path, "outside_ref64"), name)
    if not numba_form:
        kern = getattr(load_module(path, "outside_hpcad64"), name)
        return ref, hpcad.kernel(kern, backend=backend)
    path.write_text(kernel_source(source, backend))
    kern = getattr(load_module(path, "npbench_hpcad64", hpcad=hpcad), name)
    if not isinstance(ref, numba.core.dispatcher.Dispatcher):
        ref = numba.njit(ref)
    return ref, kern if isinstance(kern, hpcad.Kernel) else hpcad.kernel(kern)


# -- the numpy-benchmarks form: `#setup:` and `#run:` lines, a plain NumPy function ------------
SETUP = re.compile(r"^#\s*setup:(.*)$", re.M)
RUN = re.compile(r"^#\s*run:(.*)$", re.M)
# setups whose sizes are tied to one another: the rewrite keeps NumPy's meaning at full size,
# and capping then keeps the sizes consistent; grayscott's arrays are the function's own
# n = 280 (kept), so it runs two of its steps (the interpreter takes seconds for one)
SETUP_EDITS = {"pairwise": [("20000", "200*100")],      # linspace(0, 10, 20000).reshape(200, 100)
               "grayscott": [("grayscott(40,", "grayscott(2,")]}
SIZES_KEPT = {"grayscott": {280},                        # the function makes arrays of n = 280
              "local_maxima": {120}}                     # arange(120).reshape(5, 4, 3, 2)


class _Capped(ast.NodeTransformer):
    """Integer literals above CAP made CAP, except those kept."""

    def __init__(self, kept: set):
        self.kept = kept

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        v = node.value
        if type(v) is int and v > CAP and v not in self.kept:
            return ast.copy_location(ast.Constant(CAP), node)
        return node


def numpy_case(file: Path) -> tuple[str, list]:
    """(the function's name, its arguments) from a numpy-benchmarks file's `#setup:` and
    `#run:` lines, sizes capped."""
    text = file.read_text()
    setup, run = SETUP.search(text), RUN.search(text)
    if run is None:
        raise ValueError("no '#run:' line")
    setup_src, run_src = (setup.group(1).strip() if setup else ""), run.group(1).strip()
    for old, new in SETUP_EDITS.get(file.stem, []):
        setup_src, run_src = setup_src.replace(old, new), run_src.replace(old, new)
    kept = SIZES_KEPT.get(file.stem, set())
    namespace: dict = {}
    exec(compile(_Capped(kept).visit(ast.parse(setup_src)), f"{file.name}#setup", "exec"),
         namespace)
    call = _Capped(kept).visit(ast.parse(run_src, mode="eval")).body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.keywords:
        raise ValueError(f"the '#run:' line is not a call f(a, b, *c): {run_src!r}")

    def value(node: ast.expr):
        return eval(compile(ast.Expression(node), f"{file.name}#run", "eval"), namespace)

    args: list = []
    for a in call.args:
        if isinstance(a, ast.Starred):
            args.extend(value(a.value))
        else:
            args.append(value(a))
    return call.func.id, args


def argument_names(fn, count: int) -> list[str]:
    """The names of fn's first `count` positional parameters (those *args fills: its name
    with the position)."""
    import inspect
    names: list[str] = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            names += [f"{p.name}[{i}]" for i in range(count - len(names))]
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    return (names + [f"argument {i}" for i in range(len(names), count)])[:count]


def check_numpy(file: Path, backend: str | None) -> dict:
    """Runs in the child process: the row of one numpy-benchmarks file."""
    import hpcad
    try:
        name, args = numpy_case(file)
        ref = getattr(load_module(file, "outside_ref"), name)
        ref(*copies(args))
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]
        return {"status": "skip", "stage": "reference",
                "detail": f"the plain function fails: {type(e).__name__}: {first}"}
    names = argument_names(ref, len(args))
    with tempfile.TemporaryDirectory() as tmp:
        stage = "load"
        try:
            kern = hpcad.kernel(getattr(load_module(file, "outside_hpcad"), name),
                                backend=backend)
            stage = "primal"
            err = primal_error(kern, ref, args, "NumPy's")
            if err:
                return {"status": "wrong", "stage": stage, "detail": err}
            stage = "gradient"
            if FLOAT32.search(file.read_text()):
                ref, kern = in_float64(file, Path(tmp), name, backend, numba_form=False)
            status, detail = gradient_check(kern, ref, args, names)
        except Exception as e:   # the row records it; nothing is hidden
            first = (str(e).strip().splitlines() or [""])[0]
            first = first.replace(f"{tmp}/float64/", "").replace(f"{tmp}/", "")
            return {"status": "error", "stage": stage, "detail": f"{type(e).__name__}: {first}"}
    return {"status": status, "stage": "gradient", "detail": detail}


# -- the driver ---------------------------------------------------------------------------------
def variants_of(npbench: Path, info: dict, wanted: tuple) -> list[Path]:
    """The benchmark's numba files among the wanted variants, skipping a parallel one whose
    body (decorators aside) is the serial one's."""
    folder = npbench / "npbench" / "benchmarks" / info["relative_path"]
    files, bodies = [], set()
    for v in wanted:
        f = folder / f"{info['module_name']}_numba_{v}.py"
        if f.exists():
            body = DECORATOR.sub("", f.read_text())
            if body not in bodies:
                bodies.add(body)
                files.append(f)
    return files


def run_child(corpus: Path, child: list[str], backend: str | None, timeout: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.outside_check", str(corpus), *child] + \
        (["--backend", backend] if backend else [])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "stage": "", "detail": f"over {timeout} s"}
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "error", "stage": "crash", "detail": f"exit {out.returncode}: {tail}"}
    return json.loads(lines[-1])


def table(rows: list[dict]) -> list[str]:
    lines = ["| kernel | variant | result | stage | detail |", "|---|---|---|---|---|"]
    for r in rows:
        mark = "wrong (!!)" if r["status"] == "wrong" else r["status"]
        detail = r["detail"].replace("|", "\\|")[:160]
        lines.append(f"| {r['kernel']} | {r['variant']} | {mark} | {r['stage']} | {detail} |")
    counts = {s: sum(r["status"] == s for r in rows) for s in
              ("works", "wrong", "error", "flat", "no grad", "timeout", "skip")}
    lines.append("")
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return lines


def benchmarks_info(npbench: Path, only: set[str] | None) -> list[tuple[Path, dict]]:
    found = []
    for f in sorted((npbench / "bench_info").glob("*.json")):
        info = json.loads(f.read_text())["benchmark"]
        if only is None or f.stem in only or info["short_name"] in only:
            found.append((f, info))
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.outside_check")
    p.add_argument("corpus", type=Path, help="a checkout of github.com/spcl/npbench, or a "
                   "folder of numpy-benchmarks files (#setup: and #run: lines)")
    p.add_argument("--only", help="comma-separated benchmark names")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--backend", choices=("numba", "interp"))
    p.add_argument("--timeout", type=int, default=300)
    p.add_argument("--out", type=Path)
    p.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    p.add_argument("--child-numpy", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    corpus = a.corpus.resolve()
    if a.child:
        info = json.loads(a.child[0].read_text())["benchmark"]
        print(json.dumps(check_one(corpus, info, a.child[1], a.backend)))
        return 0
    if a.child_numpy:
        print(json.dumps(check_numpy(a.child_numpy, a.backend)))
        return 0
    only = set(a.only.split(",")) if a.only else None
    cases: list[tuple[str, str, list[str]]] = []
    if (corpus / "bench_info").is_dir():
        for info_file, info in benchmarks_info(corpus, only):
            for variant in variants_of(corpus, info, tuple(a.variants.split(","))):
                cases.append((info_file.stem, variant.stem.rsplit("_", 1)[1],
                              ["--child", str(info_file), str(variant)]))
    else:
        for f in sorted(corpus.glob("*.py")):
            if RUN.search(f.read_text()) and (only is None or f.stem in only):
                cases.append((f.stem, "numpy", ["--child-numpy", str(f)]))
    rows = []
    for kernel, variant, child in cases:
        print(f"{kernel} {variant} ...", file=sys.stderr, flush=True)
        row = run_child(corpus, child, a.backend, a.timeout)
        rows.append({"kernel": kernel, "variant": variant, **row})
        print(f"  {row['status']}: {row['detail']}", file=sys.stderr, flush=True)
    print("\n".join(table(rows)))
    if a.out:
        a.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
