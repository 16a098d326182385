"""GradBench eval `ba` (bundle adjustment, from ADBench): the reprojection residuals of p
observations of m points by n cameras (`objective`) and their sparse Jacobian (`jacobian`).

Each observation's two residuals depend on one camera (11 parameters: Rodrigues rotation,
centre, focal length, principal point, two radial distortion terms), one point (3) and one
weight, so one forward call with 15 directions gives every block: lane k seeds parameter k of
every camera (k < 11), of every point (11 <= k < 14) or every weight (k = 14) at once (a
compressed Jacobian), here in two calls of 8 directions. The tangents are allocated lanes
last, the layout the batched code reads in place. The Jacobian is assembled in CSR form
as GradBench's manual tool does: per observation two rows of 15 entries (camera, point,
weight), then one row per weight term.
"""
from __future__ import annotations

import math

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation

N_CAM = 11      # camera parameters
BLOCK = 15      # columns of one observation's rows: camera, point (3), weight


@ad.kernel
def residuals(cams, X, w, obs, feats, reproj, w_err):
    """Observation i sees point obs[i, 1] from camera obs[i, 0]: reproj[i] = w[i] (projection
    - feature); w_err[i] = 1 - w[i]^2."""
    for i in range(obs.shape[0]):
        c = obs[i, 0]
        j = obs[i, 1]
        x0 = X[j, 0] - cams[c, 3]
        x1 = X[j, 1] - cams[c, 4]
        x2 = X[j, 2] - cams[c, 5]
        r0 = cams[c, 0]
        r1 = cams[c, 1]
        r2 = cams[c, 2]
        sq = r0 * r0 + r1 * r1 + r2 * r2
        if sq != 0.0:      # Rodrigues' rotation about r by |r|
            theta = math.sqrt(sq)
            ct = math.cos(theta)
            st = math.sin(theta)
            k0 = r0 / theta
            k1 = r1 / theta
            k2 = r2 / theta
            tmp = (k0 * x0 + k1 * x1 + k2 * x2) * (1.0 - ct)
            y0 = x0 * ct + (k1 * x2 - k2 * x1) * st + k0 * tmp
            y1 = x1 * ct + (k2 * x0 - k0 * x2) * st + k1 * tmp
            y2 = x2 * ct + (k0 * x1 - k1 * x0) * st + k2 * tmp
        else:              # its first-order form at r = 0
            y0 = x0 + (r1 * x2 - r2 * x1)
            y1 = x1 + (r2 * x0 - r0 * x2)
            y2 = x2 + (r0 * x1 - r1 * x0)
        p0 = y0 / y2
        p1 = y1 / y2
        rsq = p0 * p0 + p1 * p1
        distort = 1.0 + cams[c, 9] * rsq + cams[c, 10] * rsq * rsq
        reproj[i, 0] = w[i] * (p0 * distort * cams[c, 6] + cams[c, 7] - feats[i, 0])
        reproj[i, 1] = w[i] * (p1 * distort * cams[c, 6] + cams[c, 8] - feats[i, 1])
        w_err[i] = 1.0 - w[i] * w[i]


ACTIVITY = (ad.Duplicated, ad.Duplicated, ad.Duplicated, ad.Const, ad.Const,
            ad.Duplicated, ad.Duplicated)
# directions per forward call: the 15 columns of a block in two calls of 8 (the second
# with one zero lane): 8 lanes run several times faster per lane than 15 or 16
LANES = 8
residuals_fwd = ad.autodiff(residuals, mode="forward", activity=ACTIVITY, width=LANES)


@ad.kernel
def sparsity(obs, n_cams, n_points, rows, cols):
    """The CSR structure: observation i's two rows hold its camera's 11 columns, its point's
    3 and its weight's; row 2p + i holds weight i's column."""
    p = obs.shape[0]
    weights = N_CAM * n_cams + 3 * n_points
    for i in range(p):
        for r in range(2):
            at = (2 * i + r) * BLOCK
            for k in range(N_CAM):
                cols[at + k] = N_CAM * obs[i, 0] + k
            for k in range(3):
                cols[at + N_CAM + k] = N_CAM * n_cams + 3 * obs[i, 1] + k
            cols[at + BLOCK - 1] = weights + i
            rows[2 * i + r] = at
        cols[2 * BLOCK * p + i] = weights + i
        rows[2 * p + i] = 2 * BLOCK * p + i
    rows[3 * p] = 2 * BLOCK * p + p


