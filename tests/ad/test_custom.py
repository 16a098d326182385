"""Custom derivative rules (hpcad.custom_vjp / custom_jvp) on both backends: the rules replace
the body (a deliberately doubled rule is honored, the bit-trick inverse square root gets the
derivative of x**-0.5), array rules against finite differences, residuals saved on the tape,
the errors for rules that do not fit the convention (naming the rule's file:line) and for
derivatives through float bits without a rule (naming the kernel's file:line)."""
import inspect
import math
import re

import numpy as np
import pytest

import hpcad as ad
from hpcad.ir.printer import print_function
from tests.ad import custom_kernels as ck

backends = pytest.mark.parametrize("backend", ["interp", "numba"])
INV_SQRT_ACCURACY = 2e-3   # one Newton step after the bit trick


def _line_of(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(k for k, line in enumerate(lines) if text in line)


def _fd(f, args, k, h=1e-6):
    """Central differences of the Python function f w.r.t. argument k (float or array)."""
    def at(delta):
        shifted = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        shifted[k] = shifted[k] + delta
        return f(*shifted)
    if not isinstance(args[k], np.ndarray):
        return (at(h) - at(-h)) / (2 * h)
    return np.array([(at(h * e) - at(-h * e)) / (2 * h)
                     for e in np.eye(args[k].size)]).reshape(args[k].shape)


@backends
def test_doubled_rule_is_honored_in_both_modes(backend):
    v, w = np.linspace(0.1, 2.0, 7), 1.3
    gv, gw = ad.grad(ck.sum_doubled_sin, argnums=(0, 1), backend=backend)(v, w)
    np.testing.assert_allclose(gv, 2.0 * w * np.cos(v), rtol=1e-12)
    assert math.isclose(gw, float(np.sum(np.sin(v))), rel_tol=1e-12)
    t = np.random.default_rng(0).standard_normal(7)
    _, dot = ad.jvp(ck.sum_doubled_sin, (v, w), (t, 0.0), backend=backend)
    assert math.isclose(dot, float(np.sum(2.0 * w * np.cos(v) * t)), rel_tol=1e-12)


@backends
def test_custom_kernel_differentiated_directly_uses_its_rule(backend):
    assert math.isclose(ad.grad(ck.doubled_sin, backend=backend)(0.4), 2.0 * math.cos(0.4),
                        rel_tol=1e-12)
    _, dot = ad.jvp(ck.doubled_sin, (0.4,), (1.0,), backend=backend)
    assert math.isclose(dot, 2.0 * math.cos(0.4), rel_tol=1e-12)


@backends
def test_bit_trick_inverse_square_root_with_rule_matches_true_derivative(backend):
    v = np.linspace(0.3, 5.0, 9)
    # the loss approximates sum(sqrt(v)); its gradient is 0.5 / sqrt(v) up to the trick's error
    exact = 0.5 / np.sqrt(v)
    g = ad.grad(ck.sum_scaled_inv_sqrt, backend=backend)(v)
    np.testing.assert_allclose(g, exact, rtol=INV_SQRT_ACCURACY)
    _, dot = ad.jvp(ck.sum_scaled_inv_sqrt, (v,), (np.ones_like(v),), backend=backend)
    assert math.isclose(dot, float(np.sum(exact)), rel_tol=INV_SQRT_ACCURACY)


@backends
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_bit_trick_without_rule_is_an_error_naming_file_and_line(backend, mode):
    v = np.linspace(0.3, 5.0, 4)
    line = _line_of(ck.bits_inv_sqrt.py_func, "bits[0] = 0x5f3759df")
    with pytest.raises(ad.DifferentiationError) as err:
        if mode == "reverse":
            ad.grad(ck.sum_bits_inv_sqrt, backend=backend)(v)
        else:
            ad.jvp(ck.sum_bits_inv_sqrt, (v,), (np.ones_like(v),), backend=backend)
    msg = str(err.value)
    assert f"custom_kernels.py:{line}:" in msg and "custom_vjp" in msg and "custom_jvp" in msg
    assert f"custom_kernels.py:{line - 1}" in msg   # the bit cast


@backends
def test_integer_index_arithmetic_from_floats_stays_differentiable(backend):
    @ad.kernel
    def interpolate(table, x):
        j = int(x)                   # float -> int: a piecewise-constant index, no error
        frac = x - j
        return (1.0 - frac) * table[j] + frac * table[(j + 1) & 7] + float(j >> 1)
    table = np.linspace(0.0, 2.0, 8) ** 2
    g = ad.grad(interpolate, argnums=(0, 1), backend=backend)(table, 2.3)
    assert math.isclose(g[1], table[3] - table[2], rel_tol=1e-12)
    assert g[0][2] == pytest.approx(0.7) and g[0][3] == pytest.approx(0.3)


@backends
def test_array_rule_matches_finite_differences(backend):
    x, a = np.linspace(0.3, 1.7, 6), 0.7
    gx, ga = ad.grad(ck.scaled_energy, argnums=(0, 1), backend=backend)(x, a)
    np.testing.assert_allclose(gx, _fd(ck.scaled_energy.py_func, [x, a], 0), rtol=1e-6)
    assert math.isclose(ga, _fd(ck.scaled_energy.py_func, [x, a], 1), rel_tol=1e-6)
    t, ta = np.random.default_rng(1).standard_normal(6), 0.4
    _, dot = ad.jvp(ck.scaled_energy, (x, a), (t, ta), backend=backend)
    assert math.isclose(dot, float(np.sum(gx * t) + ga * ta), rel_tol=1e-10)


def test_residuals_are_saved_on_the_tape():
    v, w = np.linspace(0.1, 2.0, 7), 1.3
    plan = ad.plan(ck.sum_doubled_sin, v, w)
    assert re.search(r"save .*res:f64", plan), plan
    spec = ck.sum_doubled_sin.specialize((v, w))
    ir = print_function(spec.derivative("reverse", ("dup", "active"), True))
    assert "%res = tape.pop" in ir
    # the bwd rule reads the saved cos(x), not a recomputation of the primal body's sin
    assert ir.count("math.cos") == 1 and "math.sin" in ir.split("tape.pop")[0]


def _rules(**kw):
    """A fresh custom kernel around doubled_sin's body with the given rules."""
    f = ad.custom_vjp(ck.doubled_sin.py_func)
    if "vjp" in kw:
        f.defvjp(*kw["vjp"])
    if "jvp" in kw:
        f.defjvp(kw["jvp"])
    return f


@ad.kernel
def bwd_missing_residual(x, g):
    return g


@ad.kernel
def fwd_wrong_type(x):
    return 1, math.cos(x)


@ad.kernel
def bwd_two_cotangents(x, c, g):
    return c * g, c


@ad.kernel
def jvp_no_tangent(x, dx):
    return math.sin(x)


def test_rule_with_wrong_parameter_count_is_refused_when_defined():
    with pytest.raises(ad.ArgumentError, match=r"test_custom.py:\d+: fwd rule 'bwd_missing_"
                                               r"residual' of custom_vjp kernel 'doubled_sin'"):
        _rules(vjp=(bwd_missing_residual, ck.doubled_sin_bwd))
    with pytest.raises(ad.ArgumentError, match="must be a kernel"):
        _rules(vjp=(ck.doubled_sin_fwd, 3.0))


@pytest.mark.parametrize("rules, message", [
    (dict(vjp=(ck.doubled_sin_fwd, bwd_missing_residual)),
     r"bwd rule 'bwd_missing_residual' .* takes 2 parameters, but the call at .* gives it 3"),
    (dict(vjp=(fwd_wrong_type, ck.doubled_sin_bwd)),
     r"fwd rule 'fwd_wrong_type' .* returns \(an int64, a float64\); it must return the "
     r"kernel's results \(a float64\)"),
    (dict(vjp=(ck.doubled_sin_fwd, bwd_two_cotangents)),
     r"bwd rule 'bwd_two_cotangents' .* returns \(a float64, a float64\); it must return one "
     r"cotangent"),
])
def test_rule_not_fitting_the_convention_is_an_error_naming_it(rules, message):
    f = _rules(**rules)
    with pytest.raises(ad.DifferentiationError, match=r"test_custom.py:\d+: " + message):
        ad.grad(f, backend="interp")(0.3)


def test_jvp_rule_returning_too_little_is_an_error_naming_it():
    f = _rules(jvp=jvp_no_tangent)
    with pytest.raises(ad.DifferentiationError,
                       match=r"test_custom.py:\d+: jvp rule 'jvp_no_tangent' .* "
                             r"returns \(a float64\)"):
        ad.jvp(f, (0.3,), (1.0,), backend="interp")


def test_missing_rule_for_the_mode_is_an_error_not_the_body():
    only_vjp = _rules(vjp=(ck.doubled_sin_fwd, ck.doubled_sin_bwd))
    with pytest.raises(ad.DifferentiationError, match="without a forward-mode rule.*defjvp"):
        ad.jvp(only_vjp, (0.3,), (1.0,), backend="interp")
    only_jvp = ad.custom_jvp(ck.doubled_sin.py_func).defjvp(ck.doubled_sin_jvp)
    with pytest.raises(ad.DifferentiationError, match="custom_jvp kernel without a reverse-mode "
                                                      "rule.*defvjp"):
        ad.grad(only_jvp, backend="interp")(0.3)


@ad.custom_vjp
@ad.kernel
def weighted_sum(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return s


@ad.kernel
def weighted_sum_fwd(x):
    return weighted_sum(x)


@ad.kernel
def weighted_sum_bwd(x, g, dx):
    for i in range(x.shape[0]):
        dx[i] += 2.0 * x[i] * g


weighted_sum.defvjp(weighted_sum_fwd, weighted_sum_bwd)


@ad.kernel
def overwrites_after_call(x):
    s = weighted_sum(x)
    for i in range(x.shape[0]):
        x[i] = 0.5 * x[i]
    return s + weighted_sum(x)


@ad.kernel
def reads_after_call(x):
    s = weighted_sum(x)
    t = 0.0
    for i in range(x.shape[0]):
        t += x[i]
    return s * t


def test_bwd_reading_an_array_overwritten_after_the_call_is_an_error():
    x = np.linspace(0.1, 1.0, 4)
    with pytest.raises(ad.DifferentiationError, match=r"bwd rule 'weighted_sum_bwd' .* reads "
                                                      r"array 'x', but .* writes it after"):
        ad.grad(overwrites_after_call, backend="interp")(x)
    g = ad.grad(reads_after_call, backend="interp")(x)
    np.testing.assert_allclose(g, _fd(reads_after_call.py_func, [x], 0), rtol=1e-6)


@ad.kernel
def relax_with_rule(u, w, nsteps):
    for t in range(nsteps):
        for i in range(u.shape[0]):
            u[i] = u[i] + 0.1 * ck.doubled_sin(u[i] * w)
    s = 0.0
    for i in range(u.shape[0]):
        s += u[i] * u[i]
    return s


@backends
@pytest.mark.slow
def test_checkpointed_time_loop_with_rule_calls_gives_the_store_all_gradient(backend):
    u = np.linspace(0.1, 1.0, 8)
    ref = ad.grad(relax_with_rule, argnums=(0, 1), backend=backend)(u, 0.7, 12)
    for policy in (ad.checkpoint(relax_with_rule, snapshots=3),
                   ad.checkpoint(relax_with_rule, snapshots=2, schedule="revolve")):
        got = ad.grad(policy, argnums=(0, 1), backend=backend)(u, 0.7, 12)
        np.testing.assert_array_equal(got[0], ref[0])
        assert got[1] == ref[1]


@ad.kernel
def with_and_without_rule(v):
    s = 0.0
    for i in range(v.shape[0]):
        s += ck.inv_sqrt(v[i]) + ck.bits_inv_sqrt(2.0)   # the plain kernel on a constant
    return s


def test_plain_kernel_sharing_the_body_of_a_custom_one_is_inlined():
    v = np.linspace(0.5, 2.0, 4)
    g = ad.grad(with_and_without_rule, backend="interp")(v)
    np.testing.assert_allclose(g, -0.5 * v ** -1.5, rtol=3 * INV_SQRT_ACCURACY)
