"""hpcad's exceptions. Every user-facing failure is one of these, with a message that says
what was wrong, where (kernel file:line or argument name) and what to do instead."""
from __future__ import annotations


class HpcadError(Exception):
    """Base class of every error hpcad raises on purpose."""


class HpcadWarning(UserWarning):
    """hpcad did something other than asked, and the result is still right (e.g. a
    checkpointing request on a kernel without a time loop it can checkpoint)."""


class UnsupportedConstruct(HpcadError):
    """The kernel uses Python that hpcad cannot lower to IR."""


class KernelTypeError(HpcadError):
    """A kernel expression has types hpcad cannot reconcile (e.g. int array store of a float)."""


class ArgumentError(HpcadError):
    """A call passed arguments (primal, shadow, activity) of the wrong kind, shape or dtype."""


class DifferentiationError(HpcadError):
    """The kernel cannot be differentiated correctly as written."""


class IRParseError(HpcadError):
    """IR text does not parse."""


class IRVerifyError(HpcadError):
    """IR breaks an invariant; the message names the offending op."""


class IndexOutOfBounds(HpcadError, IndexError):
    """Compiled code with HPCAD_BOUNDSCHECK=1 indexed an array out of bounds."""


class MpiError(HpcadError):
    """An MPI call in a kernel returned an error (e.g. a message longer than its receive
    buffer): raised on the rank where it failed, at the kernel's file:line of the call."""

    def __init__(self, site: str, call: str, code: int):
        from mpi4py import MPI
        self.site, self.call, self.code = site, call, int(code)
        stack = MPI.Get_error_string(int(code)).splitlines()   # MPICH: reason, then calls
        reason = MPI.Get_error_string(MPI.Get_error_class(int(code)))
        detail = f" ({stack[-1].split(':', 1)[-1].strip()})" if len(stack) > 1 else ""
        super().__init__(f"{site}: {call} failed on rank {MPI.COMM_WORLD.rank}: "
                         f"{reason}{detail}; check that every rank's messages "
                         f"match (count, type, tag and peer) and that receive buffers hold "
                         f"the whole message")

    def __reduce__(self):
        return type(self), (self.site, self.call, self.code)


class CollectiveError(HpcadError):
    """A fault the ranks of a collective found together (e.g. wrong v-form counts on one
    rank): raised on every rank at the same call, so no rank is left waiting and the job
    is not aborted (hpcad/mpi_job.py)."""


class PlanMismatch(HpcadError):
    """The ranks of an MPI job were about to run different kernels or plans (which would
    deadlock); raised on every rank, naming each rank's plan."""


class IntegerDivisionByZero(HpcadError, ZeroDivisionError):
    """An integer `//` or `%` by zero, or 0 ** a negative power (both backends raise it)."""


class IntegerConversionError(HpcadError, ValueError):
    """A float with no value in the integer type (nan, inf, out of range) converted to it."""


class KernelAssertionError(HpcadError, AssertionError):
    """A kernel's `assert` (or a check hpcad adds, e.g. that two arrays' shapes agree) failed
    while it ran: the message names the kernel's file:line (both backends raise it)."""


class KernelRaise(HpcadError):
    """A kernel's `raise SomeError("message")` ran: each built-in class a kernel may raise has
    a subclass here that is also that class (KernelValueError is a ValueError), as numba
    raises the class itself; the message names the kernel's file:line."""


class KernelValueError(KernelRaise, ValueError):
    """`raise ValueError(...)` in a kernel."""


class KernelRuntimeError(KernelRaise, RuntimeError):
    """`raise RuntimeError(...)` in a kernel."""


class KernelArithmeticError(KernelRaise, ArithmeticError):
    """`raise ArithmeticError(...)` in a kernel."""


class KernelZeroDivisionError(KernelRaise, ZeroDivisionError):
    """`raise ZeroDivisionError(...)` in a kernel."""


class KernelOverflowError(KernelRaise, OverflowError):
    """`raise OverflowError(...)` in a kernel."""


class KernelFloatingPointError(KernelRaise, FloatingPointError):
    """`raise FloatingPointError(...)` in a kernel."""


class KernelIndexError(KernelRaise, IndexError):
    """`raise IndexError(...)` in a kernel."""


class KernelNotImplementedError(KernelRaise, NotImplementedError):
    """`raise NotImplementedError(...)` in a kernel."""


class KernelException(KernelRaise):
    """`raise Exception(...)` in a kernel."""


# the built-in exception class a kernel raises -> the class hpcad raises for it
RAISED = {ValueError: KernelValueError, RuntimeError: KernelRuntimeError,
          ArithmeticError: KernelArithmeticError,
          ZeroDivisionError: KernelZeroDivisionError, OverflowError: KernelOverflowError,
          FloatingPointError: KernelFloatingPointError, IndexError: KernelIndexError,
          NotImplementedError: KernelNotImplementedError, Exception: KernelException,
          AssertionError: KernelAssertionError}


class BufferMemoryError(HpcadError, MemoryError):
    """A tape or snapshot buffer would need more than 2**63 bytes. Raised by compiled code
    as (what: the buffer and its kernel's file:line, itemsize, ((lb, ub, step), ...): the
    loops' extents); the message, with the count of each, is made when it is read."""

    def __str__(self) -> str:
        if len(self.args) != 3:
            return super().__str__()
        what, itemsize, extents = self.args
        counts = " x ".join(str(max(0, (ub - lb + step - (1 if step > 0 else -1)) // step))
                            for lb, ub, step in extents    # len(range()), past 2**63 too
                            if (lb, ub, step) != (0, 1, 1))  # the padding of compiled calls
        return (f"{what} {counts} entries of {itemsize} bytes, more than 2**63 bytes: a "
                f"loop's bounds are far larger than its iterations, or wrong (run with "
                f"backend='interp' to check)")


class GradientMismatch(HpcadError):
    """check_grad found a derivative that disagrees with finite differences."""


class DerivativeTestFailure(GradientMismatch, AssertionError):
    """hpcad.testing's dot_test or taylor_test failed (an AssertionError, so that pytest
    reports it as a failed check); `result` holds the test's figures."""

    def __init__(self, message: str, result: object = None):
        super().__init__(message)
        self.result = result


def where(loc) -> str:
    """Render a source location (file, line) as 'file:line' for messages."""
    if loc is None:
        return "<unknown location>"
    return f"{loc[0]}:{loc[1]}"


class NoOverload(Exception):
    """Not an error of the user's: a compiled function's numba dispatcher was called with
    arguments of numba types it has no code for, and raised this before running anything
    (backend/numba Compiled.no_compiling); the fast call paths that let numba check the
    types take another path then."""
