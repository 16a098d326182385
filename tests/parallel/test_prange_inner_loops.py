"""A prange whose body runs sequential inner loops that compute values the reverse sweep
needs (par_kernels.INNER_LOOP_CASES: a nonlinear 2-D heat step, a dense tanh layer, a
molecular-dynamics force gather, CSR rows with data-dependent lengths): each iteration's
tape entries sit in a block of its own, addressed by the iteration number, so the reverse
iterations may run in any order and on any thread. Forward and reverse mode against finite
differences and the dot-product test, against the serial twin, gradients repeated on two
numba threads bitwise equal, and the refusal of what cannot be laid out."""
import math

import numpy as np
import pytest

import hpcad as ad
from hpcad.cli import default_activity
from hpcad.errors import DifferentiationError
from hpcad.ir.core import walk
from tests.ad.harness import (
    BACKENDS,
    SLOW,
    case_rng,
    check_case,
    on_backends,
    on_numba,
    relative_error,
    slow_unless,
)
from tests.ad.kernels import Case
from tests.parallel import par_kernels as pk
from tests.parallel.par_kernels import INNER_LOOP_CASES, OWN
from tests.parallel.test_parallel_derivatives import (
    THREADS,
    TWIN_RTOL,
    active_argnums,
    adjoint_forms,
    assert_all_agree,
    assert_matches_serial_twin,
    numba_threads,
    repeat_tolerances,
    reverse_ir,
)

cases = pytest.mark.parametrize("case", INNER_LOOP_CASES, ids=[c.name for c in INNER_LOOP_CASES])
backends = pytest.mark.parametrize("backend", BACKENDS)
FAST_ON_NUMBA = ()   # each case compiles on numba for seconds: those runs are in the slow tier
# The cases numba compiles (harness.ALL_KERNELS: all): tape blocks of a prange's inner loops
# with a force gather (md_forces) and a dense layer (dense_tanh). With the kept numba cases of
# other files they run every line of the numba backend's code generation, and call every
# function in the generated code, that all six do (tests/numba_cover.py); the 2-D heat step
# compiles on numba under checkpointing below. The others run on the interpreter.
ON_NUMBA = ("md_forces", "dense_tanh")
REPEATS = 5


@on_backends(INNER_LOOP_CASES, FAST_ON_NUMBA, numba=ON_NUMBA)
def test_derivatives_match_finite_differences_and_dot_product(case, backend):
    check_case(case, backend)


@on_backends(INNER_LOOP_CASES, FAST_ON_NUMBA, numba=ON_NUMBA)
def test_derivatives_match_serial_twin(case, backend):
    assert_matches_serial_twin(case, backend)


@cases
def test_adjoint_takes_the_expected_race_free_form(case):
    assert adjoint_forms(reverse_ir(case)) == {case.adjoint} - {OWN}


@slow_unless(INNER_LOOP_CASES, FAST_ON_NUMBA, numba=ON_NUMBA)
def test_repeated_gradients_on_two_threads_agree_with_the_serial_twin(case):
    """Bitwise from run to run where no atomic add or parallel sum reaches the gradient
    (test_parallel_derivatives.repeat_tolerances); equal to the serial twin's to 1e-12."""
    args = case.make_args(case_rng(case))
    argnums = active_argnums(args)
    grad = ad.grad(case.kernel, argnums=argnums, backend="numba")
    grad(*args)
    with numba_threads(THREADS):
        runs = [grad(*args) for _ in range(REPEATS)]
    assert_all_agree(runs, repeat_tolerances(case, args))
    serial = ad.grad(case.serial, argnums=argnums, backend="numba")(*args)
    for k, (a, b) in enumerate(zip(runs[0], serial, strict=True)):
        assert relative_error(a, b) <= TWIN_RTOL, \
            f"gradient {k}: {a} vs serial {b} ({relative_error(a, b):.2e})"


@cases
def test_no_tape_position_moves_inside_a_parallel_loop(case):
    """Every save inside a parallel loop is addressed by the iteration (a tape.push with an
    entry); the slot's position moves only outside parallel loops. (md_forces and csr_tanh
    recompute everything their reverse needs inside the prange.)"""
    args = case.kernel.bind(case.make_args(case_rng(case)))
    spec = case.kernel.specialize(args)
    fn = spec.derivative("reverse", default_activity(spec), True)
    loops = [op for op in walk(fn.body) if op.name == "par.parallel_for"]
    inside = [op for loop in loops for region in loop.regions for op in walk(region)
              if op.dialect == "tape"]
    for op in inside:
        assert op.name in ("tape.push", "tape.pop"), f"{op.name} inside a parallel loop"
        assert len(op.operands) == (2 if op.name == "tape.push" else 1), \
            f"{op.name} of slot {op.attrs['slot']} is not addressed by the iteration"


