"""`python -m hpcad.gradbench.run <eval> [--gradbench DIR] [eval args...]`: run one of
GradBench's own eval drivers (input generator + validator) against a tool, as GradBench's
command line does, and print per evaluate: function, description, valid or the validator's
error, median time.

The driver runs from a GradBench checkout (`--gradbench DIR` or $HPCAD_GRADBENCH_DIR; cwd the
checkout, PYTHONPATH its python/gradbench), since its validators run the checkout's manual
C++ tool. That tool is built by GradBench's own code: a `define` sent to its C++ tool runner
(`python -m gradbench.cpp manual`), which runs the checkout's make. The tool is hpcad
(`python -m hpcad.gradbench`) or, with `--tool manual`, that C++ tool itself. Messages are
relayed line by line; the eval's "analysis" messages (the validators' verdicts) go to the
tool too, as GradBench's intermediary does. The exit status is 1 if any evaluate failed or
was invalid."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from hpcad.errors import ArgumentError

HOW_TO_GET = ("get a GradBench checkout with `git clone https://github.com/gradbench/gradbench` "
              "and pass it as --gradbench DIR or HPCAD_GRADBENCH_DIR=DIR (its validators need "
              "g++, make and nlohmann's json.hpp in DIR/cpp: `make -C DIR/cpp` fetches it)")


@dataclass
class Outcome:
    """One evaluate as the eval saw it."""
    function: str
    description: str
    success: bool
    valid: bool | None = None          # None: the eval sent no analysis (it failed)
    error: str | None = None
    median_ns: int | None = None


def checkout(given: str | None) -> Path:
    path = given or os.environ.get("HPCAD_GRADBENCH_DIR")
    if not path:
        raise ArgumentError(f"no GradBench checkout given: {HOW_TO_GET}")
    root = Path(path).resolve()
    if not (root / "python/gradbench/gradbench/evals").is_dir():
        raise ArgumentError(f"{root} is not a GradBench checkout (no "
                            f"python/gradbench/gradbench/evals): {HOW_TO_GET}")
    return root


def gradbench_env(root: Path) -> dict:
    return os.environ | {"PYTHONPATH": str(root / "python/gradbench")}


def manual_tool(root: Path) -> dict:
    """GradBench's C++ tool runner for its manual tool, as Popen arguments."""
    return {"args": [sys.executable, "-m", "gradbench.cpp", "manual"], "cwd": root,
            "env": gradbench_env(root)}


def hpcad_tool() -> dict:
    """hpcad's tool, as Popen arguments: this hpcad, wherever it is imported from."""
    here = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, (here, os.environ.get("PYTHONPATH"))))
    return {"args": [sys.executable, "-m", "hpcad.gradbench"],
            "env": os.environ | {"PYTHONPATH": path}}


def build_manual(root: Path, eval_name: str) -> None:
    """Have GradBench's C++ tool runner build the manual tool's `eval_name` (its validator's
    golden implementation), by the `define` it answers for any tool run."""
    if not (root / "tools/manual" / f"{eval_name}.cpp").exists():
        return   # this eval's validator needs no C++
    if not (root / "cpp/json.hpp").exists():
        raise ArgumentError(f"{root}/cpp/json.hpp is missing, which GradBench's manual tool "
                            f"includes: run `make -C {root}/cpp` (it downloads nlohmann's "
                            f"json.hpp) or copy json.hpp there")
    messages = "".join(json.dumps(m) + "\n" for m in (
        {"id": 0, "kind": "start", "eval": eval_name},
        {"id": 1, "kind": "define", "module": eval_name}))
    proc = subprocess.run(**manual_tool(root), input=messages, text=True, capture_output=True,
                          check=False)
    lines = proc.stdout.splitlines()
    define = json.loads(lines[-1]) if len(lines) == 2 else {"success": False}
    if not define.get("success"):
        raise ArgumentError(f"GradBench could not build its manual tool for {eval_name}: "
                            f"{define.get('error') or proc.stderr}")


