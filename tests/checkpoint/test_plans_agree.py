"""The planner never changes the answer. For time loops written to trip checkpointing
(plan_kernels.py), every plan pinned on the kernel (segments, revolve plain, lean and
restarting, snapshots in files, other intermediates: tests/generative/checks.py PLANS) and
every memory budget between store-all and tight (BUDGET_FRACTIONS) gives the store-all
gradient, bit for bit, and leaves the arrays with their final values, or is refused with an
HpcadError; the store-all gradient itself matches central finite differences of the plain
Python function. Also the reverse Jacobian at width 1, 3 and 8 under plans and budgets,
derivatives called again at other sizes (the arenas reused), and snapshots in files: two
processes on one directory and calls again on the same directory."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import hpcad as ad
from tests.checkpoint import plan_kernels
from tests.generative import checks

N, STEPS = 9, 7
# kernels whose time loop hpcad checkpoints (the others store all: their loop swaps arrays)
CHECKPOINTED = {k.__name__ for k in plan_kernels.KERNELS} - {"swapped", "swapped_args",
                                                             "break_in_time"}


def arguments(n: int = N, steps: int = STEPS, seed: int = 1) -> tuple:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, n), rng.uniform(-1.0, 1.0, n), 0.3, steps


def loss(kernel, args) -> float:
    return kernel.py_func(*checks.copies(args))


def check_against_fd(kernel, grads, args) -> None:
    """<v, grad> against central FD of the plain Python function along a random v."""
    rng = np.random.default_rng(7)
    v = (rng.standard_normal(args[0].shape), rng.standard_normal(args[1].shape),
         float(rng.standard_normal()))
    h = 1e-6
    def moved(sign):
        return (args[0] + sign * h * v[0], args[1] + sign * h * v[1], args[2] + sign * h * v[2],
                args[3])
    fd = (loss(kernel, moved(1)) - loss(kernel, moved(-1))) / (2 * h)
    pairing = sum(float(np.sum(g * d)) for g, d in zip(grads, v, strict=True))
    assert pairing == pytest.approx(fd, rel=1e-6, abs=1e-8)


def outcomes(kernel, backend, plans=None, fractions=None):
    ref, out = checks.plan_outcomes(kernel, backend, arguments(), plans=plans,
                                    fractions=fractions)
    for what, chosen, got, after in out:
        if chosen is None:
            assert isinstance(got, ad.HpcadError), what
            continue
        assert all(np.array_equal(a, b) for a, b in zip(got, ref[0], strict=True)), \
            (what, chosen, got, ref[0])
        assert all(np.array_equal(a, b) for a, b in zip(after, ref[1], strict=True)), what
    return ref, out


FAST = ("overwritten_in_step", "hashed", "while_in_step")    # the rest in the slow tier


@pytest.mark.parametrize("kernel", [k if k.__name__ in FAST else
                                    pytest.param(k, marks=pytest.mark.slow)
                                    for k in plan_kernels.KERNELS], ids=lambda k: k.__name__)
def test_every_plan_and_budget_gives_the_store_all_gradient(kernel):
    ref, out = outcomes(kernel, "interp")
    check_against_fd(kernel, ref[0], arguments())
    checkpointed = [what for what, chosen, _, _ in out if chosen is not None
                    and chosen.checkpoints]
    budgets = [what for what, chosen, _, _ in out if what.startswith("budget")
               and chosen is not None and chosen.checkpoints]
    if kernel.__name__ in CHECKPOINTED:
        assert checkpointed, out
        assert budgets or kernel.__name__ in ("while_in_step", "offset_range"), out
    else:
        assert not checkpointed, out


# The kernels numba runs under plans (each run compiles the store-all derivative, one plan of
# NUMBA_PLANS and the plan one budget fraction of NUMBA_BUDGET_FRACTIONS gets; the
# interpreter runs every plan and fraction on every kernel: the test above), with the indices
# of their plan and fraction. Every plan and fraction on three kernels or more; together the
# nine write every line of the numba backend's code generation, and call every function in
# the generated code, that the nineteen kernels' derivatives did when each ran one plan and one
# fraction taken in turn along plan_kernels.KERNELS (numba_cover's tracing, tests/
# numba_cover.traced, of the store-all, pinned-plan and budget-planned reverse derivatives:
# 677 lines and calls either way). prange_in_step (a prange in the step), break_in_time (a
# break in the time loop) and reshaped_state (a reshaped state) write lines no other kernel's
# derivatives do; offset_range, hashed and partial_scratch the rest (float casts of a range
# that starts elsewhere, integer guards, zeroed scratch); the others generate nothing these do
# not, and run on the interpreter.
NUMBA_RUNS = {"swapped": (1, 0), "swapped_args": (2, 0), "hashed": (0, 0),
              "prange_in_step": (2, 1), "break_in_time": (1, 1), "offset_range": (0, 0),
              "partial_scratch": (0, 0), "views_in_step": (1, 0), "reshaped_state": (2, 1)}
NUMBA_KERNELS = [k for k in plan_kernels.KERNELS if k.__name__ in NUMBA_RUNS]


def numba_share(kernel) -> tuple[tuple, tuple]:
    """The numba plan and budget fraction a kernel of NUMBA_KERNELS runs."""
    plan, fraction = NUMBA_RUNS[kernel.__name__]
    return (checks.NUMBA_PLANS[plan],), (checks.NUMBA_BUDGET_FRACTIONS[fraction],)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("kernel", NUMBA_KERNELS, ids=lambda k: k.__name__)
def test_every_plan_gives_the_store_all_gradient_on_numba(kernel):
    plans, fractions = numba_share(kernel)
    outcomes(kernel, "numba", plans=plans, fractions=fractions)


def test_numba_runs_every_numba_plan_and_fraction_on_several_kernels():
    shares = [numba_share(k) for k in NUMBA_KERNELS]
    for plan in checks.NUMBA_PLANS:
        assert sum(plan in p for p, _ in shares) >= 3
    for fraction in checks.NUMBA_BUDGET_FRACTIONS:
        assert sum(fraction in f for _, f in shares) >= 3


SIZES = [(9, 5), (15, 7), (6, 3), (15, 2), (9, 5), (30, 11)]
SIZED = ("hashed", "partial_scratch", "prange_in_step")   # kernels called at those sizes


@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", [n if n == "hashed" else pytest.param(n, marks=pytest.mark.slow)
                                  for n in SIZED])
def test_calls_at_other_sizes_reuse_the_derivative_and_agree(name, backend, tmp_path,
                                                              monkeypatch):
    """One kernel object per plan called at sizes and step counts that grow and shrink
    (its tape, snapshot arena and files reused or grown), each gradient the store-all one."""
    monkeypatch.setenv("HPCAD_SNAPSHOT_DIR", str(tmp_path))
    kernel = getattr(plan_kernels, name)
    refs = {s: checks.planned_run(checks.planned(kernel), backend, arguments(*s)) for s in SIZES}
    if backend == "numba":   # (each plan compiles a derivative: one numba plan per kernel,
        # each of NUMBA_PLANS on one of them, and the budget on the first; all on interp)
        j = SIZED.index(name)
        plans = [checks.planned(kernel, checks.NUMBA_PLANS[j % len(checks.NUMBA_PLANS)])]
        plans += [checks.planned(kernel, budget=800)] if j == 0 else []
    else:
        plans = [checks.planned(kernel, p) for p in checks.NUMBA_PLANS + checks.PLANS[2:4]]
        plans += [checks.planned(kernel, budget=b) for b in (2000, 800, 300)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ad.HpcadWarning)
        for k in plans:
            for s in SIZES:
                try:
                    got, after = checks.planned_run(k, backend, arguments(*s))
                except ad.HpcadError as e:
                    assert "memory budget" in str(e) or "restored state" in str(e), e
                    continue
                ref, ref_after = refs[s]
                assert all(np.array_equal(a, b) for a, b in zip(got, ref, strict=True)), (k, s)
                assert all(np.array_equal(a, b) for a, b in zip(after, ref_after, strict=True))
    assert os.listdir(tmp_path) == []


@ad.kernel
def heat_rows(u, w, c, nt):
    """Three float results of a checkpointable time loop (for the reverse Jacobian)."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nt):
        for i in range(1, n - 1):
            tmp[i] = u[i] + c * np.tanh(u[i - 1] - 2.0 * u[i] + u[i + 1]) * w[i]
        for i in range(1, n - 1):
            u[i] = tmp[i]
    return u[1] * u[2], u[3] + w[0] * u[4], np.sin(u[5])


