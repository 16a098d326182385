"""Derivatives of parallel kernels (par_kernels.py) on every backend: forward and reverse mode
against finite differences of the plain Python function and by the dot-product test
(tests/ad/harness.py), against the serial twin's derivatives, the refusal of product
reductions, the tie rule of max/min reductions, the race-free form of each adjoint (own
elements, gathered stencils, two-colour chunks, per-thread copies, atomic adds), and that
gradients computed on two threads are the same run after run (bitwise unless the adjoint
adds atomically or uses a parallel sum)."""
import copy
import math
import re
from contextlib import contextmanager

import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.cli import default_activity
from hpcad.ir.printer import print_function
from tests.ad.harness import (
    BACKENDS,
    SLOW,
    as_outputs,
    case_rng,
    central_difference,
    check_case,
    fd_step,
    is_active,
    on_backends,
    random_direction,
    relative_error,
    slow_unless,
)
from tests.parallel import par_kernels as pk
from tests.parallel.par_kernels import (
    ADJOINT_FORMS,
    ATOMIC,
    CASES,
    COLORED,
    GATHERED,
    OWN,
    PRIVATE,
    ParallelCase,
)

CASE_BY_NAME = {case.name: case for case in CASES}
cases = pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
backends = pytest.mark.parametrize("backend", BACKENDS)
# one case of each race-free adjoint form (own elements, gathered stencil, two-colour chunks,
# per-thread copies, atomic adds) is compiled by numba in the fast tier; the rest of the numba
# runs are in the slow one
FAST_ON_NUMBA = ("elementwise", "stencil1d", "red_black", "cutoff_pairs", "gather_repeated")
# The cases numba compiles at all (harness.ALL_KERNELS: all of them): with the fast ones they
# run every line of the numba backend's code generation, and call every function in the
# generated code, that all the cases do (`python -m tests.numba_cover
# tests.parallel.par_kernels:CASES`), but `max` (max_reduction, min_reduction's twin) and
# math.tanh (par_map), which tests/frontend/test_reductions.py (parallel_reductions) and
# tests/ad/test_kernels.py (float32_inplace_relax) compile: joins of tasks writing
# outputs (join_outputs), min reductions and their adjoints (min_reduction), flattened 2-D
# indices (flattened2d), two-colour rows (red_black_rows), a time loop around prange
# (heat_prange), a prange inside a prange (nested_prange: the inner one written as a serial
# range). The others (sum and parallel-sum reductions, task spawns, private scratch, 2-D
# stencils) generate nothing these do not, and run on the interpreter.
ON_NUMBA = FAST_ON_NUMBA + ("join_outputs", "min_reduction", "flattened2d", "red_black_rows",
                            "heat_prange", "nested_prange")

TWIN_RTOL = 1e-12        # parallel vs serial derivatives: the same sums in another order
SMOOTHNESS_RTOL = 1e-7   # FD at h and 10 h, tenfold below the 1e-6 the checks demand
REPEATS = 20
REPEAT_RTOL = 1e-13   # atomic adds and parallel sums: another order from run to run
THREADS = 2


def test_cases_have_unique_names_and_known_adjoint_forms():
    assert len(CASE_BY_NAME) == len(CASES)
    assert all(case.adjoint in ADJOINT_FORMS for case in CASES)


# -- the plain functions: the reference the derivative checks rest on --------------------------

@cases
def test_plain_parallel_function_equals_serial_twin(case):
    args = case.make_args(case_rng(case))
    parallel = as_outputs(case.kernel.py_func(*copy.deepcopy(args)))
    serial = as_outputs(case.serial.py_func(*copy.deepcopy(args)))
    assert np.array_equal(parallel, serial), f"{parallel} != {serial}"


@cases
def test_finite_differences_are_smooth(case):
    rng = case_rng(case)
    args = case.make_args(rng)
    v = random_direction(rng, args)
    h = fd_step(case, args)
    fine = central_difference(case.kernel.py_func, args, v, h)
    coarse = central_difference(case.kernel.py_func, args, v, 10.0 * h)
    value = as_outputs(case.kernel.py_func(*copy.deepcopy(args)))
    for j in range(len(fine)):
        assert relative_error(fine[j], coarse[j]) <= SMOOTHNESS_RTOL, \
            f"output {j}: FD {fine[j]!r} at step h, {coarse[j]!r} at 10 h"
        assert abs(fine[j]) > 1e-6 * max(1.0, abs(value[j])), \
            f"output {j}: directional derivative {fine[j]!r} is too small to check"


# -- derivatives --------------------------------------------------------------------------------

