"""The residuals of custom rules are planned like any value the reverse sweep needs
(`ad.checkpoint(f, intermediates=...)`): stored on the tape, or recomputed by calling the
fwd rule again where it writes no arrays, sends no message and reads arrays nothing
overwrites later. The gradient is the same under every policy and equals the analytic one;
a cheap rule is recomputed under "recompute" (and "auto", which saves bytes), an expensive
one (libm calls, loops) stays stored under "auto", and "store" stores; `ad.plan` says which."""
import math
import re

import numpy as np
import pytest

import hpcad as ad
from hpcad.checkpoint.plan import Plan
from hpcad.ir.core import walk
from tests.ad import custom_kernels as ck

POLICIES = ("auto", "recompute", "store")


@ad.custom_vjp
@ad.kernel
def cube(x):
    return x * x * x


@ad.kernel
def cube_fwd(x):
    square = x * x
    return square * x, square          # residual: x^2 (two flops to recompute)


@ad.kernel
def cube_bwd(x, square, g):
    return 3.0 * square * g


cube.defvjp(cube_fwd, cube_bwd)


@ad.kernel
def sum_cubes(v, w):
    s = 0.0
    for i in range(v.shape[0]):
        s += w * cube(v[i])
    return s


def _tape_pushes(kernel, args, policy: str, activity) -> int:
    spec = kernel.specialize(kernel.bind(args))
    fn = spec.derivative("reverse", activity, True, Plan(intermediates=policy))
    return sum(op.name == "tape.push" for op in walk(fn.body))


def _plan(kernel, args, policy: str) -> str:
    return ad.plan(ad.checkpoint(kernel, intermediates=policy), *args)


def _grads(kernel, args, argnums, backend):
    return {p: ad.grad(ad.checkpoint(kernel, intermediates=p), argnums=argnums,
                       backend=backend)(*args) for p in POLICIES}


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_cheap_rule_residuals_are_recomputed_and_the_gradient_is_unchanged(backend):
    v, w = np.linspace(-1.0, 1.5, 11), 0.7
    grads = _grads(sum_cubes, (v, w), (0, 1), backend)
    for gv, gw in grads.values():
        np.testing.assert_allclose(gv, 3.0 * w * v * v, rtol=1e-12)
        assert math.isclose(gw, float(np.sum(v ** 3)), rel_tol=1e-12)
    assert re.search(r"save [^;]*res:f64", _plan(sum_cubes, (v, w), "store"))
    for policy in ("recompute", "auto"):
        text = _plan(sum_cubes, (v, w), policy)
        assert "save nothing" in text and "res:f64 by calling cube_fwd again" in text, text
    activity = ("dup", "active")
    assert _tape_pushes(sum_cubes, (v, w), "recompute", activity) == 0
    assert _tape_pushes(sum_cubes, (v, w), "store", activity) >= 2   # the result and x^2


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_expensive_rule_keeps_its_residuals_stored_under_auto(backend):
    v, w = np.linspace(0.1, 2.0, 7), 1.3
    grads = _grads(ck.sum_doubled_sin, (v, w), (0, 1), backend)
    for gv, gw in grads.values():
        np.testing.assert_allclose(gv, 2.0 * w * np.cos(v), rtol=1e-12)   # the doubled rule
        assert math.isclose(gw, float(np.sum(np.sin(v))), rel_tol=1e-12)
    assert re.search(r"save [^;]*res:f64", _plan(ck.sum_doubled_sin, (v, w), "auto"))
    recomputed = _plan(ck.sum_doubled_sin, (v, w), "recompute")
    assert "res:f64 by calling doubled_sin_fwd again" in recomputed
    assert re.search(r"\(4\d flops per execution\)", recomputed)   # sin and cos again
    activity = ("dup", "active")
    assert _tape_pushes(ck.sum_doubled_sin, (v, w), "auto", activity) > \
        _tape_pushes(ck.sum_doubled_sin, (v, w), "recompute", activity)


@ad.custom_vjp
@ad.kernel
def lookup(table, x):
    """Linear interpolation in table at x (0 <= x < table.shape[0] - 1)."""
    j = int(x)
    return table[j] + (x - j) * (table[j + 1] - table[j])


@ad.kernel
def lookup_fwd(table, x):
    j = int(x)
    slope = table[j + 1] - table[j]
    return table[j] + (x - j) * slope, slope      # residual: the slope at x


@ad.kernel
def lookup_bwd(table, x, slope, g, dtable):       # reads x and the slope, not the table
    j = int(x)
    frac = x - j
    dtable[j] += (1.0 - frac) * g
    dtable[j + 1] += frac * g
    return slope * g


lookup.defvjp(lookup_fwd, lookup_bwd)


@ad.kernel
def weighted_lookups(table, xs):
    s = 0.0
    for i in range(xs.shape[0]):
        s += xs[i] * lookup(table, xs[i])
    return s


@ad.kernel
def weighted_lookups_then_clear(table, xs):
    s = 0.0
    for i in range(xs.shape[0]):
        s += xs[i] * lookup(table, xs[i])
    for k in range(table.shape[0]):
        table[k] = 0.0
    return s


def _lookup_gradient(table, xs):
    j = xs.astype(int)
    frac = xs - j
    slope = table[j + 1] - table[j]
    dtable = np.zeros_like(table)
    np.add.at(dtable, j, xs * (1.0 - frac))
    np.add.at(dtable, j + 1, xs * frac)
    return dtable, table[j] + frac * slope + xs * slope


def test_rule_reading_an_array_is_recomputed_only_while_nothing_overwrites_it():
    table = np.linspace(0.0, 2.0, 6) ** 2
    xs = np.array([0.3, 1.7, 2.2, 4.9, 3.5, 0.8])
    assert "res:f64 by calling lookup_fwd again" in _plan(weighted_lookups, (table, xs),
                                                          "recompute")
    kept = _plan(weighted_lookups_then_clear, (table, xs), "recompute")
    assert re.search(r"save [^;]*res:f64", kept) and "again" not in kept, kept
    want = _lookup_gradient(table, xs)
    for kernel in (weighted_lookups, weighted_lookups_then_clear):
        for policy in POLICIES:
            got = ad.grad(ad.checkpoint(kernel, intermediates=policy), argnums=(0, 1),
                          backend="interp")(table, xs)
            for g, w in zip(got, want, strict=True):
                np.testing.assert_allclose(g, w, rtol=1e-12)


@ad.custom_vjp
@ad.kernel
def square_into(x, out, i):
    out[i] = x * x
    return x * x


@ad.kernel
def square_into_fwd(x, out, i):
    return square_into(x, out, i), x


@ad.kernel
def square_into_bwd(x, out, i, saved_x, g, dout):
    total = dout[i] + g
    dout[i] = 0.0
    return 2.0 * saved_x * total


square_into.defvjp(square_into_fwd, square_into_bwd)


@ad.kernel
def squares_and_sum(v, out):
    s = 0.0
    for i in range(v.shape[0]):
        s += square_into(v[i], out, i)
    return s


def test_rule_writing_an_array_keeps_its_residuals_stored_even_under_recompute():
    v = np.linspace(-1.0, 1.0, 6)
    text = _plan(squares_and_sum, (v, np.zeros(6)), "recompute")
    assert re.search(r"save [^;]*res:f64", text) and "again" not in text, text
    g = ad.grad(ad.checkpoint(squares_and_sum, intermediates="recompute"),
                backend="interp")(v, np.zeros(6))
    np.testing.assert_allclose(g, 2.0 * v, rtol=1e-12)
