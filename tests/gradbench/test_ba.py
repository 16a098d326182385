"""GradBench eval `ba`: the objective against a plain NumPy reprojection, the sparse Jacobian
(CSR, compressed forward mode) against central finite differences of that reference, and
the kernel's batched forward blocks on the interpreter too; GradBench's output forms."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.gradbench.evals import ba

EPS = 1e-6


def _raw(rng, n=3, m=4, p=10):
    return {"n": n, "m": m, "p": p, "cam": list(rng.uniform(0.1, 0.5, 11)),
            "x": [0.3, -0.2, 4.0], "w": 0.8, "feat": [0.1, 0.2]}


def _problem(rng, zero_rotation=False):
    """A small problem with distinct cameras and points (GradBench repeats one of each)."""
    pb = ba.problem(_raw(rng))
    pb["cams"] += 0.1 * rng.standard_normal(pb["cams"].shape)
    pb["X"] += 0.1 * rng.standard_normal(pb["X"].shape)
    pb["w"] += 0.1 * rng.standard_normal(pb["w"].shape)
    pb["feats"] += 0.1 * rng.standard_normal(pb["feats"].shape)
    if zero_rotation:
        pb["cams"][1, :3] = 0.0
    return pb


def reference(cams, X, w, obs, feats):
    """Reprojection errors in NumPy (Rodrigues' formula; its first-order form at r = 0)."""
    cam, pt = cams[obs[:, 0]], X[obs[:, 1]]
    x = pt - cam[:, 3:6]
    r = cam[:, :3]
    theta = np.sqrt(np.sum(r * r, axis=1))[:, None]
    safe = np.where(theta == 0.0, 1.0, theta)
    k = r / safe
    rot = (x * np.cos(theta) + np.cross(k, x) * np.sin(theta)
           + k * np.sum(k * x, axis=1)[:, None] * (1.0 - np.cos(theta)))
    y = np.where(theta == 0.0, x + np.cross(r, x), rot)
    proj = y[:, :2] / y[:, 2:3]
    rsq = np.sum(proj * proj, axis=1)[:, None]
    proj = proj * (1.0 + cam[:, 9:10] * rsq + cam[:, 10:11] * rsq * rsq)
    reproj = w[:, None] * (proj * cam[:, 6:7] + cam[:, 7:9] - feats)
    return reproj, 1.0 - w * w


def dense_fd(pb):
    """Central differences of (reproj, w_err) w.r.t. (cams, X, w), as a dense matrix."""
    cams, X, w = pb["cams"], pb["X"], pb["w"]
    columns = []
    for arr in (cams, X, w):
        for j in range(arr.size):
            def at(h, arr=arr, j=j):
                saved = arr.flat[j]
                arr.flat[j] = saved + h
                reproj, w_err = reference(cams, X, w, pb["obs"], pb["feats"])
                arr.flat[j] = saved
                return np.concatenate([reproj.ravel(), w_err])
            columns.append((at(EPS) - at(-EPS)) / (2 * EPS))
    return np.stack(columns, axis=1)


def _dense(rows, cols, vals, shape):
    out = np.zeros(shape)
    for r in range(shape[0]):
        for at in range(rows[r], rows[r + 1]):
            out[r, cols[at]] += vals[at]
    return out


@pytest.mark.parametrize("zero_rotation", [False, True])
def test_objective_equals_numpyreference(zero_rotation):
    pb = _problem(np.random.default_rng(0), zero_rotation)
    reproj, w_err = ba.objective_values(pb)
    want_reproj, want_w = reference(pb["cams"], pb["X"], pb["w"], pb["obs"], pb["feats"])
    np.testing.assert_allclose(reproj, want_reproj, rtol=1e-12)
    np.testing.assert_allclose(w_err, want_w, rtol=1e-12)


@pytest.mark.parametrize("zero_rotation", [False, True])
def test_sparse_jacobian_equals_finite_differences(zero_rotation):
    pb = _problem(np.random.default_rng(1), zero_rotation)
    rows, cols, vals = ba.jacobian_csr(pb)
    fd = dense_fd(pb)
    got = _dense(rows, cols, vals, fd.shape)
    np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max())
    p = pb["obs"].shape[0]
    assert len(rows) == 3 * p + 1 and len(cols) == len(vals) == 31 * p


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_compressed_forward_blocks_equal_finite_differences(backend):
    """One call of 15 directions (every camera's parameter k, every point's coordinate,
    every weight in one lane each) gives each observation's 2 x 15 block."""
    pb = _problem(np.random.default_rng(2))
    n, m, p = pb["cams"].shape[0], pb["X"].shape[0], pb["obs"].shape[0]
    d_cams, d_X, d_w = np.zeros((15, n, 11)), np.zeros((15, m, 3)), np.zeros((15, p))
    for k in range(11):
        d_cams[k, :, k] = 1.0
    for k in range(3):
        d_X[11 + k, :, k] = 1.0
    d_w[14] = 1.0
    d_reproj, d_w_err = np.zeros((15, p, 2)), np.zeros((15, p))
    df = ad.autodiff(ba.residuals, mode="forward", activity=ba.ACTIVITY, width=15,
                     backend=backend)
    df(pb["cams"], d_cams, pb["X"], d_X, pb["w"], d_w, pb["obs"], pb["feats"],
       np.zeros((p, 2)), d_reproj, np.zeros(p), d_w_err)
    fd = dense_fd(pb)
    for i, (c, j) in enumerate(pb["obs"]):
        columns = list(range(11 * c, 11 * c + 11)) + \
            list(range(11 * n + 3 * j, 11 * n + 3 * j + 3)) + [11 * n + 3 * m + i]
        for r in range(2):
            np.testing.assert_allclose(d_reproj[:, i, r], fd[2 * i + r, columns],
                                       rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_w_err[14], -2.0 * pb["w"], rtol=1e-12)


def test_gradbench_output_forms():
    raw = _raw(np.random.default_rng(3), p=20)     # the first 30 rows are observations'
    out = ba.FUNCTIONS["objective"](raw)
    assert out["reproj_error"]["repeated"] == raw["p"]
    assert len(out["reproj_error"]["elements"]) == 2
    assert out["w_err"] == {"element": pytest.approx(1 - 0.8 ** 2), "repeated": raw["p"]}
    jac = ba.FUNCTIONS["jacobian"](raw)
    p, n, m = raw["p"], raw["n"], raw["m"]
    assert jac["rows"] == [15 * k for k in range(30)] + [31 * p]
    assert jac["cols"][:15] == list(range(11)) + [11 * n, 11 * n + 1, 11 * n + 2, 11 * n + 3 * m]
    assert jac["cols"][-1] == 11 * n + 3 * m + p - 1
    assert jac["vals"][-1] == pytest.approx(-2 * 0.8)