@on_backends(CASES, FAST_ON_NUMBA, numba=ON_NUMBA)
def test_derivatives_match_finite_differences_and_dot_product(case, backend):
    check_case(case, backend)


def assert_matches_serial_twin(case: ParallelCase, backend: str) -> None:
    """jvp along a random direction and vjp of a random cotangent, parallel on `backend` vs
    the serial twin on the interpreter (what is checked is the parallel derivative; the
    twin's own derivatives on numba would be two compiles more per case, and check nothing
    the serial derivative tests do not)."""
    rng = case_rng(case)
    args = case.make_args(rng)
    v = random_direction(rng, args)
    out_par, jv_par = ad.jvp(case.kernel, args, v, backend=backend)
    out_ser, jv_ser = ad.jvp(case.serial, args, v, backend="interp")
    assert relative_error(as_outputs(out_par), as_outputs(out_ser)) <= TWIN_RTOL, \
        f"{case.name}: value {out_par} vs serial {out_ser}"
    assert relative_error(as_outputs(jv_par), as_outputs(jv_ser)) <= TWIN_RTOL, \
        f"{case.name}: jvp {jv_par} vs serial {jv_ser}"

    w = float(rng.standard_normal())
    _, pullback_par = ad.vjp(case.kernel, *args, backend=backend)
    _, pullback_ser = ad.vjp(case.serial, *args, backend="interp")
    cot_par, cot_ser = pullback_par(w), pullback_ser(w)
    for k, (a, b) in enumerate(zip(cot_par, cot_ser, strict=True)):
        if b is None:
            assert a is None, f"{case.name}: cotangent {k} should be None"
            continue
        err = relative_error(a, b)
        assert err <= TWIN_RTOL, \
            f"{case.name}: cotangent of argument {k}: {a} vs serial {b} ({err:.2e})"


@on_backends(CASES, FAST_ON_NUMBA, numba=ON_NUMBA)
def test_derivatives_match_serial_twin(case, backend):
    assert_matches_serial_twin(case, backend)


STRIDED = ParallelCase("strided_prange", pk.strided, pk.strided_serial,
                       lambda rng: (rng.uniform(-1.0, 1.0, 31), 0.6), adjoint=OWN)


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=SLOW)])
def test_prange_with_a_step_runs_and_differentiates(backend):
    args = STRIDED.make_args(case_rng(STRIDED))
    expected = pk.strided.py_func(*copy.deepcopy(args))
    got = ad.kernel(pk.strided.py_func, backend=backend)(*copy.deepcopy(args))
    assert relative_error(got, expected) <= 1e-12
    check_case(STRIDED, backend)
    assert_matches_serial_twin(STRIDED, backend)


@backends
def test_sum_updated_under_an_if_in_an_inner_loop_compiles(backend):
    case = CASE_BY_NAME["cutoff_pairs"]
    args = case.make_args(case_rng(case))
    expected = case.kernel.py_func(*args)
    got = ad.kernel(case.kernel.py_func, backend=backend)(*args)
    assert relative_error(got, expected) <= case.value_rtol


# -- reductions: product refused, extrema to the first winner -----------------------------------

@backends
def test_product_reduction_derivative_raises(backend):
    u = np.linspace(0.5, 1.5, 12)
    with pytest.raises(ad.DifferentiationError, match=re.escape(pk.__file__)):
        ad.grad(pk.product_reduction, backend=backend)(u)
    with pytest.raises(ad.DifferentiationError, match=re.escape(pk.__file__)):
        ad.jvp(pk.product_reduction, (u,), (np.ones_like(u),), backend=backend)


@backends
def test_product_reduction_primal_still_runs(backend):
    u = np.linspace(0.5, 1.5, 12)
    got = ad.kernel(pk.product_reduction.py_func, backend=backend)(u)
    assert relative_error(got, np.prod(u)) <= 1e-14


@backends
def test_product_reduction_of_a_constant_needs_no_derivative(backend):
    rng = np.random.default_rng(7)
    u, c = rng.uniform(-1.0, 1.0, 10), rng.uniform(0.8, 1.2, 9)
    du = ad.grad(pk.scaled_by_product, argnums=0, backend=backend)(u, c)
    assert relative_error(du, 2.0 * np.prod(c) * u) <= 1e-13


@backends
@pytest.mark.parametrize("kernel, scale", [(pk.tied_max, 1.0), (pk.tied_min, 2.0)],
                         ids=["max", "min"])
