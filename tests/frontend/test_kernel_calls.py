"""A kernel called from another kernel binds its arguments as Python does: by position, by
keyword, and from its parameters' defaults; the value and the gradient are those of the
plain Python functions (checked against central finite differences)."""
import statistics

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


def flux(a, b, c=0.5):
    """A plain function of the user's code, called undecorated as NumPy-style code calls its
    helpers (numpy-benchmarks' `laplacian`, `physics`)."""
    return c * (a - b) * (a + b), a * b


def relax(u, out, w):
    for i in range(1, u.shape[0] - 1):
        out[i] = u[i] + w * (u[i - 1] - 2.0 * u[i] + u[i + 1])


def undecorated_helpers(u, w):
    out = u.copy()
    relax(u, out, w)
    s = 0.0
    for i in range(out.shape[0] - 1):
        f, g = flux(out[i], out[i + 1], c=w)
        s += f + g * g
    return s


@ad.kernel(parallel=True)
def undecorated_in_prange(u, w):
    s = 0.0
    for i in ad.prange(u.shape[0] - 1):
        f, g = flux(u[i], u[i + 1])
        s += f * w + g
    return s


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
def test_plain_python_functions_of_the_users_code_are_inlined(backend):
    """A call of an undecorated function was refused ("decorate it with @hpcad.kernel"); a
    `def` of the user's code is inlined as a kernel is (keywords, tuples, writes into its
    arguments, in a prange): values those of plain Python, gradients central differences'."""
    rng = np.random.default_rng(2)
    u, w = rng.standard_normal(8), 0.3
    for fn in (undecorated_helpers, undecorated_in_prange):
        py = getattr(fn, "py_func", fn)
        k = ad.kernel(py, backend=backend, parallel=fn is undecorated_in_prange)
        assert k(u.copy(), w) == pytest.approx(py(u.copy(), w), rel=1e-14)
        gu, gw = ad.grad(k, argnums=(0, 1))(u.copy(), w)
        h = 1e-6
        fd = [(py(u + h * e, w) - py(u - h * e, w)) / (2 * h) for e in np.eye(u.size)]
        np.testing.assert_allclose(gu, fd, rtol=1e-6, atol=1e-8)
        assert gw == pytest.approx((py(u, w + h) - py(u, w - h)) / (2 * h), rel=1e-6)


SQUARE = lambda v: v * v   # noqa: E731  (a lambda as some NumPy code writes its helpers)


def calls_a_lambda(x):
    return SQUARE(x[0])


def calls_a_library_function(x):
    return statistics.fmean(x)


@pytest.mark.parametrize("fn, words", [
    (calls_a_lambda, r"calling `SQUARE` is not supported .*define it with `def`"),
    (calls_a_library_function, r"calling `statistics.fmean` is not supported .*a function "
                               r"of an installed library, which hpcad does not inline")],
    ids=["lambda", "library"])
def test_lambdas_and_library_functions_are_refused_at_their_line(fn, words):
    with pytest.raises(ad.UnsupportedConstruct, match=r"test_kernel_calls.py:\d+: " + words):
        ad.kernel(fn, backend="interp")(np.array([0.5, 2.0]))
