"""Runs a generated kernel (grammar.Generated) three ways and compares them: as plain Python
(the undecorated source run by CPython with numpy, `prange` = range), on hpcad's interpreter
and on its numba backend; derivatives by the dot test (jvp against vjp), against central
finite differences of the plain Python function, threaded runs bit for bit, and the gradient
under every checkpointing plan and memory budget against the store-all one. The module
is written to a file so that hpcad reads its source and reports file:line. Every failure
message carries the kernel's source."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import hpcad as ad
from hpcad.checkpoint.plan import Kind, Plan
from tests.generative.profiles import LONG

HEADER = {   # same line count, so file:line is the same in both modules
    "hpcad": "kernel = ad.kernel\n",
    "plain": "kernel = lambda f=None, **how: f or (lambda g: g)\n",
}
IMPORTS = ("import math\n\nimport numba\nimport numpy as np\nfrom mpi4py import MPI\n\n"
           "import hpcad as ad\n")
VALUE_RTOL = 1e-12
DOT_RTOL = 1e-9
FD_RTOL = 1e-5
FD_STEP = 1e-6
TOO_BIG = 1e8          # kernels whose values grow past this are not compared (FD meaningless)
MODULE_DIR = Path(tempfile.gettempdir()) / f"hpcad-generated-{os.getuid()}"


class KernelMismatch(AssertionError):
    """A disagreement; the message starts with the check and ends with the kernel source."""


def load(gen, kind: str):
    """The module of `gen` with kernels as hpcad kernels (kind "hpcad") or plain functions."""
    text = IMPORTS + HEADER[kind] + "\n\n" + gen.source
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    MODULE_DIR.mkdir(exist_ok=True)
    path = MODULE_DIR / f"gen_{kind}_{digest}.py"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    name = f"hpcad_generated_{kind}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def on_numba_too(gen, every: int) -> bool:
    """One kernel in `every` (by a hash of its source: uniform, unlike hypothesis' draws)."""
    return int(hashlib.sha1(gen.source.encode()).hexdigest(), 16) % every == 0


def make_args(gen, rank: int = 0) -> tuple:
    """u, w uniform in [-1, 1] (u with exact zeros when gen.zeros), c, nt, then gen.extras:
    A uniform in [-1, 1] of shape (n, m) (in Fortran order for one seed in three), idx with
    n indices in [0, n), edges (n + 2 pairs of two different nodes in [0, n)), both int32
    for odd seeds; float32 arrays where gen.float32."""
    rng = np.random.default_rng([gen.seed, rank])
    u = rng.uniform(-1.0, 1.0, gen.n)
    w = rng.uniform(-1.0, 1.0, gen.n)
    if gen.zeros:
        u[::3] = 0.0
    more = np.random.default_rng([gen.seed, rank, 3])
    index = np.int32 if gen.seed % 2 else np.int64
    made = {"A": lambda: more.uniform(-1.0, 1.0, (gen.n, gen.m),
                                      ).copy(order="F" if gen.seed % 3 == 0 else "C"),
            "idx": lambda: more.integers(0, gen.n, gen.n).astype(index),
            "edges": lambda: _edges(more, gen.n).astype(index)}
    args = (u, w, gen.c, gen.nt) + tuple(made[name]() for name in gen.extras)
    return tuple(a.astype(np.float32, order="K") if gen.float32 and _floats(a) else a
                 for a in args)


def _edges(rng, n: int):
    a = rng.integers(0, n, n + 2)
    return np.stack([a, (a + rng.integers(1, n, n + 2)) % n], axis=1)


def _floats(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def differentiable(gen) -> tuple:
    """The positions of the float arguments: u, w, c and A where present."""
    return (0, 1, 2) + tuple(4 + k for k, name in enumerate(gen.extras) if name == "A")


def direction(gen, rank: int = 0) -> tuple:
    rng = np.random.default_rng([gen.seed, rank, 7])
    v = [rng.standard_normal(gen.n), rng.standard_normal(gen.n), float(rng.standard_normal()),
         None]
    for name in gen.extras:
        v.append(rng.standard_normal((gen.n, gen.m)) if name == "A" else None)
    if gen.float32:
        v = [x.astype(np.float32) if isinstance(x, np.ndarray) else x for x in v]
    return tuple(v)


def tolerances(gen) -> tuple[float, float, float]:
    """(values, dot test, FD) relative tolerances: float64's, or float32's rounding."""
    return (1e-4, 1e-3, 1e-3) if gen.float32 else (VALUE_RTOL, DOT_RTOL, FD_RTOL)


def copies(args) -> list:
    """Copies of the arrays in their own memory order (a Fortran-order A stays one)."""
    return [a.copy(order="K") if isinstance(a, np.ndarray) else a for a in args]


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0), 1e-300)
    return float(np.max(np.abs(a - b), initial=0.0) / scale)


