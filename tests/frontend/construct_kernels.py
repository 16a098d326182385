"""Kernels written with the Python constructs numba accepts (assert, loops over arrays,
enumerate, zip, keyword and default parameters, math functions), for tests/frontend.
They live outside the test modules so that pytest does not rewrite their `assert`s (numba
compiles the same functions to check the primal)."""
import math

import numba
import numpy as np

import hpcad as ad


@ad.kernel
def checked_energy(x, c):
    assert c > 0.0, "c must be positive"
    s = 0.0
    for i in range(x.shape[0]):
        assert x[i] < 10.0   # each element
        s += c * math.sin(x[i]) * x[i]
    return s


@ad.kernel
def checked_in_prange(x, c):
    out = np.zeros(x.shape[0])
    for i in numba.prange(x.shape[0]):
        assert x[i] < 10.0, "x too large"
        out[i] = c * x[i] * x[i]
    s = 0.0
    for i in range(x.shape[0]):
        s += out[i] * x[i]
    return s
