"""The fast call paths (kernel.Kernel.__call__, api._GradCall): a call whose arguments have
the fingerprints of an earlier call skips the checks that key fixes, and nothing else. grad
copies only the arguments its derivative writes (the caller's arrays are never modified,
those it reads are passed as they are), a float array not differentiated and never reached
by an active value gets no shadow, and a new dtype, rank, layout or scalar type, new rules
or a new backend never reuse what an earlier call decided. A kernel with a tape plans its
checkpointing once per call key (checkpoint/planner.key_function): new array sizes, a new
trip count, a new HPCAD_MEMORY_BUDGET or HPCAD_CACHE_BYTES or a new policy on the kernel plan
again, as a fresh kernel does. Both backends."""
import importlib

import numpy as np
import pytest

import hpcad as ad
import hpcad.api as api
from benchmarks.overhead import dot, heat
from hpcad.backend import interp

kernel_module = importlib.import_module("hpcad.kernel")   # (hpcad.kernel: the decorator)

BACKENDS = ("numba", "interp")


@ad.kernel
def scratch(x, tmp, w):
    """tmp is not differentiated but receives active values: it keeps its shadow."""
    for i in range(x.shape[0]):
        tmp[i] = x[i] * x[i]
    s = 0.0
    for i in range(x.shape[0]):
        s += tmp[i] * w[i]
    return s


@ad.kernel
def total(a):
    return np.sum(a * a)