def fail(gen, what: str) -> None:
    raise KernelMismatch(f"{what}\n--- kernel ({sorted(gen.features)}, n={gen.n}, nt={gen.nt}, "
                         f"c={gen.c}, seed={gen.seed}, zeros={gen.zeros}, m={gen.m}, "
                         f"float32={gen.float32}) ---\n{gen.source}")


@contextmanager
def reporting(gen):
    """Any error of hpcad's (or a crash) while checking `gen` fails with the kernel's source."""
    try:
        yield
    except KernelMismatch:
        raise
    except Exception as e:  # noqa: BLE001 - any crash is a finding, reported with the kernel
        fail(gen, f"{type(e).__name__}: {e}")


def plain_run(gen, args, extra=()):
    """The plain Python loss and the arrays as the kernel left them."""
    plain = load(gen, "plain")
    a = copies(args)
    out = plain.main(*a, *extra)
    return float(out), [x for x in a if isinstance(x, np.ndarray)]


def usable(value) -> bool:
    return bool(np.isfinite(value)) and abs(value) < TOO_BIG


def on_backend(gen, backend: str):
    """`main` as a kernel whose plain calls run on `backend` (one per module and backend)."""
    main = load(gen, "hpcad").main
    key = f"_on_{backend}"
    if not hasattr(main, key):
        setattr(main, key, ad.kernel(backend=backend, parallel=main.parallel)(main.py_func))
    return getattr(main, key)


def check_primal(gen, backend: str, args, extra=()) -> None:
    """(1) the loss and the arrays' final values on `backend` equal plain Python's."""
    ref, ref_arrays = plain_run(gen, args, extra)
    k = on_backend(gen, backend)
    a = copies(args)
    out = k(*a, *extra)
    arrays = [x for x in a if isinstance(x, np.ndarray)]
    errs = [rel(out, ref)] + [rel(x, y) for x, y in zip(arrays, ref_arrays, strict=True)]
    if max(errs) > tolerances(gen)[0]:
        fail(gen, f"primal on {backend} differs from plain Python: loss {out!r} vs {ref!r}, "
                  f"relative errors (loss, arrays) {errs}")


def gradient(gen, backend: str, args, extra=()):
    """d loss / d (u, w, c[, A]) by reverse mode, at the arguments' positions (None at nt
    and the index arrays)."""
    k = load(gen, "hpcad").main
    nums = differentiable(gen)
    g = dict(zip(nums, ad.grad(k, argnums=nums, backend=backend)(*copies(args), *extra),
                 strict=True))
    return tuple(g.get(i) for i in range(max(nums) + 1))


def tangent(gen, backend: str, args, v, extra=()) -> float:
    k = load(gen, "hpcad").main
    _, t = ad.jvp(k, tuple(copies(args)) + tuple(extra), tuple(v) + (None,) * len(extra),
                  backend=backend)
    return float(t)


