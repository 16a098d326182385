"""Generated kernels (grammar.py) checked against plain Python and finite differences
(checks.py): every kernel on the interpreter, a sample on numba (its compile time is the cost),
and prange/fork-join kernels also for bitwise-repeatable threaded runs; kernels whose body is
a time loop (stepped.py) give the store-all gradient under every checkpointing plan and
memory budget (checks.check_plans). The profile is "ci" unless HPCAD_GENERATIVE=long
(profiles.py)."""

import pytest
from hypothesis import assume, given

from tests.generative import checks, found, grammar, profiles, stepped
from tests.generative.profiles import generative

NUMBA_EVERY = 20    # one kernel in NUMBA_EVERY also runs on numba (each compiles 3-20 s)
PLANNED_NUMBA_EVERY = 4   # the planner check on numba: 3 plans and 2 budgets, each compiled


def usable(gen) -> bool:
    """Plain Python's loss is finite and moderate (else FD says nothing): see checks.TOO_BIG."""
    return checks.usable(checks.plain_run(gen, checks.make_args(gen))[0])


def check_all(gen, numba: bool) -> None:
    args = checks.make_args(gen)
    with checks.reporting(gen):
        if gen.refused:
            for backend in ["interp"] + (["numba"] if numba else []):
                checks.check_refused(gen, backend, args)
            return
        for backend in ["interp"] + (["numba"] if numba else []):
            checks.check_primal(gen, backend, args)
            checks.check_derivatives(gen, backend, args)
        if numba and gen.prange:
            checks.check_repeatable(gen, args)


@pytest.mark.slow
@pytest.mark.timeout(profiles.time_limit(1200))
@generative(ci_examples=120)
@given(gen=grammar.serial_kernels())
def test_serial_kernels_match_python_and_finite_differences(gen):
    assume(usable(gen))
    check_all(gen, numba=checks.on_numba_too(gen, NUMBA_EVERY))


@pytest.mark.slow
@pytest.mark.timeout(profiles.time_limit(1200))
@generative(ci_examples=70)
@given(gen=grammar.serial_kernels(parallel=True))
def test_parallel_kernels_match_python_and_repeat_bitwise(gen):
    assume(usable(gen))
    check_all(gen, numba=checks.on_numba_too(gen, NUMBA_EVERY))


def check_planned(gen, numba: bool) -> None:
    """The planner check; on the interpreter also the primal and the store-all derivatives
    (a store-all gradient that numba refuses leaves its plans nothing to compare)."""
    args = checks.make_args(gen)
    with checks.reporting(gen):
        checks.check_primal(gen, "interp", args)
        checks.check_derivatives(gen, "interp", args)
        checks.check_plans(gen, "interp", args)
        if numba:
            checks.check_plans(gen, "numba", args, **checks.numba_plan_share(gen))


@pytest.mark.slow
@pytest.mark.timeout(profiles.time_limit(600, per_example=60))
@generative(ci_examples=8)
@given(gen=stepped.stepped_kernels())
def test_stepped_kernels_give_the_store_all_gradient_under_any_plan(gen):
    assume(usable(gen))
    check_planned(gen, numba=checks.on_numba_too(gen, PLANNED_NUMBA_EVERY))


@pytest.mark.slow
@pytest.mark.timeout(profiles.time_limit(600, per_example=60))
@generative(ci_examples=3)    # each takes a minute on two busy cores
@given(gen=stepped.stepped_kernels(parallel=True))
def test_parallel_stepped_kernels_give_the_store_all_gradient_under_any_plan(gen):
    assume(usable(gen))
    check_planned(gen, numba=checks.on_numba_too(gen, PLANNED_NUMBA_EVERY))


@pytest.mark.slow
@pytest.mark.timeout(profiles.time_limit(1200))
@generative(ci_examples=40)
@given(gen=grammar.serial_kernels(arrays=True))
def test_array_kernels_match_python_and_finite_differences(gen):
    """Kernels with at least one block of shapes.py: NumPy array syntax, a matrix argument,
    index arrays (a race in a prange must be refused)."""
    assume(usable(gen))
    check_all(gen, numba=checks.on_numba_too(gen, NUMBA_EVERY))


# the two found kernels that take seconds to compile run in the slow tier
SLOW_FOUND = ("forkjoin_task_tape_unknown_trips", "prange_inner_loop_saves")


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow)
                                  if name in SLOW_FOUND else name
                                  for name in sorted(found.SERIAL)])
def test_found_kernels_match_python_and_finite_differences(name, request):
    feature, _, gen = found.SERIAL[name]
    found.expect_known_bug(request, feature)
    check_all(gen, numba=True)
