"""Benchmark: memory-budget planning at 1e3..1e6 time steps. `choose` (checkpoint/budget.py)
weighs segments and revolve by closed forms (checkpoint/revolve.py, forward_steps); each row
times it for a budget of a few dozen state copies, with a one-step tape and restarting, and
`hpcad.plan` on the heat example (a fresh step count each time; the first row includes
lowering and analysing the kernel, which later step counts reuse). Target: under a second
at 1e5 steps (the revolve tables it built before took more than 300 s there)."""
from __future__ import annotations

import time
from functools import partial

import numpy as np

import hpcad as ad
from hpcad.checkpoint.budget import TimeLoop, choose

SIZES = {"planning 1e3..1e6 steps": (10**3, 10**4, 10**5, 10**6)}
STATE = 8_000              # bytes of one copy of the loop's state
BUDGET = 40 * STATE


def _seconds(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _heat_plan(steps: int) -> float:
    from examples.heat import heat_misfit
    args = (np.zeros(200), np.zeros(200), 0.25, steps)
    return _seconds(lambda: ad.plan(heat_misfit, *args, budget="100KB"))[0]


def run(size) -> dict:
    rows = {}
    for steps in size:
        tapes, loop = (steps * 800, steps * 800), TimeLoop(steps, STATE)
        tape_s, tape = _seconds(partial(choose, BUDGET, tapes, loop))
        restart_s, restart = _seconds(partial(choose, BUDGET, tapes, loop, restart=True))
        rows[str(steps)] = {"choose_s": tape_s, "policy": tape.plan.shape.describe(),
                            "snapshots": tape.snapshots, "choose_restart_s": restart_s,
                            "policy_restart": restart.plan.shape.describe(),
                            "snapshots_restart": restart.snapshots,
                            "heat_plan_s": _heat_plan(steps)}
    return {"steps": rows}


HEADER = ("case", "steps", "choose ms", "policy", "choose (restart) ms", "policy (restart)",
          "hpcad.plan heat ms")


def planning_lines(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        for steps, x in r["steps"].items():
            cells = (r["name"], steps, f"{1e3 * x['choose_s']:.2f}",
                     f"{x['policy']} {x['snapshots']}", f"{1e3 * x['choose_restart_s']:.2f}",
                     f"{x['policy_restart']} {x['snapshots_restart']}",
                     f"{1e3 * x['heat_plan_s']:.0f}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines
