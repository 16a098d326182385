"""Argument typing: the IR type of each runtime argument, like a JIT dispatcher's typeof.

A kernel is specialized (lowered and compiled) once per tuple of argument types."""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentError
from ..ir.types import ArrayType, OpaqueType, f32, f64, i1, i32, i64, scalar_from_dtype

_SCALARS = {bool: i1, int: i64, float: f64, np.bool_: i1, np.float64: f64, np.float32: f32,
            np.int64: i64, np.int32: i32}


def typeof(value, arg_name: str):
    """IR type of one argument; ArgumentError naming the argument if hpcad cannot take it."""
    t = _SCALARS.get(type(value))
    if t is not None:
        return t
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            raise ArgumentError(f"argument '{arg_name}': 0-d arrays are not supported; "
                                f"pass a Python or NumPy scalar instead")
        try:
            dtype = scalar_from_dtype(value.dtype)
        except ValueError:
            raise ArgumentError(f"argument '{arg_name}': arrays of dtype {value.dtype} are not "
                                f"supported; use float64, float32, int64, int32 or bool") from None
        layout = "C" if value.flags.c_contiguous else "A"
        return ArrayType(dtype, value.ndim, layout)
    if _is_communicator(value):
        return OpaqueType("comm")
    raise ArgumentError(f"argument '{arg_name}': values of type {type(value).__name__} are not "
                        f"supported; pass floats, ints, bools or NumPy arrays")


def _is_communicator(value) -> bool:
    return type(value).__module__.startswith("mpi4py") and hasattr(value, "Get_rank")


def signature_of(args, names) -> tuple:
    return tuple(typeof(a, n) for a, n in zip(args, names))
