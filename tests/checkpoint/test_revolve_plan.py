"""Budget planning at scale: the Revolve schedule is generated in closed form
(checkpoint/binomial.py), action for action checkpoint_schedules' own; the planner weighs
revolve tables by a closed form of the steps they run forward (checkpoint/revolve.py,
forward_steps) instead of building them, and tries one snapshot count per segment length.
Plans for 1e5 and 1e6 steps are made at once (checkpoint_schedules' O(s n^2) table took
seconds at 1e3 steps and more than 300 s at 1e5; benchmarks/planning.py times it)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hpcad as ad
from hpcad.checkpoint.binomial import revolve_actions
from hpcad.checkpoint.budget import TimeLoop, choose
from hpcad.checkpoint.plan import Kind
from hpcad.checkpoint.revolve import FORWARD, forward_steps, schedule_actions
from hpcad.kernels.stencils import heat_misfit

ROOT = Path(__file__).parent.parent.parent


@pytest.fixture
def revolve_cost_table_once(monkeypatch):
    """checkpoint_schedules rebuilds its O(s n^2) table of optimal costs for every schedule;
    its entries for (l, m) do not depend on the table's size, so one table serves all."""
    import checkpoint_schedules.hrevolve_sequences.revolve  # noqa: F401
    module = sys.modules["checkpoint_schedules.hrevolve_sequences.revolve"]
    table = module.get_opt_0_table(200, 10, 1, 1)
    monkeypatch.setattr(module, "get_opt_0_table", lambda *args, **kwargs: table)


def _counted(steps: int, snapshots: int, lean: bool, restart: bool) -> int:
    actions, _ = schedule_actions(steps, snapshots, 0, lean, restart)
    forward = actions[actions[:, 0] == FORWARD]
    return int((forward[:, 2] - forward[:, 1]).sum())


def _package_actions(steps: int, snapshots: int) -> list:
    import checkpoint_schedules as cs
    out = []
    for a in cs.Revolve(steps, snapshots):
        name = type(a).__name__
        if name == "Forward":
            assert not a.write_ics or a.storage == cs.StorageType.RAM
            out.append((name, a.n0, a.n1, bool(a.write_ics), bool(a.write_adj_deps)))
        elif name == "Reverse":
            out.append((name, a.n0, a.n1))
        else:
            out.append((name, a.n) if name in ("Copy", "Move") else (name,))
    return out


@pytest.mark.slow
def test_schedule_is_checkpoint_schedules_revolve(revolve_cost_table_once):
    """Every n <= 200 steps with s <= min(n, 10) snapshots: the same actions."""
    for s in range(1, 11):
        for n in range(s, 201):
            assert list(revolve_actions(n, s)) == _package_actions(n, s), (n, s)


@pytest.mark.slow
def test_closed_form_equals_the_action_tables():
    """Every n <= 200 steps, s <= 10 snapshots, plain and lean, with tape and restarting:
    the closed form is the table's count exactly (so no plan changes where tables were
    built before)."""
    for s in range(1, 11):
        for n in range(2, 201):
            for lean in (False, True):
                for restart in (False, True):
                    assert forward_steps(n, s, lean, restart) == _counted(n, s, lean, restart), \
                        (n, s, lean, restart)


def test_segments_take_the_first_snapshot_count_that_fits():
    """Trying one count per segment length finds the count trying every count finds."""
    for n in range(2, 80):
        for least in (40 * n, 1000 * n, 10**5 * n):    # store-all does not fit
            for budget in range(8, least, max(1, least // 97)):
                every = next((s for s in range(2, n + 1)
                              if -(-n // s) * least // n + (s + 1) * 4 <= budget), None)
                try:
                    got = choose(budget, (10**12, least), TimeLoop(n, 4))
                except ad.HpcadError:
                    got = None
                planned = got.snapshots if got is not None and \
                    got.plan.kind is Kind.SEGMENTS else None
                assert planned == every, (n, least, budget)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("steps", [10**5, 10**6])
@pytest.mark.parametrize("restart", [False, True])
def test_planning_a_million_steps_finishes(steps, restart):
    """Budgets of a few state copies at 1e5 and 1e6 steps plan revolve (plain or lean, with
    tape or restarting) within the budget."""
    state = 8_000
    budget = 40 * state
    choice = choose(budget, (steps * 800, steps * 800), TimeLoop(steps, state), restart=restart)
    assert choice.plan.kind is Kind.REVOLVE and choice.estimate <= budget
    assert 30 <= choice.snapshots <= 40


@pytest.mark.timeout(120)
def test_planning_heat_over_1e5_steps():
    """hpcad.plan on the heat example with 1e5 time steps and a 100 kB budget."""
    args = (np.zeros(200), np.zeros(200), 0.25, 100_000)
    text = ad.plan(heat_misfit, *args, budget="100KB")
    assert "policy: revolve" in text and "61 snapshots" in text


def test_cli_plan_budget_over_1e5_steps():
    """`hpcad plan --budget` on the same loop answers within the subprocess timeout."""
    out = subprocess.run([sys.executable, "-m", "hpcad.cli", "plan",
                          f"{ROOT / 'examples' / 'heat.py'}:heat_misfit", "--sig",
                          "float64[200], float64[200], float64, int64=100000",
                          "--budget", "100KB"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "policy: revolve" in out.stdout and "61 snapshots" in out.stdout


@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend, steps, alpha", [
    pytest.param("numba", 100_000, 2e-5, marks=pytest.mark.slow), ("interp", 1_500, 1e-3)])
def test_gradient_over_many_steps_under_a_budget(backend, steps, alpha):
    """A budget of a few dozen state copies over a long loop takes revolve, and the gradient
    with respect to the diffusivity is the central finite difference of the loss."""
    u0 = np.sin(np.linspace(0.0, 3.0, 12)) + 0.1
    target = np.zeros(12)
    k = ad.checkpoint(heat_misfit, budget=30 * u0.nbytes)
    grad = ad.grad(k, argnums=2, backend=backend)(u0.copy(), target, alpha, steps)
    assert k.last_policy.plan.kind is Kind.REVOLVE, k.last_policy
    h = alpha * 1e-4
    loss = [heat_misfit(u0.copy(), target, a, steps) for a in (alpha + h, alpha - h)]
    np.testing.assert_allclose(grad, (loss[0] - loss[1]) / (2 * h), rtol=1e-6)
