"""An `if` that keeps a float op away from the points where it is infinite
(`if a == 0.0: ... else: ... a ** -gamma ...`, the guard of economics code before a
marginal utility) keeps its derivative finite: loop-invariant code motion ran such an op of a
branch in front of the loop whether or not the branch was taken, so at a = 0 it was infinite,
and the reverse sweep multiplied its partials (log(0) * inf) by its adjoint, zero, giving NaN
for every gradient it reached. Float ops now stay in their branch. Checked against central
differences and forward mode, on the interpreter (the pass runs before either backend).
The same held for a loop that runs zero times (`for z in range(m - i)` at a row whose `a`
is 0): such an op now moves out computed at operands where its partials are finite when
the loop does not run, and stays in a `while` loop."""
import math

import numpy as np
import pytest

import hpcad as ad


def guarded_in_inner_loop(ag, w, gamma):
    s = 0.0
    for i in range(ag.shape[0]):
        a = ag[i]
        for z in range(w.shape[0]):
            if a == 0.0:
                s += 0.0
            else:
                s += a ** (-gamma) * w[z]
    return s


def guarded_with_max(ag, w, gamma):
    s = 0.0
    for i in range(ag.shape[0]):
        a = ag[i]
        for z in range(w.shape[0]):
            if a > 0.0:
                s += max(w[z], a ** (-gamma) / a)
    return s


def guarded_store(ag, w, gamma):
    out = np.empty((ag.shape[0], w.shape[0]))
    for i, a in enumerate(ag):
        for z in range(w.shape[0]):
            if a == 0.0:
                out[i, z] = 0.0
            else:
                v = 0.0
                for k in range(w.shape[0]):
                    v += w[k] * a ** (-gamma)
                out[i, z] = v * w[z]
    return np.sum(out * out)


def zero_trips_at_the_singularity(ag, w, gamma):
    s = 0.0
    for i in range(ag.shape[0]):
        a = ag[i]
        for z in range(w.shape[0] - i):
            s += a ** (-gamma) * w[z] + w[z] / a
    return s


def zero_trips_of_a_while(ag, w, gamma):
    s = 0.0
    for i in range(ag.shape[0]):
        a = ag[i]
        z = 0
        while z < w.shape[0] - i:
            s += a ** (-gamma) * w[z] + math.log(a) * w[z]
            z += 1
    return s


def central(f, args, k, eps=1e-6):
    """Central differences of f in args[k] (a number or an array)."""
    x = np.atleast_1d(np.asarray(args[k], dtype=float))
    out = np.zeros(x.shape)
    for j in range(x.size):
        p, m = x.copy(), x.copy()
        p.flat[j] += eps
        m.flat[j] -= eps
        if not isinstance(args[k], np.ndarray):
            p, m = p[0], m[0]
        hi = f(*args[:k], p, *args[k + 1:])
        lo = f(*args[:k], m, *args[k + 1:])
        out.flat[j] = (hi - lo) / (2 * eps)
    return out if isinstance(args[k], np.ndarray) else out[0]


@pytest.mark.parametrize("f", [guarded_in_inner_loop, guarded_with_max, guarded_store])
def test_gradient_through_a_guard_is_finite(f):
    check(f, np.array([0.0, 0.8, 1.6, 2.4]), np.array([0.5, 2.0]))


@pytest.mark.parametrize("f", [zero_trips_at_the_singularity, zero_trips_of_a_while])
def test_gradient_past_a_loop_over_nothing_is_finite(f):
    check(f, np.array([1.3, 0.8, 1.6, 0.0]), np.array([0.5, 2.0, 1.5]))


def check(f, ag, w):
    n = ag.size
    args = (ag, w, 1.5)
    dag, dw, dgamma = ad.grad(f, argnums=(0, 1, 2), backend="interp")(*args)
    assert np.isfinite(dgamma) and np.all(np.isfinite(dag)) and np.all(np.isfinite(dw))
    np.testing.assert_allclose(dgamma, central(f, args, 2), rtol=1e-6)
    np.testing.assert_allclose(dw, central(f, args, 1), rtol=1e-6)
    # the element at 0 sits on the guard (its own branch) or runs no iteration: its
    # derivative is 0, which differences across the guard do not see
    fd = central(f, args, 0)
    fd[ag == 0.0] = 0.0
    np.testing.assert_allclose(dag, fd, rtol=1e-6)
    _, tangent = ad.jvp(f, args, (np.zeros(n), np.zeros(w.size), 1.0), backend="interp")
    np.testing.assert_allclose(tangent, dgamma, rtol=1e-12)
