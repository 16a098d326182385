"""Hessian-vector products (forward over reverse, tape tangents on a second tape) against
central differences of the gradient, on serial kernels (loops, while loops, branches, GMM)
and parallel ones (per-iteration tape entries), on both backends; hvp never modifies its
inputs and rejects kernels with several results."""

import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import BACKENDS, SLOW, case_rng
from tests.ad.kernels import CASES
from tests.parallel import par_kernels

SERIAL = ("heat1d_explicit", "newton_cbrt", "piecewise_branches", "logsumexp", "softplus",
          "gmm_objective", "lstm_objective")
PARALLEL = ("stencil1d", "heat_prange", "sum_reduction")
FAST_ON_NUMBA = ("heat1d_explicit",)   # the rest compile on numba in the slow tier
CASE_BY_NAME = {c.name: c for c in CASES} | {c.name: c for c in par_kernels.CASES}


def _float_args(args):
    return tuple(i for i, a in enumerate(args)
                 if isinstance(a, float) or (isinstance(a, np.ndarray) and a.dtype.kind == "f"))


def fd_of_gradient(kernel, args, nums, directions, eps=1e-6):
    """Central differences of the gradient along directions. The gradient runs on the
    interpreter on either backend: the test is about numba's hvp (forward over reverse), and
    the gradient compiled with numba as well (a reverse derivative of its own, seconds apiece)
    would check nothing the gradient tests do not."""
    g = ad.grad(kernel, argnums=nums, backend="interp")

    def moved(sign):
        out = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        for n, d in zip(nums, directions, strict=True):
            out[n] = out[n] + sign * eps * d
        return g(*out)
    return [(p - m) / (2 * eps) for p, m in zip(moved(1.0), moved(-1.0), strict=True)]


@pytest.mark.parametrize("name, backend", [
    pytest.param(name, backend, id=f"{name}-{backend}",
                 marks=SLOW if backend == "numba" and name not in FAST_ON_NUMBA else ())
    for name in SERIAL + PARALLEL for backend in BACKENDS])
def test_hvp_matches_fd_of_gradient(name, backend):
    case = CASE_BY_NAME[name]
    rng = case_rng(case)
    args = case.make_args(rng)
    nums = _float_args(args)
    directions = tuple(rng.standard_normal(np.shape(args[n])) if np.shape(args[n])
                       else float(rng.standard_normal()) for n in nums)
    before = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    got = ad.hvp(case.kernel, argnums=nums, backend=backend)(*args, directions)
    for a, b in zip(args, before, strict=True):
        assert np.array_equal(a, b)
    want = fd_of_gradient(case.kernel, args, nums, directions)
    for n, h, w in zip(nums, got, want, strict=True):
        scale = max(np.max(np.abs(w)), 1e-3)
        err = np.max(np.abs(np.asarray(h) - w)) / scale
        assert err <= 2e-5, f"{name}: H v for argument {n} off by {err:.1e}"


def test_hvp_needs_one_float_result():
    @ad.kernel
    def pair(x):
        return x[0] * x[1], x[0]
    with pytest.raises(ad.ArgumentError, match="one float"):
        ad.hvp(pair)(np.ones(2), np.ones(2))


def test_hvp_direction_shape_is_checked():
    heat = CASE_BY_NAME["heat1d_explicit"].kernel
    with pytest.raises(ad.ArgumentError, match="direction for 'u' has shape"):
        ad.hvp(heat)(np.ones(6), 0.1, 2, np.ones(5))
