"""GradBench's own eval drivers and validators, at small sizes, against hpcad's tool
(hpcad/gradbench/run.py relays them): every evaluate of every written eval is valid.
Needs a GradBench checkout in $HPCAD_GRADBENCH_DIR (`git clone
https://github.com/gradbench/gradbench`; its validators build its manual C++ tool with make
and g++); tests/conftest.py deselects these tests when none is given, and selecting them
with `-m gradbench` without one fails, saying how to get it."""
from __future__ import annotations

import os

import pytest

from hpcad.gradbench.run import HOW_TO_GET, checkout, run, table, verdict
from tests.gradbench.test_tool import WRITTEN

FAST = ["--min-runs", "1", "--min-seconds", "0"]
SMALL = {   # each eval driver's arguments for small sizes
    "hello": [],
    "lse": ["-n", "100", "1000", *FAST],
    "llsq": ["-n", "16", "64", "-m", "8", *FAST],
    "ode": ["-n", "10", "100", "-s", "1", "10", *FAST],
    "det": ["-l", "3", "5", "7", *FAST],
    "kmeans": ["-k", "4", "10", "-n", "100", "-d", "3", *FAST],
    "saddle": FAST,
    "particle": FAST,
    "gmm": ["-d", "2", "3", "5", "-k", "3", "4", "-n", "20", *FAST],
    "lstm": ["-l", "1", "2", "-c", "5", "20", *FAST],
    "ht": ["--model", "small", "--max", "3", *FAST],
    "ba": ["--min", "1", "--max", "2", *FAST],
}


@pytest.mark.gradbench
@pytest.mark.parametrize("name", WRITTEN)
def test_gradbench_validators_accept_every_evaluate(name):
    given = os.environ.get("HPCAD_GRADBENCH_DIR")
    if not given:
        pytest.fail(f"the gradbench tests need a GradBench checkout: {HOW_TO_GET}")
    assert name in SMALL, f"tests/gradbench/test_validators.py: SMALL has no sizes for {name}"
    outcomes = run(name, SMALL[name], checkout(given))
    assert outcomes, f"GradBench's {name} driver sent no evaluate"
    bad = [o for o in outcomes if verdict(o) != "valid"]
    assert not bad, table(name, outcomes)
