"""ad.grad_and_hvp: the value, the gradient and H v from one forward-over-reverse call,
against analytic formulas, central differences of the primal and of the gradient, and
ad.grad / ad.hvp, on both backends, for array and scalar arguments and a branchy kernel."""
import math

import numpy as np
import pytest

import hpcad as ad

BACKENDS = ("interp", "numba")


@ad.kernel
def cubic(x, a):
    """f(x, a) = sum(a x_i^3) + a^2 sin(x_0): a full Hessian in (x, a)."""
    total = 0.0
    for i in range(x.shape[0]):
        total += a * x[i] * x[i] * x[i]
    return total + a * a * math.sin(x[0])


@ad.kernel
def nearest(points, centroids):
    """k-means' cost: the squared distance of each point to its nearest centroid."""
    total = 0.0
    for i in range(points.shape[0]):
        best = math.inf
        for j in range(centroids.shape[0]):
            dist = 0.0
            for col in range(points.shape[1]):
                diff = points[i, col] - centroids[j, col]
                dist += diff * diff
            if dist < best:
                best = dist
        total += best
    return total


def _cubic_value(x, a):
    return float(np.sum(a * x ** 3) + a * a * np.sin(x[0]))


def _fd(fn, x, v, eps=1e-6):
    return (fn(x + eps * v) - fn(x - eps * v)) / (2 * eps)


@pytest.mark.parametrize("backend", BACKENDS)
def test_array_and_scalar_arguments(backend):
    rng = np.random.default_rng(0)
    x, a = rng.standard_normal(5), 0.7
    vx, va = rng.standard_normal(5), 0.3
    value, (gx, ga), (hx, ha) = ad.grad_and_hvp(cubic, argnums=(0, 1), backend=backend)(
        x, a, (vx, va))
    assert value == pytest.approx(_cubic_value(x, a), rel=1e-12)
    # analytic gradient and Hessian
    want_gx = 3 * a * x ** 2
    want_gx[0] += a * a * np.cos(x[0])
    want_ga = float(np.sum(x ** 3) + 2 * a * np.sin(x[0]))
    np.testing.assert_allclose(gx, want_gx, rtol=1e-12)
    assert ga == pytest.approx(want_ga, rel=1e-12)
    hxx = np.diag(6 * a * x)
    hxx[0, 0] -= a * a * np.sin(x[0])
    hxa = 3 * x ** 2
    hxa[0] += 2 * a * np.cos(x[0])
    np.testing.assert_allclose(hx, hxx @ vx + hxa * va, rtol=1e-10)
    assert ha == pytest.approx(hxa @ vx + 2 * np.sin(x[0]) * va, rel=1e-10)
    # the same as grad and hvp, which take two calls
    gx2, ga2 = ad.grad(cubic, argnums=(0, 1), backend=backend)(x, a)
    hx2, ha2 = ad.hvp(cubic, argnums=(0, 1), backend=backend)(x, a, (vx, va))
    np.testing.assert_allclose(gx, gx2, rtol=1e-14)
    assert ga == pytest.approx(ga2, rel=1e-14)
    np.testing.assert_allclose(hx, hx2, rtol=1e-14)
    assert ha == pytest.approx(ha2, rel=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_branchy_kernel_against_finite_differences(backend):
    rng = np.random.default_rng(1)
    points = rng.random((30, 3))
    centroids = points[-4:] + 0.01
    v = rng.standard_normal(centroids.shape)
    before = (points.copy(), centroids.copy())
    value, g, hv = ad.grad_and_hvp(nearest, argnums=1, backend=backend)(points, centroids, v)
    assert np.array_equal(points, before[0]) and np.array_equal(centroids, before[1])
    dists = ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    assert value == pytest.approx(dists.min(axis=1).sum(), rel=1e-12)
    primal = lambda c: nearest(points, c)   # noqa: E731
    grad = ad.grad(nearest, argnums=1, backend=backend)
    for e in np.eye(centroids.size)[:5]:
        e = e.reshape(centroids.shape)
        assert np.sum(g * e) == pytest.approx(_fd(primal, centroids, e), rel=1e-6, abs=1e-8)
    np.testing.assert_allclose(hv, _fd(lambda c: grad(points, c), centroids, v), rtol=1e-6,
                               atol=1e-8)
    # H is diagonal, 2 * (points per centroid): H ones is J's Newton scaling
    _, _, diag = ad.grad_and_hvp(nearest, argnums=1, backend=backend)(
        points, centroids, np.ones_like(centroids))
    counts = np.bincount(dists.argmin(axis=1), minlength=len(centroids))
    np.testing.assert_allclose(diag, 2.0 * counts[:, None] * np.ones_like(centroids))


def test_direction_comes_last():
    with pytest.raises(ad.ArgumentError, match="direction v comes last"):
        ad.grad_and_hvp(cubic)()


@ad.kernel
def through_buffer(x, weights, buf):
    """sum((w x)^2) through buf, a float array written with active values and read back."""
    for i in range(x.shape[0]):
        buf[i] = weights[i] * x[i]
    total = 0.0
    for i in range(x.shape[0]):
        total += buf[i] * buf[i]
    return total


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_array_only_read_is_neither_copied_nor_shadowed(backend):
    """weights (50 MB) is only read: the call allocates nothing of its size (no copy, no zero
    shadow, tangent or adjoint); buf is written: it keeps its shadow (the derivative flows
    through it) and the caller's buf is left as it was."""
    import tracemalloc
    n = 6_250_000 if backend == "numba" else 2_000
    x = np.linspace(0.5, 1.5, 7)
    weights = np.linspace(1.0, 2.0, n)
    buf = np.full(7, -1.0)
    both = ad.grad_and_hvp(through_buffer, argnums=0, backend=backend)
    both(x, weights, buf, np.ones(7))   # compiled before measuring
    tracemalloc.start()
    value, g, hv = both(x, weights, buf, np.ones(7))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    w = weights[:7]
    assert value == pytest.approx(np.sum((w * x) ** 2), rel=1e-12)
    np.testing.assert_allclose(g, 2 * w * w * x, rtol=1e-12)
    np.testing.assert_allclose(hv, 2 * w * w, rtol=1e-12)
    assert np.all(buf == -1.0)
    if backend == "numba":
        assert peak < weights.nbytes / 4
