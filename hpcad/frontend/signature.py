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
        if isinstance(value, np.ma.MaskedArray):
            raise ArgumentError(f"argument '{arg_name}': masked arrays are not supported (a "
                                f"kernel would read the masked elements as numbers; numba "
                                f"refuses them too); pass {arg_name}.filled(value) with the "
                                f"value the masked elements should take, or the mask as a "
                                f"bool array argument")
        if value.ndim == 0:
            raise ArgumentError(f"argument '{arg_name}': 0-d arrays are not supported; "
                                f"pass a Python or NumPy scalar instead")
        try:
            dtype = scalar_from_dtype(value.dtype)
        except ValueError:
            complex_parts = (f" (complex numbers: pass the real and imaginary parts as two "
                             f"float arrays, {arg_name}.real.copy() and "
                             f"{arg_name}.imag.copy())" if value.dtype.kind == "c" else "")
            raise ArgumentError(f"argument '{arg_name}': arrays of dtype {value.dtype} are not "
                                f"supported; use float64, float32, int64, int32 or bool"
                                f"{complex_parts}") from None
        if not value.dtype.isnative:
            raise ArgumentError(f"argument '{arg_name}': arrays of non-native byte order "
                                f"({value.dtype.str}) are not supported; pass "
                                f"{arg_name}.astype({value.dtype.name!r}) instead")
        layout = "C" if value.flags.c_contiguous else "A"
        return ArrayType(dtype, value.ndim, layout)
    if _is_communicator(value):
        return _communicator_type(value, arg_name)
    if type(value).__module__.startswith("mpi4py") and type(value).__name__ == "Win":
        raise ArgumentError(f"argument '{arg_name}': MPI windows (one-sided communication) "
                            f"are not supported: a Put or Get has no matching call on the "
                            f"target rank to carry its adjoint back; use Sendrecv or "
                            f"Isend/Irecv")
    raise ArgumentError(f"argument '{arg_name}': values of type {type(value).__name__} are not "
                        f"supported; pass floats, ints, bools or NumPy arrays"
                        f"{_instead(value, arg_name)}")


def _instead(value, arg_name: str) -> str:
    """How to pass a function, a random generator or a sequence, which kernels do not take
    as arguments."""
    if isinstance(value, (np.random.Generator, np.random.RandomState)):
        return (f" (draw the random numbers before the call, z = {arg_name}.standard_normal("
                f"(n, m)), and pass the array: a derivative must see the numbers the kernel saw)")
    if callable(value):
        return (f" (a function is not an argument: call the kernel by its name in the kernel, "
                f"or make the kernel in a function that takes '{arg_name}', "
                f"`def make(rhs): @hpcad.kernel def step(y): ... rhs(y) ...; return step`)")
    if isinstance(value, (tuple, list)):
        return (f" (a tuple of numbers such as a shape: pass its numbers as arguments of their "
                f"own, f(..., *{arg_name}), and write the tuple of those parameters in the "
                f"kernel, `x.reshape((d0, d1))`; or np.array({arg_name}) where the kernel "
                f"only indexes it)")
    return ""


def _is_communicator(value) -> bool:
    return type(value).__module__.startswith("mpi4py") and hasattr(value, "Get_rank")


def _communicator_type(comm, arg_name: str):
    """`!comm`, or `!cart<ndim>` for a Cartesian communicator (its number of dimensions
    fixes how many values Get_coords gives and how many neighbours a neighbourhood
    collective has). Intercommunicators are refused: their point-to-point ranks name the
    other group, so a message's adjoint could not be sent back along the same pair."""
    from mpi4py import MPI
    if isinstance(comm, MPI.Intercomm):
        raise ArgumentError(f"argument '{arg_name}': intercommunicators are not supported (a "
                            f"rank there names a process of the other group); pass an "
                            f"intracommunicator, e.g. intercomm.Merge()")
    if isinstance(comm, MPI.Cartcomm):
        return OpaqueType(f"cart{comm.Get_dim()}")
    return OpaqueType("comm")


def signature_of(args, names) -> tuple:
    return tuple(typeof(a, n) for a, n in zip(args, names))
