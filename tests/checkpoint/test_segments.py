"""Segment checkpointing of time loops (`hpcad.checkpoint(f, snapshots=S)`): the gradient
is bitwise the store-all one, the arrays end with their final values, and the tape the
compiled derivative keeps shrinks with the number of snapshots."""
import sys
from pathlib import Path

import numpy as np
import pytest

import hpcad as ad
from hpcad.kernels.stencils import heat_misfit

ARGS = (np.sin(np.linspace(0.0, 3.0, 60)) + 0.1, np.zeros(60), 0.3, 23)


@pytest.mark.parametrize("snapshots, backend", [
    (snapshots, backend) if backend == "interp" else
    pytest.param(snapshots, backend, marks=pytest.mark.slow)
    for snapshots in (1, 2, 5, 23, 40) for backend in ("interp", "numba")])
def test_checkpointed_gradient_equals_store_all(snapshots, backend):
    ref = ad.grad(heat_misfit, argnums=(0, 2), backend=backend)(*ARGS)
    got = ad.grad(ad.checkpoint(heat_misfit, snapshots=snapshots), argnums=(0, 2),
                  backend=backend)(*ARGS)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1] == ref[1]


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
def test_arrays_end_with_their_final_values(backend):
    k = ad.checkpoint(heat_misfit, snapshots=4)
    df = ad.autodiff(k, activity=(ad.Duplicated, ad.Const, ad.Active, ad.Const),
                     backend=backend)
    u, du = ARGS[0].copy(), np.zeros(60)
    loss, _ = df(u, du, ARGS[1], 0.3, 23)
    expected = ARGS[0].copy()
    assert heat_misfit.py_func(expected, ARGS[1], 0.3, 23) == loss
    np.testing.assert_array_equal(u, expected)


def _tape_bytes(kernel) -> int:
    return sum(c.held_bytes()[0] for _, c in kernel.compiled.values())


@pytest.mark.slow
def test_tape_shrinks_with_snapshots():
    sizes = {}
    for snapshots in ("store_all", 2, 8):
        k = ad.checkpoint(heat_misfit, snapshots=snapshots)
        k.compiled.clear()
        ad.grad(k, argnums=0)(*ARGS)
        sizes[snapshots] = _tape_bytes(k)
    assert sizes[2] <= sizes["store_all"] / 2 + 64
    assert sizes[8] <= sizes["store_all"] / 8 * 1.5 + 64


def test_bad_policy_is_an_argument_error():
    with pytest.raises(ad.ArgumentError, match="snapshots must be a positive int"):
        ad.checkpoint(heat_misfit, snapshots=0)


def test_plan_names_saved_values_and_is_deterministic():
    first = ad.plan(heat_misfit, *ARGS)
    again = ad.plan(heat_misfit, *ARGS)
    assert first == again
    assert "save arith.add@stencils.py" in first and first.rstrip().splitlines()[-1].startswith(
        "plan hash ")
    checkpointed = ad.plan(heat_misfit, *ARGS, snapshots=5)
    assert "checkpointing: segments, 5 snapshots" in checkpointed and checkpointed != first


def test_plan_command():
    import subprocess
    root = Path(__file__).parent.parent.parent
    out = subprocess.run([sys.executable, "-m", "hpcad.cli", "plan",
                          f"{root / 'examples' / 'heat.py'}:heat_misfit", "--sig",
                          "float64[::1], float64[::1], float64, int64", "--snapshots", "4"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "checkpointing: segments, 4 snapshots" in out.stdout and "plan hash" in out.stdout


def test_plan_command_with_a_budget_agrees_with_the_api():
    import subprocess
    root = Path(__file__).parent.parent.parent
    cmd = [sys.executable, "-m", "hpcad.cli", "plan",
           f"{root / 'examples' / 'heat.py'}:heat_misfit",
           "--sig", "float64[200], float64[200], float64, int64=400", "--budget", "100kB"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    expected = ad.plan(heat_misfit, np.zeros(200), np.zeros(200), 1.0, 400, budget="100kB")
    assert out.stdout == expected
    assert out.stdout.startswith("policy: segments") and "bytes per rank" in out.stdout
    cmd[6] = "float64[:], float64[200], float64, int64=400"
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "give argument 'u' as e.g. float64[100000]" in out.stderr



@pytest.mark.parametrize("snapshots, backend", [
    (snapshots, backend) if backend == "interp" or snapshots == 2 else
    pytest.param(snapshots, backend, marks=pytest.mark.slow)
    for snapshots in (1, 2, 3, 7) for backend in ("interp", "numba")])
def test_revolve_gradient_equals_store_all(snapshots, backend):
    ref = ad.grad(heat_misfit, argnums=(0, 2), backend=backend)(*ARGS)
    k = ad.checkpoint(heat_misfit, snapshots=snapshots, schedule="revolve")
    got = ad.grad(k, argnums=(0, 2), backend=backend)(*ARGS)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1] == ref[1]


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
def test_revolve_leaves_final_values(backend):
    k = ad.checkpoint(heat_misfit, snapshots=3, schedule="revolve")
    df = ad.autodiff(k, activity=(ad.Duplicated, ad.Const, ad.Active, ad.Const),
                     backend=backend)
    u, du = ARGS[0].copy(), np.zeros(60)
    df(u, du, ARGS[1], 0.3, 23)
    expected = ARGS[0].copy()
    heat_misfit.py_func(expected, ARGS[1], 0.3, 23)
    np.testing.assert_array_equal(u, expected)


@pytest.mark.slow
def test_revolve_tape_holds_one_step():
    store_all = ad.checkpoint(heat_misfit, snapshots="store_all")
    store_all.compiled.clear()
    ad.grad(store_all, argnums=0)(*ARGS)
    k = ad.checkpoint(heat_misfit, snapshots=4, schedule="revolve")
    ad.grad(k, argnums=0)(*ARGS)
    assert _tape_bytes(k) <= _tape_bytes(store_all) / 23 * 2 + 1100 * 8


def test_revolve_schedule_follows_checkpoint_schedules():
    from hpcad.checkpoint.revolve import FORWARD, REVERSE, schedule_actions
    actions, split = schedule_actions(6, 2)
    assert all(row[0] == FORWARD for row in actions[:split])
    reversed_steps = [tuple(row[1:3]) for row in actions if row[0] == REVERSE]
    assert reversed_steps == [(5, 6), (4, 5), (3, 4), (2, 3), (1, 2), (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["segments", "revolve"])
def test_snapshots_live_in_an_arena_reused_across_calls(schedule):
    """The snapshot buffers are allocated by the first call and kept by the compiled
    derivative, like the tape: later calls of the same size write the same memory."""
    k = ad.checkpoint(heat_misfit, snapshots=4, schedule=schedule)
    g = ad.grad(k, argnums=(0, 2))
    first = g(*ARGS)
    (_, compiled), = k.compiled.values()
    tape, arena = compiled.held_bytes()
    copies = 4 + 1    # + the final state (segments) or the forward sweep's last steps (revolve)
    assert arena == copies * 60 * 8
    pointers = [t.ctypes.data for t in compiled.tapes]
    again = g(*ARGS)
    assert [t.ctypes.data for t in compiled.tapes] == pointers
    np.testing.assert_array_equal(again[0], first[0])
