"""The verifier names the offending op; the parser reports the line of bad text; the lane ops
of batched derivatives (vec.extract, vec.insert, vec.lane) verify and round-trip, and their
type errors are named."""
import pytest

from hpcad.errors import IRParseError, IRVerifyError
from hpcad.ir import parse_function, print_function, verify_function

GOOD = """func @f(%x: f64, %a: f64[::1]) -> (f64) {
  %c0 = arith.const {value = 0} : i64
  %v = mem.load %a, %c0 : f64
  %y = arith.mul %x, %v : f64
  func.return %y
}
"""


def test_good_function_verifies_and_round_trips():
    fn = parse_function(GOOD)
    verify_function(fn)
    assert print_function(fn) == GOOD


@pytest.mark.parametrize("bad,fragment", [
    (GOOD.replace("%y = arith.mul %x, %v : f64", "%y = arith.mul %x, %c0 : f64"),
     "op 'arith.mul'"),
    (GOOD.replace("mem.load %a, %c0 : f64", "mem.load %a, %c0 : i64"), "op 'mem.load'"),
    (GOOD.replace("func.return %y", "func.return %c0"), "op 'func.return'"),
    (GOOD.replace("arith.mul", "arith.frobnicate"), "unknown op"),
])
def test_verifier_names_offending_op(bad, fragment):
    with pytest.raises(IRVerifyError, match=fragment):
        verify_function(parse_function(bad))


def test_use_outside_scope_is_reported():
    text = """func @g(%n: i64) -> (i64) {
  %c0 = arith.const {value = 0} : i64
  %c1 = arith.const {value = 1} : i64
  scf.for %c0, %n, %c1 {
  ^(%i: i64):
    scf.yield
  }
  func.return %i
}
"""
    with pytest.raises(IRVerifyError, match="uses %i .*outside its scope"):
        verify_function(parse_function(text))


def test_parser_reports_line_of_undefined_value():
    text = GOOD.replace("%y = arith.mul %x, %v", "%y = arith.mul %x, %w")
    with pytest.raises(IRParseError, match="line 4: use of undefined value %w"):
        parse_function(text)


LANES = """func @lanes(%g: f64x3, %d: f64x3[:,::1], %k: i64) -> (f64x3) {
  %x = vec.extract %g, %k : f64
  %row = vec.lane %d, %k : f64[:,:]
  %c0 = arith.const {value = 0} : i64
  mem.store %x, %row, %c0, %c0
  %y = vec.insert %g, %x, %k : f64x3
  func.return %y
}
"""


def test_lane_ops_verify_and_round_trip():
    fn = parse_function(LANES)
    verify_function(fn)
    assert print_function(fn) == LANES


@pytest.mark.parametrize("bad,fragment", [
    (LANES.replace("vec.extract %g, %k : f64", "vec.extract %g, %k : f64x3"),
     "op 'vec.extract'.*element type"),
    (LANES.replace("vec.extract %g, %k", "vec.extract %x.0, %k").replace(
        "(%g: f64x3,", "(%x.0: f64, %g: f64x3,"), "op 'vec.extract'.*expects \\(vector"),
    (LANES.replace("vec.lane %d, %k : f64[:,:]", "vec.lane %d, %k : f64[:,::1]"),
     "op 'vec.lane'.*layout A"),
    (LANES.replace("vec.insert %g, %x, %k", "vec.insert %g, %k, %k"),
     "op 'vec.insert'.*element type"),
])
def test_lane_op_type_errors_are_named(bad, fragment):
    with pytest.raises(IRVerifyError, match=fragment):
        verify_function(parse_function(bad))
