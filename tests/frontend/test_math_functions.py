"""math.erf, math.erfc, math.hypot/np.hypot, math.asinh/acosh/atanh (np.arcsinh, ...),
math.isnan/isinf/isfinite (and NumPy's), round(x) and round(x, n) in kernels: values equal
numba.njit of the same source (round: halves to even, numba's formula for digits),
derivatives (erf' = 2/sqrt(pi) exp(-x**2), hypot's x/h and y/h; round and the tests have
none) against finite differences and forward against reverse, on both backends."""
import math

import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST
from tests.ad.kernels import Case
from tests.frontend import construct_kernels as ck
from tests.frontend.construct_check import check_construct, njit_of, run_on

BACKENDS = INTERP_FAST


def _x_c(rng):
    return rng.uniform(-1.0, 1.0, 6), 0.37


def _with_specials(rng):
    x = rng.uniform(-1.0, 1.0, 8)
    x[2], x[5] = math.nan, -math.inf
    return x, 0.37


def _x_y(rng):
    return rng.uniform(-1.0, 1.0, 6), rng.uniform(0.5, 1.0, 6)


CASES = [Case("special_functions", ck.special_functions, _x_c),
         Case("skips_bad_values", ck.skips_bad_values, _x_c),
         Case("hypot_of_arrays", ck.hypot_of_arrays, _x_y),
         Case("inverse_hyperbolic", ck.inverse_hyperbolic, _x_c)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_math_function_matches_numba_and_differentiates(case, backend):
    check_construct(case, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_and_inf_are_classified_as_numba_does(backend):
    args = _with_specials(np.random.default_rng(3))
    assert run_on(ck.skips_bad_values, backend, args) == pytest.approx(
        njit_of(ck.skips_bad_values)(*args), rel=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_is_numbas_round(backend):
    x = np.array([2.5, -0.5, 0.5, 1.5, -2.5, 0.125, 0.135, 1234.5678, -1250.0, 1e300,
                  -3.14159, math.inf, math.nan, 1e-310, 7.0])
    got, expected = np.zeros((len(x), 6)), np.zeros((len(x), 6))
    value = ck.rounded.run(ck.rounded.specialize((x, got, 3)).primal, (x, got, 3),
                           backend=backend)[0]
    assert value == njit_of(ck.rounded)(x, expected, 3)
    np.testing.assert_array_equal(got, expected)
    assert list(got[:5, 0]) == [2.0, -0.0, 0.0, 2.0, -2.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_of_nan_to_an_int_is_an_error(backend):
    with pytest.raises(ad.IntegerConversionError,
                       match="converted to an int64 is nan, infinite or outside"):
        run_on(ck.round_to_int, backend, (math.nan,))