def pair(g, v) -> float:
    """<g, v> over the float arguments, position by position (v is None at the others)."""
    return float(sum(np.sum(np.asarray(x, dtype=float) * np.asarray(d, dtype=float))
                     for x, d in zip(g, v) if d is not None))


def finite_difference(gen, args, v, h: float, extra=(), ahead: bool = False) -> float:
    """Central FD of plain Python along v (ahead: the one-sided (f(x + h v) - f(x)) / h);
    float32 arguments are widened to float64 first (the same function, rounded less: FD of
    float32 would be noise)."""
    if gen.float32:
        args = [a.astype(np.float64) if _floats(a) else a for a in args]
        v = [d.astype(np.float64) if isinstance(d, np.ndarray) else d for d in v]
    plus = [a + h * d if d is not None else a for a, d in zip(copies(args), v, strict=True)]
    if ahead:
        return (plain_run(gen, plus, extra)[0] - plain_run(gen, copies(args), extra)[0]) / h
    minus = [a - h * d if d is not None else a for a, d in zip(copies(args), v, strict=True)]
    return (plain_run(gen, plus, extra)[0] - plain_run(gen, minus, extra)[0]) / (2 * h)


def smooth_fd(gen, args, v, extra=()) -> float | None:
    """Central FD along v, or None where the kernel is not smooth at args (a branch, a break
    or an extremum flips within the step: FD at h and 10h then disagree; or args sit on a
    kink, such as abs(abs(x - a) - a) at x = 0 exactly, which central differences straddle
    symmetrically at every step: the one-sided FD then disagrees)."""
    fd = finite_difference(gen, args, v, FD_STEP, extra)
    coarse = finite_difference(gen, args, v, 10 * FD_STEP, extra)
    if not np.isfinite(fd) or rel(fd, coarse) > 1e-4:
        return None
    if rel(fd, finite_difference(gen, args, v, FD_STEP, extra, ahead=True)) > 1e-4:
        return None
    return fd


def check_derivatives(gen, backend: str, args) -> None:
    """(2) <J v, 1> by jvp equals <v, grad> by reverse; (3) both match central FD."""
    v = direction(gen)
    _, dot_rtol, fd_rtol = tolerances(gen)
    g = gradient(gen, backend, args)
    rev = pair(g, v)
    fwd = tangent(gen, backend, args, v)
    if not (np.isfinite(rev) and np.isfinite(fwd)) or rel(rev, fwd) > dot_rtol:
        fail(gen, f"dot test on {backend}: jvp {fwd!r} vs <v, grad> {rev!r} "
                  f"(relative {rel(rev, fwd):.3g})")
    fd = smooth_fd(gen, args, v)
    if fd is not None and rel(rev, fd) > fd_rtol and abs(rev - fd) > fd_rtol * 1e-2:
        fail(gen, f"gradient on {backend} vs central FD: <v, grad> {rev!r} vs FD {fd!r} "
                  f"(relative {rel(rev, fd):.3g})")


def check_repeatable(gen, args, runs: int = 3) -> None:
    """(4) threaded numba runs of the primal and the gradient repeat bit for bit."""
    k = on_backend(gen, "numba")
    first = None
    for _ in range(runs):
        out = (k(*copies(args)),) + tuple(gradient(gen, "numba", args))
        flat = np.concatenate([np.ravel(np.asarray(x, dtype=float)) for x in out
                               if x is not None])
        if first is None:
            first = flat
        elif not np.array_equal(flat.view(np.int64), first.view(np.int64)):
            fail(gen, f"threaded numba runs differ bitwise: {first} vs {flat}")


# --- (5) the planner never changes the answer -------------------------------------------------

