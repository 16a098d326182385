"""Hypothesis settings of the generative tests: "ci" (derandomized: the same kernels on every
run and on every MPI rank) unless HPCAD_GENERATIVE=long, which draws HPCAD_GENERATIVE_N
(default 2000) random kernels per test from HPCAD_GENERATIVE_SEED (default: a random seed,
the same on every rank; hypothesis prints it with a failure). HPCAD_GENERATIVE_NOSHRINK=1
reports the first failing kernel as drawn, unshrunk (for a failure that crashes the process
while hypothesis shrinks it)."""
import os
import random

from hypothesis import HealthCheck, Phase, seed, settings

LONG = os.environ.get("HPCAD_GENERATIVE") == "long"
QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile("ci", derandomize=True, deadline=None, database=None,
                          print_blob=True, suppress_health_check=QUIET)
settings.register_profile("long", derandomize=False, deadline=None, database=None,
                          print_blob=True, suppress_health_check=QUIET,
                          max_examples=int(os.environ.get("HPCAD_GENERATIVE_N", "2000")),
                          **({"phases": [Phase.explicit, Phase.reuse, Phase.generate]}
                             if os.environ.get("HPCAD_GENERATIVE_NOSHRINK") else {}))
PROFILE = settings.get_profile("long" if LONG else "ci")


def generative(ci_examples: int, agree=lambda value: value):
    """Decorator: the profile, `ci_examples` kernels under "ci"; under "long" a seed that
    `agree` (e.g. an MPI broadcast) makes the same wherever the test runs."""
    def wrap(test):
        test = settings(PROFILE, max_examples=PROFILE.max_examples if LONG else ci_examples)(test)
        if LONG:
            chosen = os.environ.get("HPCAD_GENERATIVE_SEED") or random.randrange(2**32)
            test = seed(agree(int(chosen)))(test)
        return test
    return wrap


def time_limit(ci_seconds: int, per_example: int = 30) -> int:
    """A test's time limit: `ci_seconds` under "ci"; under "long", that plus `per_example`
    seconds for each of its kernels, so that a long run is not stopped for its length (a hang
    still fails, later)."""
    return ci_seconds + (per_example * PROFILE.max_examples if LONG else 0)
