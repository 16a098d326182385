"""The numba writer passes an index unsigned where it is provably non-negative and LLVM could
not see it: numba's negative-index wraparound branch otherwise stays in the loop and keeps it
scalar. A range() variable from a constant start stays signed (LLVM proves it non-negative
itself); one from a computed start, as in the triangular loop `range(c + 1, d)`, is unsigned.
Results are the interpreter's either way."""
import re

import numpy as np

import hpcad as ad
from hpcad.backend.numba.codegen import generate


@ad.kernel
def lower_times(lt, v, out):
    d = v.shape[0]
    for c in range(d):
        for r in range(c + 1, d):
            out[r] += lt[c, r] * v[c]
    for j in range(1, d):
        out[j] += v[j - 1]


def source(kernel, *args) -> str:
    fn = kernel.specialize(args).primal
    return generate(fn, fn.name)[0]


def test_a_variable_from_a_computed_start_indexes_unsigned():
    rng = np.random.default_rng(0)
    lt, v = rng.random((5, 5)), rng.random(5)
    code = source(lower_times, lt, v, np.zeros(5))
    inner = re.search(r"for (\w+) in range\([a-z_]\w*, d\):", code).group(1)
    assert f"[np.uint64({inner})]" in code, code
    after = code.split("for j in range(1, d):")[1]
    assert "np.uint64(j)" not in after, code      # a constant start: left to LLVM


def test_results_are_the_interpreters():
    rng = np.random.default_rng(1)
    lt, v = rng.random((6, 6)), rng.random(6)
    out_numba, out_interp = np.zeros(6), np.zeros(6)
    lower_times(lt, v, out_numba)
    ad.kernel(lower_times.py_func, backend="interp")(lt, v, out_interp)
    expected = np.triu(lt, 1).T @ v + np.concatenate([[0.0], v[:-1]])
    np.testing.assert_allclose(out_numba, expected, rtol=1e-14)
    np.testing.assert_array_equal(out_numba, out_interp)