def relay(eval_name: str, eval_args: list[str], tool: dict, root: Path,
          inputs: list | None = None) -> list[Outcome]:
    """Run the eval driver against `tool`, passing each message on; the evaluates' outcomes
    (and their inputs appended to `inputs`, in the same order, when given)."""
    driver = [sys.executable, "-m", f"gradbench.evals.{eval_name}.run", *eval_args]
    evaluates: dict[int, Outcome] = {}
    with subprocess.Popen(driver, cwd=root, env=gradbench_env(root), text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as ev, \
         subprocess.Popen(**tool, text=True, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE) as tl:
        assert ev.stdin and ev.stdout and tl.stdin and tl.stdout
        for line in ev.stdout:
            message = json.loads(line)
            tl.stdin.write(line)
            tl.stdin.flush()
            if message["kind"] == "end":
                break
            answer = tl.stdout.readline()
            if not answer:
                raise ArgumentError(f"the tool {' '.join(tool['args'])} stopped answering at "
                                    f"message {message['id']} ({message['kind']})")
            record(message, json.loads(answer), evaluates)
            if inputs is not None and message["kind"] == "evaluate":
                inputs.append(message["input"])
            ev.stdin.write(answer)
            ev.stdin.flush()
        tl.stdin.close()
        ev.stdin.close()
    if ev.returncode:
        raise ArgumentError(f"GradBench's {eval_name} driver exited with status {ev.returncode} "
                            f"(its error is above: a wrong argument, or a missing package: "
                            f"GradBench's drivers need pydantic, pip install 'hpcad[gradbench]')")
    return list(evaluates.values())


def record(message: dict, response: dict, evaluates: dict) -> None:
    if message["kind"] == "evaluate":
        ns = [t["nanoseconds"] for t in response.get("timings") or ()
              if t["name"] == "evaluate"]
        evaluates[message["id"]] = Outcome(
            function=message["function"], description=message.get("description", ""),
            success=bool(response.get("success")), error=response.get("error"),
            median_ns=int(statistics.median(ns)) if ns else None)
    elif message["kind"] == "analysis" and message["of"] in evaluates:
        outcome = evaluates[message["of"]]
        outcome.valid, outcome.error = message["valid"], message.get("error")


def verdict(o: Outcome) -> str:
    if not o.success:
        return "FAILED"
    return {True: "valid", False: "INVALID", None: "no analysis"}[o.valid]


def table(eval_name: str, outcomes: list[Outcome]) -> str:
    rows = [f"{eval_name:8} {'function':10} {'description':20} {'verdict':12} {'median':>12}"]
    for o in outcomes:
        t = f"{o.median_ns / 1e6:.3f} ms" if o.median_ns is not None else "-"
        rows.append(f"{'':8} {o.function:10} {o.description:20} {verdict(o):12} {t:>12}")
        if o.error and verdict(o) != "valid":
            rows += ["    " + line for line in o.error.strip().splitlines()[-12:]]
    return "\n".join(rows)


def run(eval_name: str, eval_args: list[str], root: Path, tool: str = "hpcad",
        inputs: list | None = None) -> list[Outcome]:
    """The eval's driver against hpcad (after GradBench has built its validator's manual tool)
    or against the manual tool (which builds itself at "define")."""
    if tool == "manual":
        return relay(eval_name, eval_args, manual_tool(root), root, inputs)
    build_manual(root, eval_name)
    return relay(eval_name, eval_args, hpcad_tool(), root, inputs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpcad.gradbench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval")
    parser.add_argument("--gradbench", metavar="DIR", help="a GradBench checkout "
                        "(default: $HPCAD_GRADBENCH_DIR)")
    parser.add_argument("--tool", choices=("hpcad", "manual"), default="hpcad")
    parser.add_argument("--json", metavar="FILE", help="also write the outcomes as JSON")
    args, eval_args = parser.parse_known_args(argv)
    try:
        outcomes = run(args.eval, eval_args, checkout(args.gradbench), args.tool)
    except ArgumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(args.eval, outcomes), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    good = all(verdict(o) == "valid" for o in outcomes) and bool(outcomes)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
