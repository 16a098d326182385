"""An op that reaches forward or reverse mode without a rule is a DifferentiationError at
the kernel's file:line naming the op, never an op skipped in silence (which would give a
wrong derivative). The rules are removed here on purpose: every op hpcad lowers has one."""
import inspect

import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.ad.rules import JVP, VJP

BACKENDS = ["interp", "numba"]


@ad.kernel
def summed_squares(comm, u, total):
    for i in range(len(u)):
        u[i] = u[i] * u[i]
    comm.Allreduce(u, total)  # the call
    s = 0.0
    for i in range(len(total)):
        s += total[i]
    return s


def _call_line() -> str:
    lines, start = inspect.getsourcelines(summed_squares.py_func)
    return f"{__file__}:{start + next(k for k, line in enumerate(lines) if '# the call' in line)}"


def _fresh():
    return ad.kernel(summed_squares.py_func)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mpi_call_without_reverse_rule_is_an_error_at_the_call(backend, monkeypatch):
    monkeypatch.delitem(VJP, "mpi.allreduce")
    with pytest.raises(ad.DifferentiationError) as info:
        ad.grad(_fresh(), argnums=1, backend=backend)(MPI.COMM_WORLD, np.ones(3), np.zeros(3))
    msg = str(info.value)
    assert msg.startswith(_call_line()) and "'allreduce' has no reverse-mode rule" in msg, msg


@pytest.mark.parametrize("backend", BACKENDS)
def test_mpi_call_without_forward_rule_is_an_error_at_the_call(backend, monkeypatch):
    monkeypatch.delitem(JVP, "mpi.allreduce")
    with pytest.raises(ad.DifferentiationError) as info:
        ad.jvp(_fresh(), (MPI.COMM_WORLD, np.ones(3), np.zeros(3)), (None, np.ones(3), None),
               backend=backend)
    msg = str(info.value)
    assert msg.startswith(_call_line()) and "'allreduce' has no forward-mode rule" in msg, msg


@pytest.mark.parametrize("backend", BACKENDS)
def test_mpi_ranks_and_barriers_need_no_rule(backend):
    @ad.kernel
    def ranked(comm, x):
        comm.Barrier()
        return x * (comm.rank + 1) * comm.Get_size()

    for mode in ("reverse", "forward"):
        if mode == "reverse":
            got = ad.grad(ranked, argnums=1, backend=backend)(MPI.COMM_WORLD, 2.0)
        else:
            _, got = ad.jvp(ranked, (MPI.COMM_WORLD, 2.0), (None, 1.0), backend=backend)
        assert got == pytest.approx((MPI.COMM_WORLD.rank + 1) * MPI.COMM_WORLD.size)


@pytest.mark.parametrize("mode, message", [
    # mem.fill never comes from the frontend; in a primal it has no reverse rule, and skipping
    # it would keep the adjoint of `a` flowing through the overwritten values
    ("reverse", r"kernel.py:7: no reverse-mode rule for 'mem.fill'"),
    # forward mode copied mem.fill as it was: the tangent of `a` kept the values from before
    # the fill, a wrong derivative without a word
    ("forward", r"kernel.py:7: no forward-mode rule for 'mem.fill', which writes an array"),
])
def test_op_without_rule_writing_an_active_array_is_an_error(mode, message):
    from hpcad.ir.parser import parse_module
    from hpcad.kernel import Specialization
    from hpcad.passes.activity import ACTIVE, DUP

    module = parse_module("""
func @f(%a: f64[::1], %x: f64) -> (f64) {
  %0 = arith.const {value = 0} : i64
  %y = arith.mul %x, %x : f64
  mem.fill %y, %a
  %v = mem.load %a, %0 : f64
  func.return %v
}
""")
    fn = module.main
    for op in fn.body.ops:
        op.loc = ("kernel.py", 7)
    with pytest.raises(ad.DifferentiationError, match=message):
        Specialization(fn, ["a", "x"]).derivative(mode, (DUP, ACTIVE), True)
