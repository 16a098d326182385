"""Sequences of calls of one kernel and its derivatives, as a user makes them, with the
arguments' dtype, layout (C, strided, reversed), writability and scalar types changing from
call to call: each call, on the fast path (Kernel.calls: a key of numba's argument
fingerprints) or the full one, gives the analytic value and derivatives, and derivatives
leave their inputs as they were. Hypothesis draws the sequences (tests/generative's
profiles)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import hpcad as ad
from tests.generative import profiles
from tests.generative.profiles import generative


@ad.kernel
def update_and_sum(x, y, a):
    """y += a x^2 (written, a float array not always differentiated); returns sum(y x)."""
    s = 0.0
    for i in range(x.shape[0]):
        y[i] = a * x[i] * x[i] + y[i]
        s += y[i] * x[i]
    return s


ON_INTERP = ad.kernel(update_and_sum.py_func, backend="interp")   # its plain calls


def _value(x, y, a):
    return float(np.sum(a * x**3 + x * y))


def _grads(x, y, a):
    return {0: 3 * a * x**2 + y, 1: x, 2: float(np.sum(x**3))}


def _hvp(x, y, a, nums, v):
    """H v for the arguments `nums` along the directions v (one per argument)."""
    d = dict(zip(nums, v))
    vx, vy, va = d.get(0, 0.0 * x), d.get(1, 0.0 * x), d.get(2, 0.0)
    out = {0: 6 * a * x * vx + vy + 3 * x**2 * va, 1: vx, 2: float(np.sum(3 * x**2 * vx))}
    return tuple(out[n] for n in nums)


def _layout(rng, values, dtype, how, writable):
    a = values.astype(dtype)
    if how == "strided":
        big = np.zeros(2 * a.size, dtype)
        big[::2] = a
        a = big[::2]
    elif how == "reversed":
        a = a[::-1].copy()[::-1]
    a.flags.writeable = writable
    return a


calls = st.fixed_dictionaries({
    "what": st.sampled_from(["call", "grad", "value_and_grad", "vjp", "grad_and_hvp"]),
    "backend": st.sampled_from(["numba", "interp"]),
    "f32": st.booleans(),
    "x": st.sampled_from(["C", "strided", "reversed"]),
    "y": st.sampled_from(["C", "strided"]),
    "read_only_x": st.booleans(),
    "a": st.sampled_from(["float", "float64", "float32"]),
    "argnums": st.sampled_from([0, 1, 2, (0, 2), (2, 1), (0, 1, 2)]),
    "seed": st.integers(0, 2**16),
})


def _run(c):
    rng = np.random.default_rng(c["seed"])
    numba = c["backend"] == "numba"
    dtype = np.float32 if c["f32"] and not numba else np.float64   # numba: fewer compiles
    x = _layout(rng, rng.standard_normal(5), dtype, c["x"], not c["read_only_x"])
    y = _layout(rng, rng.standard_normal(5), dtype, c["y"], True)   # a call writes it
    a = {"float": 0.75, "float64": np.float64(0.75), "float32": np.float32(0.75)}[
        c["a"] if not numba else "float"]
    x0, y0 = x.astype(np.float64), y.astype(np.float64)
    rtol = 1e-4 if dtype == np.float32 or isinstance(a, np.float32) else 1e-12

    def close(got, want):
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=rtol)
    nums = c["argnums"] if isinstance(c["argnums"], tuple) else (c["argnums"],)
    want = _grads(x0, y0, 0.75)
    k = update_and_sum
    if c["what"] == "call":
        close((k if numba else ON_INTERP)(x, y, a), _value(x0, y0, 0.75))
        close(y, y0 + 0.75 * x0**2)
        return
    if c["what"] == "vjp":
        value, pullback = ad.vjp(k, x, y, a, backend=c["backend"])
        close(value, _value(x0, y0, 0.75))
        for n, g in enumerate(pullback(1.0)):
            close(g, want[n])
    elif c["what"] == "grad_and_hvp":
        v = tuple(rng.standard_normal(5) if n < 2 else 0.5 for n in nums)
        value, g, hv = ad.grad_and_hvp(k, argnums=c["argnums"], backend=c["backend"])(
            x, y, a, v if isinstance(c["argnums"], tuple) else v[0])
        close(value, _value(x0, y0, 0.75))
        g, hv = (g, hv) if isinstance(c["argnums"], tuple) else ((g,), (hv,))
        for n, got, h, w in zip(nums, g, hv, _hvp(x0, y0, 0.75, nums, v)):
            close(got, want[n])
            close(h, w)
    else:
        f = ad.grad if c["what"] == "grad" else ad.value_and_grad
        out = f(k, argnums=c["argnums"], backend=c["backend"])(x, y, a)
        if c["what"] == "value_and_grad":
            close(out[0], _value(x0, y0, 0.75))
            out = out[1]
        for n, got in zip(nums, out if isinstance(c["argnums"], tuple) else (out,)):
            close(got, want[n])
    np.testing.assert_array_equal(x, x0.astype(dtype))   # inputs left as they were
    np.testing.assert_array_equal(y, y0.astype(dtype))


@pytest.mark.slow
@pytest.mark.timeout(profiles.time_limit(900))
@generative(ci_examples=40)
@given(sequence=st.lists(calls, min_size=1, max_size=8))
def test_call_sequences_with_changing_argument_types_give_the_analytic_derivatives(sequence):
    for c in sequence:
        _run(c)
