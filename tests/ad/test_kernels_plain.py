"""The test kernels as plain Python, no differentiation: each takes arguments of the kernel
subset, returns finite floats, and is smooth at its arguments, so central differences are a
valid reference for test_kernels.py (two steps agree, and the derivative stands above noise)."""
import copy

import numpy as np
import pytest

from tests.ad.harness import (
    as_outputs,
    case_rng,
    central_difference,
    fd_step,
    random_direction,
    relative_error,
)
from tests.ad.kernels import CASES

SUBSET_DTYPES = (np.float64, np.float32, np.int64, np.int32)

# The FD checks in test_kernels.py demand 1e-6; a tenfold smaller disagreement between two
# steps leaves room for the difference between AD and the better of the two.
SMOOTHNESS_RTOL = 1e-7

cases = pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])


@cases
def test_arguments_are_in_the_kernel_subset(case):
    for arg in case.make_args(case_rng(case)):
        if isinstance(arg, np.ndarray):
            assert arg.dtype.type in SUBSET_DTYPES and 1 <= arg.ndim <= 3
        else:
            assert type(arg) in (float, int, bool)


@cases
def test_plain_function_returns_finite_floats(case):
    out = case.kernel.py_func(*case.make_args(case_rng(case)))
    values = out if isinstance(out, tuple) else (out,)
    assert all(isinstance(v, (float, np.floating)) for v in values), f"returned {out!r}"
    assert np.all(np.isfinite(as_outputs(out)))


@cases
def test_finite_differences_are_smooth(case):
    rng = case_rng(case)
    args = case.make_args(rng)
    v = random_direction(rng, args)
    h = fd_step(case, args)
    fine = central_difference(case.kernel.py_func, args, v, h)
    coarse = central_difference(case.kernel.py_func, args, v, 10.0 * h)
    value = as_outputs(case.kernel.py_func(*copy.deepcopy(args)))
    for j in range(len(fine)):
        assert relative_error(fine[j], coarse[j]) <= SMOOTHNESS_RTOL, \
            f"output {j}: FD {fine[j]!r} at step h, {coarse[j]!r} at 10 h"
        assert abs(fine[j]) > 1e-6 * max(1.0, abs(value[j])), \
            f"output {j}: directional derivative {fine[j]!r} is too small to check"
