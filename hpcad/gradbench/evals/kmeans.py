"""GradBench eval `kmeans`: the k-means cost sum_i min_j |C_j - P_i|^2 (`cost`) and the Newton
direction J H^-1 in the centroids (`dir`), where J is the cost's gradient and H its Hessian,
which is diagonal, so H's diagonal is H times ones. One forward-over-reverse call
(`ad.grad_and_hvp`) gives J and H ones together.

The cost finds each point's nearest centroid, then adds that squared distance computed from
the index: the same number as the minimum, and the derivative follows only the nearest
centroid (the integer index carries no derivative), not all k distances."""
from __future__ import annotations

import math

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation


@ad.kernel
def cost(points, centroids):
    total = 0.0
    for i in range(points.shape[0]):
        nearest = 0
        closest = math.inf
        for j in range(centroids.shape[0]):
            dist = 0.0
            for col in range(points.shape[1]):
                diff = points[i, col] - centroids[j, col]
                dist += diff * diff
            if dist < closest:
                closest = dist
                nearest = j
        for col in range(points.shape[1]):
            diff = points[i, col] - centroids[nearest, col]
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
