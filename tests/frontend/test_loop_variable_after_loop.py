"""The variable of a `for ... in range(...)` loop read after the loop, as Python and numba
read it (QuantEcon's bisect and Newton return `itr + 1` after `for itr in range(maxiter)`,
with `itr += 1` before a `break`): the value at the end of the last iteration, or at the
`break`, body changes included; a value given before a loop that runs no iteration stays;
with none, a loop that runs no iteration stops the kernel at the loop's line unless every
path assigns the variable again before reading it (Python raises
UnboundLocalError, numba returns 0). Values equal numba.njit's; a derivative through a
loop that also keeps its variable equals central differences."""
import pytest

import hpcad as ad
from hpcad.errors import KernelAssertionError
from tests.ad.harness import njit_of


def last(n):
    for i in range(n):
        pass
    return i


def changed_in_the_body(n):
    for i in range(1, n, 2):
        i += 10
    return i


def given_before(n):
    i = -7
    for i in range(n, 0, -1):
        pass
    return i


def bisect(a, b, x, maxiter):
    xa, dm = a, b - a
    for itr in range(maxiter):
        dm *= 0.5
        xm = xa + dm
        if xm * xm <= x:
            xa = xm
        if abs(dm) < 1e-9:
            itr += 1
            break
    return xa + 0.5 * (x - xa * xa) / xa, itr


def assigned_again(n):
    total = 0
    for i in range(n):
        total += i
    for s in range(n):
        i = n - 1 - s
        total = 10 * total + i
    return total


def assigned_on_one_path(n, c):
    for i in range(1, n):
        pass
    if c:
        i = 5
    return i


CASES = [(last, (3,)), (changed_in_the_body, (6,)), (given_before, (4,)), (given_before, (0,)),
         (bisect, (0.5, 2.5, 2.0, 100)), (bisect, (0.5, 2.5, 2.0, 5)), (assigned_again, (3,)),
         (assigned_again, (0,)), (assigned_on_one_path, (4, False)),
         (assigned_on_one_path, (4, True))]


@pytest.mark.parametrize("fn, args", CASES, ids=[f"{f.__name__}{a}" for f, a in CASES])
def test_values_equal_numbas(fn, args):
    assert ad.kernel(fn, backend="interp")(*args) == njit_of(fn)(*args)


bisect_kernel = ad.kernel(bisect)


def loss(x):
    root, count = bisect_kernel(0.5, 2.5, x, 100)
    return root * count


def test_a_derivative_through_the_loop_equals_central_differences():
    k = ad.kernel(loss, backend="interp")
    got = ad.grad(loss, backend="interp")(2.0)
    want = (k(2.0 + 1e-7) - k(2.0 - 1e-7)) / 2e-7
    assert got == pytest.approx(want, rel=1e-6)


def test_a_loop_that_gives_it_no_value_stops_at_its_line():
    with pytest.raises(KernelAssertionError, match="loop variable 'i' is read after its for "
                                                   "loop, which ran no iteration") as e:
        ad.kernel(last, backend="interp")(0)
    assert f"test_loop_variable_after_loop.py:{last.__code__.co_firstlineno + 1}" in str(e.value)
    with pytest.raises(KernelAssertionError, match="loop variable 'i' is read after"):
        ad.kernel(assigned_on_one_path, backend="interp")(1, False)