@ad.kernel
def while_in_prange(u, c):
    n = u.shape[0]
    out = np.zeros(n)
    for i in ad.prange(n):
        v = u[i]
        k = 0
        while k < 3:
            v = v * c + math.sin(v)
            k += 1
        out[i] = v
    loss = 0.0
    for i in range(n):
        loss += out[i] * out[i]
    return loss


@ad.kernel
def nested_data_dependent(data, indptr):
    nrows = indptr.shape[0] - 1
    y = np.zeros(nrows)
    for r in ad.prange(nrows):
        s = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            for m in range(indptr[r], k + 1):
                s = s * data[m] + data[k]
        y[r] = s
    loss = 0.0
    for r in range(nrows):
        loss += y[r] * y[r]
    return loss


@backends
def test_while_loop_saving_values_inside_a_prange_is_refused(backend):
    u = np.linspace(0.1, 1.0, 8)
    with pytest.raises(DifferentiationError, match=r"test_prange_inner_loops\.py:\d+: a while "
                                                   r"loop \(or a for loop with `break`, which "
                                                   r"runs as one\) inside the parallel loop"):
        ad.grad(while_in_prange, backend=backend)(u, 0.5)


@backends
def test_loop_range_that_cannot_be_counted_before_the_prange_is_refused(backend):
    data, indptr, _ = pk.random_csr(np.random.default_rng(3), 6, 5)
    with pytest.raises(DifferentiationError, match=r"test_prange_inner_loops\.py:\d+: cannot "
                                                   r"lay out the tape"):
        ad.grad(nested_data_dependent, backend=backend)(data + 1.5, indptr)


@ad.kernel(parallel=True)
def triangular_nest(a, b):
    out = np.zeros(a.shape[0])
    for i in ad.prange(a.shape[0]):
        m = a[i]
        n = m.shape[0]
        s = b[i]
        for t in range(n):
            for j in range(t + 1, n):
                s = s * m[t, j] + m[j, t]
        out[i] = s
    return np.sum(out * out)


def test_a_loop_whose_range_depends_on_the_loop_around_it_has_its_tape_block():
    """A triangular nest in a prange body over the rows of each iteration's view (the LU
    loops of np.linalg.solve): the counting pass runs the outer loop's range to find the
    inner one's most iterations."""
    rng = np.random.default_rng(4)
    args = (0.4 * rng.standard_normal((5, 4, 4)), rng.standard_normal(5))
    check_case(Case("triangular_nest", triangular_nest, lambda rng: args), "interp")


