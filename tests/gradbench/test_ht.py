"""GradBench eval ht: the residuals against a NumPy hand model written from ADBench's
definition (Euler rotations as matrix products Rz Ry Rx, Rodrigues' formula for the global
rotation, skinning as one weighted sum over bones) on a small made-up hand, simple and
complicated; the jacobian against central differences of it, column by column (theta, and
each point's own barycentric coordinates), through the eval's functions (numba) and a
forward-mode Jacobian on the interpreter."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.gradbench.evals import ht


def rotation_x(a):
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def rotation_y(a):
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def rotation_z(a):
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def pose_columns(theta, n_bones):
    """Per bone its Euler angles (x, z, y): the fingers' bones (columns 5.. of the pose,
    4 per finger, the last of each unused) from theta[6:]."""
    angles = np.zeros((n_bones, 3))
    t = 6
    for finger in range(5):
        for joint in range(3):
            bone = 2 + 4 * finger + joint
            angles[bone, 0] = theta[t]
            t += 1
            if joint == 0:
                angles[bone, 1] = theta[t]
                t += 1
    return angles


def reference(raw, theta, us) -> np.ndarray:
    model, data = raw["data"]["model"], raw["data"]
    n_bones = len(model["parents"])
    base_rel = np.array(model["base_relatives"])
    inv_abs = np.array(model["inverse_base_absolutes"])
    base = np.array(model["base_positions"])
    weights = np.array(model["weights"])
    absolutes = []
    for bone, (ax, az, ay) in enumerate(pose_columns(theta, n_bones)):
        local = np.eye(4)
        local[:3, :3] = rotation_z(az) @ rotation_y(ay) @ rotation_x(ax)
        rel = base_rel[bone] @ local
        parent = model["parents"][bone]
        absolutes.append(rel if parent == -1 else absolutes[parent] @ rel)
    transforms = np.array([a @ inv for a, inv in zip(absolutes, inv_abs, strict=True)])
    skinned = np.einsum("vb,brj,vj->vr", weights, transforms[:, :3, :], base)
    if model["is_mirrored"]:
        skinned[:, 0] *= -1
    angle = np.linalg.norm(theta[:3])
    if angle < 1e-4:
        rot = np.eye(3)
    else:
        k = theta[:3] / angle
        cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        rot = np.cos(angle) * np.eye(3) + np.sin(angle) * cross \
            + (1 - np.cos(angle)) * np.outer(k, k)
    positions = skinned @ rot.T + theta[3:6]
    points = np.array(data["points"])
    corr = np.array(data["correspondences"])
    if us is None:
        return (points - positions[corr]).ravel()
    tri = np.array(model["triangles"])[corr]
    on_hand = us[:, :1] * positions[tri[:, 0]] + us[:, 1:] * positions[tri[:, 1]] \
        + (1 - us[:, :1] - us[:, 1:]) * positions[tri[:, 2]]
    return (points - on_hand).ravel()


def inputs(raw):
    us = np.array(raw["us"]) if raw["us"] else None
    return np.array(raw["theta"]), us


def fd_jacobian(raw, h=1e-6):
    theta, us = inputs(raw)
    columns = []
    if us is not None:
        for k in range(2):         # each point's own coordinate k
            column = np.zeros(3 * len(us))
            for i in range(len(us)):
                up, down = us.copy(), us.copy()
                up[i, k] += h
                down[i, k] -= h
                diff = (reference(raw, theta, up) - reference(raw, theta, down)) / (2 * h)
                assert np.all(np.delete(diff.reshape(-1, 3), i, axis=0) == 0)
                column[3 * i:3 * i + 3] = diff[3 * i:3 * i + 3]
            columns.append(column)
    for j in range(len(theta)):
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        columns.append((reference(raw, up, us) - reference(raw, down, us)) / (2 * h))
    return np.array(columns).T


@pytest.mark.parametrize("complicated", [False, True], ids=["simple", "complicated"])
@pytest.mark.parametrize("mirrored", [False, True], ids=["right", "mirrored"])
def test_objective_is_the_residual(complicated, mirrored):
    raw = ht.synthetic(us=complicated, seed=1)
    raw["data"]["model"]["is_mirrored"] = mirrored
    np.testing.assert_allclose(ht.objective(raw), reference(raw, *inputs(raw)), rtol=1e-12,
                               atol=1e-12)


def test_tiny_global_rotation_is_the_identity():
    raw = ht.synthetic(us=False, seed=2)
    raw["theta"][:3] = [1e-5, 0.0, -2e-5]
    np.testing.assert_allclose(ht.objective(raw), reference(raw, *inputs(raw)), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("complicated", [False, True], ids=["simple", "complicated"])
def test_jacobian_matches_central_differences(complicated):
    raw = ht.synthetic(us=complicated, seed=3)
    got = np.array(ht.jacobian(raw))
    assert got.shape == (3 * 4, 26 + 2 * complicated)
    np.testing.assert_allclose(got, fd_jacobian(raw), rtol=1e-6, atol=1e-7)


def test_interpreter_theta_columns_match_central_differences():
    raw = ht.synthetic(n_bones=22, n_verts=3, n_points=2, us=False, seed=4)
    kernel, args = ht.prepare(raw)
    got = ad.jacobian(kernel, argnums=0, mode="fwd", batch=13, backend="interp")(*args)
    np.testing.assert_allclose(got, fd_jacobian(raw), rtol=1e-6, atol=1e-7)
