"""Kernels that return arrays (issue 21, deliverable 4): the primal is numba.njit's, `vjp`
takes a cotangent of the returned array's shape, `jvp` gives its tangent; checked against
central finite differences of <cotangent, f(x)> and against each other (the dot-product
test <ct, J t> == <J^T ct, t>), on both backends; `grad` refuses an array result."""
import math

import numba
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST, njit_of, on_numba

BACKENDS = INTERP_FAST


@ad.kernel
def squares(u, a):
    n = u.shape[0]
    out = np.empty_like(u)
    for i in range(n):
        out[i] = a * math.sin(u[i]) * u[i - 1]
    return out


@ad.kernel
def stats(u, a):
    n = u.shape[0]
    out = np.zeros(n)
    s = 0.0
    for i in range(n):
        out[i] = a * u[i] * u[i]
        s += math.exp(a * u[i])
    return s, out, n


@ad.kernel
def scale_in_place(u, a):
    for i in range(u.shape[0]):
        u[i] = a * u[i] * u[i]
    return u


@ad.kernel
def outer2d(u, v):
    out = np.zeros((u.shape[0], v.shape[0]))
    for i in range(u.shape[0]):
        for j in range(v.shape[0]):
            out[i, j] = u[i] * math.cos(v[j])
    return out


@ad.kernel
def heat_state(u, alpha, nsteps):
    n = u.shape[0]
    w = np.empty_like(u)
    for i in range(n):
        w[i] = u[i]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = w[i] + alpha * (w[i - 1] - 2.0 * w[i] + w[i + 1]) * w[i]
        for i in range(1, n - 1):
            w[i] = tmp[i]
    return w


@ad.kernel
def twice(u):
    out = np.empty_like(u)
    for i in range(u.shape[0]):
        out[i] = u[i] ** 3
    return out, out


@ad.kernel
def constant_out(u, n):
    out = np.zeros(n)
    for i in range(n):
        out[i] = 2.0 * i
    return out


@ad.kernel
def chosen_in_branch(u, a):
    n = u.shape[0]
    if a > 0.0:
        out = np.zeros(n)
        for i in range(n):
            out[i] = a * u[i]
    else:
        out = np.ones(n)
    return out


@ad.kernel
def laplacian_expr(u, a):
    return a * u[1:-1] * (u[:-2] - 2.0 * u[1:-1] + u[2:])


@ad.kernel
def sum_and_exp(u, a):
    s = 0.0
    for i in range(u.shape[0]):
        s += u[i] * u[i]
    return s, np.exp(u) * a


@ad.kernel
def inner_view(u, a):
    for i in range(u.shape[0]):
        u[i] = a * u[i] * u[i]
    return u[1:-1]


@ad.kernel
def ping_pong(u, alpha, nsteps):
    n = u.shape[0]
    a = np.empty_like(u)
    b = np.zeros(n)
    for i in range(n):
        a[i] = u[i]
    for t in range(nsteps):
        for i in range(1, n - 1):
            b[i] = a[i] + alpha * (a[i - 1] - 2.0 * a[i] + a[i + 1]) * math.cos(a[i])
        a, b = b, a
    return a


@ad.kernel
def buffer_and_result(u, alpha):
    n = u.shape[0]
    tmp = np.zeros(n)
    out = np.zeros(n)
    for i in range(1, n - 1):
        tmp[i] = u[i] * alpha + u[i - 1]
    for i in range(1, n - 1):
        out[i] = tmp[i] * tmp[i]
    return tmp, out


@ad.kernel
def parallel_out(u, a):
    out = np.empty_like(u)
    for i in numba.prange(u.shape[0]):
        out[i] = a * math.sin(u[i]) * u[i]
    return out


@ad.kernel
def every_other(u, c):
    u[1:] *= c
    return u[::-2]


@ad.kernel
def with_new_axis(u):
    return u[:, np.newaxis]


def _rng():
    return np.random.default_rng(7)


