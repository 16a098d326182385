"""GradBench eval `ht`: ADBench's hand tracking. A hand model of bones (each a 4x4 transform
relative to its parent) skins its vertices by the bones' weights; 26 pose parameters theta
(global rotation, translation, finger angles) pose it. `objective` is the residual of each
measured point against its corresponding vertex ("simple" input), or against a point of its
corresponding triangle given by barycentric coordinates us ("complicated" input, non-empty
us); `jacobian` is its Jacobian, one row per residual: the columns of the two barycentric
coordinates of the row's own point first (complicated only), then those of theta.

The columns come from forward-mode derivatives, WIDTH directions per call: one per theta
and, since a residual depends only on its own point's us, one moving every point's first
(second) barycentric coordinate at once.
"""
from __future__ import annotations

import math

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation

N_THETA = 26
WIDTH = 16      # directions per forward-mode call


@ad.kernel
def pose_parameters(theta, n_bones):
    """pose[col, row]: column 0 the global rotation, 1 the scale (ones), 2 the translation,
    then one column per bone: its Euler angles (x, z, y) about its parent; the fingers'
    bones take theta[6:] four at a time (two angles for the base joint, one for the others)."""
    pose = np.zeros((n_bones + 3, 3))
    for j in range(3):
        pose[0, j] = theta[j]
        pose[1, j] = 1.0
        pose[2, j] = theta[3 + j]
    for finger in range(5):
        col = 5 + 4 * finger
        first = 6 + 4 * finger
        pose[col, 0] = theta[first]
        pose[col, 1] = theta[first + 1]
        pose[col + 1, 0] = theta[first + 2]
        pose[col + 2, 0] = theta[first + 3]
    return pose


@ad.kernel
def euler_rotation(pose, col, rot):
    """rot = Rz Ry Rx of the angles (x, z, y) in pose[col]."""
    cx = math.cos(pose[col, 0])
    sx = math.sin(pose[col, 0])
    cz = math.cos(pose[col, 1])
    sz = math.sin(pose[col, 1])
    cy = math.cos(pose[col, 2])
    sy = math.sin(pose[col, 2])
    rot[0, 0] = cz * cy
    rot[1, 0] = sz * cy
    rot[2, 0] = -sy
    rot[0, 1] = -sz * cx + cz * sy * sx
    rot[1, 1] = cz * cx + sz * sy * sx
    rot[2, 1] = cy * sx
    rot[0, 2] = sz * sx + cz * sy * cx
    rot[1, 2] = -cz * sx + sz * sy * cx
    rot[2, 2] = cy * cx


@ad.kernel
def bone_transforms(pose, parents, base_relatives, inverse_base_absolutes, transforms):
    """transforms[bone] = its absolute transform (its parent's times its own relative one,
    rotated by its Euler angles) times its inverse base transform."""
    n_bones = parents.shape[0]
    absolutes = np.zeros((n_bones, 4, 4))
    rot = np.zeros((3, 3))
    rel = np.zeros((4, 4))
    for bone in range(n_bones):
        euler_rotation(pose, bone + 3, rot)
        for r in range(4):
            for c in range(3):
                acc = 0.0
                for j in range(3):
                    acc += base_relatives[bone, r, j] * rot[j, c]
                rel[r, c] = acc
            rel[r, 3] = base_relatives[bone, r, 3]
        parent = parents[bone]
        for r in range(4):
            for c in range(4):
                if parent == -1:
                    absolutes[bone, r, c] = rel[r, c]
                else:
                    acc = 0.0
                    for j in range(4):
                        acc += absolutes[parent, r, j] * rel[j, c]
                    absolutes[bone, r, c] = acc
        for r in range(4):
            for c in range(4):
                acc = 0.0
                for j in range(4):
                    acc += absolutes[bone, r, j] * inverse_base_absolutes[bone, j, c]
                transforms[bone, r, c] = acc


