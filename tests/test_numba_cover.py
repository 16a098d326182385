"""tests/numba_cover.py: the traced features of a case's numba source, and the greedy cover
that names the cases worth compiling."""
import math

import numpy as np

import hpcad as ad
from tests.ad.kernels import Case
from tests.numba_cover import case_features, cover


def test_cover_takes_the_kept_first_then_what_adds_most():
    features = {"a": {1, 2, 3}, "b": {3, 4}, "c": {4}, "d": {1}}
    assert cover(features, ["c"]) == [("c", {4}), ("a", {1, 2, 3})]
    assert [name for name, _ in cover(features, [])] == ["a", "b"]


@ad.kernel
def _sines(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += math.sin(x[i])
    return s


@ad.kernel
def _squares(x):
    s = 0.0
    for i in ad.prange(x.shape[0]):
        s += x[i] * x[i]
    return s


def test_features_name_the_code_generation_and_the_calls_of_each_case():
    sines = Case("sines", _sines, lambda rng: (rng.standard_normal(5),))
    squares = Case("squares", _squares, lambda rng: (rng.standard_normal(5),))
    got = case_features(sines, [1], None)
    assert ("calls", "math.sin") in got and ("calls", "math.cos") in got   # and its derivative
    assert any(f == "codegen.py" for f, _ in got)
    parallel = case_features(squares, [1], None)
    assert ("calls", "parallel=PARALLEL") in parallel and ("calls", "parallel=PARALLEL") not in got
    assert any(f == "parallel.py" for f, _ in parallel - got)
    assert case_features(sines, [1], "primal") < got
    wide = case_features(sines, [3], "derivatives")
    assert any(f == "vector.py" for f, _ in wide)
    assert [name for name, _ in cover({"sines": got, "squares": parallel}, ["sines"])] == \
        ["sines", "squares"]
    assert np.isfinite(_sines(np.ones(3)))
