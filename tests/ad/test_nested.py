"""Nested AD: ad.grad, ad.value_and_grad and ad.jvp of a kernel taken inside a kernel, and
the caller differentiated again in every pair of modes (forward/reverse over
forward/reverse), against analytic formulas and central differences of plain Python; the
refusals (reverse over a taped inner sweep, MPI or prange inner kernels, bad argnums)."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.errors import DifferentiationError, KernelAssertionError, UnsupportedConstruct
from hpcad.passes.race import RaceError
from tests.ad.harness import BACKENDS, INTERP_FAST


@ad.kernel
def saddle(x, y):
    return x[0] ** 2 + y[0] ** 2 - x[1] ** 2 - y[1] ** 2


grad_y = ad.grad(saddle, argnums=1)   # a module-level derivative, called in a kernel


@ad.kernel
def ascend_inline(x, y, lr, n):
    for _ in range(n):
        gy = ad.grad(saddle, argnums=1)(x, y)
        for i in range(2):
            y[i] += lr * gy[i]
    return saddle(x, y)


@ad.kernel
def ascend_module_level(x, y, lr, n):
    for _ in range(n):
        gy = grad_y(x, y)
        for i in range(2):
            y[i] += lr * gy[i]
    return saddle(x, y)


@ad.kernel
def ascend_forward(x, y, lr, n):
    e = np.zeros(2)
    gy = np.zeros(2)
    for _ in range(n):
        for i in range(2):
            e[:] = 0.0
            e[i] = 1.0
            _, gy[i] = ad.jvp(saddle, (x, y), (None, e))
        for i in range(2):
            y[i] += lr * gy[i]
    return saddle(x, y)


def ascend_reference(x, y, lr, n=3):
    y = y.copy()
    for _ in range(n):
        y = y + lr * np.array([2.0 * y[0], -2.0 * y[1]])
    return x[0] ** 2 + y[0] ** 2 - x[1] ** 2 - y[1] ** 2


ASCEND = {"reverse": ascend_inline, "module_level": ascend_module_level,
          "forward": ascend_forward}
X, Y, LR = np.array([0.3, 0.7]), np.array([1.0, 2.0]), 0.1


def central(fun, args, k, direction, eps=1e-6):
    """Central difference of fun along `direction` in argument k."""
    def moved(sign):
        out = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        out[k] = out[k] + sign * eps * direction
        return fun(*out)
    return (moved(1.0) - moved(-1.0)) / (2 * eps)


def fd_gradient(fun, args, k):
    a = args[k]
    if isinstance(a, float):
        return central(fun, args, k, 1.0)
    return np.array([central(fun, args, k, e) for e in np.eye(a.size)])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inner", sorted(ASCEND))
def test_inner_derivative_in_a_loop_runs_like_python(inner, backend):
    y = Y.copy()
    got = ad.kernel(ASCEND[inner].py_func, backend=backend)(X, y, LR, 3)
    assert got == pytest.approx(ascend_reference(X, Y, LR), rel=1e-13)
    assert y == pytest.approx(Y * np.array([1.2 ** 3, 0.8 ** 3]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inner", sorted(ASCEND))
def test_reverse_over_inner_derivative_matches_differences(inner, backend):
    got = ad.grad(ASCEND[inner], argnums=(0, 1, 2), backend=backend)(X, Y.copy(), LR, 3)
    for k, g in enumerate(got):
        expected = fd_gradient(ascend_reference, [X, Y, LR], k)
        assert np.allclose(g, expected, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inner", sorted(ASCEND))
def test_forward_over_inner_derivative_matches_differences(inner, backend):
    dx, dy, dlr = np.array([1.0, -0.5]), np.array([0.25, 1.0]), 0.5
    out, tangent = ad.jvp(ASCEND[inner], (X, Y.copy(), LR, 3), (dx, dy, dlr, None),
                          backend=backend)
    eps = 1e-6
    expected = (ascend_reference(X + eps * dx, Y + eps * dy, LR + eps * dlr)
                - ascend_reference(X - eps * dx, Y - eps * dy, LR - eps * dlr)) / (2 * eps)
    assert out == pytest.approx(ascend_reference(X, Y, LR), rel=1e-13)
    assert tangent == pytest.approx(expected, rel=1e-7)


# -- second derivatives: a kernel returning a component of an inner gradient --------------
@ad.kernel
def cubic(x, a):
    return a * x[0] ** 3 * x[1] + np.sin(x[0] * x[1]) + a * a * x[1] ** 2


def cubic_hessian(x, a):
    s, c = np.sin(x[0] * x[1]), np.cos(x[0] * x[1])
    return np.array([[6 * a * x[0] * x[1] - x[1] ** 2 * s, 3 * a * x[0] ** 2 + c - x[0] * x[1] * s],
                     [3 * a * x[0] ** 2 + c - x[0] * x[1] * s, -x[0] ** 2 * s + 2 * a * a]])


@ad.kernel
def reverse_component(x, a, v):
    """v . grad_x cubic(x, a) (inner reverse)."""
    g = ad.grad(cubic, argnums=0)(x, a)
    return v[0] * g[0] + v[1] * g[1]


@ad.kernel
def forward_component(x, a, v):
    """v . grad_x cubic(x, a) (inner forward: one jvp along v)."""
    _, d = ad.jvp(cubic, (x, a), (v, None))
    return d


@ad.kernel
def value_and_grad_sum(x, a, v):
    """cubic + v . grad (ad.value_and_grad in a kernel)."""
    f, g = ad.value_and_grad(cubic, argnums=(0, 1))(x, a)
    return f + v[0] * g[0][0] + v[1] * g[0][1] + g[1]


XC, AC, V = np.array([0.4, -0.9]), 1.3, np.array([0.6, 0.8])
INNER = {"r": reverse_component, "f": forward_component}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("modes", ["rr", "rf", "fr", "ff"])
def test_second_derivative_matches_the_hessian(modes, backend):
    """outer mode, inner mode: d/dx (v . grad cubic) = H v."""
    outer, inner = modes
    k = INNER[inner]
    hv = cubic_hessian(XC, AC) @ V
    if outer == "r":
        got = ad.grad(k, argnums=0, backend=backend)(XC, AC, V)
    else:
        got = np.array([ad.jvp(k, (XC, AC, V), (e, None, None), backend=backend)[1]
                        for e in np.eye(2)])
    assert np.allclose(got, hv, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_value_and_grad_in_a_kernel(backend):
    x, a = XC, AC
    f = a * x[0] ** 3 * x[1] + np.sin(x[0] * x[1]) + a * a * x[1] ** 2
    gx = np.array([3 * a * x[0] ** 2 * x[1] + x[1] * np.cos(x[0] * x[1]),
                   a * x[0] ** 3 + x[0] * np.cos(x[0] * x[1]) + 2 * a * a * x[1]])
    ga = x[0] ** 3 * x[1] + 2 * a * x[1] ** 2
    got = ad.kernel(value_and_grad_sum.py_func, backend=backend)(x, a, V)
    assert got == pytest.approx(f + V @ gx + ga, rel=1e-13)
    assert np.allclose(ad.grad(value_and_grad_sum, backend=backend)(x, a, V),
                       fd_gradient(lambda *p: value_and_grad_sum(*p), [x, a, V], 0),
                       rtol=1e-7)


# -- an inner function with a loop; one that writes an array -----------------------------
@ad.kernel
def recurrence(x, n):
    s = 1.0
    for _ in range(n):
        s = s * np.sin(x[0] * s) + x[1]
    return s


def recurrence_py(x, n=4):
    s = 1.0
    for _ in range(n):
        s = s * np.sin(x[0] * s) + x[1]
    return s


@ad.kernel
def recurrence_gradient_product(x, n):
    g = ad.grad(recurrence)(x, n)
    return g[0] * g[1] + g[0]


def gradient_product_py(x):
    g = fd_gradient(recurrence_py, [x], 0)
    return g[0] * g[1] + g[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_over_a_taped_inner_reverse_sweep(backend):
    x, v = np.array([0.4, 0.3]), np.array([1.0, 0.5])
    out, tangent = ad.jvp(recurrence_gradient_product, (x, 4), (v, None), backend=backend)
    assert out == pytest.approx(gradient_product_py(x), rel=1e-8)
    eps = 1e-4
    expected = (gradient_product_py(x + eps * v) - gradient_product_py(x - eps * v)) / (2 * eps)
    assert tangent == pytest.approx(expected, rel=1e-5)


def test_reverse_over_a_taped_inner_reverse_sweep_is_refused():
    with pytest.raises(DifferentiationError, match=r"test_nested.py:\d+: reverse mode over a "
                                                   r"reverse derivative taken inside"):
        ad.grad(recurrence_gradient_product, backend="interp")(np.array([0.4, 0.3]), 4)


@ad.kernel
def babylonian(x, a):
    y = x
    while abs(y * y - a) > 1e-12:   # its reverse sweep tapes y
        y = 0.5 * (y + a / y)
    return y * x


@ad.kernel
def sqrt_sensitivities(v, a):
    s = 0.0
    for i in range(v.shape[0]):
        s += ad.grad(babylonian, argnums=1)(v[i], a) * v[i]
    return s


def test_the_refusal_names_the_line_of_an_inner_while_loop():
    """The tape ops of a while loop have no location of their own; the message gave
    '<unknown location>'."""
    v = np.array([1.0, 2.0])
    _, tangent = ad.jvp(sqrt_sensitivities, (v, 2.0), (None, 1.0), backend="interp")
    assert tangent == pytest.approx(-np.sum(v * v) / (4 * 2.0 ** 1.5), rel=1e-8)   # analytic
    line = babylonian.py_func.__code__.co_firstlineno + 3
    with pytest.raises(DifferentiationError, match=rf"test_nested.py:{line}: reverse mode over "
                                                   rf"a reverse derivative taken inside the "
                                                   rf"kernel is not supported: the reverse "
                                                   rf"sweep of an ad.grad, ad.value_and_grad "
                                                   rf"or vjp_fn called in kernel code saves "
                                                   rf"values of the loop here on a tape"):
        ad.grad(sqrt_sensitivities, backend="interp")(v, 2.0)


def test_batched_forward_over_a_taped_inner_reverse_sweep_is_refused():
    with pytest.raises(DifferentiationError, match=r"forward mode at width 2 over a reverse "
                                                   r"derivative taken inside"):
        ad.jacobian(recurrence_gradient_product, mode="fwd", batch=2,
                    backend="interp")(np.array([0.4, 0.3]), 4)


@ad.kernel
def scaled_in_place(u, c):
    """Writes its argument u; returns a float."""
    for i in range(u.shape[0]):
        u[i] = c * u[i] * u[i]
    return np.sum(u) * c


@ad.kernel
def uses_in_place_gradient(u, c):
    g = ad.grad(scaled_in_place, argnums=(0, 1))(u, c)
    return np.sum(g[0] * u) + g[1] + u[0]


def uses_in_place_gradient_py(u, c):
    gu = 2 * c * c * u             # d/du of c^2 sum(u^2)
    gc = 2 * c * np.sum(u * u)
    return np.sum(gu * u) + gc + u[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_inner_kernel_writing_its_array_leaves_the_callers_array_alone(backend):
    u, c = np.array([0.5, -1.0, 2.0]), 0.7
    assert ad.kernel(uses_in_place_gradient.py_func, backend=backend)(u.copy(), c) == \
        pytest.approx(uses_in_place_gradient_py(u, c), rel=1e-13)
    du, dc = np.array([1.0, 0.5, -0.25]), 0.3
    _, tangent = ad.jvp(uses_in_place_gradient, (u, c), (du, dc), backend=backend)
    eps = 1e-6
    expected = (uses_in_place_gradient_py(u + eps * du, c + eps * dc)
                - uses_in_place_gradient_py(u - eps * du, c - eps * dc)) / (2 * eps)
    assert tangent == pytest.approx(expected, rel=1e-7)
    with pytest.raises(DifferentiationError, match="reverse mode over a reverse derivative"):
        ad.grad(uses_in_place_gradient, backend=backend)(u, c)   # its inner sweep tapes u


# -- refusals ------------------------------------------------------------------------------
@ad.kernel(parallel=True)
def parallel_sum(x):
    return np.sum(x * x)


@ad.kernel
def grad_of_parallel(x):
    g = ad.grad(parallel_sum)(x)
    return g[0]


@ad.kernel
def grad_of_int_argument(x, n):
    return ad.grad(recurrence, argnums=1)(x, n)


@ad.kernel
def argnums_not_literal(x, n):
    k = n - 4
    return ad.grad(recurrence, argnums=k)(x, n)[0]


@ad.kernel
def grad_of_array_result(x):
    return ad.grad(returns_array)(x)[0]


@ad.kernel
def returns_array(x):
    return x * 2.0


@ad.kernel
def returns_tuple(x):
    return np.sum(x * 2.0), np.sum(x * x)


@ad.kernel
def vjp_of_tuple_result(x):
    out, vjp_fn = ad.vjp(returns_tuple, x)
    return vjp_fn((1.0, 0.5))[0][0]


@ad.kernel
def pullback_of_an_array(x):
    out, vjp_fn = ad.vjp(recurrence, x, 4)
    return vjp_fn(x)[0][0]   # an array as the cotangent of a float (an AssertionError)


@pytest.mark.parametrize("kernel, message", [
    (pullback_of_an_array, "a cotangent that is not one number for the float result of "
                           "'recurrence' is not supported in hpcad kernels; pass a float"),
    (grad_of_parallel, "has a parallel loop"),
    (grad_of_int_argument, "with respect to 'n'.*not a float"),
    (argnums_not_literal, "argnums that is not a literal"),
    (grad_of_array_result, "ad.grad of kernel 'returns_array', which does not return one "
                           "float, is not supported in hpcad kernels; return one float from it, "
                           "or use ad.vjp"),
    (vjp_of_tuple_result, "ad.vjp of kernel 'returns_tuple', which does not return one float "
                          "or one float array, is not supported in hpcad kernels; return one "
                          "result from each kernel"),
])
def test_unsupported_nested_derivatives_are_refused(kernel, message):
    with pytest.raises(UnsupportedConstruct, match=r"test_nested.py:\d+: .*" + message):
        ad.kernel(kernel.py_func, backend="interp")(np.ones(3), 4) if kernel in (
            grad_of_int_argument, argnums_not_literal) else \
            ad.kernel(kernel.py_func, backend="interp")(np.ones(3))


@ad.kernel
def recurrence_while(x, n):
    """recurrence, its trip count unknown before the loop runs (a stack tape)."""
    s = 1.0
    k = 0
    while k < n:
        s = s * np.sin(x[0] * s) + x[1]
        k += 1
    return s


@ad.kernel
def recurrence_gradient_into(x, n, g):
    d = ad.grad(recurrence_while)(x, n)
    g[0] = d[0]
    g[1] = d[1]


@ad.kernel
def taped_gradient_twice(x, n, m):
    """One inner derivative with a tape inlined twice: before a loop and inside it."""
    g = np.zeros(2)
    recurrence_gradient_into(x, n, g)
    s = g[0]
    for _ in range(m):
        recurrence_gradient_into(x, n, g)
        s += g[1]
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_inlined_copy_of_a_taped_derivative_has_its_own_tape(backend):
    x = np.array([0.4, 0.3])
    g = fd_gradient(recurrence_py, [x], 0)
    got = ad.kernel(taped_gradient_twice.py_func, backend=backend)(x, 4, 3)
    assert got == pytest.approx(g[0] + 3 * g[1], rel=1e-7)


# -- ad.vjp in a kernel ----------------------------------------------------------------------
@ad.kernel
def uses_pullback(x, a):
    out, vjp_fn = ad.vjp(cubic, x, a)
    dx, da = vjp_fn(2.0)
    return out + dx[0] * dx[1] + da


def uses_pullback_py(x, a):
    c = np.cos(x[0] * x[1])
    dx = 2.0 * np.array([3 * a * x[0] ** 2 * x[1] + x[1] * c,
                         a * x[0] ** 3 + x[0] * c + 2 * a * a * x[1]])
    da = 2.0 * (x[0] ** 3 * x[1] + 2 * a * x[1] ** 2)
    out = a * x[0] ** 3 * x[1] + np.sin(x[0] * x[1]) + a * a * x[1] ** 2
    return out + dx[0] * dx[1] + da


@ad.kernel
def squares(u):
    return u * u


@ad.kernel
def pulls_back_an_array(u, w):
    out, vjp_fn = ad.vjp(squares, u)
    (du,) = vjp_fn(w)
    return np.sum(du * du) + out[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_vjp_in_a_kernel_and_its_gradient(backend):
    assert ad.kernel(uses_pullback.py_func, backend=backend)(XC, AC) == \
        pytest.approx(uses_pullback_py(XC, AC), rel=1e-13)
    got = ad.grad(uses_pullback, argnums=(0, 1), backend=backend)(XC, AC)
    for k, g in enumerate(got):
        assert np.allclose(g, fd_gradient(uses_pullback_py, [XC, AC], k), rtol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_vjp_of_an_array_result_in_a_kernel(backend):
    u, w = np.array([1.0, 2.0, -0.5]), np.array([3.0, 4.0, 0.25])
    assert ad.kernel(pulls_back_an_array.py_func, backend=backend)(u, w) == \
        pytest.approx(np.sum((2 * u * w) ** 2) + 1.0, rel=1e-14)
    _, tangent = ad.jvp(pulls_back_an_array, (u, w), (np.ones(3), None), backend=backend)
    assert tangent == pytest.approx(np.sum(8 * u * w * w) + 2 * u[0], rel=1e-13)


@ad.kernel
def sum_of_squares(x):
    return np.sum(x * x)


@ad.kernel
def jvp_along(x, t):
    return ad.jvp(sum_of_squares, (x,), (t,))[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_nested_tangent_of_another_shape_is_refused_when_it_runs(backend):
    """A tangent shorter than its primal was read past its end (numba: a number from
    whatever memory followed; the interpreter: an index error inside the inner kernel)."""
    k = ad.kernel(jvp_along.py_func, backend=backend)
    x = np.arange(6.0)
    assert k(x, np.ones(6)) == pytest.approx(2 * np.sum(x), rel=1e-14)
    with pytest.raises(KernelAssertionError, match=r"test_nested.py:\d+: the tangent of "
                                                   r"argument 'x' must have"):
        k(x, np.ones(3))


@ad.kernel
def global_sum(x, comm):
    total = np.sum(x * x)
    return comm.allreduce(total)


@ad.kernel
def grad_of_mpi_kernel(x, comm):
    return ad.grad(global_sum)(x, comm)[0]


def test_a_nested_derivative_of_an_mpi_kernel_is_refused():
    from mpi4py import MPI
    with pytest.raises(UnsupportedConstruct, match=r"test_nested.py:\d+: .*communicator"):
        ad.kernel(grad_of_mpi_kernel.py_func, backend="interp")(np.ones(3), MPI.COMM_WORLD)


@ad.kernel
def quartic(x, w):
    s = 0.0
    for j in range(x.shape[0]):
        s += w * x[j] ** 4 - x[j] ** 2
    return s


@ad.kernel
def gradient_norm(x, w):
    """|d quartic / dx|^2: the inner reverse sweep is a descending loop inlined here."""
    g = ad.grad(quartic, argnums=0)(x, w)
    s = 0.0
    for j in range(x.shape[0]):
        s += g[j] * g[j]
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_reverse_over_an_inner_reverse_loop_matches_the_analytic_gradient(backend):
    # reversing the inlined descending adjoint loop must ascend again: reversing it
    # descending too gave d/dw wrong by -11.9 with d/dx right
    x, w = np.array([0.3, -0.7, 1.1, 0.5]), 0.7
    gx, gw = ad.grad(gradient_norm, argnums=(0, 1), backend=backend)(x.copy(), w)
    g = 4.0 * w * x ** 3 - 2.0 * x
    np.testing.assert_allclose(gx, 2.0 * g * (12.0 * w * x ** 2 - 2.0), rtol=1e-12)
    np.testing.assert_allclose(gw, np.sum(2.0 * g * 4.0 * x ** 3), rtol=1e-12)


@ad.kernel
def cubes(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i] * x[i]
    return s


@ad.kernel
def pullback_from_either_branch(x, flag):
    """vjp_fn made on both branches of an if (of the same kernel, other primals), used after."""
    if flag > 0:
        out, vjp_fn = ad.vjp(cubes, x)
    else:
        out, vjp_fn = ad.vjp(cubes, 2.0 * x)
    (g,) = vjp_fn(1.0)
    return out + g[0] * g[1]


def pullback_from_either_branch_py(x, flag):
    z = x if flag > 0 else 2.0 * x
    return np.sum(z ** 3) + 9.0 * z[0] ** 2 * z[1] ** 2


@pytest.mark.parametrize("flag", [1, -1])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_pullback_made_on_both_branches_of_an_if(flag, backend):
    """Runs, and its tangent and gradient match differences (the primals the pullback keeps
    are arrays the branch chooses: refused in reverse mode until they were allocated before
    the branch, passes/branch_allocs.py)."""
    x, d = np.array([0.7, 1.3, -0.4]), np.array([0.3, -1.1, 0.8])
    assert ad.kernel(pullback_from_either_branch.py_func, backend=backend)(x, flag) == \
        pytest.approx(pullback_from_either_branch_py(x, flag), rel=1e-13)
    _, tangent = ad.jvp(pullback_from_either_branch, (x, flag), (d, None), backend=backend)
    assert tangent == pytest.approx(
        d @ fd_gradient(pullback_from_either_branch_py, [x, flag], 0), rel=1e-7)
    np.testing.assert_allclose(
        ad.grad(pullback_from_either_branch, backend=backend)(x, flag),
        fd_gradient(pullback_from_either_branch_py, [x, flag], 0), rtol=1e-7)


@ad.kernel
def pullbacks_of_two_kernels(x, flag):
    if flag > 0:
        out, vjp_fn = ad.vjp(cubes, x)
    else:
        out, vjp_fn = ad.vjp(global_sum_of_squares, x)
    return out + vjp_fn(1.0)[0][0]


@ad.kernel
def global_sum_of_squares(x):
    return np.sum(x * x)


def test_pullbacks_of_two_kernels_on_the_branches_of_an_if_are_refused():
    with pytest.raises(UnsupportedConstruct, match=r"test_nested.py:\d+: using 'vjp_fn' after "
                       r"the if at line \d+ whose branches give it different kinds of values"):
        pullbacks_of_two_kernels(np.ones(3), 1)


@ad.kernel
def pullback_rebound_in_a_loop(x, n):
    out, vjp_fn = ad.vjp(cubes, x)
    s = out
    for k in range(n):
        out, vjp_fn = ad.vjp(cubes, (k + 1.0) * x)
        (g,) = vjp_fn(1.0)
        s += out + g[0]
    return s


def pullback_rebound_in_a_loop_py(x, n):
    s = np.sum(x ** 3)
    for k in range(n):
        s += np.sum(((k + 1.0) * x) ** 3) + 3.0 * ((k + 1.0) * x[0]) ** 2
    return s


@ad.kernel
def pullback_read_after_the_loop(x, n):
    out, vjp_fn = ad.vjp(cubes, x)
    for k in range(n):
        out, vjp_fn = ad.vjp(cubes, (k + 1.0) * x)
    return vjp_fn(1.0)[0][0]


@ad.kernel
def pullback_carried_by_a_loop(x, n):
    out, vjp_fn = ad.vjp(cubes, x)
    for _ in range(n):
        (g,) = vjp_fn(1.0)
        out, vjp_fn = ad.vjp(cubes, g)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_pullback_rebound_in_each_iteration_of_a_loop(backend):
    x = np.array([0.7, 1.3, -0.4])
    assert ad.kernel(pullback_rebound_in_a_loop.py_func, backend=backend)(x, 3) == \
        pytest.approx(pullback_rebound_in_a_loop_py(x, 3), rel=1e-13)
    (got,) = ad.grad(pullback_rebound_in_a_loop, argnums=(0,), backend=backend)(x, 3)
    assert np.allclose(got, fd_gradient(pullback_rebound_in_a_loop_py, [x, 3], 0), rtol=1e-7)


@pytest.mark.parametrize("kernel, message", [
    (pullback_read_after_the_loop, "using 'vjp_fn' after the loop at line \\d+ that gives it "
     "a new value in every iteration"),
    (pullback_carried_by_a_loop, "a loop that carries 'vjp_fn' \\(a tuple holding arrays, an "
     "ad.vjp's vjp_fn or an MPI request\\) from one iteration to the next")])
def test_a_pullback_a_loop_would_carry_or_leave_behind_is_refused(kernel, message):
    with pytest.raises(UnsupportedConstruct, match=r"test_nested.py:\d+: " + message):
        kernel(np.ones(3), 2)


NESTED_SCALE = 1.0


def _scaled_square(x):
    return NESTED_SCALE * np.sum(x * x)


def _vjp_of_scaled(x):
    out, vjp_fn = ad.vjp(SCALED, x)
    return out + np.sum(vjp_fn(1.0)[0]) + SCALED(x)


SCALED = ad.kernel(_scaled_square, backend="interp")


def test_a_nested_derivative_sees_the_module_numbers_its_caller_sees(monkeypatch):
    """A kernel lowered (from Python) before a module-level number it reads changed: a
    kernel lowered after the change that calls it and its vjp took the call from a new
    lowering (NESTED_SCALE 2) and the vjp from the kept one (NESTED_SCALE 1), so its value
    and derivative mixed both (23 for 32). Both come from one lowering now; calls from
    Python keep the first, as numba's."""
    inner = ad.kernel(_scaled_square, backend="interp")
    monkeypatch.setitem(globals(), "SCALED", inner)
    x = np.array([1.0, 2.0])
    assert inner(x) == 5.0
    monkeypatch.setitem(globals(), "NESTED_SCALE", 2.0)
    outer = ad.kernel(_vjp_of_scaled, backend="interp")
    s = 2.0   # outer = s |x|^2 + sum(2 s x) + s |x|^2
    assert outer(x) == pytest.approx(2 * s * np.sum(x * x) + 2 * s * np.sum(x))
    np.testing.assert_allclose(ad.grad(outer)(x), 4 * s * x + 2 * s)
    assert inner(x) == 5.0


