"""Benchmark: five kernels written in NumPy style (hpcad/kernels/numpy_style.py), each
differentiated as written. Per kernel, measured in one run (medians after a warm-up):

- hpcad's reverse gradient / numba.njit's primal of the same source;
- for the stencils, the same ratio for the same kernel written as explicit loops (below);
  target: NumPy style within 1.2x of the loop version's ratio. numba's primal of the NumPy
  source allocates a temporary per operation and the loops' does not, so the row also gives
  hpcad's NumPy-style gradient time over its loop version's (same arithmetic);
- jax.grad (jit-compiled, after a warm-up, block_until_ready) of the same program in
  jax.numpy (benchmarks/numpy_style_jax.py) / hpcad's gradient; targets: above 1 on every
  stencil (hpcad faster), at least 1/1.5 on the matrix products. Without jax installed that
  column stays empty and the row says so.

A kernel hpcad cannot run yet gets a row with the reason instead of its figures. Each row
also says how far hpcad's gradient is from JAX's (and from the loop version's)."""
from __future__ import annotations

import numba
import numpy as np

import hpcad as ad
from benchmarks.common import jax_available, median_time
from hpcad.kernels.numpy_style import KERNELS

STENCILS = ("jacobi_2d", "heat_3d", "fdtd_2d")
PRODUCTS = ("gemm", "atax")
# name -> (kernel, n, time steps or None): tens of ms of numba primal each
SIZES = {"jacobi_2d 700^2 x10": ("jacobi_2d", 700, 10),
         "heat_3d 80^3 x5": ("heat_3d", 80, 5),
         "fdtd_2d 700^2 x10": ("fdtd_2d", 700, 10),
         "gemm 500^2": ("gemm", 500, None),
         "atax 2000^2": ("atax", 2000, None)}


