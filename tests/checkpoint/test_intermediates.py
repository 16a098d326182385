"""Store or recompute the values inside a step (`hpcad.checkpoint(f, intermediates=...)`,
checkpoint/cost.py): a chain of cheap elementwise ops is recomputed by the default plan (less
tape than storing every intermediate), libm results are stored when the budget allows and
recomputed when it does not; the gradient is the same under every plan and equals the
analytic one."""
import math

import numpy as np
import pytest

import hpcad as ad

N = 64


@ad.kernel
def cheap_chain(x, a, b):
    n = x.shape[0]
    y = np.zeros(n)
    z = np.zeros(n)
    for i in range(n):
        y[i] = x[i] * x[i] * a + b
    for i in range(n):
        z[i] = (y[i] - x[i]) * y[i] + a * x[i]
    s = 0.0
    for i in range(n):
        s += z[i] * y[i]
    return s


def cheap_chain_gradient(x, a, b):
    y = x * x * a + b
    z = (y - x) * y + a * x
    # s = sum(z * y); dz/dy = 2y - x; ds/dy = z + y * (2y - x)
    ds_dy = z + y * (2 * y - x)
    ds_dx_direct = y * (-y + a)
    return (ds_dy * 2 * x * a + ds_dx_direct, np.sum(ds_dy * x * x + y * x),
            np.sum(ds_dy))


@ad.kernel
def expensive(x, w):
    s = 0.0
    for i in range(x.shape[0]):
        s += math.exp(math.sin(x[i]) * w)
    return s


def expensive_gradient(x, w):
    e = np.exp(np.sin(x) * w)
    return e * np.cos(x) * w, np.sum(e * np.sin(x))


def _x():
    return np.linspace(-1.0, 1.0, N)


def _tape(k) -> int:
    return sum(c.held_bytes()[0] for _, c in k.compiled.values())


def _run(kernel, args, argnums, **policy):
    k = ad.checkpoint(kernel, **policy)
    k.compiled.clear()
    g = ad.grad(k, argnums=argnums)(*args)
    return g, _tape(k), k


@pytest.mark.parametrize("backend", ["numba", "interp"])
def test_cheap_chain_is_recomputed_with_less_tape_than_storing_all(backend):
    args = (_x(), 0.7, 0.2)
    ref = cheap_chain_gradient(*args)
    stored, recomputed = ({}, {})
    for plan, out in (("store", stored), ("auto", recomputed)):
        k = ad.checkpoint(cheap_chain, intermediates=plan)
        out["grad"] = ad.grad(k, argnums=(0, 1, 2), backend=backend)(*args)
        if backend == "numba":
            out["tape"] = _tape(k)
    for got in (stored["grad"], recomputed["grad"]):
        for g, r in zip(got, ref, strict=True):
            np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)
    for g, r in zip(stored["grad"], recomputed["grad"], strict=True):
        np.testing.assert_array_equal(g, r)
    if backend == "numba":
        assert stored["tape"] >= 3 * N * 8          # x, y and z values per element
        assert recomputed["tape"] < stored["tape"] / 2


def test_expensive_intermediates_are_stored_when_the_budget_allows():
    args = (_x(), 0.9)
    ref = expensive_gradient(*args)
    (g_auto, tape_auto, _) = _run(expensive, args, (0, 1))
    (g_store, tape_store, _) = _run(expensive, args, (0, 1), intermediates="store")
    (g_least, tape_least, _) = _run(expensive, args, (0, 1), intermediates="recompute")
    for got in (g_auto, g_store, g_least):
        for g, r in zip(got, ref, strict=True):
            np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-14)
    assert tape_auto == 2 * N * 8          # the sin and exp results, per element
    assert tape_store == 3 * N * 8         # and the loaded x[i], which auto reloads
    assert tape_least < tape_auto
    # a budget that the stored libm results do not fit: recomputed, nothing else changes
    (g_tight, tape_tight, k) = _run(expensive, args, (0, 1), budget=tape_auto - 1)
    assert k.last_policy.fewest_bytes and k.last_policy.snapshots is None
    assert tape_tight == tape_least
    for g, r in zip(g_tight, g_auto, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-14)
    (_, _, k) = _run(expensive, args, (0, 1), budget=tape_auto)
    assert not k.last_policy.fewest_bytes


def test_plan_reports_recompute_flops():
    text = ad.plan(ad.checkpoint(expensive, intermediates="recompute"), _x(), 0.9)
    assert "flops per execution" in text
    flops = [int(t.split("(")[-1].split()[0]) for t in text.splitlines() if "flops" in t]
    assert max(flops) >= 40        # sin and exp again, 20 flops each


def test_bad_intermediates_policy_is_an_error():
    with pytest.raises(ad.ArgumentError, match="intermediates must be one of"):
        ad.checkpoint(expensive, intermediates="sometimes")
