"""Batched forward code reads the caller's tangents in place: the generated numba source of a
width-W forward derivative holds no transposes of its arrays of vectors, tangents whose
memory is lanes last reach it as views (no copy), and so do (W, *shape) ones of any
strides, through the code's variant for any strides (compiled once); read-only ones are
copied, back only where the code writes them. Every layout gives the derivatives of W
width-1 calls and of central differences, on both backends."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hpcad as ad
from hpcad.backend.numba.codegen import generate
from hpcad.backend.numba.lane_layout import IN_PLACE_BYTES, lane_layout

ROOT = Path(__file__).parent.parent.parent


@ad.kernel
def scaled_square(x, y, out, a):
    for i in range(x.shape[0]):
        out[i] = a * x[i] * x[i] + y[i]


def _forward(width: int):
    args = (np.zeros(5), np.zeros(5), np.zeros(5), 1.0)
    spec = scaled_square.specialize(args)
    return spec.derivative("forward", ("dup", "dup", "dup", "active"), True, width=width)


def test_width_forward_source_has_no_transposes():
    fn = _forward(8)
    source, _ = generate(fn, "f")
    header = next(line for line in source.splitlines() if line.startswith("def f("))
    assert header == "def f(x, d_x, y, d_y, out, d_out, a, d_a, _lanes):"
    assert "np.empty((" not in source       # no lanes-last copy of a shadow


def test_lanes_last_tangents_are_passed_in_place():
    width, n = 4, 5
    layout = lane_layout(_forward(width))
    assert layout.lanes_last
    tangents = [np.moveaxis(np.ones((n, width)), -1, 0) for _ in range(3)]
    args = [np.zeros(n), tangents[0], np.zeros(n), tangents[1], np.zeros(n), tangents[2],
            1.0, np.ones(width)]
    back, strided = layout.to_code(args)
    assert back == [] and strided == ()
    for k, t in zip((1, 3, 5), tangents):
        assert args[k].shape == (n, width) and np.shares_memory(args[k], t)


BIG = IN_PLACE_BYTES // (4 * 8)     # a (4, BIG) float64 array is just large enough


def test_large_lanes_first_tangents_are_passed_in_place_strided():
    """Large (W, n) C-contiguous tangents reach lanes-last code as (n, W) views of the
    caller's memory (each direction one contiguous stream), not as transposed copies; a
    small one is copied (below IN_PLACE_BYTES)."""
    width = 4
    layout = lane_layout(_forward(width))
    tangents = [np.ones((width, BIG)), np.ones((width, BIG - 1)), np.ones((width, BIG))]
    args = [np.zeros(BIG), tangents[0], np.zeros(BIG), tangents[1], np.zeros(BIG),
            tangents[2], 1.0, np.ones(width)]
    back, strided = layout.to_code(args)
    assert strided == (1, 5) and back == []       # d_y, small and only read: no copy back
    for k, t in zip((1, 3, 5), tangents):
        assert args[k].shape == t.shape[::-1] and np.shares_memory(args[k], t) == (k != 3)


def test_read_only_lanes_first_tangents_are_copied_back_only_when_written():
    width = 4
    layout = lane_layout(_forward(width))
    args = [np.zeros(BIG), np.ones((width, BIG)), np.zeros(BIG), np.ones((width, BIG)),
            np.zeros(BIG), np.ones((width, BIG)), 1.0, np.ones(width)]
    args[1].flags.writeable = False
    out_tangent = args[5]
    back, strided = layout.to_code(args)
    assert strided == () and all(args[k].flags.c_contiguous for k in (1, 3, 5))
    assert [np.shares_memory(view, out_tangent) for _, view in back] == [True]


@ad.kernel
def smooth_in_place(u, alpha, steps):
    """An in-place stencil: its tangent is read and written in place."""
    for t in range(steps):
        prev = u[0]
        for i in range(1, u.shape[0] - 1):
            new = u[i] + alpha * (prev - 2.0 * u[i] + u[i + 1])
            prev = u[i]
            u[i] = new
    s = 0.0
    for i in range(u.shape[0]):
        s += u[i] * u[i]
    return s


def _smooth_forward(width: int):
    spec = smooth_in_place.specialize((np.zeros(6), 0.1, 2))
    return spec.derivative("forward", ("dup", "active", "const"), True, width=width)


def test_read_and_written_tangent_gets_a_private_buffer_with_constant_lanes():
    """The code copies a tangent it reads and writes in place into a (*shape, W) buffer of
    its own (constant last extent, which LLVM vectorizes; the caller's array, in place, it
    did not: heat forward at W = 8 ran 2.4x slower) and back; read-only or write-only
    tangents stay in place (scaled_square above)."""
    fn = _smooth_forward(3)
    source, _ = generate(fn, "f")
    assert "def f(u, d_u_in, alpha, d_alpha, steps, _lanes):" in source
    assert "d_u = np.empty((d_u_in.shape[0], 3), np.float64)" in source
    assert "d_u_in[...] = d_u" in source


@pytest.mark.parametrize("backend", ["numba", "interp"])
@pytest.mark.parametrize("lanes_last", [True, False])
def test_in_place_tangents_match_central_differences(backend, lanes_last):
    width, n, alpha, steps = 3, 9, 0.2, 4
    rng = np.random.default_rng(1)
    u0, du, dalpha = rng.standard_normal(n), rng.standard_normal((width, n)), \
        rng.standard_normal(width)
    tangent = np.moveaxis(np.ascontiguousarray(np.moveaxis(du, 0, -1)), -1, 0) \
        if lanes_last else du.copy()
    df = ad.autodiff(smooth_in_place, mode="forward", width=width, backend=backend,
                     activity=(ad.Duplicated, ad.Dual, ad.Const))
    u = u0.copy()
    _, ds = df(u, tangent, alpha, dalpha, steps)
    primal = smooth_in_place.py_func
    h = 1e-6
    for k in range(width):
        up, um = u0 + h * du[k], u0 - h * du[k]
        sp, sm = primal(up, alpha + h * dalpha[k], steps), primal(um, alpha - h * dalpha[k], steps)
        np.testing.assert_allclose(ds[k], (sp - sm) / (2 * h), rtol=1e-6)
        np.testing.assert_allclose(tangent[k], (up - um) / (2 * h), rtol=1e-5, atol=1e-8)


@ad.kernel
def blend(a, b, out, s):
    """Rank 2: reads a and b, writes out (lanes inner: a scalar store in the loop)."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = s * a[i, j] * b[i, j] + math.sin(a[i, j])


