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


_FILL_IR = """
func @f(%a: f64[::1], %x: f64) -> (f64) {
  %0 = arith.const {value = 0} : i64
  %y = arith.mul %x, %x : f64
  mem.fill %y, %a
  %v = mem.load %a, %0 : f64
  func.return %v
}
"""


def _fill_derivative(mode):
    from hpcad.ir.parser import parse_module
    from hpcad.kernel import Specialization
    from hpcad.passes.activity import ACTIVE, DUP

    fn = parse_module(_FILL_IR).main
    for op in fn.body.ops:
        op.loc = ("kernel.py", 7)
    return Specialization(fn, ["a", "x"]).derivative(mode, (DUP, ACTIVE), True)


def test_op_without_rule_writing_an_active_array_is_an_error():
    # mem.fill never comes from the frontend; in a primal it has no reverse rule, and skipping
    # it would keep the adjoint of `a` flowing through the overwritten values
    with pytest.raises(ad.DifferentiationError,
                       match=r"kernel.py:7: no reverse-mode rule for 'mem.fill'"):
        _fill_derivative("reverse")


def test_fill_has_a_forward_rule():
    # forward mode once copied mem.fill as it was, leaving the tangent of `a` stale; its rule
    # fills the tangent with the value's tangent: d(x*x) = 2 x dx
    from hpcad.backend import interp

    fwd = _fill_derivative("forward")
    assert interp.run_function(fwd, [np.zeros(3), np.ones(3), 3.0, 0.5]) == (9.0, 3.0)
