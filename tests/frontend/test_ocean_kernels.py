"""Ocean-model kernels as numba users write them (tests/frontend/ocean_kernels.py): a
stencil over 4-D fields read as `temp[..., tau]` with loops over tuples of offsets
(`for kr in (0, 1)`) and `continue`, and a per-column tridiagonal solve in a numba.njit
helper that asserts `a.shape == b.shape`, on slices from a data-dependent level
(`a[ks:]`) with whole-array fills (`a[...] = ...`), and NumPy-style sums over slices whose
end is `-1 + kr or None`. Primal against the plain Python function, forward and reverse
derivatives against central finite differences and each other."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import on_backends
from tests.ad.kernels import Case
from tests.frontend import ocean_kernels as ok
from tests.frontend.construct_check import check_construct


def _fields(rng):
    shape = (5, 4, 4)
    kk = np.arange(shape[2])[None, None, :, None]
    temp = kk + 1e-3 * rng.standard_normal((*shape, 2))   # stably stratified
    salt = 1e-4 * rng.standard_normal((*shape, 2))
    drdT = -rng.uniform(0.5, 1.0, shape)             # density falls as it warms
    return temp, salt, drdT, rng.uniform(0.5, 1.5, shape[2]), 1


def _columns(rng):
    shape = (3, 4, 5)
    kbot = rng.integers(0, shape[2] + 1, size=shape[:2])
    kbot[0, 0], kbot[0, 1] = 0, 1           # a land column, a one-level column
    return rng.uniform(0.1, 1.0, (*shape, 2)), rng.uniform(0.5, 1.5, shape), kbot, 0.7


def _profiles(rng):
    return (rng.uniform(0.5, 1.5, (3, 5)), rng.uniform(-1.5, 1.5, (3, 5)),
            rng.uniform(0.5, 1.5, 5))


CASES = [Case("east_slopes", ok.east_slopes, _fields, eps=1e-7, fd_rtol=1e-5),
         Case("implicit_mixing", ok.implicit_mixing, _columns),
         Case("vertical_sums", ok.vertical_sums, _profiles)]


@on_backends(CASES, numba=("implicit_mixing",))
def test_ocean_kernel_matches_python_and_differentiates(case, backend):
    # the plain Python function is the primal's reference: numba takes seconds to compile
    # these (they ran against numba.njit when written), and cannot type a slice bound that
    # may be None (`-1 + kr or None`)
    check_construct(case, backend, "python")


def test_comparing_tuples_other_than_for_equality_is_an_error():
    @ad.kernel
    def ordered(a, b):
        return 1.0 if a.shape < b.shape else 0.0

    with pytest.raises(ad.UnsupportedConstruct, match="ordering tuples with < <= > >="):
        ordered(np.ones(2), np.ones(3))


def test_more_than_one_ellipsis_is_an_error():
    @ad.kernel
    def two(a):
        return np.sum(a[..., 0, ...])

    with pytest.raises(ad.UnsupportedConstruct, match="an index with more than one `...`"):
        two(np.ones((2, 2, 2)))
