"""A `return` before the end of a kernel (inside a serial loop of any depth, a while loop, or
an `if` with statements after it): the primal equals numba.njit of the same source, forward
and reverse derivatives match central finite differences and each other, on both backends.
What stays refused (a return in a prange loop, an array returned early, a path that returns
nothing beside one that returns a value) is an error at its file:line."""
import inspect

import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST
from tests.ad.kernels import Case
from tests.frontend.construct_check import check_construct, njit_of, run_on

BACKENDS = INTERP_FAST


@ad.kernel
def first_above(u, t):
    s = 0.0
    for i in range(u.shape[0]):
        if u[i] > t:
            return s * u[i]
        s += u[i] * u[i]
    return s + 1.0


@ad.kernel
def inner_loop_return(a, t):
    s = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            s += a[i, j] * a[i, j]
            if s > t:
                return s * a[i, j]
        s = 0.5 * s
    return -s


@ad.kernel
def while_with_break_continue_return(u, t):
    s = 0.0
    k = 0
    while k < u.shape[0]:
        k += 1
        if u[k - 1] < -0.8:
            continue
        if u[k - 1] < -0.6:
            break
        s += u[k - 1] * s + u[k - 1]
        if s > t:
            return s * s
    return s


@ad.kernel
def guard_then_loop(u, n):
    if n == 0:
        return u[0] * 3.0
    s = 0.0
    for i in range(n):
        s += np.sin(u[i])
    return s


@ad.kernel
def tuple_from_inside(u, t):
    s = 0.0
    p = 1.0
    for i in range(u.shape[0]):
        if s > t:
            return s, p
        s += u[i] * u[i]
        p *= u[i]
    return p, s


@ad.kernel
def index_of_first(u, t):
    for i in range(u.shape[0]):
        if u[i] > t:
            return i
    return -1


@ad.kernel
def narrow_int(u, t):
    for i in range(u.shape[0]):
        if u[i] > t:
            return u[i]
    return u[0]


@ad.kernel
def stop_writing(u, out):
    for i in range(u.shape[0]):
        if u[i] < 0.0:
            return
        out[i] = u[i] * u[i]


def _vector(rng):
    return rng.uniform(-1.0, 1.0, 7), 0.4


CASES = [Case("first_above", first_above, _vector),
         Case("first_above_never", first_above, lambda rng: (rng.uniform(-1.0, 1.0, 7), 2.0)),
         Case("inner_loop_return", inner_loop_return,
              lambda rng: (rng.uniform(-1.0, 1.0, (4, 3)), 1.3)),
         Case("while_with_break_continue_return", while_with_break_continue_return,
              lambda rng: (rng.uniform(-1.0, 1.0, 9), 0.7)),
         Case("guard_then_loop", guard_then_loop, lambda rng: (rng.uniform(-1.0, 1.0, 5), 3)),
         Case("guard_taken", guard_then_loop, lambda rng: (rng.uniform(-1.0, 1.0, 5), 0)),
         Case("tuple_from_inside", tuple_from_inside, lambda rng: (rng.uniform(-1.0, 1.0, 8),
                                                                   1.0))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_early_return_matches_numba_and_differentiates(case, backend):
    check_construct(case, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_returns_keep_numbas_result_types(backend):
    u = np.array([3, 1, 7, 2], dtype=np.int32)
    for t in (2, 9):
        assert run_on(narrow_int, backend, (u, t)) == njit_of(narrow_int)(u, t)
    # the type `return u[i]` alone has, not a promotion of it
    result_types = narrow_int.specialize(narrow_int.bind((u, 2))).primal.result_types
    assert [str(t) for t in result_types] == ["i32"]
    x = np.array([0.1, 0.5, 0.9])
    assert run_on(index_of_first, backend, (x, 0.3)) == 1
    assert run_on(index_of_first, backend, (x, 1.0)) == -1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bare_return_in_a_loop_stops_the_writes(backend):
    u = np.array([0.5, 2.0, -1.0, 3.0])
    out = np.zeros(4)
    spec = stop_writing.specialize(stop_writing.bind((u, out)))
    stop_writing.run(spec.primal, stop_writing.bind((u, out)), backend=backend)
    np.testing.assert_array_equal(out, [0.25, 4.0, 0.0, 0.0])


def _line_of(fn, text: str) -> str:
    lines, start = inspect.getsourcelines(fn)
    line = start + next(k for k, source in enumerate(lines) if text in source)
    return f"{inspect.getsourcefile(fn)}:{line}"


def return_in_prange(u):
    s = 0.0
    for i in ad.prange(u.shape[0]):   # refused here
        if u[i] > 0.0:
            return u[i]
        s += u[i]
    return s


def array_returned_early(u):
    for i in range(u.shape[0]):
        if u[i] > 0.0:
            return u   # refused here
    return u


def falls_off_the_end(u):   # refused here
    for i in range(u.shape[0]):
        if u[i] > 0.0:
            return u[i]


def value_and_none(u):
    for i in range(u.shape[0]):
        if u[i] > 0.0:
            return u[i]
    return   # refused here


@pytest.mark.parametrize("fn, message, hint", [
    (return_in_prange, "a `return` inside a parallel loop", "with a serial loop"),
    (array_returned_early, "returning an array from a kernel that may return before its end",
     "return it at the end"),
    (falls_off_the_end, "some paths return a value and some do not", "also after the loops"),
    (value_and_none, "returning different numbers of values on different paths", ""),
], ids=["prange", "array", "falls-off", "arity"])
def test_early_returns_hpcad_cannot_follow_are_refused_at_their_line(fn, message, hint):
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ad.kernel(fn)(np.array([-1.0, 2.0, 3.0]))
    text = str(info.value)
    assert text.startswith(_line_of(fn, "refused here") + ": ") and message in text, text
    assert hint in text, text


@ad.kernel
def newton_sqrt(a, x0):
    x = x0
    k = 0
    while True:   # leaves only by a return
        fx = x * x - a
        if abs(fx) < 1e-13 or k == 30:
            return x
        x = x - fx / (2.0 * x)
        k += 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_while_true_loop_left_by_return(backend):
    assert run_on(newton_sqrt, backend, (2.0, 1.0)) == pytest.approx(np.sqrt(2.0), rel=1e-15)
    check_construct(Case("newton_sqrt", newton_sqrt, lambda rng: (2.0 + rng.uniform(), 1.0),
                         fd_rtol=1e-5), backend)
