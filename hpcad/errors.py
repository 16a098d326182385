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


class IntegerDivisionByZero(HpcadError, ZeroDivisionError):
    """An integer `//` or `%` by zero, or 0 ** a negative power (both backends raise it)."""


class IntegerConversionError(HpcadError, ValueError):
    """A float with no value in the integer type (nan, inf, out of range) converted to it."""


class GradientMismatch(HpcadError):
    """check_grad found a derivative that disagrees with finite differences."""


def where(loc) -> str:
    """Render a source location (file, line) as 'file:line' for messages."""
    if loc is None:
        return "<unknown location>"
    return f"{loc[0]}:{loc[1]}"
