"""GradBench eval `kmeans`: the k-means cost sum_i min_j |C_j - P_i|^2 (`cost`) and the Newton
direction J H^-1 in the centroids (`dir`), where J is the cost's gradient and H its Hessian,
which is diagonal, so H's diagonal is H times ones. One forward-over-reverse call
(`ad.grad_and_hvp`) gives J and H ones together.

The cost finds each point's nearest centroid from |c|^2 - 2 p.c (|p - c|^2 less the |p|^2 all
centroids share), every centroid's products with a block of points at a time (a matrix
product, on BLAS, as JAX's k-means does). The block's points look for their nearest centroid
together: centroid by centroid, a loop over the points that are independent of each other
(selects the compiler vectorizes), not point by point a chain of compares over the centroids
(each waits on the last). Then it adds each point's squared distance to its nearest centroid
computed exactly from the index: the minimum's value, and a derivative that follows only the
nearest centroid (an integer index carries none), not all k distances."""
from __future__ import annotations

import math

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation

BLOCK = 256   # points whose products with every centroid are computed at once (in cache)


@ad.kernel
def cost(points, centroids):
    n, k = points.shape[0], centroids.shape[0]
    norms = np.zeros(k)
    for j in range(k):
        for col in range(centroids.shape[1]):
            norms[j] += centroids[j, col] * centroids[j, col]
    nearest = np.zeros(n, dtype=np.int64)
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        cross = centroids @ points[start:stop].T   # (k, block): a centroid's products in a row
        closest = np.full(stop - start, math.inf)
        best = np.zeros(stop - start, dtype=np.int64)
        for j in range(k):
            for i in range(stop - start):   # independent points: a vector loop
                dist = norms[j] - 2.0 * cross[j, i]   # |p - c|^2 - |p|^2
                better = dist < closest[i]
                best[i] = j if better else best[i]
                closest[i] = dist if better else closest[i]
        nearest[start:stop] = best
    total = 0.0
    for i in range(n):
        for col in range(points.shape[1]):
            diff = points[i, col] - centroids[nearest[i], col]
            total += diff * diff
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
