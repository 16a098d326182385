"""GradBench's saddle eval (hpcad/gradbench/evals/saddle.py), every mode pair, against plain
NumPy descent with the analytic gradients of f(x, y) = |x|^2 - |y|^2 (the inner argmax does
not depend on x, so d/dx max_y f = 2x exactly), on both backends (numba in the slow tier)."""
import numpy as np
import pytest

from hpcad.gradbench.evals import saddle
from tests.ad.harness import INTERP_FAST
from tests.gradbench.descent_reference import saddle_reference as reference


@pytest.mark.parametrize("backend", INTERP_FAST)
@pytest.mark.parametrize("name", ["ff", "fr", "rf", "rr"])
def test_saddle_matches_numpy_descent(name, backend):
    start = np.array([1.0, 1.0])
    got = saddle.variant(name[0], name[1], backend)(start)
    assert np.allclose(got, reference(start), rtol=1e-9, atol=1e-14)


def test_saddle_answers_the_protocol_in_json():
    ev = saddle.FUNCTIONS["rr"]
    out = ev.output(np.array([1.0, 2.0, 3.0, 4.0]))
    assert out == [1.0, 2.0, 3.0, 4.0] and all(type(v) is float for v in out)
    assert np.array_equal(ev.prepare({"start": [1.0, 0.5]}), [1.0, 0.5])