# Plans pinned on the kernel (hpcad.checkpoint; lean, restart and disk set on the pinned plan),
# each compared with store-all: segments, revolve plain and lean, restarting (no tape), the
# snapshots in files, and the store-all tape with other intermediates. A kernel without a
# time loop hpcad can checkpoint stores all (a warning), and a plan it cannot run is refused.
PLANS = (Plan(Kind.SEGMENTS, 2), Plan(Kind.SEGMENTS, 3), Plan(Kind.REVOLVE, 1),
         Plan(Kind.REVOLVE, 3), Plan(Kind.REVOLVE, 2, lean=True, intermediates="recompute"),
         Plan(Kind.REVOLVE, 2, restart=True), Plan(Kind.REVOLVE, 3, lean=True, restart=True),
         Plan(Kind.REVOLVE, 2, lean=True, disk=True),
         Plan(Kind.REVOLVE, 2, restart=True, disk=True, intermediates="store"),
         Plan(intermediates="recompute"), Plan(intermediates="store"))
NUMBA_PLANS = (PLANS[1], PLANS[4], PLANS[8])    # each plan compiles a derivative on numba
# budgets as fractions of the store-all tape: between store-all and tight (where the planner
# checkpoints, recomputes, puts snapshots in files or refuses)
BUDGET_FRACTIONS = (0.75, 0.5, 0.25, 0.1, 0.02)
NUMBA_BUDGET_FRACTIONS = (0.5, 0.1)
PLAN_RTOL = 1e-12     # the bar where recomputation is not the same operations (numba's sums)
# a refusal must say what to do; these words mark an error that is hpcad's, not a refusal
NOT_A_REFUSAL = ("internal", "please report")
STORES_ALL = "has no time loop hpcad can checkpoint"    # a pinned plan's warning: stores all


def planned(main, plan: Plan | None = None, budget: int | None = None):
    """main under a pinned plan, or under a memory budget (the planner chooses)."""
    if budget is not None:
        return ad.checkpoint(main, budget=budget)
    if plan is None or not plan.checkpoints:
        return ad.checkpoint(main, "store_all", intermediates=(plan or Plan()).intermediates)
    k = ad.checkpoint(main, plan.snapshots, schedule="revolve" if plan.kind is Kind.REVOLVE
                      else "segments")
    k.pinned = plan
    return k


def planned_run(k, backend: str, args, extra=()):
    """(adjoints of u, w and c; u and w as the call left them) by the in-place reverse
    derivative, every float argument active."""
    a = copies(args)
    du, dw = np.zeros_like(a[0]), np.zeros_like(a[1])
    activity = (ad.Duplicated, ad.Duplicated, ad.Active) + (ad.Const,) * (1 + len(extra))
    _, dc = ad.autodiff(k, activity=activity, backend=backend)(a[0], du, a[1], dw, *a[2:],
                                                                 *extra)
    return (du, dw, float(dc)), (a[0], a[1])


def store_all_bytes(k_store, backend: str, args, extra=()) -> int | None:
    """The store-all tape's estimated bytes (a budget planned for it), None where the tape
    cannot be sized before it runs."""
    k = ad.checkpoint(k_store, budget=10**15)
    try:
        planned_run(k, backend, args, extra)
    except ad.HpcadError:
        return None
    return None if k.last_policy is None else k.last_policy.estimate