@ad.kernel
def angle_axis_rotation(pose, grot):
    """grot = the rotation by the angle-axis vector pose[0] (identity when the angle is
    tiny)."""
    norm = math.sqrt(pose[0, 0] * pose[0, 0] + pose[0, 1] * pose[0, 1]
                     + pose[0, 2] * pose[0, 2])
    if norm < 0.0001:
        for j in range(3):
            grot[j, j] = 1.0
    else:
        x = pose[0, 0] / norm
        y = pose[0, 1] / norm
        z = pose[0, 2] / norm
        s = math.sin(norm)
        c = math.cos(norm)
        grot[0, 0] = x * x + (1.0 - x * x) * c
        grot[0, 1] = x * y * (1.0 - c) - z * s
        grot[0, 2] = x * z * (1.0 - c) + y * s
        grot[1, 0] = x * y * (1.0 - c) + z * s
        grot[1, 1] = y * y + (1.0 - y * y) * c
        grot[1, 2] = y * z * (1.0 - c) - x * s
        grot[2, 0] = x * z * (1.0 - c) - y * s
        grot[2, 1] = z * y * (1.0 - c) + x * s
        grot[2, 2] = z * z + (1.0 - z * z) * c


@ad.kernel
def skinned_positions(theta, parents, base_relatives, inverse_base_absolutes, base_positions,
                      weights, is_mirrored, positions):
    """positions[v] = the posed vertex v: the bones' transforms move the base vertex,
    weighted; then the global rotation, scaled by pose[1], and the translation."""
    n_bones = parents.shape[0]
    pose = pose_parameters(theta, n_bones)
    transforms = np.zeros((n_bones, 4, 4))
    bone_transforms(pose, parents, base_relatives, inverse_base_absolutes, transforms)
    n_verts = base_positions.shape[0]
    skinned = np.zeros((n_verts, 3))
    for bone in range(n_bones):
        for v in range(n_verts):
            w = weights[v, bone]
            if w != 0.0:        # a vertex moves with a few bones only
                for r in range(3):
                    acc = 0.0
                    for j in range(4):
                        acc += transforms[bone, r, j] * base_positions[v, j]
                    skinned[v, r] += acc * w
    if is_mirrored:
        for v in range(n_verts):
            skinned[v, 0] = -skinned[v, 0]
    grot = np.zeros((3, 3))
    angle_axis_rotation(pose, grot)
    for v in range(n_verts):
        for r in range(3):
            acc = 0.0
            for j in range(3):
                acc += grot[r, j] * pose[1, j] * skinned[v, j]
            positions[v, r] = acc + pose[2, r]


@ad.kernel
def residuals_simple(theta, parents, base_relatives, inverse_base_absolutes, base_positions,
                     weights, is_mirrored, correspondences, points):
    positions = np.zeros((base_positions.shape[0], 3))
    skinned_positions(theta, parents, base_relatives, inverse_base_absolutes, base_positions,
                      weights, is_mirrored, positions)
    n_points = points.shape[0]
    err = np.empty(3 * n_points)
    for i in range(n_points):
        vert = correspondences[i]
        for j in range(3):
            err[3 * i + j] = points[i, j] - positions[vert, j]
    return err


@ad.kernel
def residuals_complicated(theta, us, parents, base_relatives, inverse_base_absolutes,
                          base_positions, weights, is_mirrored, triangles, correspondences,
                          points):
    positions = np.zeros((base_positions.shape[0], 3))
    skinned_positions(theta, parents, base_relatives, inverse_base_absolutes, base_positions,
                      weights, is_mirrored, positions)
    n_points = points.shape[0]
    err = np.empty(3 * n_points)
    for i in range(n_points):
        tri = correspondences[i]
        v0 = triangles[tri, 0]
        v1 = triangles[tri, 1]
        v2 = triangles[tri, 2]
        u0 = us[i, 0]
        u1 = us[i, 1]
        for j in range(3):
            on_hand = u0 * positions[v0, j] + u1 * positions[v1, j] \
                + (1.0 - u0 - u1) * positions[v2, j]
            err[3 * i + j] = points[i, j] - on_hand
    return err