def test_extremum_with_ties_credits_the_first_winner(kernel, scale, backend):
    # 40 points: with two threads the tied winners sit in different threads' halves.
    u = np.linspace(0.0, 1.0, 40)
    u[[7, 31]] = 5.0
    u[[12, 27]] = -3.0
    first = 7 if kernel is pk.tied_max else 12
    expected = np.zeros_like(u)
    expected[first] = scale
    for _ in range(REPEATS if backend == "numba" else 1):
        du = ad.grad(kernel, backend=backend)(u)
        assert np.array_equal(du, expected), f"gradient nonzero at {np.nonzero(du)[0]}"


@ad.kernel
def conditional_max(u):
    m = -1e300
    for i in ad.prange(u.shape[0]):
        if u[i] > 0.0:
            m = max(m, u[i] * u[i])
    return m


@backends
def test_extremum_updated_under_an_if_says_how_to_write_it(backend):
    u = np.array([0.3, -2.0, 1.0])
    with pytest.raises(ad.DifferentiationError) as info:
        ad.grad(conditional_max, backend=backend)(u)
    message = str(info.value)
    assert f"{__file__}:" in message and "under an `if`" in message, message
    assert "m = max(m, e)" in message, message


# -- the race-free form of each adjoint -----------------------------------------------------------

def reverse_ir(case: ParallelCase) -> str:
    """The reverse-mode derivative's IR, every float argument active (`hpcad show-ir --grad`)."""
    args = case.kernel.bind(case.make_args(case_rng(case)))
    spec = case.kernel.specialize(args)
    return print_function(spec.derivative("reverse", default_activity(spec), True))


def accumulations_into(ir: str, shadow: str) -> list[str]:
    return [line for line in ir.splitlines()
            if re.search(rf"mem\.accumulate %[\w.]+, %{shadow},", line)]


def adjoint_forms(ir: str) -> set:
    """The race-free forms (other than own elements) the derivative's IR uses."""
    forms = set()
    if "atomic = true" in ir:
        forms.add(ATOMIC)
    if re.search(r'race_free = "colored chunks"', ir):
        forms.add(COLORED)
    if re.search(r'race_free = "gathered"', ir):
        forms.add(GATHERED)
    if re.search(r'race_free = "private copies"', ir):
        forms.add(PRIVATE)
    return forms


def test_gather_with_repeats_scatters_atomically():
    scatters = accumulations_into(reverse_ir(CASE_BY_NAME["gather_repeated"]), "d_x")
    assert scatters and all("atomic = true" in line for line in scatters), scatters


def test_overlapping_stencil_reads_accumulate_in_one_parallel_gather():
    ir = reverse_ir(CASE_BY_NAME["stencil1d"])
    # the three scattered terms are gathered (passes/gather_parallel.py): one parallel loop
    # over the interior elements and one guarded serial loop over both edges
    # (passes/gather_nest.py, emit_gather), each storing d_u[j] once with the three terms
    # added in the scatter's order; no two-colour chunks (two parallel regions)
    stores = [line for line in ir.splitlines() if re.search(r"mem\.store %[\w.]+, %d_u,", line)]
    assert len(stores) == 2 and not accumulations_into(ir, "d_u"), ir
    assert adjoint_forms(ir) == {GATHERED}
    # the primal's loop, the gather, and what is left of the adjoint loop (the zeroing of
    # d_out, which the gather reads at neighbouring elements, and the sum of d_c)
    assert ir.count("par.parallel_for") == 3, ir


def test_force_loop_adjoint_accumulates_into_per_thread_copies():
    ir = reverse_ir(CASE_BY_NAME["cutoff_pairs"])
    scatters = accumulations_into(ir, "d_x")
    assert scatters and all("private = true" in line for line in scatters), scatters
    assert adjoint_forms(ir) == {PRIVATE}


def test_own_element_adjoint_has_no_atomics():
    ir = reverse_ir(CASE_BY_NAME["elementwise"])
    assert accumulations_into(ir, "d_u"), "expected accumulations into d_u"
    assert "atomic" not in ir and adjoint_forms(ir) == set()


@cases
def test_adjoint_takes_the_expected_race_free_form(case):
    assert adjoint_forms(reverse_ir(case)) == {case.adjoint} - {OWN}


# -- repeated runs on several threads ------------------------------------------------------------

@contextmanager
def numba_threads(n: int):
    previous = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def active_argnums(args: tuple) -> tuple:
    return tuple(k for k, a in enumerate(args) if is_active(a))


