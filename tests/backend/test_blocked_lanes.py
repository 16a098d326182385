"""Blocked lane loops (ir/lanes.py blocked_lane_loops, backend/numba/vector.py write_blocked):
the code's variant for (W, *shape) tangents read in place runs each innermost loop that may
so in blocks, its scalar work once per block, then each lane's work over the block. Which
loops may (and which keep the current code: branches, reversed loops, parallel loops,
tangents the code reads and writes, which it copies lanes last), and the derivatives of
kernels with stores, reductions, loop-carried values, indirect gathers and scatters,
recurrences through memory, nests and partial blocks, at several widths in both tangent
layouts, against W width-1 calls and central differences."""
import math

import numpy as np
import pytest

import hpcad as ad
from hpcad.backend.numba.codegen import generate
from hpcad.backend.numba.lane_layout import IN_PLACE_BYTES
from hpcad.backend.numba.vector import BLOCK
from hpcad.ir.core import walk
from hpcad.ir.lanes import blocked_lane_loops, is_lane_array
from tests.ad.width_check import check_forward, check_reverse, lane_error

N = 16 * BLOCK + 17     # full blocks and a partial one; at W = 4 read in place


@ad.kernel
def axpy_square(x, y, out, a):
    for i in range(x.shape[0]):
        out[i] = a * x[i] * x[i] + y[i]
    return a * y[x.shape[0] - 1]


@ad.kernel
def dot_and_scale(x, y, out, a):
    """A reduction (a carried vector) beside a store."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * y[i]
        out[i] = a * y[i]
    return s


@ad.kernel
def carried(x, out, a):
    """A value carried from iteration to iteration (read by the lanes)."""
    prev = 0.0
    for i in range(1, x.shape[0]):
        out[i] = a * x[i - 1] + x[i] * prev
        prev = math.sin(x[i])
    return prev


@ad.kernel
def recurrence(x, out, a):
    """Loop-carried through memory: out[i] reads out[i - 1] (the code reads and writes
    out's tangent: lanes last, not blocked)."""
    out[0] = x[0]
    for i in range(1, x.shape[0]):
        out[i] = a * out[i - 1] + x[i] * x[i - 1]
    return out[x.shape[0] - 1]


@ad.kernel
def gather(x, idx, out):
    """Indirect reads."""
    for i in range(x.shape[0]):
        out[i] = x[idx[i]] * x[i]
    return x[0]


@ad.kernel
def scatter(x, idx, acc):
    """A scatter with repeated indices (reads and writes acc's tangent: not blocked)."""
    for i in range(x.shape[0]):
        acc[idx[i]] += x[i] * x[i]
    return acc[0]


@ad.kernel
def offset_rows(u, out, c):
    """A 2-D nest, its inner loop from 1 (not a multiple of the block)."""
    for i in range(u.shape[0]):
        for j in range(1, u.shape[1]):
            out[i, j] = c * u[i, j] * u[i, j - 1]
    return c * u[0, 1]


@ad.kernel
def branchy(x, out):
    """A branch in the body: the loop keeps its lanes inner."""
    for i in range(x.shape[0]):
        if x[i] > 0.0:
            out[i] = x[i] * x[i]
        else:
            out[i] = -x[i]
    return out[0]


def _rng_args(name, rng):
    n = N
    if name == "axpy_square":
        return axpy_square, (rng.standard_normal(n), rng.standard_normal(n), np.zeros(n), 0.7)
    if name == "dot_and_scale":
        return dot_and_scale, (rng.standard_normal(n), rng.standard_normal(n), np.zeros(n), 1.3)
    if name in ("carried", "recurrence"):
        return KERNELS[name], (rng.standard_normal(n), np.zeros(n), 0.5)
    if name in ("gather", "scatter"):
        idx = rng.integers(0, n // 3, n).astype(np.int64)
        return KERNELS[name], (rng.standard_normal(n), idx, np.zeros(n))
    if name == "offset_rows":
        shape = (8, 2 * BLOCK + 52)
        return offset_rows, (rng.standard_normal(shape), np.zeros(shape), 0.9)
    return branchy, (rng.standard_normal(n), np.zeros(n))


BLOCKED = ("axpy_square", "dot_and_scale", "carried", "gather", "offset_rows")
KEPT = ("branchy", "recurrence", "scatter")
KERNELS = {"carried": carried, "recurrence": recurrence, "gather": gather, "scatter": scatter}


def _forward_fn(kernel, args, width):
    acts = tuple("dup" if isinstance(a, np.ndarray) and a.dtype.kind == "f" else
                 "active" if isinstance(a, float) else "const" for a in args)
    return kernel.specialize(args).derivative("forward", acts, True, width=width)


@pytest.mark.parametrize("name", BLOCKED + KEPT)
def test_which_loops_are_blocked(name):
    """Every innermost element loop of the kernels above may be blocked but the one with a
    branch in its body; the variant for in-place tangents writes it so where the code
    keeps none of the loop's tangents lanes last (it copies a tangent it reads and
    writes), the contiguous variant never."""
    kernel, args = _rng_args(name, np.random.default_rng(0))
    fn = _forward_fn(kernel, args, 4)
    loops = blocked_lane_loops(fn.body)
    inner = [op for op in walk(fn.body) if op.name == "scf.for"
             and not any(o.name == "scf.for" for o in walk(op.regions[0]))
             and any(o.name == "mem.load" for o in walk(op.regions[0]))]
    assert (len(loops) >= 1) == (name != "branchy")
    assert loops <= set(inner)
    tangents = tuple(k for k, a in enumerate(fn.args) if is_lane_array(a))
    blocked, _ = generate(fn, "f", blocking=tangents)
    plain, _ = generate(fn, "f")
    assert ("block_end" in blocked) == (name in BLOCKED)
    assert "block_end" not in plain


def test_reverse_loops_and_parallel_functions_keep_their_lanes_inner():
    """A reversed loop (an adjoint sweep) and a function with a parallel loop: not blocked."""
    args = (np.zeros(8), np.zeros(8), np.zeros(8), 1.0)
    rev = axpy_square.specialize(args).derivative("reverse", ("dup", "dup", "dup", "active"),
                                                  True, width=4)
    assert not any(op in blocked_lane_loops(rev.body) for op in walk(rev.body)
                   if op.name == "scf.for" and op.attrs.get("reverse"))

    @ad.kernel(parallel=True)
    def par_square(x, out):
        for i in ad.prange(x.shape[0]):
            out[i] = x[i] * x[i]
    fn = _forward_fn(par_square, (np.zeros(8), np.zeros(8)), 4)
    assert blocked_lane_loops(fn.body) == set()


def _lanes_last(t):
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(t, 0, -1)), -1, 0)