CASES = {
    "squares": (squares, lambda r: (r.standard_normal(6), 1.3)),
    "stats": (stats, lambda r: (r.standard_normal(5), 0.7)),
    "scale_in_place": (scale_in_place, lambda r: (r.standard_normal(4), -0.6)),
    "outer2d": (outer2d, lambda r: (r.standard_normal(3), r.standard_normal(4))),
    "heat_state": (heat_state, lambda r: (np.sin(np.linspace(0.0, 3.0, 9)), 0.2, 6)),
    "twice": (twice, lambda r: (r.standard_normal(5),)),
    "laplacian_expr": (laplacian_expr, lambda r: (r.standard_normal(8), 0.9)),
    "sum_and_exp": (sum_and_exp, lambda r: (r.standard_normal(5), 1.1)),
    "inner_view": (inner_view, lambda r: (r.standard_normal(6), 0.8)),
    "ping_pong": (ping_pong, lambda r: (r.standard_normal(8), 0.3, 5)),
    "buffer_and_result": (buffer_and_result, lambda r: (r.standard_normal(7), 0.7)),
    "parallel_out": (parallel_out, lambda r: (r.standard_normal(40), 1.3)),
    "every_other": (every_other, lambda r: (r.standard_normal(7), 0.6)),
}


def _copies(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def _floats(out):
    """The float results of a kernel call, as a list (arrays and scalars)."""
    out = out if isinstance(out, tuple) else (out,)
    return [o for o in out if isinstance(o, (np.ndarray, float))]


def _float_args(args):
    return [i for i, a in enumerate(args) if isinstance(a, (np.ndarray, float))]


def _random_like(r, x):
    return r.standard_normal(np.shape(x)) if isinstance(x, np.ndarray) else \
        float(r.standard_normal())


def _pairing(out, ct):
    return sum(float(np.sum(o * c)) for o, c in zip(_floats(out), ct))


def _cotangent(k, args, r):
    return [_random_like(r, o) for o in _floats(k.py_func(*_copies(args)))]


def _as_given(k, args, ct):
    """The cotangent as vjp_fn takes it: one entry per float result, a tuple for a tuple."""
    return tuple(ct) if isinstance(k.py_func(*_copies(args)), tuple) else ct[0]


def _fd(k, args, direction, ct, eps=1e-6):
    """Central difference of <ct, f(args)> along direction (None for constant args)."""
    plus, minus = list(_copies(args)), list(_copies(args))
    for i, d in enumerate(direction):
        if d is not None:
            plus[i] = plus[i] + eps * d
            minus[i] = minus[i] - eps * d
    return (_pairing(k.py_func(*plus), ct) - _pairing(k.py_func(*minus), ct)) / (2 * eps)


def _direction(args, r):
    nums = _float_args(args)
    return [_random_like(r, a) if i in nums else None for i, a in enumerate(args)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_primal_matches_numba(name, backend):
    k, make = CASES[name]
    args = make(_rng())
    got = ad.kernel(k.py_func, backend=backend)(*_copies(args))
    want = njit_of(k.py_func)(*_copies(args))
    for g, w in zip(got if isinstance(got, tuple) else (got,),
                    want if isinstance(want, tuple) else (want,)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
        assert type(g) is type(w) or isinstance(g, np.ndarray) == isinstance(w, np.ndarray)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_vjp_matches_finite_differences(name, backend):
    k, make = CASES[name]
    r = _rng()
    args = make(r)
    ct = _cotangent(k, args, r)
    out, vjp_fn = ad.vjp(k, *_copies(args), backend=backend)
    grads = vjp_fn(_as_given(k, args, ct))
    d = _direction(args, r)
    analytic = sum(float(np.sum(g * di)) for g, di in zip(grads, d) if di is not None)
    np.testing.assert_allclose(analytic, _fd(k, args, d, ct), rtol=1e-6, atol=1e-9)
    for o, w in zip(_floats(out), _floats(k.py_func(*_copies(args)))):
        np.testing.assert_allclose(o, w, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_jvp_matches_finite_differences_and_vjp(name, backend):
    k, make = CASES[name]
    r = _rng()
    args = make(r)
    d = _direction(args, r)
    ct = _cotangent(k, args, r)
    _, tangent = ad.jvp(k, _copies(args), d, backend=backend)
    tangents = _floats(tangent)
    assert [np.shape(t) for t in tangents] == [np.shape(c) for c in ct]
    jt = sum(float(np.sum(c * t)) for c, t in zip(ct, tangents))   # <ct, J t>
    np.testing.assert_allclose(jt, _fd(k, args, d, ct), rtol=1e-6, atol=1e-9)
    _, vjp_fn = ad.vjp(k, *_copies(args), backend=backend)
    grads = vjp_fn(_as_given(k, args, ct))
    jtct = sum(float(np.sum(g * di)) for g, di in zip(grads, d) if di is not None)
    np.testing.assert_allclose(jt, jtct, rtol=1e-10)   # <J^T ct, t>


@pytest.mark.parametrize("backend", BACKENDS)
def test_returned_argument_is_the_same_array_as_numba(backend):
    u = np.linspace(0.5, 1.5, 4)
    got = ad.kernel(scale_in_place.py_func, backend=backend)(u, 2.0)
    assert got is u
    np.testing.assert_allclose(u, 2.0 * np.linspace(0.5, 1.5, 4) ** 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_returned_slice_is_a_view_of_the_argument_as_in_numba(backend):
    u = np.linspace(0.5, 1.5, 6)
    got = ad.kernel(inner_view.py_func, backend=backend)(u, 2.0)
    assert np.shares_memory(got, u) and got.shape == (4,)
    got[0] = 7.0
    assert u[1] == 7.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_returned_stepped_slice_is_a_view_of_the_argument_as_in_numba(backend):
    u = np.linspace(0.5, 1.5, 7)
    got = ad.kernel(every_other.py_func, backend=backend)(u, 2.0)
    assert np.shares_memory(got, u) and got.shape == (4,)
    got[1] = 9.0
    assert u[4] == 9.0


def test_returning_a_slice_with_a_new_axis_is_refused():
    with pytest.raises(ad.UnsupportedConstruct, match=r"test_return_arrays.py:\d+: returning "
                                                      r"a slice with np.newaxis.*out\[:\] = "):
        with_new_axis(np.ones(4))


@pytest.mark.parametrize("backend", BACKENDS)
def test_constant_result_has_zero_derivatives(backend):
    u = np.ones(3)
    _, tangent = ad.jvp(constant_out, (u, 4), (np.ones(3), None), backend=backend)
    np.testing.assert_array_equal(tangent, np.zeros(4))
    _, vjp_fn = ad.vjp(constant_out, u, 4, backend=backend)
    du, dn = vjp_fn(np.ones(4))
    np.testing.assert_array_equal(du, np.zeros(3))
    assert dn is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["grad", "value_and_grad", "check_grad", "hvp"])
def test_grad_of_an_array_result_says_to_use_vjp(how, backend):
    u = np.ones(3)
    call = {"grad": lambda: ad.grad(squares, backend=backend)(u, 1.0),
            "value_and_grad": lambda: ad.value_and_grad(squares, backend=backend)(u, 1.0),
            "check_grad": lambda: ad.check_grad(squares, u, 1.0, backend=backend),
            "hvp": lambda: ad.hvp(squares, backend=backend)(u, 1.0, u)}[how]
    with pytest.raises(ad.ArgumentError, match=r"'squares'.*returns an array.*vjp"):
        call()


@pytest.mark.parametrize("backend", BACKENDS)
def test_vjp_cotangent_of_the_wrong_shape_is_refused(backend):
    _, vjp_fn = ad.vjp(squares, np.ones(3), 1.0, backend=backend)
    with pytest.raises(ad.ArgumentError, match=r"shape \(3,\).*got an array of shape \(4,\)"):
        vjp_fn(np.ones(4))
    with pytest.raises(ad.ArgumentError, match=r"cotangent must be a float array"):
        vjp_fn(1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_array_chosen_in_a_branch_runs_and_differentiates(backend):
    """Its reverse was refused ("an array chosen by a branch must be defined before the
    branch"): the arrays of a top-level `if` are allocated before it for a reverse sweep
    (passes/branch_allocs.py), so the shadow of the chosen one is the branch's choice of
    theirs. Both branches against central differences."""
    u = np.arange(3.0) + 0.5
    np.testing.assert_array_equal(
        ad.kernel(chosen_in_branch.py_func, backend=backend)(u, 2.0), 2.0 * u)
    np.testing.assert_array_equal(
        ad.kernel(chosen_in_branch.py_func, backend=backend)(u, -1.0), np.ones(3))
    w, h, f = np.array([1.0, -2.0, 0.5]), 1e-6, chosen_in_branch.py_func
    for a in (2.0, -1.0):
        _, vjp_fn = ad.vjp(chosen_in_branch, u, a, backend=backend)
        du, da = vjp_fn(w)
        fd = [w @ (f(u + h * e, a) - f(u - h * e, a)) / (2 * h) for e in np.eye(3)]
        np.testing.assert_allclose(du, fd, rtol=1e-7, atol=1e-9)
        assert da == pytest.approx(w @ (f(u, a + h) - f(u, a - h)) / (2 * h), abs=1e-7)


POLICIES = {"segments": dict(snapshots=2), "revolve": dict(snapshots=3, schedule="revolve"),
            "restart": dict(snapshots=2, schedule="restart"),
            "recompute_all": dict(snapshots="recompute_all"), "budget": dict(budget="200B"),
            "budget_in_files": dict(budget="60B")}   # 60 B: snapshots in files
# numba compiles the array result under a plan with snapshots in memory and one with them in
# files (harness.ALL_KERNELS: every policy); every plan compiles on numba in
# tests/checkpoint/test_plans_agree.py
POLICIES_ON_NUMBA = ("segments", "budget_in_files")


@pytest.mark.parametrize("policy, backend", [
    pytest.param(policy, backend, id=f"{name}-{backend}", marks=pytest.mark.slow
                 if backend == "numba" else ())
    for name, policy in POLICIES.items() for backend in ("interp", "numba")
    if backend == "interp" or on_numba(name, POLICIES_ON_NUMBA)])
def test_time_loop_returning_its_state_under_checkpointing(policy, backend):
    """Segments, revolve (restarting too), recompute-all and plans within a budget (which
    put the snapshots in files below one copy of the state) all give the store-all
    derivative, and the primal array returned beside it is the final state."""
    r = _rng()
    args = CASES["heat_state"][1](r)
    ct = r.standard_normal(args[0].shape)
    want, want_vjp = ad.vjp(heat_state, *_copies(args), backend=backend)
    k = ad.checkpoint(heat_state, **policy)
    out, vjp_fn = ad.vjp(k, *_copies(args), backend=backend)
    np.testing.assert_allclose(out, want, rtol=1e-13)
    for g, w in zip(vjp_fn(ct), want_vjp(ct)):
        if w is not None:
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-13)
    seeded = ad.autodiff(k, "reverse", (ad.Duplicated, ad.Active, ad.Const),
                         backend=backend)
    du = np.zeros_like(args[0])
    primal, dalpha = seeded(args[0].copy(), du, args[1], args[2], seed=ct)
    np.testing.assert_allclose(primal, want, rtol=1e-13)
    np.testing.assert_allclose(du, want_vjp(ct)[0], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_autodiff_seeds_an_array_result_at_width_3(backend):
    r = _rng()
    u = r.standard_normal(6)
    cts = r.standard_normal((3, 6))
    df = ad.autodiff(squares, "reverse", (ad.Duplicated, ad.Active), width=3,
                     backend=backend)
    du = np.zeros((3, 6))
    out, da = df(u.copy(), du, 1.3, seed=cts)
    np.testing.assert_allclose(out, squares.py_func(u.copy(), 1.3), rtol=1e-12)
    _, vjp_fn = ad.vjp(squares, u, 1.3, backend=backend)
    for lane in range(3):
        gu, ga = vjp_fn(cts[lane])
        np.testing.assert_allclose(du[lane], gu, rtol=1e-12)
        np.testing.assert_allclose(da[lane], ga, rtol=1e-12)
    with pytest.raises(ad.ArgumentError, match=r"2 dimensions, the first of length 3"):
        df(u.copy(), np.zeros((3, 6)), 1.3, seed=cts[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_autodiff_seed_of_another_length_stops_the_derivative(backend):
    """autodiff runs nothing before the derivative: the derivative checks the seed's shape
    against the returned array's before adding it in."""
    df = ad.autodiff(squares, "reverse", (ad.Duplicated, ad.Active), backend=backend)
    with pytest.raises(ad.KernelAssertionError, match=r"test_return_arrays.py:\d+: .*seed\) "
                                                      r"of float result 0, an array, must have"):
        df(np.ones(6), np.zeros(6), 1.3, seed=np.ones(5))


@pytest.mark.parametrize("backend", BACKENDS)
def test_autodiff_forward_returns_the_array_tangent(backend):
    r = _rng()
    u, t = r.standard_normal(6), r.standard_normal(6)
    df = ad.autodiff(stats, "forward", (ad.Duplicated, ad.Dual), backend=backend)
    (s, out, n), (ds, dout, dn) = df(u.copy(), t.copy(), 0.7, 0.25)
    _, (js, jout, jn) = ad.jvp(stats, (u, 0.7), (t, 0.25), backend=backend)
    np.testing.assert_allclose(dout, jout, rtol=1e-12)
    np.testing.assert_allclose(ds, js, rtol=1e-12)
    assert dn is None and jn is None and n == 6


@ad.kernel
def weighted_by_branch_array(u, a):
    n = u.shape[0]
    if a > 0.0:
        w = np.zeros(n)
        for i in range(n):
            w[i] = a * u[i]
    else:
        w = np.ones(n)
    s = 0.0
    for i in range(n):
        s += w[i] * u[i]
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_array_chosen_in_a_branch_differentiates_for_a_scalar_result_too(backend):
    """(Once the shadow made outside the branch was not the one the branch's reverse wrote: a
    silently zero derivative; then refused; now the arrays are allocated before the branch.)
    Both branches against central differences."""
    u, h, f = np.array([0.3, 1.2, -0.7]), 1e-6, weighted_by_branch_array.py_func
    for a in (2.0, -1.5):
        gu, ga = ad.grad(weighted_by_branch_array, argnums=(0, 1), backend=backend)(u, a)
        fd = [(f(u + h * e, a) - f(u - h * e, a)) / (2 * h) for e in np.eye(3)]
        np.testing.assert_allclose(gu, fd, rtol=1e-7)
        assert ga == pytest.approx((f(u, a + h) - f(u, a - h)) / (2 * h), abs=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["squares", "heat_state"])
def test_autodiff_forward_width_3_gives_lanes_first_array_tangents(name, backend):
    k, make = CASES[name]
    r = _rng()
    args = make(r)
    tu, ta = r.standard_normal((3,) + args[0].shape), r.standard_normal(3)
    activity = (ad.Duplicated, ad.Dual) + (ad.Const,) * (len(args) - 2)
    df = ad.autodiff(k, "forward", activity, width=3, backend=backend)
    _, tangent = df(args[0].copy(), tu.copy(), args[1], ta.copy(), *args[2:])
    assert tangent.shape == (3,) + args[0].shape
    for lane in range(3):
        _, want = ad.jvp(k, _copies(args), (tu[lane], ta[lane]) + (None,) * (len(args) - 2),
                         backend=backend)
        np.testing.assert_allclose(tangent[lane], want, rtol=1e-12, atol=1e-14)


@ad.kernel
def sines(u, a):
    out = np.empty_like(u)
    for i in range(u.shape[0]):
        out[i] = a * math.sin(u[i])
    return out


@ad.kernel
def calls_sines(u, a):
    v = sines(u, a)
    s = 0.0
    for i in range(u.shape[0]):
        s += v[i] * u[i]
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_called_kernel_may_return_an_array(backend):
    u = np.linspace(0.1, 1.0, 5)
    assert calls_sines(u, 2.0) == pytest.approx(calls_sines.py_func(u, 2.0), rel=1e-12)
    assert ad.check_grad(calls_sines, u, 2.0, backend=backend) < 1e-6


@ad.custom_vjp
@ad.kernel
def ruled_cube(u):
    out = np.empty_like(u)
    for i in range(u.shape[0]):
        out[i] = u[i] ** 3
    return out


@ad.kernel
def ruled_cube_fwd(u):
    out = np.empty_like(u)
    for i in range(u.shape[0]):
        out[i] = u[i] ** 3
    return out, 1.0


@ad.kernel
def ruled_cube_bwd(u, r, g, du):
    return 0.0


ruled_cube.defvjp(ruled_cube_fwd, ruled_cube_bwd)


def test_a_kernel_with_custom_rules_returning_an_array_is_refused():
    with pytest.raises(ad.DifferentiationError, match=r"'ruled_cube' .* has custom derivative "
                                                      r"rules and returns an array"):
        ad.vjp(ruled_cube, np.ones(3), backend="interp")[1](np.ones(3))


def _fd_jacobian(k, args, n, eps=1e-6):
    x = args[n]
    out = np.asarray(k.py_func(*_copies(args)))
    jac = np.zeros(out.shape + np.shape(x))
    for idx in np.ndindex(*np.shape(x)):
        plus, minus = list(_copies(args)), list(_copies(args))
        if np.shape(x):
            plus[n][idx] += eps
            minus[n][idx] -= eps
        else:
            plus[n], minus[n] = x + eps, x - eps
        jac[(Ellipsis,) + idx] = (k.py_func(*plus) - k.py_func(*minus)) / (2 * eps)
    return jac


# on numba, reverse mode's rows all at once (batch None) generates the code of two rows at a
# time but for the sizes it allocates (the lanes run to a run-time width): that variant runs
# on the interpreter only (harness.ALL_KERNELS: on numba too)
JACOBIANS_ON_NUMBA = ("fwd-None", "rev-2", "fwd-1")
@pytest.mark.parametrize("name, mode, batch, backend", [
    pytest.param(name, mode, batch, backend, id=f"{name}-{mode}-{batch}-{backend}",
                 marks=pytest.mark.slow if backend == "numba" else ())
    for name in ("outer2d", "heat_state")
    for mode, batch in (("rev", None), ("fwd", None), ("rev", 2), ("fwd", 1))
    for backend in ("interp", "numba")
    if backend == "interp" or on_numba(f"{mode}-{batch}", JACOBIANS_ON_NUMBA)])
def test_jacobian_of_an_array_result(name, mode, batch, backend):
    k, make = CASES[name]
    args = make(_rng())
    got = ad.jacobian(k, argnums=(0, 1), mode=mode, batch=batch, backend=backend)(*args)
    for n, j in zip((0, 1), got):
        np.testing.assert_allclose(j, _fd_jacobian(k, args, n), rtol=1e-6, atol=1e-8)


def test_jacobian_of_a_tuple_with_an_array_is_refused():
    with pytest.raises(ad.ArgumentError, match=r"jacobian of kernel 'stats'.*use hpcad.vjp"):
        ad.jacobian(stats, backend="interp")(np.ones(3), 1.0)


@ad.kernel
def first_row(a):
    return a[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_returning_a_row_gives_a_view_of_it(backend):
    """(Once refused as 'returning arrays'.)"""
    a = np.arange(6.0).reshape(2, 3)
    got = ad.kernel(first_row.py_func, backend=backend)(a)
    np.testing.assert_array_equal(got, njit_of(first_row.py_func)(a))
    assert np.shares_memory(got, a)
    _, vjp_fn = ad.vjp(first_row, a, backend=backend)
    np.testing.assert_array_equal(vjp_fn(np.array([1.0, 2.0, 3.0]))[0],
                                  [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])


@pytest.mark.slow
def test_cotangents_of_any_layout_run_the_one_compiled_derivative():
    """A returned array's cotangent is typed in any layout: the derivative numba compiled for
    that takes C-contiguous, F-ordered and strided cotangents as they come (it was compiled
    a second time, whole, for the C-contiguous ones callers pass), and each gives the
    interpreter's adjoints."""
    r = _rng()
    u, v = r.standard_normal(4), r.standard_normal(3)
    wide = r.standard_normal((4, 6))
    k = ad.kernel(outer2d.py_func)    # (its own compiled functions: none of other tests')
    for ct in (wide[:, ::2].copy(), np.asfortranarray(wide[:, 1::2]), wide[:, ::2]):
        _, back = ad.vjp(k, u.copy(), v.copy(), backend="numba")
        _, want = ad.vjp(outer2d, u.copy(), v.copy(), backend="interp")
        for g, w in zip(back(ct), want(ct)):
            np.testing.assert_allclose(g, w, rtol=1e-14)
    reverse = [c for fn, c in k.compiled.values() if fn.name.endswith(".rev")]
    assert len(reverse) == 1 and len(reverse[0].dispatcher.overloads) == 1, \
        [list(c.dispatcher.overloads) for c in reverse]