@ad.kernel
def heat_array(u, w, c, nt):
    """An array result of the same loop."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nt):
        for i in range(1, n - 1):
            tmp[i] = u[i] + c * np.tanh(u[i - 1] - 2.0 * u[i] + u[i + 1]) * w[i]
        for i in range(1, n - 1):
            u[i] = tmp[i]
    out = np.zeros(n)
    for i in range(n):
        out[i] = u[i] * w[i]
    return out


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kernel, backend", [
    (heat_rows, "interp"), pytest.param(heat_rows, "numba", marks=pytest.mark.slow),
    # an array result on numba under plans: tests/api/test_return_arrays.py
    pytest.param(heat_array, "interp", marks=pytest.mark.slow)],
    ids=lambda k: getattr(k, "__name__", k))
def test_reverse_jacobian_at_any_width_under_plans_and_budgets(kernel, backend):
    """Rows of the reverse Jacobian, 1, 3 and 8 at a time, under pinned plans and budgets:
    the store-all Jacobian, which equals the forward one (columns) to rounding; forward
    mode at width 3 under the same policies (it plans nothing) gives its own columns."""
    args = arguments(8, 6, seed=3)
    def jac(k, mode="rev", batch=None):
        return ad.jacobian(k, argnums=(0, 1, 2), mode=mode, batch=batch, backend=backend)(
            *checks.copies(args))
    ref = jac(checks.planned(kernel))
    columns = jac(kernel, "fwd")
    for a, b in zip(ref, columns, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    numba = backend == "numba"     # (each plan and width compiles a derivative)
    ks = [checks.planned(kernel, p) for p in (checks.NUMBA_PLANS[1:2] if numba else checks.PLANS)]
    ks += [checks.planned(kernel, budget=b) for b in ((60,) if numba else (200, 120, 60, 20))]
    checkpointed = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ad.HpcadWarning)
        for k in ks:
            for batch in (3,) if numba else (1, 3, 8):
                try:
                    got = jac(k, batch=batch)
                except ad.HpcadError as e:
                    assert "restored state" in str(e) or "memory budget" in str(e), e
                    continue
                if batch == 3:
                    for a, b in zip(jac(k, "fwd", batch), columns, strict=True):
                        np.testing.assert_array_equal(a, b)
                plan = k.last_policy.plan if k.last_policy is not None else k.pinned
                checkpointed += plan.checkpoints
                for a, b in zip(got, ref, strict=True):
                    np.testing.assert_array_equal(a, b)
    assert checkpointed


SNAPSHOTS_CHILD = """
import sys
import numpy as np
import hpcad as ad
from tests.checkpoint import plan_kernels
from tests.generative import checks
k = ad.checkpoint(plan_kernels.hashed, budget=int(sys.argv[1]))
for _ in range(3):
    got, after = checks.planned_run(k, "interp", (np.linspace(-1, 1, 9), np.linspace(1, -1, 9),
                                                  0.3, 40))
    assert k.last_policy.plan.disk, k.last_policy