def _lanes_last(t):
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(t, 0, -1)), -1, 0)


def _every_other_column(t):
    """t's values in (W, *shape) memory whose rows are not contiguous."""
    wide = np.zeros(t.shape[:-1] + (2 * t.shape[-1],))
    wide[..., ::2] = t
    return wide[..., ::2]


LAYOUTS = {"lanes_last": _lanes_last, "lanes_first": np.copy,
           "strided_rows": _every_other_column,
           "transposed": lambda t: np.ascontiguousarray(t.transpose(0, 2, 1)).transpose(0, 2, 1)}


@pytest.mark.parametrize("backend", ["numba", "interp"])
@pytest.mark.parametrize("layouts", [("lanes_first",) * 3, ("lanes_last",) * 3,
                                     ("strided_rows", "lanes_last", "lanes_first"),
                                     ("transposed", "strided_rows", "transposed")])
def test_batched_tangents_of_any_layout_match_width1_calls_and_differences(backend, layouts):
    """W directions through one call, each tangent in its own memory layout (mixed in one
    call), equal W width-1 calls and central differences; the written tangent reaches the
    caller's array whatever its layout. (The API takes C-contiguous or lanes-last shadows of
    C-contiguous arrays; the compiled code, run directly, takes any strides.)"""
    width, s = 3, 0.7
    shape = (150, 150) if backend == "numba" else (4, 5)    # numba: large enough in place
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    da, db, ds = rng.standard_normal((width,) + shape), rng.standard_normal((width,) + shape), \
        rng.standard_normal(width)
    acts = (ad.Duplicated, ad.Duplicated, ad.Duplicated, ad.Dual)
    one = ad.autodiff(blend, mode="forward", backend=backend, activity=acts)
    fn = blend.specialize((a, b, a, s)).derivative("forward", ("dup", "dup", "dup", "active"),
                                                    True, width=width)
    tangents = [LAYOUTS[name](t) for name, t in zip(layouts, (da, db, np.zeros(da.shape)))]
    blend.run(fn, (a, tangents[0], b, tangents[1], np.zeros(shape), tangents[2], s, ds),
              backend)
    np.testing.assert_array_equal(tangents[0], da)      # read tangents left as they were
    np.testing.assert_array_equal(tangents[1], db)
    h = 1e-6
    for k in range(width):
        dout = np.zeros(shape)
        one(a, da[k].copy(), b, db[k].copy(), np.zeros(shape), dout, s, ds[k])
        np.testing.assert_allclose(tangents[2][k], dout, rtol=1e-13, atol=1e-15)
        plus, minus = np.zeros(shape), np.zeros(shape)
        blend.py_func(a + h * da[k], b + h * db[k], plus, s + h * ds[k])
        blend.py_func(a - h * da[k], b - h * db[k], minus, s - h * ds[k])
        np.testing.assert_allclose(tangents[2][k], (plus - minus) / (2 * h), rtol=1e-6,
                                   atol=1e-8)


def test_the_variant_for_any_strides_is_compiled_once():
    """Calls with lanes-last, lanes-first and mixed tangents run two compiled variants (the
    contiguous one and the one for these arguments in place, its lane loops blocked:
    vector.write_blocked), not one per combination of their strides."""
    width, shape = 2, (200, 200)
    a = np.ones(shape)
    fn = blend.specialize((a, a, a, 1.0)).derivative("forward", ("dup", "dup", "dup", "active"),
                                                      True, width=width)
    for layouts in (("lanes_last",) * 3, ("lanes_first",) * 3,
                    ("strided_rows", "transposed", "lanes_first")):
        tangents = [LAYOUTS[name](np.ones((width,) + shape)) for name in layouts]
        blend.run(fn, (a, tangents[0], a, tangents[1], a.copy(), tangents[2], 1.0,
                       np.ones(width)), "numba")
    compiled = blend.compiled[id(fn)][1]
    assert len(compiled.dispatcher.signatures) == 1
    assert list(compiled.strided) == [(1, 3, 5)] and compiled.strided[(1, 3, 5)] is not None


