"""Custom derivative rules called inside a prange body, on both backends: the residuals are
saved per iteration (indexed tape), a bwd rule accumulating into an array argument's
cotangent stays race-free, and rules that deliberately give twice the true derivative are
honored (so the bodies were not differentiated)."""
import math

import numpy as np
import pytest

import custom_kernels as ck
import hpcad as ad


@ad.custom_vjp
@ad.kernel
def row_norm(a, i):
    s = 0.0
    for j in range(a.shape[1]):
        s += a[i, j] * a[i, j]
    return math.sqrt(s)


@ad.kernel
def row_norm_fwd(a, i):
    n = row_norm(a, i)
    return n, n


@ad.kernel
def row_norm_bwd(a, i, n, g, da):
    for j in range(a.shape[1]):
        da[i, j] += 2.0 * g * a[i, j] / n        # deliberately twice the true derivative


@ad.kernel
def row_norm_jvp(a, i, da):
    n = row_norm(a, i)
    d = 0.0
    for j in range(a.shape[1]):
        d += a[i, j] * da[i, j]
    return n, 2.0 * d / n


row_norm.defvjp(row_norm_fwd, row_norm_bwd)
row_norm.defjvp(row_norm_jvp)


@ad.kernel
def weighted_row_norms(a, w):
    s = 0.0
    for i in ad.prange(a.shape[0]):
        s += w[i] * row_norm(a, i) + ck.doubled_sin(a[i, 0])
    return s


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
    ga, gw = ad.grad(weighted_row_norms, argnums=(0, 1), backend=backend)(a, w)
    np.testing.assert_allclose(ga, want_a, rtol=1e-12)
    np.testing.assert_allclose(gw, want_w, rtol=1e-12)
    t = rng.standard_normal(a.shape)
    _, dot = ad.jvp(weighted_row_norms, (a, w), (t, None), backend=backend)
    assert math.isclose(dot, float(np.sum(want_a * t)), rel_tol=1e-12)


def test_residuals_inside_prange_are_saved_per_iteration():
    a, w = np.ones((3, 2)), np.ones(3)
    plan = ad.plan(weighted_row_norms, a, w)
    assert "par.parallel_for" in plan and "res:f64" in plan, plan