@pytest.mark.parametrize("width", [4, 15])
@pytest.mark.parametrize("name", BLOCKED + KEPT)
def test_blocked_forward_equals_width1_calls(name, width):
    """(W, *shape) tangents, large enough to be read in place by the blocked variant, give
    each lane's width-1 derivative (forward), and the reverse at the same width is
    unchanged."""
    rng = np.random.default_rng(1)
    kernel, args = _rng_args(name, rng)
    assert width * args[0].nbytes >= IN_PLACE_BYTES
    check_forward(kernel, args, width, "numba", rng)
    compiled = [c for fn, c in kernel.compiled.values() if c.strided and fn.name.endswith("fwd")]
    assert compiled and all(bool(c.blocked) == (name in BLOCKED) for c in compiled)
    if width == 4:
        check_reverse(kernel, args, width, "numba", rng, rtol=1e-10)


@pytest.mark.parametrize("lanes_last", [False, True])
def test_blocked_forward_matches_central_differences(lanes_last):
    """dot_and_scale at W = 5, tangents in either layout: the returned sum's and the written
    array's directional derivatives are central differences of the primal."""
    width, h = 5, 1e-6
    rng = np.random.default_rng(2)
    x, y, a = rng.standard_normal(N), rng.standard_normal(N), 1.3
    dx, dy, da = rng.standard_normal((width, N)), rng.standard_normal((width, N)), \
        rng.standard_normal(width)
    place = _lanes_last if lanes_last else np.copy
    tx, ty, tout = place(dx), place(dy), place(np.zeros((width, N)))
    df = ad.autodiff(dot_and_scale, mode="forward", width=width,
                     activity=(ad.Duplicated, ad.Duplicated, ad.Duplicated, ad.Dual))
    s, ds = df(x.copy(), tx, y.copy(), ty, np.zeros(N), tout, a, da)
    for k in range(width):
        plus, minus = np.zeros(N), np.zeros(N)
        sp = dot_and_scale.py_func(x + h * dx[k], y + h * dy[k], plus, a + h * da[k])
        sm = dot_and_scale.py_func(x - h * dx[k], y - h * dy[k], minus, a - h * da[k])
        assert lane_error(ds[k], (sp - sm) / (2 * h)) < 1e-6
        np.testing.assert_allclose(tout[k], (plus - minus) / (2 * h), rtol=1e-6, atol=1e-8)
