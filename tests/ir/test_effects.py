"""ir/effects.py: what each op reads and writes, derived from the ops' declarations; a
wait stands for its request's buffer; the verifier refuses undeclared attributes."""
import pytest

from hpcad.errors import IRVerifyError
from hpcad.ir import parse_function, verify_function
from hpcad.ir.core import walk
from hpcad.ir.effects import reads, reads_within, writes, writes_within

# a ring exchange with Irecv/Isend/Wait in a loop, then a reduction (as lowered by hpcad)
RING = """func @ring(%x: f64[::1], %comm: !comm) -> (f64) {
  %rank = mpi.rank %comm : i64
  %size = mpi.size %comm : i64
  %c1 = arith.const {value = 1} : i64
  %c0 = arith.const {value = 0} : i64
  %c3 = arith.const {value = 3} : i64
  %out = mem.alloc %c1 {fill = "zeros"} : f64[::1]
  %got = mem.alloc %c1 {fill = "zeros"} : f64[::1]
  %s = arith.const {value = 0.0} : f64
  %s.1 = scf.for %c0, %c3, %c1, %s : f64 {
  ^(%it: i64, %s.2: f64):
    %v = mem.load %x, %it : f64
    mem.store %v, %out, %c0
    %r1 = mpi.irecv %got, %rank, %c3, %comm : !request
    %r2 = mpi.isend %out, %size, %c3, %comm : !request
    mpi.wait %r1
    mpi.wait %r2
    %g = mem.load %got, %c0 : f64
    %s.3 = arith.add %s.2, %g : f64
    scf.yield %s.3
  }
  mem.add_into %got, %x
  mem.fill %s, %out
  %t = mpi.allreduce_scalar %s.1, %comm {op = "sum"} : f64
  func.return %t
}
"""


def _ops(fn):
    return {(o.name, tuple(v.name for v in o.operands)): o for o in walk(fn.body)}


def _names(values):
    return [v.name for v in values]


def test_each_op_reads_and_writes_what_it_declares():
    fn = parse_function(RING)
    verify_function(fn)
    ops = _ops(fn)
    load = ops[("mem.load", ("x", "it"))]
    store = ops[("mem.store", ("v", "out", "c0"))]
    irecv = ops[("mpi.irecv", ("got", "rank", "c3", "comm"))]
    isend = ops[("mpi.isend", ("out", "size", "c3", "comm"))]
    add_into = ops[("mem.add_into", ("got", "x"))]
    fill = ops[("mem.fill", ("s", "out"))]
    assert (_names(reads(load)), _names(writes(load))) == (["x"], [])
    assert (_names(reads(store)), _names(writes(store))) == ([], ["out"])
    assert (_names(reads(irecv)), _names(writes(irecv))) == ([], ["got"])
    assert (_names(reads(isend)), _names(writes(isend))) == (["out"], [])
    assert (_names(reads(add_into)), _names(writes(add_into))) == (["got", "x"], ["x"])
    assert (_names(reads(fill)), _names(writes(fill))) == ([], ["out"])


def test_a_wait_reads_and_writes_its_requests_buffer():
    fn = parse_function(RING)
    waits = [o for o in walk(fn.body) if o.name == "mpi.wait"]
    assert [(_names(reads(w)), _names(writes(w))) for w in waits] == \
        [([], ["got"]), (["out"], [])]


def test_a_loop_writes_what_its_body_writes():
    fn = parse_function(RING)
    loop = next(o for o in fn.body.ops if o.name == "scf.for")
    assert _names(writes_within(loop)) == ["out", "got"]
    assert _names(reads_within(loop)) == ["x", "out", "got"]


def test_a_call_writes_only_the_arguments_its_attribute_names():
    text = """func @f(%a: f64[::1], %b: f64[::1]) -> () {
  func.call %a, %b {callee = "k", writes = "1"}
  func.call %a, %b {callee = "k"}
  func.return
}
"""
    calls = [o for o in parse_function(text).body.ops if o.name == "func.call"]
    assert [_names(writes(c)) for c in calls] == [["b"], ["a", "b"]]
    assert [_names(reads(c)) for c in calls] == [["a", "b"], ["a", "b"]]


@pytest.mark.parametrize("attr,fragment", [
    ('{value = 0, unroll = 4}', "attribute 'unroll' is not declared"),
    ('{value = "zero"}', "attribute 'value' has a bad value"),
])
def test_verifier_refuses_undeclared_or_bad_attributes(attr, fragment):
    text = f"""func @f() -> (i64) {{
  %c = arith.const {attr} : i64
  func.return %c
}}
"""
    with pytest.raises(IRVerifyError, match=fragment):
        verify_function(parse_function(text))
