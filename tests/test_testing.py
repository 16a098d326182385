"""hpcad.testing in one process (tests/mpi/test_testing_mpi.py runs it under mpiexec):
dot_test and taylor_test pass on right derivatives (a tuple of an array and a float result,
float32 arguments), fail with their figures on a wrong custom adjoint and the gradient it gives
(first order), pass on a loss linear along the direction (remainders at rounding error), and
refuse arguments they cannot perturb."""
import math

import numpy as np
import pytest

import hpcad as ad
from hpcad.testing import DerivativeTestFailure, dot_test, taylor_test
from tests.ad.harness import INTERP_FAST

BACKENDS = INTERP_FAST


@ad.kernel
def wave_energy(u, c, nsteps):
    n = u.shape[0]
    v = np.zeros(n)
    for t in range(nsteps):
        for i in range(1, n - 1):
            v[i] += c * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(n):
            u[i] += 0.1 * v[i]
    s = 0.0
    for i in range(n):
        s += math.cos(u[i]) * u[i]
    return s


@ad.kernel
def profile(u, c):
    out = np.empty_like(u)
    for i in range(u.shape[0]):
        out[i] = math.exp(c * u[i])
    return out, c * u[0] * u[-1]


@ad.custom_vjp
@ad.kernel
def cube_sum(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i] * x[i]
    return s


@ad.kernel
def cube_sum_fwd(x):
    return cube_sum(x)


@ad.kernel
def cube_sum_bwd(x, g, dx):
    for i in range(x.shape[0]):
        dx[i] += g * 3.0 * x[i]     # wrong on purpose: the derivative is 3 x**2


@ad.kernel
def cube_sum_jvp(x, dx):
    d = 0.0
    for i in range(x.shape[0]):
        d += 3.0 * x[i] * x[i] * dx[i]
    return cube_sum(x), d


cube_sum.defvjp(cube_sum_fwd, cube_sum_bwd)
cube_sum.defjvp(cube_sum_jvp)


@ad.kernel
def weighted_sum(x, w):
    s = 0.0
    for i in range(x.shape[0]):
        s += w * x[i] + 1.0
    return s


def _u(n=9):
    return np.sin(np.linspace(0.0, 3.0, n)) + 0.5


@pytest.mark.parametrize("backend", BACKENDS)
def test_right_derivatives_pass(backend):
    dot = dot_test(wave_energy, (_u(), 0.3, 5), backend=backend)
    assert dot.relative_error <= 1e-12 and dot.forward != 0.0
    taylor = taylor_test(wave_energy, (_u(), 0.3, 5), backend=backend)
    assert all(abs(rate - 2.0) < 0.05 for rate in taylor.rates), taylor
    assert taylor.value == pytest.approx(wave_energy.py_func(_u(), 0.3, 5), rel=1e-14)
    assert len(taylor.remainders) == 4 and taylor.steps[1] == taylor.steps[0] / 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_dot_test_of_array_and_float_results_in_float32(backend):
    dot = dot_test(profile, (_u().astype(np.float32), 0.4), backend=backend, rtol=1e-5)
    assert dot.relative_error <= 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_dot_test_fails_on_a_wrong_custom_adjoint(backend):
    with pytest.raises(DerivativeTestFailure, match=r"<J v, w> = .* \(forward mode\) but "
                       r"<v, J\^T w> = .* \(reverse mode\)") as failed:
        dot_test(cube_sum, (_u(),), backend=backend)
    assert isinstance(failed.value, AssertionError)
    assert failed.value.result.relative_error > 0.01


@pytest.mark.parametrize("backend", BACKENDS)
def test_taylor_test_reports_first_order_for_a_wrong_gradient(backend):
    with pytest.raises(DerivativeTestFailure, match="shrinks at rate 1.00") as failed:
        taylor_test(cube_sum, (_u(),), backend=backend)
    assert all(abs(rate - 1.0) < 0.05 for rate in failed.value.result.rates)


def test_linear_loss_passes_with_remainders_at_rounding_error():
    taylor = taylor_test(weighted_sum, (_u(), 2.0), argnums=0, backend="interp")
    assert max(taylor.remainders) <= taylor.floor
    assert all(math.isnan(rate) for rate in taylor.rates)   # (not judged)


def test_arguments_it_cannot_perturb_are_refused():
    with pytest.raises(ad.ArgumentError, match="'nsteps' .* not a float"):
        dot_test(wave_energy, (_u(), 0.3, 5), argnums="nsteps", backend="interp")
    with pytest.raises(ad.ArgumentError, match="'speed' is not an argument of 'wave_energy'"):
        taylor_test(wave_energy, (_u(), 0.3, 5), argnums=("u", "speed"), backend="interp")
    with pytest.raises(ad.ArgumentError, match="steps >= 2"):
        taylor_test(wave_energy, (_u(), 0.3, 5), steps=1, backend="interp")


@ad.kernel
def scaled_energy(u, c, scale=2.0):
    s = 0.0
    for i in range(u.shape[0]):
        s += scale * c * u[i] * u[i]
    return s


def test_a_negative_argnum_with_a_default_filled_in_is_refused():
    """argnums=-1 for (u, c) with `scale` left to its default: the last argument passed (c,
    as in JAX) or the last parameter (scale)? Refused, never guessed; with every argument
    given, -1 is scale, whose derivative is checked."""
    with pytest.raises(ad.ArgumentError, match="could mean 'scale'.*or 'c'"):
        taylor_test(scaled_energy, (_u(), 0.5), argnums=-1, backend="interp")
    with pytest.raises(ad.ArgumentError, match="could mean 'scale'.*or 'c'"):
        dot_test(scaled_energy, (_u(), 0.5), argnums=[0, -1], backend="interp")
    assert dot_test(scaled_energy, (_u(), 0.5, 2.0), argnums=-1, backend="interp")
    taylor_test(scaled_energy, (_u(), 0.5), argnums=1, backend="interp")


@ad.kernel
def accumulate(dst, src, a):
    for i in range(dst.shape[0]):
        dst[i] = a * src[i] + dst[i] * src[i]
    return np.sum(dst * dst)


@ad.kernel
def penalized(u, c, *, weight=0.5):
    s = 0.0
    for i in range(u.shape[0]):
        s += c * u[i] * u[i] + weight * math.sin(u[i])
    return s


def test_the_call_tested_is_the_call_made():
    """An array the kernel writes passed twice (f(u, u)) is refused, as a kernel call and
    ad.grad refuse it (dot_test passed on copies of the two: another function); a
    keyword-only parameter comes in order, as README says (taylor_test raised)."""
    u = _u()
    for test in (dot_test, taylor_test):
        with pytest.raises(ad.ArgumentError, match="'dst' and 'src' of kernel 'accumulate' "
                                                   "overlap in memory"):
            test(accumulate, (u, u, 0.5), backend="interp")
    assert dot_test(accumulate, (u, u.copy(), 0.5), backend="interp")
    assert min(taylor_test(penalized, (u, 0.3, 0.25), backend="interp").rates) > 1.9
    assert dot_test(penalized, (u, 0.3, 0.25), backend="interp")
