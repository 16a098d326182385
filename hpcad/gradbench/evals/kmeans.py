"""GradBench eval `kmeans`: the k-means cost sum_i min_j |C_j - P_i|^2 (`cost`) and the Newton
direction J H^-1 in the centroids (`dir`), where J is the cost's gradient and H its Hessian,
which is diagonal, so H's diagonal is H times ones. One forward-over-reverse call
(`ad.grad_and_hvp`) gives J and H ones together.

The cost first finds each point's nearest centroid (`nearest_centroids`), from |c|^2 - 2 p.c
(|p - c|^2 less the |p|^2 all centroids share), for a block of points at a time: the block,
held a row per coordinate with a row of ones under them, times [-2 C | |C|^2] is one matrix
product (BLAS) giving every centroid's value for every point of the block in a table that
stays in cache, a row per centroid, and a vector loop over the points reduces four rows of it
at a time to the nearest so far, so no k x n table is ever written to memory (JAX's matrix
product writes one). Then it adds each point's squared distance to its nearest centroid
computed exactly from the index: the minimum's value, and a derivative that follows only the
nearest centroid (an integer index carries none), not all k distances."""
from __future__ import annotations

import math

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation

BLOCK = 200   # points at a time: the block's table (a row of BLOCK per centroid) stays in cache
TILE = 4      # rows of the table reduced per pass over the block's points


@ad.kernel
def block_rows(points, start, m, rows):
    """rows[:d, :m] = points[start:start + m].T (rows[d] stays ones), four coordinates per
    pass over the points."""
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
def nearest_in_block(table, m, best, closest):
    """best[i], closest[i] = the first j of the least table[j, i] and that value, i < m: a
    vector loop over the points per four rows of the table."""
    k = table.shape[0]
    for i in range(m):
        closest[i] = math.inf
        best[i] = 0
    for first in range(0, k, TILE):   # where k runs out, the last row again
        j1, j2, j3 = min(first + 1, k - 1), min(first + 2, k - 1), min(first + 3, k - 1)
        for i in range(m):   # independent points: a vector loop; equals keep the first
            near, low = best[i], closest[i]
            value = table[first, i]
            near = first if value < low else near
            low = value if value < low else low
            value = table[j1, i]
            near = j1 if value < low else near
            low = value if value < low else low
            value = table[j2, i]
            near = j2 if value < low else near
            low = value if value < low else low
            value = table[j3, i]
            near = j3 if value < low else near
            low = value if value < low else low
            best[i], closest[i] = near, low


@ad.kernel
def nearest_centroids(points, centroids, nearest):
    """nearest[i] = the first j of the least |C_j - P_i|^2 (up to rounding)."""
    n, k, d = points.shape[0], centroids.shape[0], points.shape[1]
    weights = np.empty((k, d + 1))   # [-2 C | |C|^2]: |p - c|^2 - |p|^2 = (p, 1) . (-2 c, |c|^2)
    for j in range(k):
        norm = 0.0
        for col in range(d):
            norm += centroids[j, col] * centroids[j, col]
            weights[j, col] = -2.0 * centroids[j, col]
        weights[j, d] = norm
    rows = np.ones((d + 1, BLOCK))   # a last block's columns past its points: finite, unread
    closest = np.empty(BLOCK)
    best = np.zeros(BLOCK, dtype=np.int64)
    for start in range(0, n, BLOCK):
        m = min(start + BLOCK, n) - start
        block_rows(points, start, m, rows)
        table = weights @ rows
        nearest_in_block(table, m, best, closest)
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