@ad.kernel
def weighted(x, w=2.0):
    return w * np.sum(x * x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_parameter_left_to_its_default_after_calls_that_pass_it(backend):
    """grad(f)(x) after grad(f)(x, 2.0): the direct path took the short call as a full one
    (numba: TypeError 'not enough arguments')."""
    x = np.array([0.5, -1.0])
    g, vg = ad.grad(weighted, backend=backend), ad.value_and_grad(weighted, backend=backend)
    for args in [(x, 2.0), (x, 2.0), (x,), (x,), (x, 3.0), (x,)]:
        w = args[1] if len(args) == 2 else 2.0
        np.testing.assert_allclose(g(*args), 2 * w * x, rtol=1e-15)   # analytic
        value, dx = vg(*args)
        assert value == pytest.approx(w * 1.25, rel=1e-15)
        np.testing.assert_allclose(dx, 2 * w * x, rtol=1e-15)


def _heat_numpy(u, alpha, steps):
    u = u.copy()
    for _ in range(steps):
        for i in range(1, u.shape[0] - 1):
            u[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
    return float(np.sum(u * u))


def _central(f, x, h=1e-6):
    g = np.zeros_like(x)
    for j in range(x.size):
        e = np.zeros_like(x)
        e.flat[j] = h
        g.flat[j] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _fresh(k):
    return ad.kernel(k.py_func)


class Spy:
    """Records the arguments each run of a compiled or interpreted function receives."""

    def __init__(self):
        self.calls = []

    def wrap(self, run):
        def spied(*args):
            self.calls.append(args)
            return run(*args)
        return spied


def _spy(k, backend, monkeypatch, spy):
    """Every run of k's functions (primal and derivatives, full and fast paths) goes through
    spy: a compiled one's entry in k.compiled, or the interpreter's run_function."""
    if backend == "interp":
        run = interp.run_function

        def spied(fn, args):
            spy.calls.append(tuple(args))
            return run(fn, args)
        monkeypatch.setattr(interp, "run_function", spied)
        return
    for fid, (fn, compiled) in list(k.compiled.items()):
        k.compiled[fid] = (fn, spy.wrap(compiled))


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_leaves_written_arguments_unmodified_and_matches_differences(backend):
    k = _fresh(heat)
    rng = np.random.default_rng(1)
    u0 = rng.random(12)
    keep = u0.copy()
    g = ad.grad(k, argnums=0, backend=backend)
    expected = _central(lambda u: _heat_numpy(u, 0.2, 3), u0)
    for _ in range(3):   # the first call takes the full path, the others the fast one
        du = g(u0, 0.2, 3)
        np.testing.assert_array_equal(u0, keep)   # README: "u0 is not modified"
        np.testing.assert_allclose(du, expected, rtol=1e-6, atol=1e-8)
    assert len(k.calls) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_copies_written_arguments_and_passes_read_ones_as_they_are(backend, monkeypatch):
    """u (written) reaches the derivative as a copy, every call; w (read) as the caller's
    array itself."""
    for k, args, copied, shared in ((_fresh(heat), (np.linspace(0, 1, 9), 0.1, 2), 0, None),
                                    (_fresh(dot), (np.ones(5), np.arange(5.0), 5), None, 1)):
        g = ad.value_and_grad(k, argnums=0, backend=backend)
        g(*args)   # compiles; the spy then sees the full-path and fast-path calls alike
        spy = Spy()
        _spy(k, backend, monkeypatch, spy)
        k.calls.clear()
        for _ in range(3):
            g(*args)
        assert len(spy.calls) == 3
        for flat in spy.calls:
            if copied is not None:
                assert not any(a is args[copied] for a in flat)
                assert not any(isinstance(a, np.ndarray) and np.shares_memory(a, args[copied])
                               for a in flat)
            if shared is not None:
                assert any(a is args[shared] for a in flat)
        monkeypatch.undo()


@pytest.mark.parametrize("backend", BACKENDS)
def test_undifferentiated_float_array_gets_no_shadow_and_the_same_gradient(backend):
    k = _fresh(dot)
    rng = np.random.default_rng(2)
    x, w = rng.random(7), rng.random(7)
    for _ in range(2):
        value, dx = ad.value_and_grad(k, argnums=0, backend=backend)(x, w, 7)
        np.testing.assert_allclose(dx, 2.0 * w * x, rtol=1e-13)
        assert value == pytest.approx(float(np.sum(w * x * x)), rel=1e-13)
    (spec,) = k.specializations.values()
    (fn,) = [f for key, f in spec.derivatives.items() if key[0] == "reverse"]
    assert [a.name for a in fn.args] == ["x", "d_x", "w", "n", "seed"]   # no d_w


@pytest.mark.parametrize("backend", BACKENDS)
def test_undifferentiated_array_that_active_values_reach_keeps_its_shadow(backend):
    k = _fresh(scratch)
    rng = np.random.default_rng(3)
    x, w = rng.random(6), rng.random(6)
    for _ in range(2):
        dx = ad.grad(k, argnums=0, backend=backend)(x, np.zeros(6), w)
        np.testing.assert_allclose(dx, 2.0 * w * x, rtol=1e-13)
    (spec,) = k.specializations.values()
    (fn,) = [f for key, f in spec.derivatives.items() if key[0] == "reverse"]
    assert "d_tmp" in [a.name for a in fn.args]


def _arrays():
    base = np.arange(1.0, 13.0)
    return [base[:6].copy(), base[:6].astype(np.float32), base.reshape(3, 4),
            base[::2], np.asfortranarray(base.reshape(3, 4)), base[:6].astype(np.int64)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_new_dtype_rank_or_layout_takes_a_new_specialization(backend):
    """Each call below differs from the one before only in dtype, rank or layout: a key that
    left one out would run code typed for the previous call."""
    k = _fresh(total)
    k.backend = backend
    g = ad.grad(k)
    for _ in range(2):   # the second round takes the fast paths
        for a in _arrays():
            got = k(a)
            assert got == pytest.approx(float(np.sum(a.astype(np.float64) ** 2)), rel=1e-6)
            if a.dtype != np.int64:
                np.testing.assert_allclose(g(a), 2.0 * a, rtol=1e-6)
    assert len(k.specializations) == 6


@pytest.mark.parametrize("backend", BACKENDS)
def test_scalar_type_is_part_of_the_key(backend):
    @ad.kernel(backend=backend)
    def half(x, c):
        return x[0] * (c / 2)

    x = np.ones(1)
    assert half(x, 3) == 1.5 and half(x, 3) == 1.5      # int c
    assert half(x, 3.0) == 1.5 and half(x, 3.0) == 1.5  # float c: a new specialization
    assert len(half.specializations) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_new_rules_are_used_by_the_next_grad(backend):
    @ad.kernel
    def cube(x):
        return x * x * x

    @ad.kernel
    def cube_fwd(x):
        return x * x * x, x

    @ad.kernel
    def cube_bwd(x, r, g):
        return 3.0 * r * r * g

    @ad.kernel
    def cube_bwd_twice(x, r, g):
        return 6.0 * r * r * g

    rule = ad.custom_vjp(cube)
    rule.defvjp(cube_fwd, cube_bwd)
    g = ad.grad(rule, backend=backend)
    assert g(2.0) == 12.0 and g(2.0) == 12.0
    rule.defvjp(cube_fwd, cube_bwd_twice)
    assert g(2.0) == 24.0 and g(2.0) == 24.0


def test_a_new_backend_or_dropped_compiled_code_takes_the_full_path(monkeypatch):
    k = _fresh(dot)
    x, w = np.ones(4), np.arange(4.0)
    g = ad.grad(k)
    assert k(x, w, 4) == 6.0 and k(x, w, 4) == 6.0
    np.testing.assert_array_equal(g(x, w, 4), 2.0 * w)
    np.testing.assert_array_equal(g(x, w, 4), 2.0 * w)
    k.compiled.clear()    # (tests and benchmarks start afresh so)
    assert k(x, w, 4) == 6.0
    np.testing.assert_array_equal(g(x, w, 4), 2.0 * w)
    assert len(k.compiled) == 2
    runs = []
    run = interp.run_function
    monkeypatch.setattr(interp, "run_function", lambda fn, args: runs.append(fn) or
                        run(fn, args))
    k.backend = "interp"
    assert k(x, w, 4) == 6.0
    np.testing.assert_array_equal(g(x, w, 4), 2.0 * w)
    assert len(runs) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_vjp_fn_called_twice_leaves_inputs_and_its_linearization_point_unmodified(backend):
    """vjp_fn copies what the derivative writes (heat's state) each call: the second call
    starts from the same point as the first."""
    k = _fresh(heat)
    u0 = np.random.default_rng(4).random(10)
    keep = u0.copy()
    value, vjp_fn = ad.vjp(k, u0, 0.2, 3, backend=backend)
    np.testing.assert_array_equal(u0, keep)
    assert value == pytest.approx(_heat_numpy(keep, 0.2, 3), rel=1e-13)
    u0[:] = 0.0   # the caller's array changes: vjp_fn still linearizes at keep
    expected = _central(lambda u: _heat_numpy(u, 0.2, 3), keep)
    for _ in range(2):
        du, d_alpha, d_steps = vjp_fn(1.0)
        np.testing.assert_allclose(du, expected, rtol=1e-6, atol=1e-8)
        assert d_steps is None


@ad.kernel
def heat_until(u, alpha, t):
    """heat whose step count is a float argument's integer part."""
    for _step in range(int(t)):
        for i in range(1, u.shape[0] - 1):
            u[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
    return np.sum(u * u)


class Planner:
    """Counts the checkpoint planner's runs for kernel k (api._plan_call)."""

    def __init__(self, k, monkeypatch):
        self.runs = 0
        plan = api._plan_call

        def counted(kernel, *args):
            self.runs += kernel is k
            return plan(kernel, *args)
        monkeypatch.setattr(api, "_plan_call", counted)


def _heat_gradient(u, alpha, steps):
    """(d/du, d/dalpha) of heat by central differences."""
    d_alpha = (_heat_numpy(u, alpha + 1e-6, steps) - _heat_numpy(u, alpha - 1e-6, steps)) / 2e-6
    return _central(lambda v: _heat_numpy(v, alpha, steps), u), d_alpha


def _fresh_policy(k, args):
    """The checkpointing a fresh kernel (nothing kept) picks for grad(argnums=(0, 1))."""
    fresh = ad.kernel(k.py_func, backend="interp")
    ad.plan(fresh, *args)
    return fresh.last_policy


def _check_calls(k, g, calls, steps_of=int):
    """Each call of g (grad of heat or heat_until) matches central differences and
    checkpoints as a fresh kernel would."""
    for args in calls:
        du, d_alpha = g(*args)
        want_u, want_alpha = _heat_gradient(args[0], args[1], steps_of(args[2]))
        np.testing.assert_allclose(du, want_u, rtol=1e-6, atol=1e-8)
        assert d_alpha == pytest.approx(want_alpha, rel=1e-6)
        assert k.last_policy == _fresh_policy(k, args)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_taping_grad_plans_once_per_key(backend, monkeypatch):
    """heat keeps a tape, so its plan depends on the call (sizes, budget); the same key
    plans once: the first call (full path) and the second (its kept plan is made). alpha
    changes nothing the planner reads, so a new alpha keeps the plan."""
    monkeypatch.delenv("HPCAD_MEMORY_BUDGET", raising=False)
    k = _fresh(heat)
    g = ad.grad(k, argnums=(0, 1), backend=backend)
    planner = Planner(k, monkeypatch)
    u = np.linspace(0.0, 1.0, 12)
    for alpha in (0.1, 0.2, 0.3, 0.1, 0.25):
        du, d_alpha = g(u, alpha, 3)
        np.testing.assert_allclose(du, _heat_gradient(u, alpha, 3)[0], rtol=1e-6, atol=1e-8)
    assert planner.runs == 2
    assert len(k.calls) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_new_array_sizes_plan_again(backend, monkeypatch):
    """Under a 1500-byte budget 40 steps of 12 points take segments, of 40 points revolve."""
    monkeypatch.setenv("HPCAD_MEMORY_BUDGET", "1500")
    k = _fresh(heat)
    g = ad.grad(k, argnums=(0, 1), backend=backend)
    rng = np.random.default_rng(5)
    small, large = rng.random(12), rng.random(40)
    _check_calls(k, g, [(small, 0.1, 40), (large, 0.1, 40), (small, 0.1, 40),
                        (large, 0.1, 40), (large, 0.1, 40)])
    assert k.last_policy.plan.describe() == "revolve (lean), 3 snapshots"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_new_trip_count_plans_again(backend, monkeypatch):
    """Under an 800-byte budget 3 steps store all, 40 revolve: a revolve kept for another
    step count would run another schedule."""
    monkeypatch.setenv("HPCAD_MEMORY_BUDGET", "800")
    k = _fresh(heat)
    g = ad.grad(k, argnums=(0, 1), backend=backend)
    u = np.random.default_rng(6).random(12)
    _check_calls(k, g, [(u, 0.1, 3), (u, 0.1, 40), (u, 0.1, 3), (u, 0.1, 40),
                        (u, 0.1, 25), (u, 0.1, 40)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_new_memory_budget_plans_again(backend, monkeypatch):
    k = _fresh(heat)
    g = ad.grad(k, argnums=(0, 1), backend=backend)
    u = np.random.default_rng(7).random(12)
    for budget in (None, "3000", "800", None, "3000", "800", "800"):
        if budget is None:
            monkeypatch.delenv("HPCAD_MEMORY_BUDGET", raising=False)
        else:
            monkeypatch.setenv("HPCAD_MEMORY_BUDGET", budget)
        _check_calls(k, g, [(u, 0.1, 40)])
    assert k.last_policy.plan.describe() == "revolve, 6 snapshots"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_float_that_sets_the_trip_count_is_part_of_the_key(backend, monkeypatch):
    """int(t) steps: with a 1000-byte cache, 3 steps store all and 40 take segments that
    keep the tape in cache; a new cache size plans again too."""
    monkeypatch.delenv("HPCAD_MEMORY_BUDGET", raising=False)
    monkeypatch.setenv("HPCAD_CACHE_BYTES", "1000")
    k = _fresh(heat_until)
    g = ad.grad(k, argnums=(0, 1), backend=backend)
    u = np.random.default_rng(8).random(12)
    calls = [(u, 0.1, 3.0), (u, 0.1, 40.0), (u, 0.1, 3.0), (u, 0.1, 40.0)]
    _check_calls(k, g, calls)
    assert k.last_policy.plan.describe() == "segments, 14 snapshots"
    monkeypatch.setenv("HPCAD_CACHE_BYTES", "1GB")
    _check_calls(k, g, calls[-1:])
    assert k.last_policy.plan.describe() == "store all"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_new_policy_on_the_kernel_plans_again(backend, monkeypatch):
    monkeypatch.delenv("HPCAD_MEMORY_BUDGET", raising=False)
    k = _fresh(heat)
    g = ad.grad(k, argnums=(0, 1), backend=backend)
    u = np.random.default_rng(9).random(12)
    for _ in range(3):
        g(u, 0.1, 40)
    assert k.last_policy.plan.describe() == "store all"
    k.budget = 800
    expected = _heat_gradient(u, 0.1, 40)
    for _ in range(2):
        du, d_alpha = g(u, 0.1, 40)
        assert k.last_policy.plan.describe() == "revolve, 6 snapshots"
        np.testing.assert_allclose(du, expected[0], rtol=1e-6, atol=1e-8)
        assert d_alpha == pytest.approx(expected[1], rel=1e-6)


def test_snapshots_in_files_are_planned_every_call(monkeypatch):
    """The free disk space a plan with its snapshots in files reads is not in the key."""
    monkeypatch.setenv("HPCAD_MEMORY_BUDGET", "400")
    k = _fresh(heat)
    g = ad.grad(k, argnums=(0, 1), backend="interp")
    planner = Planner(k, monkeypatch)
    u = np.random.default_rng(10).random(40)
    _check_calls(k, g, [(u, 0.1, 3)] * 3)
    assert k.last_policy.plan.disk
    assert planner.runs == 3


class Fingerprints:
    """Counts the fingerprints the call paths take (kernel.py's and api.py's): a call on
    the direct path (Kernel.direct_call, api._GradCall.direct) makes no key."""

    def __init__(self, monkeypatch):
        self.count = 0
        real = kernel_module.fingerprint

        def counted(value):
            self.count += 1
            return real(value)
        monkeypatch.setattr(kernel_module, "fingerprint", counted)
        monkeypatch.setattr(api, "fingerprint", counted)


def test_a_repeated_call_makes_no_key(monkeypatch):
    """After a call of the same types, a kernel call and a grad of a kernel without a tape
    take the direct path (numba's dispatcher checks the types); heat's grad takes the
    fingerprint of the state it copies, and nothing else."""
    rng = np.random.default_rng(11)
    x, w = rng.random(8), rng.random(8)
    k, h = _fresh(dot), _fresh(heat)
    g, gh = ad.grad(k), ad.grad(h, argnums=(0, 1))
    u = rng.random(8)
    for _ in range(2):   # the full path, then the key's
        k(x, w, 8), g(x, w, 8), h(u.copy(), 0.1, 3), gh(u, 0.1, 3)
    prints = Fingerprints(monkeypatch)
    assert k(x, w, 8) == pytest.approx(float(np.sum(w * x * x)), rel=1e-14)
    np.testing.assert_allclose(g(x, w, 8), 2.0 * w * x, rtol=1e-14)
    assert h(u.copy(), 0.1, 3) == pytest.approx(_heat_numpy(u, 0.1, 3), rel=1e-13)
    du, d_alpha = gh(u, 0.1, 3)
    want_u, want_alpha = _heat_gradient(u, 0.1, 3)
    np.testing.assert_allclose(du, want_u, rtol=1e-6, atol=1e-8)
    assert d_alpha == pytest.approx(want_alpha, rel=1e-6)
    assert prints.count == 1


def _layouts(n: int):
    """Arrays of n values of a type numba or hpcad tells apart from the one before
    (numba's dispatcher types an unaligned one as an aligned one)."""
    base = np.random.default_rng(12).random(2 * n)
    readonly = base[:n].copy()
    readonly.flags.writeable = False
    return [base[:n].copy(), readonly, base[::2], base[:n].astype(np.float32),
            np.frombuffer(bytearray(b"\0" + base[:n].tobytes()), np.float64, n, 1),  # unaligned
            base[:n].copy()]


@ad.kernel
def weighted_cubes(x, w, n):
    """dot's body under a name of its own: its compiled module is this test's alone."""
    s = 0.0
    for i in range(n):
        s += w[i] * x[i] * x[i]
    return s


def test_direct_calls_check_every_argument_type():
    """Each call differs from the one before in a type numba's dispatcher sees (read-only,
    strided, float32) or in a scalar type: the direct path must not run the code
    compiled for the previous call's types. A type numba tells apart and hpcad does not
    (read-only) gets code compiled for it, of the same specialization."""
    k = weighted_cubes
    g = ad.grad(k, argnums=1)
    for _ in range(2):
        for a in _layouts(6):
            for n in (6, np.int32(6), 6):
                want = float(np.sum(a.astype(np.float64) ** 3))
                assert k(a, a, n) == pytest.approx(want, rel=1e-6)
                np.testing.assert_allclose(g(a, a, n), a.astype(np.float64) ** 2, rtol=1e-6)
    assert len(k.specializations) == 6   # C, strided, float32 arrays; int or int32 n
    (spec,) = [s for types, s in k.specializations.items()
               if types[0].layout == "C" and types[0].dtype.name == "f64"
               and types[2].name == "i64"]
    (fn, compiled), = [(f, c) for f, c in k.compiled.values() if f is spec.primal]
    assert len(compiled.dispatcher.signatures) == 2   # as given, and read-only


@pytest.mark.parametrize("written", ["strided", "read-only"])
def test_direct_grad_copies_a_written_argument_of_another_layout_as_the_full_path(written):
    """heat writes u (grad passes a copy): a u of another layout or writability has other
    fingerprints, so the direct path leaves it to the full one, whose gradient it is."""
    k = _fresh(heat)
    g = ad.grad(k, argnums=(0, 1))
    base = np.random.default_rng(13).random(24)
    u = base[:12].copy()
    other = base[::2] if written == "strided" else u.copy()
    other.flags.writeable = written == "strided"
    for arg in (u, u, other, other, u, other):
        keep = arg.copy()
        du, d_alpha = g(arg, 0.2, 3)
        want_u, want_alpha = _heat_gradient(keep, 0.2, 3)
        np.testing.assert_allclose(du, want_u, rtol=1e-6, atol=1e-8)
        assert d_alpha == pytest.approx(want_alpha, rel=1e-6)
        np.testing.assert_array_equal(arg, keep)
    assert len(k.calls) == 2


def test_overlapping_arguments_are_refused_after_direct_calls():
    @ad.kernel
    def smooth(u, out):
        for i in range(1, u.shape[0] - 1):
            out[i] = 0.5 * (u[i - 1] + u[i + 1])
        return np.sum(out * out)

    g = ad.grad(smooth)
    u, out = np.linspace(0.0, 1.0, 9), np.zeros(9)
    for _ in range(3):
        g(u, out)
    with pytest.raises(ad.ArgumentError, match="overlap in memory"):
        g(u, u)


@ad.kernel
def scaled_squares(a, c=2.0, d=0.5):
    s = 0.0
    for i in range(a.shape[0]):
        s += (a[i] * c + d * a[i] ** 2) ** 2
    return s


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_grad_and_value_and_grad_take_keyword_arguments(backend):
    """Keywords bind as the kernel's own call binds them (defaults filled in); argnums count
    the kernel's parameters. They used to be a TypeError of grad's inner function."""
    x = np.array([0.5, -1.0, 2.0])

    def analytic(c, d):
        inner = x * c + d * x ** 2
        return 2 * inner * (c + 2 * d * x), np.sum(2 * inner * x), np.sum(2 * inner * x ** 2)

    for _ in range(2):   # the full path, then the fast one
        dc = ad.grad(scaled_squares, argnums=1, backend=backend)(x, d=0.3, c=1.5)
        np.testing.assert_allclose(dc, analytic(1.5, 0.3)[1], rtol=1e-13)
        v, (da, dd) = ad.value_and_grad(scaled_squares, argnums=(0, 2),
                                        backend=backend)(x, d=0.3)
        np.testing.assert_allclose(v, scaled_squares.py_func(x, d=0.3), rtol=1e-13)
        np.testing.assert_allclose(da, analytic(2.0, 0.3)[0], rtol=1e-13)
        np.testing.assert_allclose(dd, analytic(2.0, 0.3)[2], rtol=1e-13)
    with pytest.raises(ad.ArgumentError, match="scaled_squares"):
        ad.grad(scaled_squares)(x, e=1.0)


@ad.kernel
def keyword_only(u, alpha=0.3, *, gamma=1.5):
    return np.sum(alpha * u ** 2) + gamma * u[0]


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_keyword_only_parameters_in_grad_jvp_and_hvp(backend):
    """A kernel with a keyword-only parameter: grad with keywords bound them twice, the
    second time from the parameter-order tuple ("too many positional arguments"), and jvp,
    which takes one argument per parameter in order, refused them the same way. hvp_fn takes
    the kernel's arguments as the kernel does (gamma by keyword), then the direction."""
    u = np.array([1.0, 2.0, 3.0])
    for _ in range(2):   # the full path, then the fast one
        assert ad.grad(keyword_only, argnums=(1, 2), backend=backend)(u, gamma=2.0) == \
            (np.sum(u ** 2), 1.0)
    _, tangent = ad.jvp(keyword_only, (u, 0.3, 1.5), (np.zeros(3), 1.0, 2.0), backend=backend)
    np.testing.assert_allclose(tangent, np.sum(u ** 2) + 2.0 * u[0], rtol=1e-14)
    np.testing.assert_allclose(ad.hvp(keyword_only, backend=backend)(u, 0.3, np.ones(3),
                                                                      gamma=1.5),
                               0.6 * np.ones(3), rtol=1e-14)
    with pytest.raises(ad.ArgumentError, match="keyword_only"):
        ad.grad(keyword_only)(u, 0.3, 1.5, 2.0)


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_keyword_only_parameters_are_bound_as_python_binds_them(backend):
    """A keyword-only parameter given by position was taken (when every parameter was
    given), where Python raises a TypeError: a kernel call, grad, jacobian and hvp_fn now
    bind as Python does, also after a call that took the fast paths, and say which
    parameter is keyword-only."""
    k = ad.kernel(keyword_only.py_func, backend=backend)
    u = np.array([1.0, 2.0, 3.0])
    for _ in range(2):   # after the full path, the fast one
        assert k(u, 0.3, gamma=2.0) == pytest.approx(keyword_only.py_func(u, 0.3, gamma=2.0))
        ad.grad(k)(u, 0.3, gamma=2.0)
    with pytest.raises(TypeError):
        keyword_only.py_func(u, 0.3, 2.0)   # Python's own binding
    calls = [lambda: k(u, 0.3, 2.0), lambda: ad.grad(k)(u, 0.3, 2.0),
             lambda: ad.value_and_grad(k)(u, 0.3, 2.0),
             lambda: ad.jacobian(k)(u, 0.3, 2.0), lambda: ad.hvp(k)(u, 0.3, 2.0, np.ones(3))]
    for call in calls:
        with pytest.raises(ad.ArgumentError, match="'gamma' is keyword-only; pass gamma="):
            call()
    with pytest.raises(ad.ArgumentError, match="missing a required argument: 'u'"):
        k(alpha=0.3)
    with pytest.raises(ad.ArgumentError, match="unexpected keyword argument 'beta'"):
        k(u, beta=0.3)
