"""Pieces shared by forward and reverse mode: signatures of derivative functions (which
arguments and results carry derivatives) and zero constants."""
from __future__ import annotations

from ..ir.activity import ACTIVE, DUP, SHADOW
from ..ir.core import Builder, Value
from ..ir.types import ArrayType, ScalarType, Type


def has_tangent(arg: Value, kind: str) -> bool:
    """Whether a derivative function takes a shadow (arrays) or tangent/adjoint (scalars)
    right after this primal argument."""
    if isinstance(arg.type, ArrayType):
        return kind in (DUP, SHADOW) and arg.type.dtype.is_float
    return kind == ACTIVE and isinstance(arg.type, ScalarType) and arg.type.is_float


def differentiable_result(v: Value) -> bool:
    """Whether a kernel result has a derivative (a seed in reverse mode, a tangent in
    forward mode): a float scalar, or a float array the kernel returns."""
    t = v.type
    if isinstance(t, ArrayType):
        return t.dtype.is_float
    return isinstance(t, ScalarType) and t.is_float


def zero(b: Builder, t: Type) -> Value:
    """The zero of a float type (every lane of a vector's)."""
    z: Value = b.op1("arith.const", [], t, {"value": 0.0})
    return z


def derivative_name(v: Value, prefix: str) -> str | None:
    return f"{prefix}{v.name}" if v.name else None


def array_type(arr: Value) -> ArrayType:
    """arr's type, an array's (rules call it on values the IR's verifier made sure of)."""
    t = arr.type
    if not isinstance(t, ArrayType):
        raise TypeError(f"internal: %{arr.name} is not an array")
    return t
