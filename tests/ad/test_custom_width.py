"""Custom derivative rules at width W (batched derivatives): a rule is written for one
direction, so hpcad calls it once per direction. Forward and reverse at W in {1, 3, 8} equal W
separate width-1 calls on both backends (width_check.py) for the bit-trick inverse square
root, the deliberately doubled sine (also against twice the analytic derivative, so the rule
and not the body was used), the array rule whose bwd accumulates into cotangent arrays, a
prange loop calling rules, and a jvp rule updating its array in place (each direction's call
starts from the same array); the IR keeps one copy of a rule whatever W; a bwd rule that
writes the kernel's arrays is refused at W > 1, naming it."""
import math

import numpy as np
import pytest

import hpcad as ad
from hpcad.ir.core import walk
from tests.ad import custom_kernels as ck
from tests.ad.harness import ALL_KERNELS, BACKENDS, SLOW
from tests.ad.width_check import check_forward, check_reverse

WIDTHS = (1, 3, 8)
CASES = {
    "inv_sqrt": (ck.sum_scaled_inv_sqrt, lambda rng: (rng.uniform(0.3, 5.0, 9),)),
    "doubled_sin": (ck.sum_doubled_sin, lambda rng: (rng.uniform(0.1, 2.0, 7), 1.3)),
    "array_rule": (ck.scaled_energy, lambda rng: (rng.uniform(0.3, 1.7, 6), 0.7)),
    "prange_rules": (ck.weighted_row_norms,
                     lambda rng: (rng.standard_normal((9, 4)), rng.uniform(1.0, 2.0, 9))),
}


# numba's source at W=8 differs from W=3's only in the sizes it allocates (the lanes run to
# a run-time width): numba runs W=1 and W=3 (HPCAD_ALL_KERNELS=1: W=8 too)
@pytest.mark.parametrize("name, width, backend", [
    pytest.param(name, width, backend, id=f"{name}-{width}-{backend}",
                 marks=SLOW if backend == "numba" and (width != 3 or name == "prange_rules")
                 else ())
    for name in CASES for width in WIDTHS for backend in BACKENDS
    if backend == "interp" or width < 8 or ALL_KERNELS])
def test_rule_calls_at_width_equal_separate_calls(name, width, backend):
    kernel, make_args = CASES[name]
    rng = np.random.default_rng(width)
    args = make_args(rng)
    check_forward(kernel, args, width, backend, rng)
    check_reverse(kernel, args, width, backend, rng)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("width", (3, 8))
def test_doubled_rule_at_width_gives_twice_the_true_derivative(width, backend):
    rng = np.random.default_rng(11)
    v, w = rng.uniform(0.1, 2.0, 7), 1.3
    dv, dw = rng.standard_normal((width, 7)), rng.standard_normal(width)
    df = ad.autodiff(ck.sum_doubled_sin, mode="forward", activity=(ad.Duplicated, ad.Dual),
                     width=width, backend=backend)
    _, dots = df(v, dv.copy(), w, dw.copy())
    want = dv @ (2.0 * w * np.cos(v)) + dw * np.sum(np.sin(v))
    np.testing.assert_allclose(dots, want, rtol=1e-12)
    seed = rng.standard_normal(width)
    shadow = np.zeros((width, 7))
    rev = ad.autodiff(ck.sum_doubled_sin, mode="reverse", activity=(ad.Duplicated, ad.Active),
                      width=width, backend=backend)
    _, gw = rev(v, shadow, w, seed=seed)
    np.testing.assert_allclose(shadow, np.outer(seed, 2.0 * w * np.cos(v)), rtol=1e-12)
    np.testing.assert_allclose(gw, seed * np.sum(np.sin(v)), rtol=1e-12)


@ad.custom_jvp
@ad.kernel
def damp(u, c):
    """u = c u - u^2 / 10 in place; returns the sum of the new u."""
    s = 0.0
    for i in range(u.shape[0]):
        u[i] = c * u[i] - 0.1 * u[i] * u[i]
        s += u[i]
    return s


@ad.kernel
def damp_jvp(u, c, du, dc):
    s = 0.0
    ds = 0.0
    for i in range(u.shape[0]):
        old = u[i]
        du[i] = (c - 0.2 * old) * du[i] + old * dc
        u[i] = c * old - 0.1 * old * old
        s += u[i]
        ds += du[i]
    return s, ds


damp.defjvp(damp_jvp)


@ad.kernel
def damped_twice(u, c):
    first = damp(u, c)
    return first * damp(u, c)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("width", (3, 8))
def test_jvp_rule_updating_an_array_in_place_runs_once_per_direction_from_the_same_array(
        width, backend):
    rng = np.random.default_rng(5)
    check_forward(damped_twice, (rng.uniform(0.5, 1.5, 6), 0.9), width, backend, rng)


def _op_counts(fn) -> dict:
    counts: dict = {}
    for op in walk(fn.body):
        counts[op.name] = counts.get(op.name, 0) + 1
    return counts


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_rule_is_called_in_a_loop_over_the_lanes_not_copied(mode):
    spec = ck.sum_doubled_sin.specialize((np.ones(3), 1.0))
    activity = ("dup", "active")
    one = _op_counts(spec.derivative(mode, activity, True))
    eight = _op_counts(spec.derivative(mode, activity, True, width=8))
    assert eight["math.cos"] == one["math.cos"] and eight["math.sin"] == one["math.sin"]
    assert eight["vec.extract"] == 1 and eight["vec.insert"] == 1
    assert "vec.extract" not in one


@ad.custom_vjp
@ad.kernel
def square_sum(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return s


@ad.kernel
def square_sum_fwd(x):
    return square_sum(x)


@ad.kernel
def square_sum_bwd_scribbles(x, g, dx):
    for i in range(x.shape[0]):
        dx[i] += 2.0 * x[i] * g
        x[i] = 0.0                    # writes the kernel's array


square_sum.defvjp(square_sum_fwd, square_sum_bwd_scribbles)


@ad.kernel
def calls_square_sum(x):
    return math.sqrt(square_sum(x))


def test_bwd_writing_the_kernels_array_is_refused_at_width():
    df = ad.autodiff(calls_square_sum, mode="reverse", activity=(ad.Duplicated,), width=3,
                     backend="interp")
    with pytest.raises(ad.DifferentiationError,
                       match=r"test_custom_width.py:\d+: bwd rule 'square_sum_bwd_scribbles' "
                             r".* writes its argument 'x'.* at width 3 .* once per direction"):
        df(np.ones(4), np.zeros((3, 4)))
