"""ad.grad_and_hvp on kernels as users write them: a scratch array the kernel writes but
that is not differentiated, an argument updated in place, against central differences of
ad.grad on both backends; and argnums naming one argument twice, refused (its first
direction was dropped: H v came back 0.0 for a direction 1.0)."""
import numpy as np
import pytest

import hpcad as ad

BACKENDS = ("interp", "numba")


@ad.kernel
def with_scratch(x, w, scratch, a):
    """scratch is written from x but not differentiated."""
    for i in range(x.shape[0]):
        scratch[i] = np.sin(a * x[i]) * w[i]
    s = 0.0
    for i in range(x.shape[0]):
        s += scratch[i] * scratch[i] * x[i] + a * a * x[i]
    return s


@ad.kernel
def in_place(u, alpha):
    for i in range(1, u.shape[0]):
        u[i] = u[i] + alpha * u[i - 1] * u[i - 1]
    return np.sum(u * u)


def _copies(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def _gradient_difference(k, args, nums, v, eps=1e-5):
    """Central difference of ad.grad (interp) along the directions v."""
    plus, minus = _copies(args), _copies(args)
    for n, d in zip(nums, v):
        plus[n], minus[n] = plus[n] + eps * d, minus[n] - eps * d
    gp = ad.grad(k, argnums=nums, backend="interp")(*plus)
    gm = ad.grad(k, argnums=nums, backend="interp")(*minus)
    return [(np.asarray(a) - np.asarray(b)) / (2 * eps) for a, b in zip(gp, gm)]


RNG = np.random.default_rng(9)
CASES = {
    "scratch": (with_scratch, (RNG.standard_normal(6), RNG.standard_normal(6), np.zeros(6),
                               0.7), (0, 3)),
    "in_place": (in_place, (0.5 * RNG.standard_normal(6), 0.3), (0, 1)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_grad_and_hvp_matches_differences_of_the_gradient(case, backend):
    k, args, nums = CASES[case]
    v = tuple(np.linspace(-1.0, 1.0, np.size(args[n])).reshape(np.shape(args[n]))
              if isinstance(args[n], np.ndarray) else 0.5 for n in nums)
    given = _copies(args)
    value, g, hv = ad.grad_and_hvp(k, argnums=nums, backend=backend)(*given, v)
    assert all(np.array_equal(a, b) for a, b in zip(given, args) if isinstance(a, np.ndarray))
    assert value == pytest.approx(k.py_func(*_copies(args)), rel=1e-13)
    for got, want in zip(g, ad.grad(k, argnums=nums, backend="interp")(*_copies(args))):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    for got, want in zip(hv, _gradient_difference(k, args, nums, v)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_argnums_naming_an_argument_twice_is_refused(backend):
    u = np.array([0.3, -0.2, 0.5])
    for argnums in ((1, 1), (1, -1)):
        with pytest.raises(ad.ArgumentError, match="names an argument twice"):
            ad.grad_and_hvp(in_place, argnums=argnums, backend=backend)(u, 0.3, (1.0, 0.0))
        with pytest.raises(ad.ArgumentError, match="names an argument twice"):
            ad.hvp(in_place, argnums=argnums, backend=backend)(u, 0.3, (1.0, 0.0))