@ad.kernel
def _relax_in_place(w, c):
    """Writes its argument in place (a loop whose reverse sweep keeps a tape)."""
    for k in range(w.shape[0]):
        w[k] = w[k] * c + 0.1 * np.sin(w[k])
    return np.sum(w * w)


def _grad_rows_in_prange(X, cs, out):
    for j in ad.prange(X.shape[0]):
        g = ad.grad(_relax_in_place, argnums=1)(X[j], cs[j])
        out[j] = g
    return np.sum(out)


def _jvp_rows_in_prange(X, cs, out):
    for j in ad.prange(X.shape[0]):
        _, d = ad.jvp(_relax_in_place, (X[j], cs[j]), (None, 1.0))
        out[j] = d
    return np.sum(out)


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_a_taped_reverse_derivative_in_a_parallel_loop_is_refused(backend):
    """ad.grad of a kernel whose reverse sweep keeps a tape, taken in a prange body: the
    iterations shared one tape (numba: 'Use of reduction variable tp_3 other than in a
    supported reduction function'; a race where it compiles). Refused at the prange's
    line; the ad.jvp it suggests gives the derivative per row."""
    X = np.random.default_rng(0).standard_normal((6, 5))
    cs = np.linspace(0.5, 1.0, 6)
    line = _grad_rows_in_prange.__code__.co_firstlineno + 1
    with pytest.raises(RaceError, match=rf"test_nested.py:{line}: a reverse derivative "
                                           rf"taken in this parallel loop .* saves values on "
                                           rf"a tape .* take it with ad.jvp"):
        ad.kernel(_grad_rows_in_prange, backend=backend)(X.copy(), cs, np.zeros(6))
    out = np.zeros(6)
    ad.kernel(_jvp_rows_in_prange, backend=backend)(X.copy(), cs, out)
    w = X * cs[:, None] + 0.1 * np.sin(X)
    np.testing.assert_allclose(out, np.sum(2.0 * w * X, axis=1), rtol=1e-12)


