"""A kernel call in a store target (`step(u)[0, 0] = v`, `u[count(c)] = v`,
`u[bump(w) > 1.5] = v`, `op=` too), in an index read (`u[count(c)]`) or in a subscripted
value with `...` (`np.sum(step(u)[..., 0])`) runs once, in Python's order (the value
stored, then the subscripted value, then each index), as the plain Python functions show:
a store's paths read its target's parts more than once, a read its index, and each read
ran the call again. A slice bound that may be None runs what Python runs: `e or None` its
`e` once, `e if c else None` its `e` only where c holds (an `e` that would divide by zero
where it is not chosen stops nothing)."""
import numpy as np
import pytest

import hpcad as ad


@ad.kernel
def bump(u):
    u += 1.0
    return u[:, :]


@ad.kernel
def bump_vector(w):
    w += 1.0
    return w


@ad.kernel
def count(c):
    c[0] += 1
    return c[0]


def store_into_result(u, c):
    bump(u)[0, 0] = 7.0
    return np.sum(u)


def add_into_result(u, c):
    bump(u)[0, 0] += 7.0
    return np.sum(u)


def fill_through_ellipsis(u, c):
    bump(u)[..., 0] = 7.0
    return np.sum(u)


def read_through_ellipsis(u, c):
    return np.sum(bump(u)[..., 0])


def store_at_counted_rows(u, c):
    u[count(c)] = 7.0
    u[count(c), 0] += 1.0
    return np.sum(u) + 100.0 * c[0]


def read_at_a_counted_row(u, c):
    return np.sum(u[count(c)]) + 100.0 * c[0]


def read_at_a_counted_index(u, c):
    return u[:, 1][count(c)] + 100.0 * c[0]


def store_under_a_called_mask(u, c):
    w = u[:, 0]
    w[bump_vector(w) > 1.5] = 7.0
    return np.sum(u)


def sum_to_a_counted_end_or_none(u, c):
    return np.sum(u[:count(c) - 1 or None, 0]) + 100.0 * c[0]


def sum_to_a_counted_end_chosen_by_a_test(u, c):
    first = np.sum(u[:count(c) if c[0] > 5 else None, 0])
    return first + np.sum(u[1:None if c[0] < 5 else count(c), 1]) + 100.0 * c[0]


def sum_to_a_quotient_or_the_end(u, c):
    k = c[0]
    return np.sum(u[:4 // k if k != 0 else None, 0]) + np.sum(u[4 // k if k else 0:, 1])


@pytest.mark.parametrize("fn", [store_into_result, add_into_result, fill_through_ellipsis,
                                read_through_ellipsis, store_at_counted_rows,
                                store_under_a_called_mask, read_at_a_counted_row,
                                read_at_a_counted_index, sum_to_a_counted_end_or_none,
                                sum_to_a_counted_end_chosen_by_a_test,
                                sum_to_a_quotient_or_the_end], ids=lambda f: f.__name__)
def test_a_call_in_a_store_target_runs_once(fn):
    u = np.array([[0.0, 1.0], [1.0, 0.5], [0.2, 0.0], [1.0, 1.0]])
    c = np.zeros(1, dtype=np.int64)
    u1, c1, u2, c2 = u.copy(), c.copy(), u.copy(), c.copy()
    got = ad.kernel(fn, backend="interp")(u1, c1)
    expected = _python(fn)(u2, c2)
    assert got == expected and np.array_equal(u1, u2) and np.array_equal(c1, c2), \
        (got, expected, u1, u2)


def _python(fn):
    """fn with the plain Python functions of the kernels it calls (NumPy semantics)."""
    names = {"bump": bump.py_func, "bump_vector": bump_vector.py_func, "count": count.py_func}
    return type(fn)(fn.__code__, {**fn.__globals__, **names}, fn.__name__)
