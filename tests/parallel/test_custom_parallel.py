"""Custom derivative rules called inside a prange body, on both backends: the residuals are
saved per iteration (indexed tape), a bwd rule accumulating into an array argument's
cotangent stays race-free, and rules that deliberately give twice the true derivative are
honored (so the bodies were not differentiated)."""
import math

import numpy as np
import pytest

import hpcad as ad
from tests.ad import custom_kernels as ck


def _doubled_gradient(a, w):
    n = np.sqrt(np.sum(a * a, axis=1))
    da = 2.0 * w[:, None] * a / n[:, None]
    da[:, 0] += 2.0 * np.cos(a[:, 0])
    return da, n


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_rules_inside_prange_are_honored_in_both_modes(backend):
    rng = np.random.default_rng(7)
    a, w = rng.standard_normal((9, 4)), np.linspace(1.0, 2.0, 9)
    want_a, want_w = _doubled_gradient(a, w)
    ga, gw = ad.grad(ck.weighted_row_norms, argnums=(0, 1), backend=backend)(a, w)
    np.testing.assert_allclose(ga, want_a, rtol=1e-12)
    np.testing.assert_allclose(gw, want_w, rtol=1e-12)
    t = rng.standard_normal(a.shape)
    _, dot = ad.jvp(ck.weighted_row_norms, (a, w), (t, None), backend=backend)
    assert math.isclose(dot, float(np.sum(want_a * t)), rel_tol=1e-12)


def test_residuals_inside_prange_are_saved_per_iteration():
    a, w = np.ones((3, 2)), np.ones(3)
    plan = ad.plan(ck.weighted_row_norms, a, w)
    assert "par.parallel_for" in plan and "res:f64" in plan, plan
