"""A kernel called from another kernel binds its arguments as Python does: by position, by
keyword, and from its parameters' defaults; the value and the gradient are those of the
plain Python functions (checked against central finite differences)."""
import numpy as np
import pytest

import hpcad as ad

BACKENDS = ["interp", "numba"]


@ad.kernel
def weighted_square(v, scale=2.0, shift=0.5):
    return scale * v * v + shift * v


@ad.kernel
def by_keyword(x, s):
    t = 0.0
    for i in range(len(x)):
        t += weighted_square(x[i], shift=s, scale=1.5)
    return t


@ad.kernel
def by_default(x, s):
    t = 0.0
    for i in range(len(x)):
        t += weighted_square(x[i])
    return t + weighted_square(s, 3.0)


@ad.kernel
def by_position_and_keyword(x, s):
    t = 0.0
    for i in range(len(x)):
        t += weighted_square(x[i], s, shift=x[len(x) - 1 - i])
    return t


def _fd_gradient(f, x, s, eps=1e-6):
    gx = np.zeros_like(x)
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = eps
        gx[i] = (f.py_func(x + e, s) - f.py_func(x - e, s)) / (2 * eps)
    gs = (f.py_func(x, s + eps) - f.py_func(x, s - eps)) / (2 * eps)
    return gx, gs


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", [by_keyword, by_default, by_position_and_keyword],
                         ids=lambda k: k.__name__)
def test_keyword_and_default_arguments_of_an_inner_kernel(kernel, backend):
    x = np.array([0.3, -1.2, 2.0, 0.7])
    s = 0.8
    value, (gx, gs) = ad.value_and_grad(kernel, argnums=(0, 1), backend=backend)(x, s)
    assert value == pytest.approx(kernel.py_func(x, s), rel=1e-13)
    fx, fs = _fd_gradient(kernel, x, s)
    np.testing.assert_allclose(gx, fx, rtol=1e-7)
    assert gs == pytest.approx(fs, rel=1e-7, abs=1e-12)


def _scaling(c):
    @ad.kernel
    def step(x):
        return c * x
    return step


_double, _triple = _scaling(2.0), _scaling(3.0)   # two kernels named `step`


@ad.kernel
def calls_a_namesake(x):
    return _triple(x) + 1.0


def _namesake_caller():
    @ad.kernel
    def step(x):
        return _double(x) * calls_a_namesake(x)
    return step


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernels_of_one_name_nested_in_a_call_chain(backend):
    """step -> calls_a_namesake -> step (another kernel): each keeps its own body."""
    outer = _namesake_caller()
    assert ad.kernel(outer.py_func, backend=backend)(0.5) == pytest.approx(1.0 * 2.5)
