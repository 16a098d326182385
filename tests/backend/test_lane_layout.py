"""Batched forward code reads the caller's tangents in place: the generated numba source of a
width-W forward derivative holds no transposes of its arrays of vectors, tangents whose
memory is lanes last reach it as views (no copy), and (W, *shape) C-contiguous ones are
copied once, back only where the code writes them."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.backend.numba.codegen import generate
from hpcad.backend.numba.lane_layout import lane_layout


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
    back = layout.to_code(args)
    assert back == []
    for k, t in zip((1, 3, 5), tangents):
        assert args[k].shape == (n, width) and np.shares_memory(args[k], t)


def test_lanes_first_tangents_are_copied_back_only_when_written():
    width, n = 4, 5
    layout = lane_layout(_forward(width))
    args = [np.zeros(n), np.ones((width, n)), np.zeros(n), np.ones((width, n)), np.zeros(n),
            np.ones((width, n)), 1.0, np.ones(width)]
    out_tangent = args[5]
    back = layout.to_code(args)
    assert [view.base is out_tangent or np.shares_memory(view, out_tangent)
            for _, view in back] == [True]     # d_out only: d_x and d_y are only read


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
