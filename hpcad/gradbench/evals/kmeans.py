"""GradBench eval `kmeans`: the k-means cost sum_i min_j |C_j - P_i|^2 (`cost`) and the Newton
direction J H^-1 in the centroids (`dir`), where J is the cost's gradient and H its Hessian,
which is diagonal, so H's diagonal is H times ones. One forward-over-reverse call
(`ad.grad_and_hvp`) gives J and H ones together.

The cost first finds each point's nearest centroid (`nearest_centroids`), from |c|^2 - 2 p.c
(|p - c|^2 less the |p|^2 all centroids share), for a block of points at a time held a row per
coordinate in L1 cache: four centroids' distances to all the block's points, four coordinates
at a time, in loops over the points (vector loops whose sums stay in cache), each tile reduced
at once to the nearest so far, so no k x n table of products is ever written (JAX's matrix
product writes one). Then it adds each point's squared distance to its nearest centroid
computed exactly from the index: the minimum's value, and a derivative that follows only the
nearest centroid (an integer index carries none), not all k distances."""
from __future__ import annotations

import math

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation

BLOCK = 200   # points at a time, a row per coordinate: 200 (not 256) keeps the rows' addresses
              # from sharing their low 12 bits, which stalls loads behind the stores to them
TILE = 4      # centroids per pass over a block, and coordinates per step of that pass


@ad.kernel
def transpose_block(points, start, m, rows):
    """rows[:, :m] = points[start:start + m].T, four coordinates per pass over the points."""
    d = points.shape[1]
    wide = d - d % TILE
    for col in range(0, wide, TILE):
        for i in range(m):
            rows[col, i] = points[start + i, col]
            rows[col + 1, i] = points[start + i, col + 1]
            rows[col + 2, i] = points[start + i, col + 2]
            rows[col + 3, i] = points[start + i, col + 3]
    for col in range(wide, d):
        for i in range(m):
            rows[col, i] = points[start + i, col]


@ad.kernel
def tile_distances(rows, m, norms, scaled, j0, j1, j2, j3, dist):
    """dist[r, :m] = |c|^2 - 2 p.c for centroid jr and the block's points: a vector loop over
    the points per four coordinates, its sixteen factors held in registers."""
    d = rows.shape[0]
    wide = d - d % TILE
    for i in range(m):
        dist[0, i] = norms[j0]
        dist[1, i] = norms[j1]
        dist[2, i] = norms[j2]
        dist[3, i] = norms[j3]
    for col in range(0, wide, TILE):
        a0, a1, a2, a3 = scaled[j0, col], scaled[j0, col + 1], scaled[j0, col + 2], \
            scaled[j0, col + 3]
        b0, b1, b2, b3 = scaled[j1, col], scaled[j1, col + 1], scaled[j1, col + 2], \
            scaled[j1, col + 3]
        c0, c1, c2, c3 = scaled[j2, col], scaled[j2, col + 1], scaled[j2, col + 2], \
            scaled[j2, col + 3]
        e0, e1, e2, e3 = scaled[j3, col], scaled[j3, col + 1], scaled[j3, col + 2], \
            scaled[j3, col + 3]
        for i in range(m):
            q0, q1, q2, q3 = rows[col, i], rows[col + 1, i], rows[col + 2, i], rows[col + 3, i]
            dist[0, i] += a0 * q0 + a1 * q1 + a2 * q2 + a3 * q3
            dist[1, i] += b0 * q0 + b1 * q1 + b2 * q2 + b3 * q3
            dist[2, i] += c0 * q0 + c1 * q1 + c2 * q2 + c3 * q3
            dist[3, i] += e0 * q0 + e1 * q1 + e2 * q2 + e3 * q3
    for col in range(wide, d):
        a0, b0, c0, e0 = scaled[j0, col], scaled[j1, col], scaled[j2, col], scaled[j3, col]
        for i in range(m):
            q0 = rows[col, i]
            dist[0, i] += a0 * q0
            dist[1, i] += b0 * q0
            dist[2, i] += c0 * q0
            dist[3, i] += e0 * q0


@ad.kernel
def nearest_centroids(points, centroids, nearest):
    """nearest[i] = the first j of the least |C_j - P_i|^2 (up to rounding)."""
    n, k, d = points.shape[0], centroids.shape[0], points.shape[1]
    norms = np.zeros(k)
    scaled = np.empty((k, d))   # -2 C: |p - c|^2 - |p|^2 = |c|^2 + p.(-2 c)
    for j in range(k):
        for col in range(d):
            norms[j] += centroids[j, col] * centroids[j, col]
            scaled[j, col] = -2.0 * centroids[j, col]
    rows = np.empty((d, BLOCK))
    dist = np.empty((TILE, BLOCK))
    closest = np.empty(BLOCK)
    best = np.zeros(BLOCK, dtype=np.int64)
    for start in range(0, n, BLOCK):
        m = min(start + BLOCK, n) - start
        transpose_block(points, start, m, rows)
        for i in range(m):
            closest[i] = math.inf
            best[i] = 0
        for first in range(0, k, TILE):   # where k runs out, the last centroid again
            tile_distances(rows, m, norms, scaled, first, min(first + 1, k - 1),
                           min(first + 2, k - 1), min(first + 3, k - 1), dist)
            for i in range(m):   # independent points: a vector loop; equals keep the first
                near, low = best[i], closest[i]
                for r in range(TILE):
                    better = dist[r, i] < low
                    near = min(first + r, k - 1) if better else near
                    low = dist[r, i] if better else low
                best[i], closest[i] = near, low
        for i in range(m):
            nearest[start + i] = best[i]


@ad.kernel
def cost(points, centroids):
    n, d = points.shape[0], points.shape[1]
    nearest = np.zeros(n, dtype=np.int64)
    nearest_centroids(points, centroids, nearest)
    total = 0.0
    for i in range(n):   # a sum per point first: the points' sums overlap, not one long chain
        near = 0.0
        for col in range(d):
            diff = points[i, col] - centroids[nearest[i], col]
            near += diff * diff
        total += near
    return total


def prepare(raw: dict) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(raw["points"], dtype=np.float64),
            np.asarray(raw["centroids"], dtype=np.float64))


gradient_and_curvature = ad.grad_and_hvp(cost, argnums=1)


@evaluation(prepare=prepare, output=float)
def value(args: tuple[np.ndarray, np.ndarray]) -> float:
    return cost(*args)


@evaluation(prepare=prepare, output=np.ndarray.tolist)
def direction(args: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    points, centroids = args
    _, jacobian, hessian_diagonal = gradient_and_curvature(points, centroids,
                                                           np.ones_like(centroids))
    return jacobian / hessian_diagonal


FUNCTIONS = {"cost": value, "dir": direction}


def warm() -> None:
    points = np.linspace(0.0, 1.0, 6).reshape(3, 2)
    value.run((points, points[1:]))
    direction.run((points, points[1:]))
