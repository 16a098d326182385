"""`for` over arrays (elements of a 1-D array, rows of a 2-D one, planes of a 3-D one,
slices and array expressions), np.ndindex() (the tuple as a subscript) and `a.flat`,
enumerate() (of arrays and of range()), zip() (stopping at the
shortest) and tuple unpacking in the target, also in a prange body and with break/continue:
primal equal to numba.njit of the same source, forward and reverse derivatives against
central finite differences and against each other, on both backends. What stays unsupported
is an error in user words at the loop's file:line."""
import inspect

import numpy as np
import pytest

import hpcad as ad
from hpcad.ir.printer import print_function
from tests.ad.harness import INTERP_FAST, on_backends
from tests.ad.kernels import Case
from tests.frontend import construct_kernels as ck
from tests.frontend.construct_check import check_construct, run_on

BACKENDS = INTERP_FAST


def _vector(rng):
    return rng.uniform(-1.0, 1.0, 7), 0.8


def _matrix(rng):
    return rng.uniform(-1.0, 1.0, (4, 3)), 0.8


def _two_vectors(rng):
    return rng.uniform(-1.0, 1.0, 5), rng.uniform(-1.0, 1.0, 8), 0.8


def _rows_and_weights(rng):
    return rng.uniform(-1.0, 1.0, (5, 3)), rng.uniform(-1.0, 1.0, 4)


def _rows_weights_scale(rng):
    return rng.uniform(-1.0, 1.0, (5, 3)), rng.uniform(-1.0, 1.0, 4), 0.8


def _vector_matrix_scale(rng):
    return rng.uniform(-1.0, 1.0, 7), rng.uniform(-1.0, 1.0, (4, 3)), 0.8


CASES = [Case("sum_over_elements", ck.sum_over_elements, _vector),
         Case("sum_over_rows", ck.sum_over_rows, _matrix),
         Case("weighted_by_position", ck.weighted_by_position, _vector),
         Case("enumerate_a_range", ck.enumerate_a_range, _vector),
         Case("dot_by_zip", ck.dot_by_zip, _two_vectors),
         Case("zip_enumerate_unpacked", ck.zip_enumerate_unpacked, _two_vectors),
         Case("zip_rows", ck.zip_rows, _rows_and_weights),
         Case("loops_in_prange_body", ck.loops_in_prange_body, _rows_weights_scale),
         Case("element_loop_with_break", ck.element_loop_with_break, _vector),
         Case("sum_over_planes", ck.sum_over_planes,
              lambda rng: (rng.uniform(-1.0, 1.0, (3, 2, 4)), 0.8)),
         Case("loops_over_slices", ck.loops_over_slices, _vector_matrix_scale),
         Case("writes_through_a_slice", ck.writes_through_a_slice, lambda rng: _vector(rng)[:1]),
         Case("tuple_from_either_branch", ck.tuple_from_either_branch, _vector),
         Case("tuple_carried_by_loops", ck.tuple_carried_by_loops, _vector),
         Case("tuple_in_prange", ck.tuple_in_prange, _vector),
         Case("private_scalar_in_prange", ck.private_scalar_in_prange, _vector),
         Case("ndindex_and_flat", ck.ndindex_and_flat, _vector_matrix_scale),
         Case("loops_over_tuples", ck.loops_over_tuples, _vector)]


# The cases numba compiles (harness.ALL_KERNELS: all): loops in a prange body writing an array
# the kernel makes (loops_in_prange_body: what backend/numba/hoisting.py reads back through a
# view of its own). The others' loops generate no numba code that it and the kept numba cases
# of the other width-1 derivative tests do not (tests/numba_cases.py, `python -m
# tests.numba_cover "tests.numba_cases:cases()"`): breaks and tuples carried by loops are
# test_kernels'. Every case runs on the interpreter, its primal against numba.njit.
ON_NUMBA = ("loops_in_prange_body",)


@on_backends(CASES, numba=ON_NUMBA)
def test_loop_construct_matches_numba_and_differentiates(case, backend):
    check_construct(case, backend)