def test_overlapping_lanes_first_tangents_are_refused():
    """Two tangents that share memory would be read in place while one is written: hpcad
    refuses them (a clear error, never a silently mixed result)."""
    width, n = 2, 6
    acts = (ad.Duplicated, ad.Duplicated, ad.Duplicated, ad.Dual)
    df = ad.autodiff(scaled_square, mode="forward", width=width, activity=acts)
    both = np.ones((width, n))
    with pytest.raises(ad.ArgumentError, match="overlap in memory"):
        df(np.ones(n), both, np.ones(n), np.ones((width, n)), np.zeros(n), both, 1.0,
           np.ones(width))


@ad.kernel
def flat_scale(a, out, s):
    """A reshape of a tangent: numba reshapes C-contiguous arrays only."""
    f = a.reshape(a.shape[0] * a.shape[1])
    for i in range(f.shape[0]):
        out[i] = s * f[i] * f[i]


def test_tangents_numba_takes_contiguous_only_are_copied():
    """Where numba refuses the strided variant (a reshape of a tangent), the large
    (W, *shape) tangents are copied as before, and the derivative is the analytic one."""
    width, shape, s = 3, (200, 200), 1.5
    rng = np.random.default_rng(3)
    a, da, ds = rng.standard_normal(shape), rng.standard_normal((width,) + shape), \
        rng.standard_normal(width)
    out, dout = np.zeros(a.size), np.zeros((width, a.size))
    df = ad.autodiff(flat_scale, mode="forward", width=width,
                     activity=(ad.Duplicated, ad.Duplicated, ad.Dual))
    df(a, da, out, dout, s, ds)
    flat = a.ravel()
    np.testing.assert_allclose(dout, ds[:, None] * flat ** 2
                               + 2 * s * flat * da.reshape(width, -1), rtol=1e-13)
    fn = flat_scale.specialize((a, out, s)).derivative("forward", ("dup", "dup", "active"),
                                                       True, width=width)
    assert flat_scale.compiled[id(fn)][1].strided == {(1, 3): None}


@ad.kernel
def energy(a, b, s):
    e = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            e += s * a[i, j] * b[i, j] + math.sin(a[i, j])
    return e


@pytest.mark.parametrize("backend", ["numba", "interp"])
def test_large_lanes_first_adjoints_match_the_analytic_gradient(backend):
    """Reverse mode, W seeds: (W, *shape) shadows large enough to be accumulated in place
    (numba) hold seed_k times the analytic gradient, added to what they held."""
    width, s = 3, 0.4
    shape = (150, 150) if backend == "numba" else (4, 5)
    rng = np.random.default_rng(4)
    a, b, seed = rng.standard_normal(shape), rng.standard_normal(shape), \
        rng.standard_normal(width)
    held = rng.standard_normal((width,) + shape)
    da, db = held.copy(), np.zeros((width,) + shape)
    df = ad.autodiff(energy, width=width, backend=backend,
                     activity=(ad.Duplicated, ad.Duplicated, ad.Active))
    _, ds = df(a, da, b, db, s, seed=seed)
    for k in range(width):
        np.testing.assert_allclose(da[k], held[k] + seed[k] * (s * b + np.cos(a)),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(db[k], seed[k] * s * a, rtol=1e-12)
        np.testing.assert_allclose(ds[k], seed[k] * np.sum(a * b), rtol=1e-10)


STRIDED_SCRIPT = """
import json
import numpy as np
import hpcad as ad
from hpcad.backend.numba import STATS
from tests.backend.test_lane_layout import scaled_square
n, width = 1 << 17, 4
df = ad.autodiff(scaled_square, mode="forward", width=width,
                 activity=(ad.Duplicated, ad.Duplicated, ad.Duplicated, ad.Dual))
dout = np.zeros((width, n))
df(np.ones(n), np.ones((width, n)), np.ones(n), np.ones((width, n)), np.zeros(n), dout, 2.0,
   np.ones(width))
print(json.dumps(dict(STATS, dout=float(dout.sum()))))
"""


def test_the_strided_variant_is_kept_in_the_disk_cache(tmp_path):
    """A second process with the same HPCAD_CACHE_DIR loads both variants, compiles none."""
    env = dict(os.environ, HPCAD_CACHE_DIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", STRIDED_SCRIPT], capture_output=True,
                             text=True, env=env, timeout=300, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert runs[0]["compiled"] == 2
    assert runs[0]["dout"] == (1.0 + 2 * 2.0 + 1.0) * 4 * (1 << 17)   # d_a x^2 + 2 a x d_x + d_y
    assert runs[1]["compiled"] == 0 and runs[1]["loaded"] == 2
    assert runs[1]["dout"] == runs[0]["dout"]
