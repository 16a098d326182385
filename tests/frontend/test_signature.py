"""Kernel parameters with defaults and keyword-only parameters: a call binds them as Python
does (kernel.py), from user code and from another kernel; values equal numba.njit of the same
source (plain Python where numba refuses: keyword-only parameters, calls of hpcad kernels),
derivatives against finite differences and forward against reverse, on both backends."""
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST
from tests.ad.kernels import Case
from tests.frontend import construct_kernels as ck
from tests.frontend.construct_check import check_construct, njit_of, run_on

BACKENDS = INTERP_FAST


def _x_c(rng):
    return rng.uniform(-1.0, 1.0, 5), 0.7


def _all_positional(rng):
    return rng.uniform(-1.0, 1.0, 5), 0.7, 2, 1.5


CASES = [(Case("all_given", ck.damped_sum, _all_positional), "numba"),
         (Case("kernel_calls_by_keyword", ck.calls_with_keywords, _x_c), "python"),
         (Case("kernel_calls_keyword_only", ck.calls_keyword_only, _x_c), "python")]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case, reference", CASES, ids=[c.name for c, _ in CASES])
def test_defaults_and_keyword_only_parameters(case, reference, backend):
    check_construct(case, backend, reference)


def _fd_gradient(py_func, x, c, eps=1e-6):
    gx = np.array([(py_func(x + eps * e, c) - py_func(x - eps * e, c)) / (2 * eps)
                   for e in np.eye(len(x))])
    return gx, (py_func(x, c + eps) - py_func(x, c - eps)) / (2 * eps)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", [ck.damped_sum, ck.keyword_only], ids=lambda k: k.__name__)
def test_defaults_filled_in_value_and_gradient(kernel, backend):
    x, c = np.linspace(-1.0, 1.0, 5), 0.7
    value, (gx, gc) = ad.value_and_grad(kernel, argnums=(0, 1), backend=backend)(x, c)
    plain = njit_of(kernel) if kernel is ck.damped_sum else kernel.py_func
    assert value == pytest.approx(plain(x, c), rel=1e-12)
    fx, fc = _fd_gradient(kernel.py_func, x, c)
    np.testing.assert_allclose(gx, fx, rtol=1e-7)
    assert gc == pytest.approx(fc, rel=1e-7)
    _, tangent = ad.jvp(kernel, (x, c), (np.ones(5), 0.5), backend=backend)
    assert tangent == pytest.approx(gx.sum() + 0.5 * gc, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_keyword_only_arguments_given_by_name(backend):
    x = np.linspace(-1.0, 1.0, 5)
    kernel = ad.kernel(ck.keyword_only.py_func, backend=backend)
    assert kernel(x, 0.3, steps=2, scale=-1.0) == pytest.approx(
        ck.keyword_only.py_func(x, 0.3, steps=2, scale=-1.0), rel=1e-13)
    assert run_on(ck.keyword_only, backend, (x,)) == pytest.approx(
        ck.keyword_only.py_func(x), rel=1e-13)



@ad.kernel
def _decay(y, k, dy):
    for i in range(y.shape[0]):
        dy[i] = -k * y[i]


def _make_euler(rhs):
    @ad.kernel
    def euler(y0, k, dt, n):
        y = y0.copy()
        dy = np.zeros_like(y)
        for _ in range(n):
            rhs(y, k, dy)
            y += dt * dy
        return np.sum(y)
    return euler


@ad.kernel
def _euler_taking_rhs(rhs, y0, k):
    return y0[0] * k


def test_a_function_argument_says_how_to_pass_it_and_the_way_it_gives_works():
    """A kernel passed as an argument (numba's first-class functions) was refused with
    "values of type Kernel are not supported" and no way out; the message gives the factory,
    and a kernel made by one computes and differentiates (analytic: 3 (1 - k dt)^n)."""
    y0 = np.ones(3)
    with pytest.raises(ad.ArgumentError, match=r"argument 'rhs': .*def make\(rhs\)"):
        _euler_taking_rhs(_decay, y0, 0.5)
    with pytest.raises(ad.ArgumentError, match=r"pass its numbers as arguments of their "
                       r"own, f\(\.\.\., \*rhs\).*; or np\.array\(rhs\) where the kernel "
                       r"only indexes it"):
        _euler_taking_rhs((1.0, 2.0), y0, 0.5)   # PyLops passes shapes: x.reshape(dims)
    with pytest.raises(ad.ArgumentError, match=r"draw the random numbers before the call"):
        _euler_taking_rhs(np.random.default_rng(0), y0, 0.5)
    euler = _make_euler(_decay)
    assert abs(euler(y0, 0.5, 0.1, 10) - 3 * 0.95 ** 10) < 1e-14
    assert abs(ad.grad(euler, argnums=1, backend="interp")(y0, 0.5, 0.1, 10)
               + 3 * 10 * 0.1 * 0.95 ** 9) < 1e-13
