"""Functions defined in kernel code (hpcad/frontend/closures.py): `f = lambda ...` and a
`def` returning one expression, as numba compiles them. A call is the function's expression
evaluated where it is called: values equal plain Python's (defaults taken at the
definition, other names read when called, lexical scopes), derivatives central
differences', on both backends and in a prange; other forms are refused at their line."""
import numpy as np
import pytest
from numpy import power, tanh

import hpcad as ad


def lambdas_with_defaults(x, c):
    f = lambda v, k=2.0: k * v * v + c   # noqa: E731
    s = 0.0
    for i in range(x.shape[0]):
        s += f(x[i]) + f(x[i], k=c)
    return s


def late_binding_def(x, c):
    def g(v, w=c):
        """A docstring."""
        return np.sin(v) * c * w
    y = g(x) + g(x[::-1])
    c = 2.0 * c      # g reads the new c when called; its default keeps the old one
    return np.sum(y) + g(x[0])


def lexical_scopes(x):
    y = x[0]
    f = lambda v: v + y          # noqa: E731  (this y is the kernel's)
    g = lambda y: f(x[1]) * y    # noqa: E731
    return g(x[2] * 3.0)


def slowparts_like(pre_d, pre_w, srw):
    fprime = lambda t: 1 - power(tanh(t), 2)   # noqa: E731  (numpy-benchmarks' slowparts)
    out = np.zeros((pre_d.shape[0], pre_w.shape[0]))
    for k in range(pre_d.shape[0]):
        for i in range(pre_w.shape[0]):
            out[k, i] = np.sum(fprime(pre_d[k]) * fprime(pre_w[i])) * srw[i, k]
    return np.sum(out * out)


def defined_in_a_loop(x):
    s = 0.0
    for i in range(x.shape[0]):
        h = lambda t: t * x[i] + t * t   # noqa: E731, B023
        s += h(x[i - 1])
    return s


def read_before_rebinding(x):
    t = x * 0.0
    f = lambda k: t[k]   # noqa: E731
    s = 0.0
    for i in range(1, x.shape[0]):
        s += f(i - 1) * x[i]     # the t of the iteration before: a read the loop must carry
        t = x * i
    return s


@ad.kernel(parallel=True)
def in_a_prange(x, out):
    f = lambda a, b: a * np.exp(-b * b)   # noqa: E731
    for i in ad.prange(1, x.shape[0]):
        out[i] = f(x[i], x[i - 1])
    return np.sum(out)


RNG = np.random.default_rng(8)
CASES = [(lambdas_with_defaults, (RNG.standard_normal(5), 0.7)),
         (late_binding_def, (RNG.standard_normal(5), 0.7)),
         (lexical_scopes, (RNG.standard_normal(3),)),
         (slowparts_like, (RNG.standard_normal((3, 4)), RNG.standard_normal((2, 4)),
                           RNG.standard_normal((2, 3)))),
         (defined_in_a_loop, (RNG.standard_normal(6),)),
         (in_a_prange.py_func, (RNG.standard_normal(6), np.zeros(6)))]


def _fd(fn, args, h=1e-6):
    x = args[0]
    out = np.empty(x.size)
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = h
        up = fn(x + e.reshape(x.shape), *(a.copy() if isinstance(a, np.ndarray) else a
                                          for a in args[1:]))
        down = fn(x - e.reshape(x.shape), *(a.copy() if isinstance(a, np.ndarray) else a
                                            for a in args[1:]))
        out[k] = (up - down) / (2 * h)
    return out.reshape(x.shape)


@pytest.mark.parametrize("fn, args", CASES, ids=[c[0].__name__ for c in CASES])
def test_values_and_gradients_are_plain_pythons(fn, args):
    """`lambda`/inner `def` was refused ("a `lambda` is not supported"). Lexical scopes:
    `g`'s parameter `y` is not the `y` that `f` reads (expanding f with g's parameters bound
    would give (x1 + 3 x2) * 3 x2)."""
    k = ad.kernel(fn, backend="interp", parallel=fn is in_a_prange.py_func)
    copy = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    assert k(*copy) == pytest.approx(fn(*args), rel=1e-14)
    g = ad.grad(k)(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    np.testing.assert_allclose(g, _fd(fn, args), rtol=1e-6, atol=1e-8)


def test_a_read_inside_a_local_function_counts_where_it_is_called():
    """closures.annotate_reads: without it the loop took `t = x * i` for the first use of t
    in each iteration and read the t from before the loop (0.0, where plain Python gives
    the sum over i of (i - 1) x[i - 1] x[i]); the gradient of an array the loop rebinds is
    refused as it is without the local function."""
    x = np.array([1.0, 2.0, 3.0, 4.0])
    k = ad.kernel(read_before_rebinding, backend="interp")
    assert k(x) == read_before_rebinding(x) == 30.0
    with pytest.raises(ad.DifferentiationError, match="a loop carries array 't'"):
        ad.grad(k)(x)


@pytest.mark.slow
def test_on_numba():
    x, out = RNG.standard_normal(6), np.zeros(6)
    k = ad.kernel(in_a_prange.py_func, parallel=True)
    assert k(x, out.copy()) == pytest.approx(in_a_prange.py_func(x, out.copy()), rel=1e-14)
    np.testing.assert_allclose(ad.grad(k)(x, out.copy()), _fd(in_a_prange.py_func, (x, out)),
                               rtol=1e-6, atol=1e-8)
    x2 = RNG.standard_normal(5)
    k2 = ad.kernel(late_binding_def)
    assert k2(x2, 0.3) == pytest.approx(late_binding_def(x2, 0.3), rel=1e-14)


def recursive(x):
    f = lambda n: f(n - 1) if n > 0 else 1.0   # noqa: E731
    return f(3) * x[0]


def two_statements(x):
    def f(v):
        w = v * 2.0
        return w
    return f(x[0])


def star_args(x):
    f = lambda *v: v[0]   # noqa: E731
    return f(x[0])


def lambda_in_a_lambda(x):
    f = lambda v: (lambda w: w * v)(2.0)   # noqa: E731
    return f(x[0])


def reduction_read(x):
    s = 0.0
    f = lambda: s * 2.0   # noqa: E731
    for i in ad.prange(x.shape[0]):
        s += x[i]
        x[i] = f()
    return s


def rebound_name(x):
    f = lambda v: v * 2.0   # noqa: E731
    y = f(x[0])
    f = 3.0
    return y * f


def passed_on(x):
    f = lambda v: v * 2.0   # noqa: E731
    g = lambda h, v: h(v)   # noqa: E731
    return g(f, x[0])


@pytest.mark.parametrize("fn, words", [
    (reduction_read, r"reading the reduction variable 's' inside its parallel loop"),
    (rebound_name, r"binding a function defined in the kernel to 'f', which the kernel binds "
                   r"to other values too"),
    (passed_on, r"passing a local function to `<lambda>`"),
    (recursive, r"a recursive call of `<lambda>`.*write it as a loop"),
    (two_statements, r"a function defined inside a kernel whose body is more than one "
                     r"`return`.*define it at module level"),
    (star_args, r"\*args"),
    (lambda_in_a_lambda, r"a lambda inside a function defined in a kernel")],
    ids=["reduction", "rebound", "passed", "recursive", "statements", "star", "nested"])
def test_other_local_functions_are_refused_at_their_line(fn, words):
    with pytest.raises(ad.UnsupportedConstruct, match=r"test_local_functions.py:\d+: .*"
                       + words):
        ad.kernel(fn, backend="interp", parallel=fn is reduction_read)(np.array([0.5, 2.0]))
