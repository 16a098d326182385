"""Generated kernels (grammar.py) checked against plain Python and finite differences
(checks.py): every kernel on the interpreter, a sample on numba (its compile time is the cost),
and prange/fork-join kernels also for bitwise-repeatable threaded runs. The profile is "ci"
unless HPCAD_GENERATIVE=long (HPCAD_GENERATIVE_N examples per test, default 2000)."""
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings

sys.path.insert(0, str(Path(__file__).parent))
import checks  # noqa: E402
import found  # noqa: E402
import grammar  # noqa: E402

LONG = os.environ.get("HPCAD_GENERATIVE") == "long"
CI_EXAMPLES = {"serial": 160, "parallel": 100}
NUMBA_EVERY = 20    # one kernel in NUMBA_EVERY also runs on numba (each compiles 3-20 s)

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])
settings.register_profile(
    "long", derandomize=False, deadline=None, print_blob=True, database=None,
    max_examples=int(os.environ.get("HPCAD_GENERATIVE_N", "2000")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])
PROFILE = settings.get_profile("long" if LONG else "ci")


def examples(kind: str) -> settings:
    return settings(PROFILE, max_examples=PROFILE.max_examples if LONG else CI_EXAMPLES[kind])


def usable(gen) -> bool:
    """Plain Python's loss is finite and moderate (else FD says nothing): see checks.TOO_BIG."""
    return checks.usable(checks.plain_run(gen, checks.make_args(gen))[0])


def check_all(gen, numba: bool) -> None:
    args = checks.make_args(gen)
    with checks.reporting(gen):
        for backend in ["interp"] + (["numba"] if numba else []):
            checks.check_primal(gen, backend, args)
            checks.check_derivatives(gen, backend, args)
        if numba and gen.prange:
            checks.check_repeatable(gen, args)


@pytest.mark.timeout(1200)
@examples("serial")
@given(gen=grammar.serial_kernels())
def test_serial_kernels_match_python_and_finite_differences(gen):
    assume(usable(gen))
    check_all(gen, numba=checks.on_numba_too(gen, NUMBA_EVERY))


@pytest.mark.timeout(1200)
@examples("parallel")
@given(gen=grammar.serial_kernels(parallel=True))
def test_parallel_kernels_match_python_and_repeat_bitwise(gen):
    assume(usable(gen))
    check_all(gen, numba=checks.on_numba_too(gen, NUMBA_EVERY))


def expect_known_bug(request, feature: str) -> None:
    """A found kernel whose construct is still switched off is expected to fail (its bug)."""
    if not grammar.FEATURES[feature]:
        request.applymarker(pytest.mark.xfail(
            reason=f"{grammar.KNOWN_BUGS[feature]}; once fixed, set grammar.FEATURES"
                   f"[{feature!r}] = True", strict=False))


@pytest.mark.parametrize("name", sorted(found.SERIAL))
def test_found_kernels_match_python_and_finite_differences(name, request):
    feature, _, gen = found.SERIAL[name]
    expect_known_bug(request, feature)
    check_all(gen, numba=True)
