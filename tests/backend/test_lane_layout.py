"""Batched forward code reads the caller's tangents in place: the generated numba source of a
width-W forward derivative holds no transposes of its arrays of vectors, tangents whose
memory is lanes last reach it as views (no copy), and (W, *shape) C-contiguous ones are
copied once, back only where the code writes them."""
import numpy as np

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
