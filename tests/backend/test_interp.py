"""The reference interpreter against answers computed directly in Python and NumPy."""
import math

import numpy as np
import pytest

from hpcad.backend.interp import run_function
from hpcad.errors import HpcadError
from hpcad.ir import parse_module


def run(text: str, *args) -> tuple:
    module = parse_module(text)
    return run_function(module.main, args, module)


def binary(op: str, t: str) -> str:
    return f"""func @f(%a: {t}, %b: {t}) -> ({t}) {{
  %r = {op} %a, %b : {t}
  func.return %r
}}
"""


def unary(op: str, t: str) -> str:
    return f"""func @f(%a: {t}) -> ({t}) {{
  %r = {op} %a : {t}
  func.return %r
}}
"""


DOT = """func @f(%x: f64, %a: f64[::1], %n: i64) -> (f64) {
  %c0 = arith.const {value = 0} : i64
  %c1 = arith.const {value = 1} : i64
  %z = arith.const {value = 0.0} : f64
  %s = scf.for %c0, %n, %c1, %z : f64 {
  ^(%i: i64, %acc: f64):
    %v = mem.load %a, %i : f64
    %p = arith.mul %v, %x : f64
    %q = arith.add %acc, %p : f64
    scf.yield %q
  }
  func.return %s
}
"""


def test_reduction_loop_sums_scaled_array():
    a = np.linspace(-1.0, 2.0, 37)
    (s,) = run(DOT, 1.5, a, len(a))
    assert s == pytest.approx(1.5 * a.sum(), rel=1e-14)
    assert type(s) is float


def test_loop_without_trips_returns_its_inits():
    assert run(DOT, 1.5, np.ones(3), 0) == (0.0,)


def test_loop_with_zero_step_raises():
    text = DOT.replace("%c1 = arith.const {value = 1}", "%c1 = arith.const {value = 0}")
    with pytest.raises(HpcadError, match="step must not be zero"):
        run(text, 1.0, np.ones(3), 3)


def test_loop_carries_values_swapped_each_iteration():
    text = """func @f(%n: i64) -> (i64, i64) {
  %c0 = arith.const {value = 0} : i64
  %c1 = arith.const {value = 1} : i64
  %a0 = arith.const {value = 0} : i64
  %b0 = arith.const {value = 1} : i64
  %a, %b = scf.for %c0, %n, %c1, %a0, %b0 : i64, i64 {
  ^(%i: i64, %x: i64, %y: i64):
    %s = arith.add %x, %y : i64
    scf.yield %y, %s
  }
  func.return %a, %b
}
"""
    fib = [0, 1]
    while len(fib) < 32:
        fib.append(fib[-1] + fib[-2])
    assert run(text, 30) == (fib[30], fib[31])


NEWTON_SQRT = """func @f(%x: f64) -> (f64) {
  %tol = arith.const {value = 1e-14} : f64
  %half = arith.const {value = 0.5} : f64
  %r = scf.while %x : f64 {
  ^(%g: f64):
    %sq = arith.mul %g, %g : f64
    %d = arith.sub %sq, %x : f64
    %ad = math.abs %d : f64
    %e = arith.mul %tol, %x : f64
    %c = arith.cmp %ad, %e {pred = "gt"} : i1
    scf.condition %c, %g
  } {
  ^(%y: f64):
    %q = arith.div %x, %y : f64
    %s = arith.add %y, %q : f64
    %y2 = arith.mul %half, %s : f64
    scf.yield %y2
  }
  func.return %r
}
"""


def test_while_loop_runs_newton_iteration_to_sqrt():
    (r,) = run(NEWTON_SQRT, 10.0)
    assert r == pytest.approx(math.sqrt(10.0), rel=1e-14)


def test_while_loop_that_never_enters_returns_condition_values():
    assert run(NEWTON_SQRT, 1.0) == (1.0,)


ABS_DIFF = """func @f(%a: f64, %b: f64) -> (f64, i64) {
  %c = arith.cmp %a, %b {pred = "ge"} : i1
  %r, %k = scf.if %c : f64, i64 {
    %d = arith.sub %a, %b : f64
    %one = arith.const {value = 1} : i64
    scf.yield %d, %one
  } {
    %e = arith.sub %b, %a : f64
    %two = arith.const {value = 2} : i64
    scf.yield %e, %two
  }
  func.return %r, %k
}
"""


@pytest.mark.parametrize("a, b", [(5.0, 2.0), (2.0, 5.0)])
def test_if_else_yields_the_taken_branch(a, b):
    assert run(ABS_DIFF, a, b) == (abs(a - b), 1 if a >= b else 2)


SCALE_IN_PLACE = """func @f(%a: f64[:,:], %s: f64) -> () {
  %c0 = arith.const {value = 0} : i64
  %c1 = arith.const {value = 1} : i64
  %m = mem.shape %a {axis = 0} : i64
  %n = mem.shape %a {axis = 1} : i64
  scf.for %c0, %m, %c1 {
  ^(%i: i64):
    scf.for %c0, %n, %c1 {
    ^(%j: i64):
      %v = mem.load %a, %i, %j : f64
      %w = arith.mul %v, %s : f64
      mem.store %w, %a, %i, %j
      scf.yield
    }
    scf.yield
  }
  func.return
}
"""