@ad.kernel
def weighted_squares(x, y):
    return np.sum(x * x * y)


@ad.kernel
def d_weighted_squares(x, y):
    return ad.grad(weighted_squares)(x, y)


@ad.kernel
def jvp_of_a_gradient_function(x, y, v):
    _, t = ad.jvp(ad.grad(weighted_squares), (x, y), (v, None))
    return t


def test_a_derivative_of_a_gradient_function_says_to_wrap_it_in_a_kernel():
    """ad.jvp(ad.grad(f), ...) (JAX's composition) from Python or in a kernel: refused, saying
    to call the gradient in a kernel of its own (it said 'argument args: values of type tuple
    are not supported' from Python, and 'decorate the function' in a kernel)."""
    x, y, v = np.array([1.0, 2.0]), np.array([0.5, 3.0]), np.array([1.0, -1.0])
    hint = (r"call it in a kernel \(@hpcad.kernel def d_weighted_squares\(...\): return "
            r"ad.grad\(weighted_squares, argnums=...\)\(...\)\)")
    with pytest.raises(ad.ArgumentError, match=r"expected a kernel, got the function "
                                               r"ad.grad\(weighted_squares\) returns; to "
                                               r"differentiate a derivative, " + hint):
        ad.jvp(ad.grad(weighted_squares), (x, y), (v, None), backend="interp")
    with pytest.raises(UnsupportedConstruct, match=r"`ad.jvp` of a derivative function "
                                                   r"\(ad.grad of 'weighted_squares'\) is not "
                                                   r"supported in hpcad kernels; " + hint):
        ad.jvp(jvp_of_a_gradient_function, (x, y, v), (v, None, None), backend="interp")
    _, hv = ad.jvp(d_weighted_squares, (x, y), (v, None), backend="interp")
    np.testing.assert_allclose(hv, 2.0 * y * v, rtol=1e-14)   # H = diag(2 y)