np.save(sys.argv[2], np.concatenate([got[0], got[1], [got[2]]]))
"""


def test_two_processes_with_snapshots_in_one_directory(tmp_path):
    """Two processes at once, their snapshots in files in the same directory, each calling
    the gradient three times: both get the store-all gradient, and leave no file."""
    snapdir = tmp_path / "snapshots"
    snapdir.mkdir()
    args = (np.linspace(-1, 1, 9), np.linspace(1, -1, 9), 0.3, 40)
    ref = checks.planned_run(checks.planned(plan_kernels.hashed), "interp", args)[0]
    env = dict(os.environ, HPCAD_SNAPSHOT_DIR=str(snapdir))
    budget = 300   # a one-step tape (224 bytes), not one more state (144): files
    procs = [subprocess.Popen([sys.executable, "-c", SNAPSHOTS_CHILD, str(budget),
                               str(tmp_path / f"g{j}.npy")], env=env,
                              stderr=subprocess.PIPE, text=True) for j in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    want = np.concatenate([ref[0], ref[1], [ref[2]]])
    for j in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"g{j}.npy"), want)
    assert os.listdir(snapdir) == []


def test_hvp_under_a_policy_says_it_keeps_the_whole_tape(monkeypatch):
    """Forward over reverse is not checkpointed: under a pinned plan, a budget or
    HPCAD_MEMORY_BUDGET, hvp warns that the policy does not bound its memory, and H v is
    the store-all one (which matches central FD of the gradient)."""
    kernel = plan_kernels.hashed
    u, w, c, nt = arguments()
    v = np.random.default_rng(3).standard_normal(u.shape)
    def hvp(k):
        return ad.grad_and_hvp(k, argnums=0, backend="interp")(u.copy(), w.copy(), c, nt, v)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ad.HpcadWarning)
        ref = hvp(checks.planned(kernel))           # store-all: no warning
    grad = ad.grad(kernel, argnums=0, backend="interp")
    h = 1e-6
    fd = (grad(u + h * v, w.copy(), c, nt) - grad(u - h * v, w.copy(), c, nt)) / (2 * h)
    np.testing.assert_allclose(ref[2], fd, rtol=1e-6, atol=1e-8)
    for k in (checks.planned(kernel, checks.PLANS[0]), checks.planned(kernel, budget=300)):
        with pytest.warns(ad.HpcadWarning, match="keeps the whole tape.*not bounded"):
            got = hvp(k)
        np.testing.assert_array_equal(got[1], ref[1])
        np.testing.assert_array_equal(got[2], ref[2])
    monkeypatch.setenv("HPCAD_MEMORY_BUDGET", "300")
    with pytest.warns(ad.HpcadWarning, match="memory budget of 300 bytes"):
        got = hvp(ad.kernel(kernel.py_func))
    np.testing.assert_array_equal(got[2], ref[2])


def test_a_restart_that_needs_only_recomputed_intermediates_says_so():
    """heat_array's step restarts from its state once its tanh is recomputed: a pinned
    restarting schedule with the default intermediates (which stores the tanh) is refused
    naming intermediates='recompute', and with it gives the store-all gradient; a step that
    cannot restart either way (hashed) is not told to try it."""
    args = arguments(8, 6, seed=3)
    k = ad.checkpoint(heat_array, 2, schedule="restart")
    with pytest.raises(ad.DifferentiationError, match=r"restored state.*intermediates='auto' "
                                                      r"stores.*intermediates='recompute'"):
        ad.jacobian(k, argnums=0, backend="interp")(*checks.copies(args))
    k = ad.checkpoint(heat_array, 2, schedule="restart", intermediates="recompute")
    got = ad.jacobian(k, argnums=0, backend="interp")(*checks.copies(args))
    ref = ad.jacobian(checks.planned(heat_array), argnums=0, backend="interp")(*checks.copies(args))
    np.testing.assert_array_equal(got, ref)
    k = ad.checkpoint(plan_kernels.hashed, 2, schedule="restart", intermediates="recompute")
    with pytest.raises(ad.DifferentiationError, match="restored state") as e:
        checks.planned_run(k, "interp", arguments())
    assert "intermediates" not in str(e.value)


@pytest.mark.parametrize("backend", ["numba", pytest.param("interp", marks=pytest.mark.slow)])
def test_a_budget_counts_the_tape_of_the_other_loops(backend):
    """The tape of a loop after the time loop is kept whole by every checkpointing of the
    time loop: a budget's plan counts it (it was divided by the time loop's steps, and the
    tape and snapshots held exceeded budgets of 10 % and 5 % of the store-all tape by 30 %
    and 60 %). The numba derivative's buffers fit; the gradient is the store-all one."""
    kernel = plan_kernels.loop_after_time_loop
    rng = np.random.default_rng(0)
    args = (rng.uniform(-1.0, 1.0, 50), rng.uniform(-1.0, 1.0, 50), 0.3, 40, 3)
    def grad(k):
        return ad.grad(k, argnums=(0, 1), backend=backend)(*checks.copies(args))
    ref = grad(checks.planned(kernel))
    k = ad.checkpoint(kernel, budget=10**12)
    grad(k)
    store_all = k.last_policy.estimate
    for budget in (store_all // 10, store_all // 20):
        k = ad.checkpoint(kernel, budget=budget)
        got = grad(k)
        assert k.last_policy.plan.checkpoints and k.last_policy.estimate <= budget
        for a, b in zip(got, ref, strict=True):
            np.testing.assert_array_equal(a, b)
        if backend == "numba":
            held = sum(sum(c.held_bytes()) for _, c in k.compiled.values())
            assert held <= budget, (held, budget, k.last_policy)