def test_stores_write_through_to_a_strided_view():
    base = np.arange(24.0).reshape(4, 6)
    expected = base.copy()
    expected[::2, 1::2] *= 3.0
    assert run(SCALE_IN_PLACE, base[::2, 1::2], 3.0) == ()
    np.testing.assert_array_equal(base, expected)


HISTOGRAM = """func @f(%idx: i64[::1], %w: f64[::1], %h: f64[::1]) -> () {
  %c0 = arith.const {value = 0} : i64
  %c1 = arith.const {value = 1} : i64
  %n = mem.shape %idx {axis = 0} : i64
  scf.for %c0, %n, %c1 {
  ^(%i: i64):
    %k = mem.load %idx, %i : i64
    %v = mem.load %w, %i : f64
    mem.accumulate %v, %h, %k
    scf.yield
  }
  func.return
}
"""


def test_accumulate_adds_every_repeated_index():
    idx = np.array([0, 2, 2, 1, 2, 0, -1])
    w = np.arange(1.0, 8.0)
    h = np.zeros(4)
    expected = np.zeros(4)
    np.add.at(expected, idx, w)
    run(HISTOGRAM, idx, w, h)
    np.testing.assert_array_equal(h, expected)


LOAD_AT = """func @f(%a: f64[:], %i: i64) -> (f64) {
  %v = mem.load %a, %i : f64
  func.return %v
}
"""


def test_negative_index_loads_from_the_end():
    a = np.array([1.0, 2.0, 3.0])
    assert run(LOAD_AT, a, -1) == (a[-1],)


def test_out_of_bounds_load_raises_index_error():
    with pytest.raises(IndexError):
        run(LOAD_AT, np.zeros(3), 3)


def test_alloc_gives_a_zeroed_array_of_the_dtype():
    text = """func @f(%n: i64) -> (i32[::1]) {
  %a = mem.alloc %n {fill = "zeros"} : i32[::1]
  func.return %a
}
"""
    (a,) = run(text, 5)
    assert a.dtype == np.int32 and a.shape == (5,) and not a.any()


CALL = """func @main(%x: f64, %y: f64) -> (f64) {
  %h = func.call %x, %y {callee = "hypot"} : f64
  %t = func.call %h, %h {callee = "hypot"} : f64
  func.return %t
}

func @hypot(%a: f64, %b: f64) -> (f64) {
  %aa = arith.mul %a, %a : f64
  %bb = arith.mul %b, %b : f64
  %s = arith.add %aa, %bb : f64
  %r = math.sqrt %s : f64
  func.return %r
}
"""


def test_call_runs_the_callee_from_the_module():
    (t,) = run(CALL, 3.0, 4.0)
    assert t == pytest.approx(math.hypot(5.0, 5.0), rel=1e-15)


REVERSE = """func @f(%a: f64[::1], %out: f64[::1], %order: i64[::1]) -> () {
  %c0 = arith.const {value = 0} : i64
  %c1 = arith.const {value = 1} : i64
  %n = mem.shape %a {axis = 0} : i64
  scf.for %c0, %n, %c1 {
  ^(%i: i64):
    %v = mem.load %a, %i : f64
    tape.push %v {slot = 0}
    tape.push %i {slot = 1}
    scf.yield
  }
  scf.for %c0, %n, %c1 {
  ^(%j: i64):
    %pi = tape.pop {slot = 1} : i64
    %pv = tape.pop {slot = 0} : f64
    %w = arith.mul %pv, %pv : f64
    mem.store %w, %out, %j
    mem.store %pi, %order, %j
    scf.yield
  }
  func.return
}
"""


def test_tape_pops_in_reverse_order_of_pushes():
    a = np.array([1.0, -2.0, 3.0, 5.0])
    out, order = np.zeros(4), np.zeros(4, dtype=np.int64)
    run(REVERSE, a, out, order)
    np.testing.assert_array_equal(out, (a * a)[::-1])
    np.testing.assert_array_equal(order, [3, 2, 1, 0])


def test_tape_starts_empty_on_each_run():
    text = """func @f(%x: f64) -> (f64) {
  %v = tape.pop {slot = 3} : f64
  func.return %v
}
"""
    with pytest.raises(HpcadError, match="slot 3"):
        run(text, 1.0)


F32_SUM = """func @f(%x: f32, %n: i64) -> (f32) {
  %c0 = arith.const {value = 0} : i64
  %c1 = arith.const {value = 1} : i64
  %z = arith.const {value = 0.0} : f32
  %s = scf.for %c0, %n, %c1, %z : f32 {
  ^(%i: i64, %acc: f32):
    %q = arith.add %acc, %x : f32
    scf.yield %q
  }
  func.return %s
}
"""


def test_f32_arithmetic_rounds_every_step_to_single():
    expected = np.float32(0.0)
    for _ in range(1000):
        expected = np.float32(expected + np.float32(0.1))
    (s,) = run(F32_SUM, 0.1, 1000)
    assert type(s) is float and s == expected      # (returned as numba returns it)