def prepare(raw: dict) -> tuple:
    """(kernel, its arguments): the complicated kernel when us is not empty."""
    data, model = raw["data"], raw["data"]["model"]
    arrays = (np.array(model["parents"], dtype=np.int64),
              np.array(model["base_relatives"], dtype=np.float64),
              np.array(model["inverse_base_absolutes"], dtype=np.float64),
              np.array(model["base_positions"], dtype=np.float64),
              np.array(model["weights"], dtype=np.float64), bool(model["is_mirrored"]))
    theta = np.array(raw["theta"], dtype=np.float64)
    correspondences = np.array(data["correspondences"], dtype=np.int64)
    points = np.array(data["points"], dtype=np.float64).reshape(-1, 3)
    if len(raw["us"]) == 0:
        return residuals_simple, (theta, *arrays, correspondences, points)
    us = np.array(raw["us"], dtype=np.float64).reshape(-1, 2)
    triangles = np.array(model["triangles"], dtype=np.int64).reshape(-1, 3)
    return residuals_complicated, (theta, us, *arrays, triangles, correspondences, points)


def listed(a: np.ndarray) -> list:
    return a.tolist()


@evaluation(prepare=prepare, output=listed)
def objective(prepared: tuple) -> np.ndarray:
    kernel, args = prepared
    return kernel(*args)


@evaluation(prepare=prepare, output=listed)
def jacobian(prepared: tuple) -> np.ndarray:
    """Columns d err / d us (complicated) and d err / d theta, WIDTH directions per forward
    call."""
    kernel, args = prepared
    active = (0, 1) if kernel is residuals_complicated else (0,)
    directions = [(1, k) for k in range(2)] * (len(active) == 2) + \
        [(0, k) for k in range(N_THETA)]
    derivative = ad.autodiff(kernel, mode="forward", width=WIDTH,
                             activity=[ad.Duplicated if i in active else ad.Const
                                       for i in range(len(args))])
    columns = []
    for lo in range(0, len(directions), WIDTH):
        tangents = {i: np.zeros((WIDTH, *args[i].shape)) for i in active}
        for lane, (i, k) in enumerate(directions[lo:lo + WIDTH]):
            if i == 0:
                tangents[0][lane, k] = 1.0
            else:
                tangents[1][lane, :, k] = 1.0     # every point's coordinate k at once
        flat = [v for i, a in enumerate(args) for v in ((a, tangents[i]) if i in active
                                                         else (a,))]
        _, dots = derivative(*flat)
        columns.append(dots[:len(directions[lo:lo + WIDTH])])
    return np.concatenate(columns).T


FUNCTIONS = {"objective": objective, "jacobian": jacobian}


def synthetic(n_bones: int = 22, n_verts: int = 6, n_points: int = 4, us: bool = True,
              seed: int = 0) -> dict:
    """A small made-up hand in GradBench's input format (bones chained, random transforms
    and weights): for compiling at "define" and for tests."""
    rng = np.random.default_rng(seed)
    transforms = np.tile(np.eye(4), (n_bones, 1, 1))
    transforms[:, :3, :] += 0.1 * rng.standard_normal((n_bones, 3, 4))
    positions = np.ones((n_verts, 4))
    positions[:, :3] = rng.standard_normal((n_verts, 3))
    return {"theta": (0.3 * rng.standard_normal(N_THETA)).tolist(),
            "us": rng.random((n_points, 2)).tolist() if us else [],
            "data": {"correspondences": rng.integers(0, n_verts if not us else 2,
                                                     n_points).tolist(),
                     "points": rng.standard_normal((n_points, 3)).tolist(),
                     "model": {"bone_count": n_bones,
                               "bone_names": [f"b{i}" for i in range(n_bones)],
                               "parents": [-1, *range(n_bones - 1)],
                               "base_relatives": transforms.tolist(),
                               "inverse_base_absolutes": np.linalg.inv(transforms).tolist(),
                               "base_positions": positions.tolist(),
                               "weights": rng.random((n_verts, n_bones)).tolist(),
                               "triangles": rng.integers(0, n_verts, (2, 3)).tolist(),
                               "is_mirrored": False}}}


def warm() -> None:
    for us in (False, True):
        raw = synthetic(us=us)
        objective(raw)
        jacobian(raw)
