"""np.cov in kernels (hpcad/frontend/library.py): the covariance of a matrix's rows equals
numba.njit's (also of a transpose and of an integer matrix), its derivative matches central
finite differences, forward against reverse, on both backends; other forms are refused at
their line."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST, check_case, njit_of, on_backends
from tests.ad.kernels import Case


def of_columns(data):
    return np.cov(np.transpose(data))


def of_rows(m):
    return np.cov(m)


@pytest.mark.parametrize("backend", INTERP_FAST)
@pytest.mark.parametrize("fn, arg", [
    (of_columns, np.random.default_rng(0).standard_normal((7, 4))),
    (of_rows, np.random.default_rng(1).standard_normal((3, 9))),
    (of_rows, np.random.default_rng(2).integers(-4, 5, (2, 5)))], ids=["columns", "rows", "ints"])
def test_the_covariance_equals_numbas(backend, fn, arg):
    got = ad.kernel(fn, backend=backend)(arg)
    np.testing.assert_allclose(got, njit_of(fn)(arg), rtol=1e-13, atol=1e-15)


@ad.kernel
def weighted_covariance(data, w):
    return np.sum(np.cov(data.T) * w)


CASES = [Case("weighted_covariance", weighted_covariance,
              lambda rng: (rng.standard_normal((6, 3)), rng.standard_normal((3, 3))))]


@on_backends(CASES, numba=("weighted_covariance",))
def test_derivatives_match_finite_differences(case, backend):
    check_case(case, backend)


def with_ddof(m):
    return np.cov(m, ddof=0)


def of_a_vector(m):
    return np.cov(m[0])


@pytest.mark.parametrize("fn, words", [
    (with_ddof, "np.cov with these arguments.*no y, rowvar=, bias= or ddof="),
    (of_a_vector, "np.cov of a 1-D array")])
def test_other_forms_are_refused_at_their_line(fn, words):
    with pytest.raises(ad.UnsupportedConstruct, match=words) as info:
        ad.kernel(fn, backend="interp")(np.ones((2, 3)))
    assert f"test_cov.py:{fn.__code__.co_firstlineno + 1}:" in str(info.value)