def repeated_gradients(kernel, args: tuple) -> list:
    """REPEATS gradients w.r.t. every float argument on THREADS numba threads."""
    grad = ad.grad(kernel, argnums=active_argnums(args), backend="numba")
    grad(*args)   # compiles; hpcad starts numba's threads (and picks the layer) first
    with numba_threads(THREADS):
        assert numba.get_num_threads() == THREADS
        return [grad(*args) for _ in range(REPEATS)]


def assert_all_agree(runs: list, rtols: list) -> None:
    """Every run's gradients equal the first run's: bitwise where rtols[k] is 0."""
    for r, run in enumerate(runs[1:], 1):
        for k, (a, b, rtol) in enumerate(zip(runs[0], run, rtols, strict=True)):
            if rtol == 0.0:
                assert np.array_equal(a, b), f"run {r}: gradient {k} differs bitwise"
            else:
                assert relative_error(a, b) <= rtol, \
                    f"run {r}: gradient {k} differs by {relative_error(a, b):.2e}"


def repeat_tolerances(case: ParallelCase, args: tuple) -> list:
    """Array gradients: bitwise unless the adjoint adds atomically or uses a parallel sum's
    value. Scalar gradients are sums over the iterations, i.e. parallel reductions in the
    reverse sweep, whose partial sums numba groups by thread: under a work-stealing layer
    (tbb) the grouping, and so the last bit, may change from run to run."""
    exact = case.adjoint != ATOMIC and not case.sum_in_gradient
    return [0.0 if exact and isinstance(args[k], np.ndarray) else REPEAT_RTOL
            for k in active_argnums(args)]


@slow_unless(CASES, FAST_ON_NUMBA, numba=ON_NUMBA)
def test_repeated_gradients_on_two_threads_agree(case):
    args = case.make_args(case_rng(case))
    assert_all_agree(repeated_gradients(case.kernel, args), repeat_tolerances(case, args))


def _large_stencil(rng):
    return rng.uniform(-1.0, 1.0, 20000), 0.7


def _contended_gather(rng):
    # 20000 iterations scattering into 16 elements: most atomic adds collide.
    return (rng.standard_normal(20000), rng.standard_normal(16),
            pk.repeated_indices(rng, 16, 20000))


LARGE = [("stencil1d", _large_stencil), ("gather_repeated", _contended_gather)]


@SLOW
@pytest.mark.parametrize("name, make_args", LARGE, ids=[name for name, _ in LARGE])
def test_large_race_prone_gradients_agree_with_serial_twin(name, make_args):
    case = CASE_BY_NAME[name]
    args = make_args(np.random.default_rng(11))
    runs = repeated_gradients(case.kernel, args)
    assert_all_agree(runs, repeat_tolerances(case, args))
    serial = ad.grad(case.serial, argnums=active_argnums(args), backend="numba")(*args)
    for k, (a, b) in enumerate(zip(runs[0], serial, strict=True)):
        assert relative_error(a, b) <= TWIN_RTOL, \
            f"gradient {k}: parallel vs serial {relative_error(a, b):.2e}"


@SLOW
def test_coloured_stencil_gradient_does_not_depend_on_the_thread_count():
    case = CASE_BY_NAME["stencil1d"]
    u, c = _large_stencil(np.random.default_rng(12))
    grad_u = ad.grad(case.kernel, argnums=0, backend="numba")
    grad_u(u, c)
    with numba_threads(1):
        one = grad_u(u, c)
    with numba_threads(THREADS):
        several = grad_u(u, c)
    assert np.array_equal(one, several)


@ad.kernel
def _nested_prange_overwrite(u, a):
    n, m = u.shape
    for i in ad.prange(n):
        for j in ad.prange(m):
            u[i, j] = a[j] * math.sin(u[i, j])   # the reverse needs the old u[i, j]
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += u[i, j] * u[i, j]
    return s


@backends
def test_nested_parallel_loops_that_must_save_values_differentiate(backend):
    """Both loops parallel and a value to save in the inner body: the outer iteration owns
    a tape block that the inner iterations share out (checkpoint/tape.py); numba refused
    this before, as one shared tape position had given a wrong gradient."""
    u, a = np.random.default_rng(1).random((5, 4)), np.linspace(0.5, 1.5, 4)
    got = ad.grad(_nested_prange_overwrite, argnums=(0, 1), backend=backend)(u.copy(), a)
    du = 2.0 * (a * np.sin(u)) * a * np.cos(u)          # analytic
    da = np.sum(2.0 * (a * np.sin(u)) * np.sin(u), axis=0)
    np.testing.assert_allclose(got[0], du, rtol=1e-12)
    np.testing.assert_allclose(got[1], da, rtol=1e-12)
