"""Runs a generated kernel (grammar.Generated) three ways and compares them: as plain Python
(the undecorated source run by CPython with numpy, `prange` = range), on hpcad's interpreter
and on its numba backend; derivatives by the dot test (jvp against vjp), against central
finite differences of the plain Python function, and threaded runs bit for bit. The module
is written to a file so that hpcad reads its source and reports file:line. Every failure
message carries the kernel's source."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import hpcad as ad

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


def finite_difference(gen, args, v, h: float, extra=()) -> float:
    """Central FD of plain Python along v; float32 arguments are widened to float64 first
    (the same function, rounded less: FD of float32 would be noise)."""
    if gen.float32:
        args = [a.astype(np.float64) if _floats(a) else a for a in args]
        v = [d.astype(np.float64) if isinstance(d, np.ndarray) else d for d in v]
    plus = [a + h * d if d is not None else a for a, d in zip(copies(args), v, strict=True)]
    minus = [a - h * d if d is not None else a for a, d in zip(copies(args), v, strict=True)]
    return (plain_run(gen, plus, extra)[0] - plain_run(gen, minus, extra)[0]) / (2 * h)


def smooth_fd(gen, args, v, extra=()) -> float | None:
    """Central FD along v, or None where the kernel is not smooth at args (a branch, a break
    or an extremum flips within the step: FD at h and 10h then disagree)."""
    fd = finite_difference(gen, args, v, FD_STEP, extra)
    coarse = finite_difference(gen, args, v, 10 * FD_STEP, extra)
    if not np.isfinite(fd) or rel(fd, coarse) > 1e-4:
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


def check_refused(gen, backend: str, args) -> None:
    """(5) a kernel hpcad must refuse (gen.refused: words of the error) is refused, with an
    hpcad error naming main's file:line, not run."""
    k = on_backend(gen, backend)
    try:
        out = k(*copies(args))
    except ad.HpcadError as e:
        if gen.refused in str(e) and ".py:" in str(e):
            return
        fail(gen, f"refused on {backend} without saying '{gen.refused}' or file:line: {e}")
    fail(gen, f"ran on {backend} (loss {out!r}) though it must be refused: {gen.refused}")