# -- the stencils as explicit loops (the same arithmetic, the same loss) ----------------------
def jacobi_2d_loops(A, B, tsteps):
    n, m = A.shape
    for _step in range(tsteps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                B[i, j] = 0.2 * (A[i, j] + A[i, j - 1] + A[i, j + 1] + A[i + 1, j]
                                 + A[i - 1, j])
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                A[i, j] = 0.2 * (B[i, j] + B[i, j - 1] + B[i, j + 1] + B[i + 1, j]
                                 + B[i - 1, j])
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += A[i, j] * A[i, j]
    return s


def heat_3d_loops(A, B, tsteps):
    n, m, p = A.shape
    for _step in range(tsteps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                for k in range(1, p - 1):
                    B[i, j, k] = (0.125 * (A[i + 1, j, k] - 2.0 * A[i, j, k] + A[i - 1, j, k])
                                  + 0.125 * (A[i, j + 1, k] - 2.0 * A[i, j, k]
                                             + A[i, j - 1, k])
                                  + 0.125 * (A[i, j, k + 1] - 2.0 * A[i, j, k]
                                             + A[i, j, k - 1])
                                  + A[i, j, k])
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                for k in range(1, p - 1):
                    A[i, j, k] = (0.125 * (B[i + 1, j, k] - 2.0 * B[i, j, k] + B[i - 1, j, k])
                                  + 0.125 * (B[i, j + 1, k] - 2.0 * B[i, j, k]
                                             + B[i, j - 1, k])
                                  + 0.125 * (B[i, j, k + 1] - 2.0 * B[i, j, k]
                                             + B[i, j, k - 1])
                                  + B[i, j, k])
    s = 0.0
    for i in range(n):
        for j in range(m):
            for k in range(p):
                s += A[i, j, k] * A[i, j, k]
    return s


def fdtd_2d_loops(ex, ey, hz, fict):
    nx, ny = ex.shape
    for t in range(fict.shape[0]):
        for j in range(ny):
            ey[0, j] = fict[t]
        for i in range(1, nx):
            for j in range(ny):
                ey[i, j] = ey[i, j] - 0.5 * (hz[i, j] - hz[i - 1, j])
        for i in range(nx):
            for j in range(1, ny):
                ex[i, j] = ex[i, j] - 0.5 * (hz[i, j] - hz[i, j - 1])
        for i in range(nx - 1):
            for j in range(ny - 1):
                hz[i, j] = hz[i, j] - 0.7 * (ex[i, j + 1] - ex[i, j] + ey[i + 1, j] - ey[i, j])
    s = 0.0
    for i in range(nx):
        for j in range(ny):
            s += hz[i, j] * hz[i, j] + 0.5 * ex[i, j] * ey[i, j]
    return s


LOOPS = {"jacobi_2d": jacobi_2d_loops, "heat_3d": heat_3d_loops, "fdtd_2d": fdtd_2d_loops}


# -- inputs and derivatives --------------------------------------------------------------------
def make_args(name: str, n: int, steps: int | None) -> tuple:
    """The kernel's own inputs at size n, with `steps` time steps where it has them."""
    args = KERNELS[name].make_inputs(n, 0)
    if steps is None:
        return args
    if name == "fdtd_2d":       # one step per source value
        return args[:-1] + (np.random.default_rng(1).random(steps),)
    return args[:-1] + (steps,)


def _activity(args: tuple, argnums: tuple) -> list:
    """Every float array carries a shadow (it may be written); float scalars asked for are
    active; the rest constant."""
    return [ad.Duplicated if isinstance(a, np.ndarray) and a.dtype.kind == "f" else
            ad.Active if isinstance(a, float) and i in argnums else ad.Const
            for i, a in enumerate(args)]


def reverse(fn, args: tuple, argnums: tuple):
    """(call, setup, grads): hpcad's in-place reverse derivative of fn at args; setup makes
    fresh inputs and zero shadows; grads(flat, out) picks the gradients w.r.t. argnums."""
    activity = _activity(args, argnums)
    df = ad.autodiff(ad.kernel(fn), activity=activity)

    def setup():
        flat = []
        for a, act in zip(args, activity):
            flat.append(a.copy() if isinstance(a, np.ndarray) else a)
            if act is ad.Duplicated:
                flat.append(np.zeros_like(a))
        return tuple(flat)

    def grads(flat, out) -> list:
        pos, scalars, found = 0, iter(out[1:]), {}
        for i, act in enumerate(activity):
            if act is ad.Duplicated:
                found[i] = flat[pos + 1]
            elif act is ad.Active:
                found[i] = float(next(scalars))
            pos += 2 if act is ad.Duplicated else 1
        return [found[i] for i in argnums]

    return df, setup, grads


def primal_time(fn, args: tuple) -> float:
    primal = numba.njit(fn, error_model="numpy")
    return median_time(primal, lambda: tuple(a.copy() if isinstance(a, np.ndarray) else a
                                             for a in args))


def gradient(fn, args: tuple, argnums: tuple) -> tuple[float, list]:
    """(median seconds, gradients w.r.t. argnums) of hpcad's reverse derivative."""
    df, setup, grads = reverse(fn, args, argnums)
    flat = setup()
    got = grads(flat, df(*flat))
    return median_time(df, setup), got


def jax_gradient(name: str, args: tuple) -> tuple[float, list]:
    """(median seconds, gradients) of jax.grad of the jax.numpy version (jit-compiled; the
    warm-up call compiles it), its inputs made jax arrays before timing."""
    import jax.numpy as jnp

    from benchmarks.numpy_style_jax import jax_grad
    g = jax_grad(name, args)
    on_device = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
    return median_time(lambda: g(*on_device)), [np.asarray(x) for x in g(*on_device)]


def difference(got: list, want: list) -> float:
    """Largest difference relative to the largest entry, over all gradients."""
    return max(float(np.max(np.abs(np.asarray(g) - np.asarray(w))))
               / max(float(np.max(np.abs(w))), 1e-300) for g, w in zip(got, want))


def first_line(e: Exception) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"


def run(spec) -> dict:
    name, n, steps = spec
    kernel = KERNELS[name]
    args = make_args(name, n, steps)
    row: dict = {"kernel": name, "kind": "stencil" if name in STENCILS else "product",
                 "size": [n, steps], "numba_primal_s": primal_time(kernel.function, args)}
    try:
        row["hpcad_grad_s"], grads = gradient(kernel.function, args, kernel.argnums)
        row["grad_over_primal"] = row["hpcad_grad_s"] / row["numba_primal_s"]
    except Exception as e:   # a construct hpcad does not take yet: the row says which
        row["hpcad_error"] = first_line(e)
        grads = None
    if name in LOOPS:
        row.update(_loop_columns(name, args, kernel.argnums, grads))
        if grads is not None:
            row["ratio_over_loop_ratio"] = row["grad_over_primal"] / row["loop_grad_over_primal"]
            row["grad_over_loop_grad"] = row["hpcad_grad_s"] / row["loop_hpcad_grad_s"]
    if not jax_available():
        row["jax_note"] = "jax not installed"
        return row
    row["jax_grad_s"], jax_grads = jax_gradient(name, args)
    if grads is not None:
        row["jax_over_hpcad"] = row["jax_grad_s"] / row["hpcad_grad_s"]
        row["grad_vs_jax"] = difference(grads, jax_grads)
    return row


def _loop_columns(name: str, args: tuple, argnums: tuple, grads) -> dict:
    loops = LOOPS[name]
    out = {"loop_numba_primal_s": primal_time(loops, args)}
    out["loop_hpcad_grad_s"], loop_grads = gradient(loops, args, argnums)
    out["loop_grad_over_primal"] = out["loop_hpcad_grad_s"] / out["loop_numba_primal_s"]
    if grads is not None:
        out["grad_vs_loops"] = difference(grads, loop_grads)
    return out


# -- the table ---------------------------------------------------------------------------------
HEADER = ("case", "numba primal ms", "hpcad grad ms", "grad/primal", "loops: grad/primal",
          "NumPy/loops ratio (<= 1.2)", "grad NumPy/loops", "JAX grad ms",
          "JAX/hpcad (stencil > 1, product >= 0.67)", "grad vs JAX", "note")


def _ms(x) -> str:
    return "-" if x is None else f"{1e3 * x:.2f}"


def _x(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _note(r: dict) -> str:
    notes = [r[k] for k in ("hpcad_error", "jax_note") if k in r]
    if "grad_vs_loops" in r:
        notes.append(f"grad vs loops {r['grad_vs_loops']:.0e}")
    return "; ".join(notes).replace("|", "\\|")


def numpy_style_lines(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        g = r.get
        cells = (r["name"], _ms(g("numba_primal_s")), _ms(g("hpcad_grad_s")),
                 _x(g("grad_over_primal")), _x(g("loop_grad_over_primal")),
                 _x(g("ratio_over_loop_ratio")), _x(g("grad_over_loop_grad")),
                 _ms(g("jax_grad_s")), _x(g("jax_over_hpcad")),
                 "-" if g("grad_vs_jax") is None else f"{r['grad_vs_jax']:.0e}", _note(r))
        lines.append("| " + " | ".join(cells) + " |")
    return lines
