"""GradBench eval kmeans: the cost against NumPy's all-pairs distances and the Newton
direction against its closed form (J H^-1 = C_j minus the mean of its points), on sizes of
several blocks of points (the last one partial), of tiles of centroids (the last one partial)
and of coordinates taken four at a time (with a rest), and ties between centroids, in a tile
and across tiles, through the kernel on numba and on the interpreter."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.gradbench.evals import kmeans

BACKENDS = ("numba", "interp")


def make(n: int, k: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = rng.random((n, d))
    return points, points[-k:].copy()


def distances(points, centroids):
    return ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)


def direction(points, centroids, js=None):
    nearest = distances(points, centroids).argmin(axis=1)   # the first of equals, as numpy
    return np.stack([centroids[j] - points[nearest == j].mean(axis=0)
                     for j in (range(len(centroids)) if js is None else js)])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n, k, d", [(2 * kmeans.BLOCK + 37, 7, 3), (kmeans.BLOCK, 3, 2),
                                     (kmeans.BLOCK + 5, 9, 6), (37, 8, 8)])
def test_cost_and_direction_over_several_blocks(backend, n, k, d):
    points, centroids = make(n, k, d)
    cost = ad.kernel(kmeans.cost.py_func, backend=backend)
    both = ad.grad_and_hvp(kmeans.cost, argnums=1, backend=backend)
    value, jac, hess = both(points, centroids, np.ones_like(centroids))
    want = distances(points, centroids).min(axis=1).sum()
    assert value == pytest.approx(want, rel=1e-12)
    assert cost(points, centroids) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(jac / hess, direction(points, centroids), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_equal_centroids_give_their_points_to_the_first(backend):
    points, centroids = make(300, 4, 2, seed=1)
    centroids[2] = centroids[1]   # a tie at every point nearest to them: the first one wins
    both = ad.grad_and_hvp(kmeans.cost, argnums=1, backend=backend)
    _, jac, hess = both(points, centroids, np.ones_like(centroids))
    assert np.all(jac[2] == 0.0) and np.all(hess[2] == 0.0)
    np.testing.assert_allclose(jac[[0, 1, 3]] / hess[[0, 1, 3]],
                               direction(points, centroids, [0, 1, 3]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_equal_centroids_in_two_tiles_give_their_points_to_the_first(backend):
    points, centroids = make(300, 2 * kmeans.TILE + 1, 5, seed=2)
    centroids[kmeans.TILE] = centroids[kmeans.TILE - 1]   # the last of one tile, first of next
    nearest = np.full(len(points), -1)
    ad.kernel(kmeans.nearest_centroids.py_func, backend=backend)(points, centroids, nearest)
    np.testing.assert_array_equal(nearest, distances(points, centroids).argmin(axis=1))
    assert np.any(nearest == kmeans.TILE - 1)