def _line_of(kernel, text: str) -> str:
    lines, start = inspect.getsourcelines(kernel.py_func)
    line = start + next(k for k, source in enumerate(lines) if text in source)
    return f"{inspect.getsourcefile(kernel.py_func)}:{line}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_strict_zip_checks_the_lengths_when_it_runs(backend):
    x = np.array([1.0, 2.0, 3.0])
    assert run_on(ck.strict_zip, backend, (x, x + 1.0)) == pytest.approx(20.0, rel=1e-15)
    with pytest.raises(ad.KernelAssertionError) as info:
        run_on(ck.strict_zip, backend, (x, np.ones(4)))
    assert str(info.value).startswith(_line_of(ck.strict_zip, "strict=True") + ": zip(strict=")


def test_constant_range_steps_leave_no_check_in_the_ir():
    x = np.ones(6)
    ir = print_function(ck.enumerate_a_range.specialize((x, 1.0)).primal)
    assert "rt.assert" not in ir


@pytest.mark.parametrize("kernel, args, message, hint", [
    (ck.loop_over_arrays, (np.ones(3),), "a `for` loop over a tuple that is empty or holds "
     "arrays", "loop over range() and index the arrays"),
    (ck.loop_over_mixed_tuple, (np.ones(3),), "a `for` loop over a tuple whose items differ in "
     "type (int64, float64)", "write the items with one type"),
    (ck.loop_over_number, (np.ones(3),), "a `for` loop over a number",
     "loop over range(), an array, enumerate() or zip() of those"),
    (ck.unpack_an_element, (np.ones(3),), "unpacking one value into 2 loop variables",
     "an item of enumerate() is (index, item)"),
    (ck.unpack_three_from_zip, (np.ones(3),), "unpacking a tuple of 2 values into 3 loop "
     "variables", "of zip(a, b) (item of a, item of b)"),
    (ck.enumerate_with_keyword, (np.ones(3),), "this call of enumerate()",
     "enumerate(a, start), start by position"),
    (ck.rows_of_a_new_axis_slice, (np.ones((4, 2)),), "the rows of a slice with np.newaxis",
     "loop over range() and index the array"),
], ids=["tuple-of-arrays", "mixed-tuple", "number", "unpacking", "unpacking-zip",
        "enumerate-keyword", "new-axis-rows"])
def test_unsupported_loops_are_errors_at_their_line(kernel, args, message, hint):
    with pytest.raises(ad.UnsupportedConstruct) as info:
        kernel(*args)
    text = str(info.value)
    assert text.startswith(_line_of(kernel, " in ") + ": ") and message in text, text
    assert hint in text, text


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_zero_range_step_in_enumerate_is_an_error_when_it_runs(backend):
    x = np.arange(7.0)
    assert run_on(ck.enumerate_range_with_step, backend, (x, 3)) == 0 * 0 + 1 * 3 + 2 * 6
    assert run_on(ck.enumerate_range_with_step, backend, (x, -2)) == 0.0
    with pytest.raises(ad.KernelAssertionError, match="range\\(\\) step must not be zero"):
        run_on(ck.enumerate_range_with_step, backend, (x, 0))


def test_a_name_bound_to_a_tuple_and_a_number_by_the_branches_is_an_error_where_used():
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ck.tuple_or_number(np.ones(3), 1.0)
    text = str(info.value)
    assert text.startswith(_line_of(ck.tuple_or_number, "return t[0]") + ": using 't' after "
                           "the if at line " + _line_of(ck.tuple_or_number, "if c").split(":")[-1]
                           + " whose branches give it different kinds of values"), text
    assert "give 't' the same kind of value on every branch" in text, text


def test_a_number_private_to_each_prange_iteration_is_an_error_after_the_loop():
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ck.private_scalar_read_after_prange(np.ones(3), 1.0)
    text = str(info.value)
    assert text.startswith(_line_of(ck.private_scalar_read_after_prange, "return tmp")
                           + ": using 'tmp' after the loop at line "), text
    assert "use it inside the loop, or keep the value you need in an array" in text, text
