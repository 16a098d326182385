"""Simplification and common-subexpression elimination keep the sign of zero, as IEEE
arithmetic (and numba, which folds no float op LLVM would not) does: x + 0.0 is +0.0 where
x is -0.0, so it is not folded to x (x - 0.0 and x + (-0.0) are); the constants 0.0 and
-0.0 are different values (equal in Python, so a key by value merged them). The sign of a
zero shows in 1 / x, math.atan2 and np.copysign."""
import math

import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST, njit_of


def zeros(x):
    y = x[0] + 0.0
    z = x[0] - (-0.0)
    w = x[0] - 0.0
    a = 0.0
    b = -0.0
    return y, z, w, a, b, x[0] + b, x[1] * 0.0 + a, 0.0 + x[0], -0.0 + x[0]


def angles(x):
    return math.atan2(x[0] + 0.0, -1.0), math.atan2(-0.0, -1.0), math.atan2(0.0, -1.0)


@pytest.mark.parametrize("backend", INTERP_FAST)
@pytest.mark.parametrize("fn", [zeros, angles], ids=lambda f: f.__name__)
def test_the_sign_of_zero_is_pythons_and_numbas(fn, backend):
    x = np.array([-0.0, -1.0])
    got = ad.kernel(fn, backend=backend)(x.copy())
    want = fn(x.copy())
    assert np.array_equal(np.signbit(got), np.signbit(want)) and np.array_equal(got, want), \
        (got, want)
    if fn is angles:
        assert np.array_equal(want, njit_of(fn)(x.copy()))
