"""`name = lambda x: expression` at the top of a kernel's body, called by that name, as
numba compiles it (QuantEcon's lectures write `v = lambda x: np.interp(x, grid, v_array)`
and `u_prime = lambda c: c ** (-gamma)`): values equal numba.njit's of the same source,
gradients equal central differences, a parameter hides an outer name only inside the
lambda, a free name is read as it is at the call (as numba reads it); refused at the
user's line where a call does not fit the lambda (closures.py; tests/frontend/
test_local_functions.py has the rest)."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.errors import UnsupportedConstruct
from tests.ad.harness import njit_of


def expected_value(c, y, v_array, grid, shocks, beta):
    v = lambda x: np.interp(x, grid, v_array)   # noqa: E731
    u = lambda c: np.log(c)                       # noqa: E731
    return u(c) + beta * np.mean(v((y - c) ** 0.4 * shocks))


def euler_update(c_in, a_in, s, z_grid, pi, r, beta, gamma):
    u_prime = lambda c: c ** (-gamma)             # noqa: E731
    u_prime_inv = lambda c: c ** (-1 / gamma)     # noqa: E731
    y = lambda z: np.exp(z)                       # noqa: E731
    c_out = np.zeros_like(c_in)
    for i in range(1, s.shape[0]):
        for j in range(z_grid.shape[0]):
            expectation = 0.0
            for k in range(z_grid.shape[0]):
                next_a = r * s[i] + y(z_grid[k])
                next_c = np.interp(next_a, a_in[:, k], c_in[:, k])
                expectation += u_prime(next_c) * pi[j, k]
            c_out[i, j] = u_prime_inv(beta * r * expectation)
    return np.sum(c_out * c_out)


def shadowing(a):
    x = 2.0
    triple = lambda x: 3.0 * x                    # noqa: E731
    return triple(a[0]) + x + triple(x)


def free_name_assigned_after(a):
    c = 2.0
    f = lambda t: t * c                           # noqa: E731
    s = f(a[0])
    c = 3.0 * a[1]
    return s + f(a[0])   # reads c as it is at the call, as Python and numba do


def _growth_args():
    rng = np.random.default_rng(0)
    grid = np.linspace(0.01, 4.0, 9)
    return [1.0, 2.0, 3.0 * np.log(grid), grid, np.exp(0.1 * rng.standard_normal(5)), 0.96]


def _euler_args():
    s = np.linspace(0.0, 3.0, 5)
    a_in = np.column_stack([s + 0.5, s + 0.6])
    return [0.5 * a_in, a_in, s, np.array([-0.1, 0.1]), np.array([[0.9, 0.1], [0.2, 0.8]]),
            1.01, 0.96, 1.5]


CASES = {"expected_value": (expected_value, _growth_args, (0, 2, 5)),
         "euler_update": (euler_update, _euler_args, (0, 1, 7)),
         "shadowing": (shadowing, lambda: [np.array([1.5, 2.0])], (0,)),
         "free_name_assigned_after": (free_name_assigned_after,
                                      lambda: [np.array([1.5, 2.0])], (0,))}


# one numba case: lowering a lambda is the frontend's alone
@pytest.mark.parametrize("name, backend", [
    *((name, "interp") for name in sorted(CASES)),
    pytest.param("expected_value", "numba", marks=pytest.mark.slow)])
def test_values_equal_numbas(name, backend):
    fn, make, _ = CASES[name]
    got = ad.kernel(fn, backend=backend)(*make())
    np.testing.assert_allclose(got, njit_of(fn)(*make()), rtol=1e-13)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_equal_central_differences(name):
    fn, make, argnums = CASES[name]
    args = make()
    grads = ad.grad(fn, argnums=argnums, backend="interp")(*args)
    for k, g in zip(argnums, grads, strict=True):
        x = np.atleast_1d(np.asarray(args[k], dtype=float))
        fd = np.zeros(x.shape)
        for i in range(x.size):
            hi, lo = list(make()), list(make())
            if isinstance(args[k], np.ndarray):
                hi[k].flat[i] += 1e-6
                lo[k].flat[i] -= 1e-6
            else:
                hi[k] += 1e-6
                lo[k] -= 1e-6
            fd.flat[i] = (fn(*hi) - fn(*lo)) / 2e-6
        np.testing.assert_allclose(np.atleast_1d(g), fd, rtol=1e-5, atol=1e-8)


def in_a_loop(a):
    s = 0.0
    for x in a:
        f = lambda t: t * x                       # noqa: E731, B023
        s += f(2.0)
    return s


def bound_twice(a):
    f = lambda t: t * 2.0                         # noqa: E731
    y = f(a[0])
    f = lambda t: t * 3.0                         # noqa: E731
    return y + f(a[0])


def with_default(a):
    f = lambda t, k=2.0: t * k                    # noqa: E731
    return f(a[0]) + f(a[1], k=a[0])


def called_where_written(a):
    return np.sum(a) + (lambda t: t * a[1])(a[0])


@pytest.mark.parametrize("fn", [in_a_loop, bound_twice, with_default, called_where_written])
def test_more_forms_equal_pythons(fn):
    """Lambdas in a loop, bound twice, with defaults and called where written (closures.py
    expands each where it is called): plain Python's values (numba.njit gives 6.0 for
    with_default, where Python gives 4.0: it takes the default for a keyword argument)."""
    a = np.array([1.0, 2.0])
    assert ad.kernel(fn, backend="interp")(a) == pytest.approx(fn(a), rel=1e-14)


def wrong_count(a):
    f = lambda t: t * 2.0                         # noqa: E731
    return f(a[0], a[1])


def test_a_call_with_too_many_arguments_is_refused_at_the_users_line():
    with pytest.raises(UnsupportedConstruct, match=r"test_lambdas.py:\d+: calling `<lambda>` "
                       r"with 2 arguments \(it takes 1\)"):
        ad.kernel(wrong_count, backend="interp")(np.array([1.0, 2.0]))
