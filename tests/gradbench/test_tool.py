"""`python -m hpcad.gradbench` as GradBench runs it: a subprocess spoken to in JSON lines
(start, define, evaluate, end). Every function of every eval module that exists answers
with the output of an independent reference (tests/gradbench/evals.py) and one "evaluate"
timing per run asked for."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hpcad.gradbench import EVALS
from tests.gradbench.evals import CASES

ROOT = Path(__file__).resolve().parents[2]
WRITTEN = tuple(e for e in EVALS if (ROOT / "hpcad/gradbench/evals" / f"{e}.py").exists())


def tool_session(messages: list[dict]) -> list[dict]:
    """Send `messages` (ids added) to a fresh tool process; its responses, in order."""
    lines = "".join(json.dumps({"id": i} | m) + "\n" for i, m in enumerate(messages))
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "hpcad.gradbench"], input=lines, text=True,
                          capture_output=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    responses = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["id"] for r in responses] == list(range(len(messages) - 1)), proc.stdout
    return responses


def close(got, want, rtol: float) -> bool:
    if isinstance(want, dict):   # an output of named parts (gmm's jacobian)
        return isinstance(got, dict) and set(got) == set(want) and all(
            close(got[key], want[key], rtol) for key in want)
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    return got.shape == want.shape and np.allclose(got, want, rtol=rtol, atol=rtol)


def test_every_function_of_every_written_eval_has_a_case():
    from hpcad.gradbench.protocol import module
    for name in WRITTEN:
        tested = {c.function for c in CASES if c.eval == name}
        assert set(module(name).FUNCTIONS) <= tested, (
            f"tests/gradbench/evals.py has no case for {name}'s "
            f"{sorted(set(module(name).FUNCTIONS) - tested)}")


@pytest.mark.parametrize("name", WRITTEN)
def test_tool_answers_every_function(name):
    cases = [c for c in CASES if c.eval == name]
    inputs = [c.make_input() for c in cases]
    runs = {"min_runs": 2, "min_seconds": 0} if name != "hello" else {}
    messages = [{"kind": "start", "eval": name}, {"kind": "define", "module": name}]
    messages += [{"kind": "evaluate", "module": name, "function": c.function,
                  "input": (inp | runs) if isinstance(inp, dict) else inp}
                 for c, inp in zip(cases, inputs, strict=True)]
    messages.append({"kind": "end"})
    start, define, *evaluated = tool_session(messages)
    assert start["tool"] == "hpcad"
    assert define["success"], define.get("error")
    for c, inp, r in zip(cases, inputs, evaluated, strict=True):
        assert r["success"], f"{name}.{c.function}: {r.get('error')}"
        assert [t["name"] for t in r["timings"]] == ["evaluate"] * runs.get("min_runs", 1)
        want = c.reference(inp)
        assert close(r["output"], want, c.rtol), (
            f"{name}.{c.function}: got {r['output']}, want {want}")


def test_unknown_function_is_a_failure_response_not_a_crash():
    _, _, bad, hello = tool_session([
        {"kind": "start", "eval": "hello"}, {"kind": "define", "module": "hello"},
        {"kind": "evaluate", "module": "hello", "function": "cube", "input": 1.0},
        {"kind": "evaluate", "module": "hello", "function": "square", "input": 3.0},
        {"kind": "end"}])
    assert not bad["success"] and "no function 'cube'" in bad["error"]
    assert hello["output"] == 9.0
