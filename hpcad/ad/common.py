"""Pieces shared by forward and reverse mode: signatures of derivative functions and
zero constants."""
from __future__ import annotations

from ..ir.core import Builder, Value
from ..ir.types import ArrayType, ScalarType
from ..passes.activity import ACTIVE, DUP, SHADOW


def has_tangent(arg: Value, kind: str) -> bool:
    """Whether a derivative function takes a shadow (arrays) or tangent/adjoint (scalars)
    right after this primal argument."""
    if isinstance(arg.type, ArrayType):
        return kind in (DUP, SHADOW) and arg.type.dtype.is_float
    return kind == ACTIVE and isinstance(arg.type, ScalarType) and arg.type.is_float


def zero(b: Builder, t) -> Value:
    return b.op1("arith.const", [], t, {"value": 0.0})


def derivative_name(v: Value, prefix: str) -> str | None:
    return f"{prefix}{v.name}" if v.name else None
