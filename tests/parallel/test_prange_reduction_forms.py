"""Scalars carried across the iterations of a prange loop (frontend/parallel.py): the update
forms numba takes as reductions (`s = s + e` as well as `s += e`) give the serial loop's value
and derivatives; a body that reads the reduction variable anywhere but in its update sees a
partial value (each iteration starts from the operator's identity) and is refused at its
line instead of answering something the serial loop never computes; a `break` of a loop
nested in the prange body is that loop's, not the prange's."""
import math

import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.errors import UnsupportedConstruct
from tests.ad.harness import BACKENDS

backends = pytest.mark.parametrize("backend", BACKENDS)


def written_out_sums(x):
    s = 0.0
    s2 = 1.0
    d = 0.0
    for i in numba.prange(x.shape[0]):
        v = 1.5 * x[i]
        s = s + v
        s2 = v * v + s2
        d = d - math.exp(v)
    return s * s2 + d


def written_out_product(x):
    p = 1.0
    for i in numba.prange(x.shape[0]):
        p = (1.0 + 0.1 * x[i]) * p
    return p


def reads_own_update(x):
    s = 0.0
    for i in numba.prange(x.shape[0]):
        s += 0.5 * s + x[i]
    return s


def reads_in_max(x):
    m = 0.0
    for i in numba.prange(x.shape[0]):
        m = max(m, x[i] + m)
    return m


def reads_in_condition(x):
    s = 1.0
    for i in numba.prange(x.shape[0]):
        if x[i] > s:
            s += x[i]
    return s


def reads_into_array(x, out):
    s = 0.0
    for i in numba.prange(x.shape[0]):
        out[i] = s
        s += x[i]
    return s + np.sum(out)


def inner_break(x, out):
    for i in numba.prange(x.shape[0]):
        acc = 0.0
        for j in range(20):
            acc += x[i] * j
            if acc * acc > 4.0:
                break
        out[i] = acc
    return np.sum(out)


def integer_started(x):
    c = 0                       # an int, then a float after the first update (Python, numba)
    m = 0
    r = 0
    for i in numba.prange(x.shape[0]):
        c += x[i] * x[i]
        m = max(m, 0.9 * x[i])
        for j in range(3):
            r += 0.3 * j * x[i]
    return c + m + r


def integer_started_product(x):
    p = 1
    for i in numba.prange(x.shape[0]):
        p *= 1.0 + 0.1 * x[i]
    return p


def extrema_from_an_element(x):
    hi = x[0]                   # initial values the derivative reaches
    lo = x[-1]
    for i in numba.prange(1, x.shape[0]):
        hi = max(hi, x[i] * x[i])
        lo = min(math.sin(x[i - 1]), lo)
    return hi * lo


def fd_gradient(f, x, h=1e-6):
    g = np.zeros_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@backends
def test_written_out_updates_are_reductions(backend):
    x = np.linspace(-0.7, 0.9, 11)
    k = ad.kernel(written_out_sums, parallel=True, backend=backend)
    assert np.isclose(k(x), written_out_sums(x), rtol=1e-12)
    g = ad.grad(k, backend=backend)(x)
    assert np.allclose(g, fd_gradient(written_out_sums, x), rtol=1e-6, atol=1e-8)
    prod = ad.kernel(written_out_product, parallel=True, backend=backend)
    assert np.isclose(prod(x), written_out_product(x), rtol=1e-12)