def problem(raw: dict) -> dict:
    """GradBench's input (one camera, point, weight and feature, repeated; observation i
    sees camera i mod n and point i mod m) as arrays, with the seeds of the 15 directions
    and room for the Jacobian."""
    n, m, p = int(raw["n"]), int(raw["m"]), int(raw["p"])
    obs = np.stack([np.arange(p) % n, np.arange(p) % m], axis=1).astype(np.int64)
    pb = {"cams": np.tile(np.asarray(raw["cam"], dtype=np.float64), (n, 1)),
          "X": np.tile(np.asarray(raw["x"], dtype=np.float64), (m, 1)),
          "w": np.full(p, float(raw["w"])), "obs": obs,
          "feats": np.tile(np.asarray(raw["feat"], dtype=np.float64), (p, 1))}
    pb["seeds"] = seeds(n, m, p)
    # the Jacobian's arrays, allocated here as GradBench's Python tools allocate theirs in
    # `prepare` (new memory costs a page fault per 4 KiB page when first written)
    pb["csr"] = (np.zeros(3 * p + 1, np.int64), np.zeros(2 * BLOCK * p + p, np.int64),
                 np.zeros(2 * BLOCK * p + p))
    pb["tangents"] = (lanes_last((p, 2)), lanes_last((p,)), np.zeros((p, 2)), np.zeros(p))
    return pb


def objective_values(pb: dict) -> tuple[np.ndarray, np.ndarray]:
    p = pb["obs"].shape[0]
    reproj, w_err = np.empty((p, 2)), np.empty(p)
    residuals(pb["cams"], pb["X"], pb["w"], pb["obs"], pb["feats"], reproj, w_err)
    return reproj, w_err


def lanes_last(shape: tuple) -> np.ndarray:
    """Zero tangents (LANES, *shape) whose memory is (*shape, LANES)."""
    return np.moveaxis(np.zeros(shape + (LANES,)), -1, 0)


def seeds(n: int, m: int, p: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Column k of a block (camera parameter k < 11, point coordinate k - 11, weight k = 14)
    is lane k % LANES of call k // LANES, seeded in every camera, point or weight."""
    calls = [(lanes_last((n, N_CAM)), lanes_last((m, 3)), lanes_last((p,)))
             for _ in range(-(-BLOCK // LANES))]
    for k in range(BLOCK):
        d_cams, d_X, d_w = calls[k // LANES]
        lane = k % LANES
        if k < N_CAM:
            d_cams[lane, :, k] = 1.0
        elif k < N_CAM + 3:
            d_X[lane, :, k - N_CAM] = 1.0
        else:
            d_w[lane] = 1.0
    return calls


def jacobian_csr(pb: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, vals) of the Jacobian of (reproj, w_err) w.r.t. (cams, X, w): the
    tangents of observation i's residual r along the block's columns are its row's
    values, in the order of its columns."""
    n, m, p = pb["cams"].shape[0], pb["X"].shape[0], pb["obs"].shape[0]
    rows, cols, vals = pb["csr"]
    block = vals[:2 * BLOCK * p].reshape(p, 2, BLOCK)
    d_reproj, d_w_err, reproj, w_err = pb["tangents"]
    for call, (d_cams, d_X, d_w) in enumerate(pb["seeds"]):
        residuals_fwd(pb["cams"], d_cams, pb["X"], d_X, pb["w"], d_w, pb["obs"],
                      pb["feats"], reproj, d_reproj, w_err, d_w_err)
        first = call * LANES
        last = min(first + LANES, BLOCK)
        block[:, :, first:last] = np.moveaxis(d_reproj, 0, -1)[:, :, :last - first]
    vals[2 * BLOCK * p:] = d_w_err[(BLOCK - 1) % LANES]
    sparsity(pb["obs"], n, m, rows, cols)
    return rows, cols, vals


def objective_json(values) -> dict:
    reproj, w_err = values
    return {"reproj_error": {"elements": reproj[0].tolist(), "repeated": len(reproj)},
            "w_err": {"element": float(w_err[0]), "repeated": len(w_err)}}


def jacobian_json(csr) -> dict:
    """GradBench's form: the first observation's 30 entries and the last weight term's."""
    def dedup(a):
        return a[:2 * BLOCK].tolist() + [a[-1].item()]
    rows, cols, vals = csr
    return {"rows": dedup(rows), "cols": dedup(cols), "vals": dedup(vals)}


@evaluation(prepare=problem, output=objective_json)
def objective(pb: dict):
    return objective_values(pb)


@evaluation(prepare=problem, output=jacobian_json)
def jacobian(pb: dict):
    return jacobian_csr(pb)


FUNCTIONS = {"objective": objective, "jacobian": jacobian}


def warm() -> None:
    small = {"n": 2, "m": 3, "p": 4, "cam": [0.1] * N_CAM, "x": [0.1, 0.2, 3.0], "w": 0.5,
             "feat": [0.1, 0.2]}
    objective(small)
    jacobian(small)
