"""GradBench's JSON-lines protocol, tool side: start, define, evaluate, analysis, end.

An eval module declares each of its functions with `@evaluation(prepare=..., output=...)` and
lists them by GradBench's names in `FUNCTIONS = {"primal": ..., "gradient": ...}`:
`prepare` turns the message's JSON input into arrays (not timed), the function itself is timed
once per run, and `output` turns its result back into JSON (not timed). An input that carries
`min_runs` / `min_seconds` is run at least that many times and that long, one "evaluate" timing
per run, as GradBench asks. A module may define `warm()`, called at "define", to compile its
kernels before the first timed run.
"""
from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from hpcad.gradbench import EVALS

TOOL = "hpcad"


@dataclass(frozen=True)
class Evaluation:
    """One function of an eval: what runs, how its input is read and its output written."""
    run: Callable[[Any], Any]
    prepare: Callable[[Any], Any]
    output: Callable[[Any], Any]

    def __call__(self, raw: Any) -> Any:
        return self.output(self.run(self.prepare(raw)))


def evaluation(*, prepare: Callable[[Any], Any], output: Callable[[Any], Any]):
    """Declare an eval function (see the module docstring)."""
    def wrap(run: Callable[[Any], Any]) -> Evaluation:
        return Evaluation(run=run, prepare=prepare, output=output)
    return wrap


def runs(raw: Any) -> tuple[int, float]:
    """How often and how long GradBench asks a function to be repeated."""
    if not isinstance(raw, dict):
        return 1, 0.0
    return int(raw.get("min_runs", 1)), float(raw.get("min_seconds", 0.0))


def timed(ev: Evaluation, raw: Any) -> dict:
    """Run `ev` as often as `raw` asks; its JSON output and one timing per run."""
    prepared = ev.prepare(raw)
    min_runs, min_seconds = runs(raw)
    timings: list[dict] = []
    elapsed = 0.0
    result = None
    while len(timings) < max(min_runs, 1) or elapsed < min_seconds:
        start = time.perf_counter_ns()
        result = ev.run(prepared)
        ns = time.perf_counter_ns() - start
        timings.append({"name": "evaluate", "nanoseconds": ns})
        elapsed += ns / 1e9
    return {"success": True, "output": ev.output(result), "timings": timings}


def module(name: str):
    """The eval module `name`; an hpcad error naming the evals it has otherwise."""
    if name not in EVALS:
        raise LookupError(f"hpcad has no GradBench eval {name!r}; it has {', '.join(EVALS)}")
    return importlib.import_module(f"hpcad.gradbench.evals.{name}")


def function(module_name: str, name: str) -> Evaluation:
    ev = getattr(module(module_name), "FUNCTIONS", {}).get(name)
    if not isinstance(ev, Evaluation):
        raise LookupError(f"GradBench eval {module_name!r} has no function {name!r} in hpcad")
    return ev


def define(name: str) -> dict:
    mod = module(name)
    warm = getattr(mod, "warm", None)
    if warm is not None:
        warm()
    return {"success": True}


def failure(exc: BaseException) -> dict:
    return {"success": False, "error": "".join(traceback.format_exception(exc))}


def respond(message: dict) -> dict:
    """The response to one message (without its id)."""
    kind = message.get("kind")
    try:
        if kind == "start":
            return {"tool": TOOL}
        if kind == "define":
            return define(message["module"])
        if kind == "evaluate":
            ev = function(message["module"], message["function"])
            return timed(ev, message["input"])
    except Exception as exc:  # noqa: BLE001 - every failure is reported to the eval, as text
        return failure(exc)
    return {}


def serve(inp: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
    """Answer every message on `inp` until it ends (or an "end" message)."""
    for line in inp:
        if not line.strip():
            continue
        message = json.loads(line)
        if message.get("kind") == "end":
            return
        print(json.dumps({"id": message["id"]} | respond(message)), file=out, flush=True)