def test_i32_arithmetic_wraps_around():
    (r,) = run(binary("arith.mul", "i32"), np.int32(2 ** 30), np.int32(4))
    assert type(r) is int and r == 0


@pytest.mark.parametrize("a, b", [(-7, 2), (7, -2), (-7, -2), (7, 2), (-6, 3)])
def test_integer_floordiv_and_mod_follow_python(a, b):
    assert run(binary("arith.floordiv", "i64"), a, b) == (a // b,)
    assert run(binary("arith.mod", "i64"), a, b) == (a % b,)


def test_integer_division_by_zero_raises():
    with pytest.raises(ZeroDivisionError):
        run(binary("arith.floordiv", "i64"), 1, 0)


@pytest.mark.parametrize("a", [1.0, -1.0, 0.0])
def test_float_division_by_zero_follows_ieee(a):
    with np.errstate(all="ignore"):
        expected = np.float64(a) / np.float64(0.0)
    (r,) = run(binary("arith.div", "f64"), a, 0.0)
    np.testing.assert_equal(r, expected)


@pytest.mark.parametrize("op, ufunc", [("arith.floordiv", np.floor_divide),
                                       ("arith.mod", np.mod)])
@pytest.mark.parametrize("a, b", [(1.0, 0.0), (-1.0, 0.0), (0.0, 0.0), (-7.5, 2.0), (7.5, -2.0)])
def test_float_floordiv_and_mod_match_numpy(op, ufunc, a, b):
    with np.errstate(all="ignore"):
        expected = ufunc(a, b)
    np.testing.assert_equal(run(binary(op, "f64"), a, b), (expected,))


@pytest.mark.parametrize("a, b", [(-8.0, 1.0 / 3.0), (-2.0, 3.0), (0.0, -1.0), (10.0, 400.0),
                                  (2.0, 0.5)])
def test_float_pow_matches_numpy_power(a, b):
    with np.errstate(all="ignore"):
        expected = np.power(a, b)
    (r,) = run(binary("arith.pow", "f64"), a, b)
    assert type(r) is float
    np.testing.assert_equal(r, expected)


@pytest.mark.parametrize("a, b", [(3, 4), (-2, 3), (5, 0)])
def test_integer_pow_stays_integer(a, b):
    assert run(binary("arith.pow", "i64"), a, b) == (a ** b,)


@pytest.mark.parametrize("name, x", [("log", 0.0), ("log", -1.0), ("sqrt", -1.0),
                                     ("exp", 1000.0), ("floor", -2.5), ("ceil", math.inf),
                                     ("acos", 2.0), ("tanh", 0.3)])
def test_math_functions_match_numpy_at_edge_values(name, x):
    ufunc = {"acos": np.arccos}.get(name) or getattr(np, name)
    with np.errstate(all="ignore"):
        expected = float(ufunc(x))
    (r,) = run(unary(f"math.{name}", "f64"), x)
    assert type(r) is float
    np.testing.assert_equal(r, expected)


@pytest.mark.parametrize("op", ["arith.min", "arith.max"])
def test_min_and_max_keep_the_first_operand_on_ties(op):
    (r,) = run(binary(op, "f64"), 0.0, -0.0)
    assert math.copysign(1.0, r) == 1.0


def cast(x, t: str):
    text = f"""func @f(%x: f64) -> ({t}) {{
  %r = arith.cast %x : {t}
  func.return %r
}}
"""
    return run(text, x)[0]


@pytest.mark.parametrize("x", [-2.7, 2.7, -0.5])
def test_cast_to_int_truncates_toward_zero(x):
    assert cast(x, "i64") == math.trunc(x)


@pytest.mark.parametrize("x", [0.5, -0.0, math.nan])
def test_cast_to_bool_tests_for_nonzero(x):
    assert cast(x, "i1") is (x != 0)


def test_cast_to_f32_rounds_to_single():
    r = cast(0.1, "f32")
    assert type(r) is float and r == float(np.float32(0.1))


@pytest.mark.parametrize("a, b", [(False, False), (False, True), (True, False), (True, True)])
def test_boolean_ops_give_python_bools(a, b):
    text = """func @f(%a: i1, %b: i1) -> (i1, i1, i1) {
  %x = arith.and %a, %b : i1
  %y = arith.or %a, %b : i1
  %z = arith.not %a : i1
  func.return %x, %y, %z
}
"""
    assert run(text, a, b) == (a and b, a or b, not a)


def test_arrays_and_opaque_values_pass_through_uncopied():
    text = """func @f(%a: f64[:], %comm: !comm) -> (f64[:], !comm) {
  func.return %a, %comm
}
"""
    a, comm = np.zeros(2), object()
    r = run(text, a, comm)
    assert r[0] is a and r[1] is comm


def test_rerun_after_in_place_rewrite_uses_the_new_ir():
    module = parse_module(binary("arith.add", "f64"))
    fn = module.main
    assert run_function(fn, [2.0, 3.0]) == (5.0,)
    fn.body.ops[0].name = "arith.mul"
    assert run_function(fn, [2.0, 3.0]) == (6.0,)