@backends
def test_a_reduction_started_from_an_integer_is_a_float_after_float_updates(backend):
    """`c = 0` then `c += x[i] * x[i]` in a prange gave the sum of int(x[i] * x[i]) (each
    iteration's value was converted to the initial value's type: 2 for x = [0.3, 0.4, 1.7],
    where Python, numba and a serial loop give 3.14); the variable widens as in a serial
    loop. Also for max, updates in an inner loop and products; the derivative against
    central differences on the interpreter (the numba one compiles seconds)."""
    x = np.array([0.3, 0.4, 1.7, 0.45, 0.9])
    k = ad.kernel(integer_started, parallel=True, backend=backend)
    assert k(x) == pytest.approx(integer_started(x), rel=1e-14)
    product = ad.kernel(integer_started_product, parallel=True, backend=backend)
    assert product(x) == pytest.approx(integer_started_product(x), rel=1e-14)
    if backend == "interp":
        g = ad.grad(k, backend=backend)(x)
        assert np.allclose(g, fd_gradient(integer_started, x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
def test_max_and_min_reductions_from_an_element_of_the_input_are_differentiated(backend):
    """`hi = x[0]` then `hi = max(hi, e)` in a prange: both modes refused it ("cannot
    differentiate a 'max' reduction ...; accumulate a sum (e.g. of logarithms)"), as the
    loop still carried the differentiable start. The gradient and a tangent against central
    differences where the extremes are single; where the start ties, it wins (the serial
    loop's `max(hi, e)` keeps it)."""
    k = ad.kernel(extrema_from_an_element, parallel=True, backend=backend)
    for x in (np.array([0.4, -1.3, 0.2, 0.9, -0.5, 0.7, 1.1]),     # hi at 1, lo at 0
              np.array([1.6, 0.3, -0.2, 0.8, 0.5, 1.2, -0.9])):    # hi is x[0], lo x[-1]
        fd = fd_gradient(extrema_from_an_element, x)
        assert np.allclose(ad.grad(k, backend=backend)(x), fd, rtol=1e-6, atol=1e-8)
        d = np.linspace(-1.0, 1.0, x.size)
        assert ad.jvp(k, (x,), (d,), backend=backend)[1] == pytest.approx(fd @ d, rel=1e-6)
    tie = np.array([0.25, 0.5, -0.2, 0.1, 0.3, 0.2, 0.4])     # hi: x[0] == x[1] ** 2
    g = ad.grad(k, backend=backend)(tie)
    lo = math.sin(-0.2)                                         # from x[2]
    assert g[0] == pytest.approx(lo) and g[1] == 0.0


@backends
@pytest.mark.parametrize("fn, args", [
    (reads_own_update, 1), (reads_in_max, 1), (reads_in_condition, 1),
    (reads_into_array, 2)], ids=lambda v: getattr(v, "__name__", str(v)))
def test_reading_a_reduction_variable_in_the_body_is_refused(fn, args, backend):
    x = np.arange(1.0, 9.0)
    k = ad.kernel(fn, parallel=True, backend=backend)
    with pytest.raises(UnsupportedConstruct, match=r"test_prange_reduction_forms\.py:\d+: "
                                                   r"reading the reduction variable"):
        k(*(x, np.zeros(8))[:args])


@backends
def test_break_of_an_inner_loop_runs_in_a_prange(backend):
    x = np.linspace(-1.0, 1.2, 9)
    out, ref = np.zeros(9), np.zeros(9)
    k = ad.kernel(inner_break, parallel=True, backend=backend)
    assert k(x, out) == pytest.approx(inner_break(x, ref), rel=1e-14)
    assert np.array_equal(out, ref)


def test_derivative_of_an_inner_break_says_the_for_loop_runs_as_a_while_loop():
    """Its primal runs (above); its reverse sweep needs a tape block per iteration that a
    loop with `break` cannot size. The refusal said "a while loop ... write it as a for loop
    (break out early with a flag)", which is what the kernel already was."""
    x = np.linspace(-1.0, 1.2, 9)
    k = ad.kernel(inner_break, parallel=True, backend="interp")
    with pytest.raises(ad.DifferentiationError,
                       match=r"a for loop with `break`, which runs as one\) inside the "
                             r"parallel loop.*without `break`"):
        ad.grad(k)(x, np.zeros(9))


def product_in_prange(x):
    p = 1.0
    for i in numba.prange(x.shape[0]):
        p *= x[i]
    return p


@pytest.mark.parametrize("mode", ["grad", "jvp"])
def test_a_product_reduction_says_to_sum_logarithms(mode):
    """A prange product runs (numba's form) but has no parallel derivative here; the
    refusal names the kind and what to write, at the loop's line (it said "accumulate a sum
    (e.g. of logarithms)" for max and min as well)."""
    x = np.array([1.5, 2.0, 0.5])
    k = ad.kernel(product_in_prange, parallel=True, backend="interp")
    assert k(x) == pytest.approx(1.5)
    with pytest.raises(ad.DifferentiationError,
                       match=r"test_prange_reduction_forms.py:\d+: cannot differentiate a "
                             r"'mul' reduction of a parallel loop; accumulate a sum of "
                             r"logarithms instead"):
        if mode == "grad":
            ad.grad(k)(x)
        else:
            ad.jvp(k, (x,), (np.ones(3),))