@ad.kernel(parallel=True)
def loops_in_branches(a, k):
    out = np.zeros(a.shape[0])
    for i in ad.prange(a.shape[0]):
        s = a[i, 0]
        for j in range(k.shape[1]):
            if k[i, j] < 0:
                continue
            if k[i, j] > 0:
                for t in range(a.shape[1] // k[i, j]):   # no range where k[i, j] == 0
                    s = s * a[i, t] + 0.5
            else:
                for t in range(j, a.shape[1]):
                    s = s * a[i, t] - 0.25
        out[i] = s
    return np.sum(out * out)


def test_a_loop_in_a_branch_has_its_tape_block():
    """Loops inside branches of a prange body (after a `continue`, in both sides of an
    if/else), whose ranges are only computable where their branch is taken: the counting
    pass runs the branches' conditions and counts each loop where its branch is taken."""
    rng = np.random.default_rng(5)
    k = np.array([[-1, 2, 0], [1, -1, 3], [0, 0, -1], [4, 1, 2]])
    args = (0.5 * rng.standard_normal((4, 6)), k)
    check_case(Case("loops_in_branches", loops_in_branches, lambda rng: args), "interp")


@ad.kernel(parallel=True)
def loops_over_scratch_views(a, first):
    out = np.zeros(a.shape[0])
    for i in ad.prange(a.shape[0]):
        w = np.empty(a.shape[1])
        w[:] = a[i, :]
        v = w[first[i]:]
        s = 1.0
        for t in range(v.shape[0]):
            s = s * v[t] + 0.25
        for t in range(w[1:-1].shape[0]):
            s = s + w[t] * w[t + 1]
        out[i] = s
    return np.sum(out * out)


def test_a_loop_over_a_view_of_a_scratch_array_has_its_tape_block():
    """A loop over a view of an array made inside the prange body (a column solve's
    `a[ks:]`): the view's length is its bounds' difference, known before the array exists,
    so the counting pass needs no array."""
    rng = np.random.default_rng(6)
    args = (0.6 * rng.standard_normal((5, 7)), np.array([0, 3, 6, 7, 1]))
    check_case(Case("loops_over_scratch_views", loops_over_scratch_views, lambda rng: args),
               "interp")


@ad.kernel(parallel=True)
def loop_over_a_reshaped_scratch_array(a, m):
    out = np.zeros(a.shape[0])
    for i in ad.prange(a.shape[0]):
        q = np.empty((m + i % 2, 2))
        q[:, 0] = a[i]
        q[:, 1] = 2.0 * a[i]
        v = q.reshape(-1)
        s = 1.0
        for t in range(v.shape[0]):
            s = s * v[t] + 0.5
        out[i] = s
    return np.sum(out)


def test_a_range_from_an_array_the_body_makes_is_refused_in_words():
    """The length of a reshape(-1) of an array made in the body is known only once the
    array exists: refused, naming what the range comes from in the user's words (it named
    the IR op, 'mem.alloc')."""
    with pytest.raises(DifferentiationError, match=r"its range comes from an array made or "
                                                   r"changed in the parallel loop's body"):
        ad.grad(loop_over_a_reshaped_scratch_array, argnums=0, backend="interp")(
            np.linspace(0.1, 0.5, 4), 3)


SCHEDULES = {"segments": {"snapshots": 2}, "revolve": {"snapshots": 2, "schedule": "revolve"}}
# on numba, revolve's derivative adds to segments' only an if/else (traced), which kernels
# with branches compile; every plan compiles on numba in tests/checkpoint/test_plans_agree.py
SCHEDULES_ON_NUMBA = ("segments",)


@pytest.mark.parametrize("schedule, backend", [
    pytest.param(schedule, backend, id=f"{name}-{backend}",
                 marks=SLOW if backend == "numba" else ())
    for name, schedule in SCHEDULES.items() for backend in BACKENDS
    if backend == "interp" or on_numba(name, SCHEDULES_ON_NUMBA)])
def test_checkpointed_heat_step_matches_the_serial_store_all_gradient(schedule, backend):
    """The tape blocks of a prange inside a checkpointed time loop, replayed per segment
    or per revolve step (the serial twin's gradient is checked against FD above)."""
    u0 = np.random.default_rng(5).uniform(0.0, 1.0, (7, 6))
    expected = ad.grad(pk.heat2d_nonlinear_serial, argnums=0, backend="interp")(u0, 0.15, 6)
    got = ad.grad(ad.checkpoint(pk.heat2d_nonlinear, **schedule), argnums=0,
                  backend=backend)(u0, 0.15, 6)
    assert relative_error(got, expected) <= TWIN_RTOL


@ad.kernel
def iterate_row(u, i, c):
    s = u[i, 0]
    for k in range(u.shape[1]):
        s = c * s + math.sin(s)
    return s


@ad.kernel
def join_in_prange(u, c):
    n = u.shape[0]
    out = np.zeros(n)
    for i in ad.prange(n):
        a, b = ad.join(iterate_row, (u, i, c), iterate_row, (u, i, 0.5 * c))
        out[i] = a * b
    loss = 0.0
    for i in range(n):
        loss += out[i] * out[i]
    return loss


@backends
def test_fork_join_task_saving_values_inside_a_prange_is_refused(backend):
    """A task's tape is a stack: inside a parallel iteration it would be shared."""
    u = np.random.default_rng(4).uniform(-1.0, 1.0, (5, 3))
    with pytest.raises(DifferentiationError, match=r"test_prange_inner_loops\.py:\d+: a "
                                                   r"fork-join task inside the parallel loop"):
        ad.grad(join_in_prange, argnums=(0, 1), backend=backend)(u, 0.7)
