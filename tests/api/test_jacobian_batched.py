"""jacobian from batched derivative calls (rows or columns W at a time) against central
finite differences, on five kernels, in both modes, with chunk sizes that divide the count,
that leave a short last chunk, and the default; bad batch values are errors."""

import numpy as np
import pytest

import hpcad as ad
from tests.ad import kernels as k
from tests.api.test_jacobian import moments


def _fd_jacobian(f, args, n, eps=1e-6):
    """Central differences column by column, each evaluation on fresh copies (kernels such
    as heat update their arrays in place)."""
    def at(shift):
        moved = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        moved[n] = moved[n] + shift
        return np.array(f.py_func(*moved), dtype=float)
    shape = np.shape(args[n])
    jac = np.zeros(at(0.0).shape + shape)
    for idx in np.ndindex(*shape):
        step = np.zeros(shape)
        step[idx] = eps
        jac[(Ellipsis,) + idx] = (at(step if shape else eps) - at(-step if shape else -eps)) \
            / (2 * eps)
    return jac


def _heat_args():
    return (np.sin(np.linspace(0.1, 3.0, 10)), 0.2, 4)


def _lv_args():
    return (1.2, 0.7, 0.9, 1.1)


def _mv_args():
    return (np.linspace(-1.0, 2.0, 9) ** 2,)


def _gmm_args():
    return k.gmm_args(np.random.default_rng(5))


CASES = {   # kernel, arguments, the float arguments to differentiate
    "moments": (moments, lambda: (np.linspace(0.1, 1.0, 5), 0.7), (0, 1)),
    "heat1d_explicit": (k.heat1d_explicit, _heat_args, (0, 1)),
    "lotka_volterra_rhs": (k.lotka_volterra_rhs, _lv_args, (0, 1, 2, 3)),
    "mean_and_variance": (k.mean_and_variance, _mv_args, (0,)),
    "gmm_objective": (k.gmm_objective, _gmm_args, (0, 1)),
}


@pytest.mark.parametrize("batch", [None, 3, 1])
@pytest.mark.parametrize("mode", ["rev", "fwd"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_batched_jacobian_matches_fd(name, mode, batch):
    kernel, make, nums = CASES[name]
    args = make()
    got = ad.jacobian(kernel, argnums=nums, mode=mode, batch=batch, backend="interp")(*args)
    for n, jac in zip(nums, got, strict=True):
        fd = _fd_jacobian(kernel, args, n)
        np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-7 * max(1.0, np.abs(fd).max()))


@pytest.mark.parametrize("mode", ["rev", pytest.param("fwd", marks=pytest.mark.slow)])
def test_batched_jacobian_on_numba_equals_interp(mode):
    args = _gmm_args()
    want = ad.jacobian(k.gmm_objective, argnums=(0, 1), mode=mode, backend="interp")(*args)
    got = ad.jacobian(k.gmm_objective, argnums=(0, 1), mode=mode, backend="numba")(*args)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("batch", [0, -1, 2.0, True])
def test_batch_must_be_a_positive_int(batch):
    with pytest.raises(ad.ArgumentError, match="batch must be a positive int"):
        ad.jacobian(moments, batch=batch)