def plan_outcomes(main, backend: str, args, extra=(), plans=None, fractions=None):
    """For each plan and budget (default: PLANS and BUDGET_FRACTIONS, fewer on numba):
    (what, the plan chosen or None, the gradient or the refusal, the arrays after the call),
    and the store-all reference (gradient, arrays), for kernel `main`; (None, []) where the
    store-all gradient itself is refused with an HpcadError (the primal checks report it:
    check_derivatives)."""
    numba = backend == "numba"
    plans = (NUMBA_PLANS if numba else PLANS) if plans is None else plans
    fractions = (NUMBA_BUDGET_FRACTIONS if numba else BUDGET_FRACTIONS) if fractions is None \
        else fractions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ad.HpcadWarning)   # "no time loop: stores all"
        try:
            ref = planned_run(planned(main), backend, args, extra)
        except ad.HpcadError as e:   # refused store-all: nothing to compare with
            if any(w in str(e).lower() for w in NOT_A_REFUSAL):
                raise
            return None, []
        runs = [(p.describe() + f" [{p.intermediates}]", planned(main, p)) for p in plans]
        total = store_all_bytes(main, backend, args, extra) if fractions else None
        runs += [(f"budget {max(1, int(f * total))} bytes ({f} of store-all)",
                  planned(main, budget=max(1, int(f * total)))) for f in fractions if total]
        out = []
        for what, k in runs:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ad.HpcadWarning)
                try:
                    got = planned_run(k, backend, args, extra)
                except ad.HpcadError as e:
                    if any(w in str(e).lower() for w in NOT_A_REFUSAL):
                        raise
                    out.append((what, None, e, None))
                    continue
            chosen = k.last_policy.plan if k.last_policy is not None else k.pinned
            if any(STORES_ALL in str(w.message) for w in caught):
                chosen = Plan(intermediates=chosen.intermediates)
            out.append((what, chosen, got[0], got[1]))
    return ref, out


def plan_differences(ref, out, backend: str) -> list[str]:
    """What differs from store-all in plan_outcomes' results: the gradient beyond PLAN_RTOL,
    the arrays' final values at all."""
    (grads, arrays), found = ref, []
    for what, chosen, got, after in out:
        if chosen is None:
            continue
        errs = [rel(a, b) for a, b in zip(got, grads, strict=True)]
        if max(errs) > PLAN_RTOL:
            found.append(f"gradient on {backend} under {what} (planned: {chosen.describe()}, "
                         f"intermediates {chosen.intermediates}) differs from store-all's: "
                         f"relative errors (u, w, c) {errs}")
        if not all(np.array_equal(a, b) for a, b in zip(after, arrays, strict=True)):
            found.append(f"arrays after the gradient on {backend} under {what} differ from "
                         f"store-all's: {after} vs {arrays}")
    return found


def numba_plan_share(gen) -> dict:
    """The plans and budget fractions a kernel's planner check compiles with numba (each a
    derivative): all of NUMBA_PLANS and NUMBA_BUDGET_FRACTIONS in a long run; in the CI
    sample one of each, chosen by a hash of the kernel's source (every plan runs on numba in
    tests/checkpoint/test_plans_agree.py), the interpreter running them all."""
    if LONG:
        return {}
    k = int(hashlib.sha1(gen.source.encode()).hexdigest(), 16) // 7
    return {"plans": (NUMBA_PLANS[k % len(NUMBA_PLANS)],),
            "fractions": (NUMBA_BUDGET_FRACTIONS[k % len(NUMBA_BUDGET_FRACTIONS)],)}


def check_plans(gen, backend: str, args, extra=(), plans=None, fractions=None) -> list:
    """(5) the gradient and the arrays' final values under every plan and budget equal the
    store-all ones (to PLAN_RTOL; the arrays bit for bit); a refusal is an HpcadError.
    Returns the outcomes (plan_outcomes)."""
    ref, out = plan_outcomes(load(gen, "hpcad").main, backend, args, extra, plans, fractions)
    found = plan_differences(ref, out, backend)
    if found:
        fail(gen, "\n".join(found))
    return out


def check_refused(gen, backend: str, args) -> None:
    """(6) a kernel hpcad must refuse (gen.refused: words of the error) is refused, with an
    hpcad error naming main's file:line, not run."""
    k = on_backend(gen, backend)
    try:
        out = k(*copies(args))
    except ad.HpcadError as e:
        if gen.refused in str(e) and ".py:" in str(e):
            return
        fail(gen, f"refused on {backend} without saying '{gen.refused}' or file:line: {e}")
    fail(gen, f"ran on {backend} (loss {out!r}) though it must be refused: {gen.refused}")
