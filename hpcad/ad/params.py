"""The deferred reduction of replicated parameters' adjoints (`params=`, README's MPI
section). Each rank's adjoint of a parameter that is the same on every rank is its share of
the gradient (partial: passes/replication.py); appended to the adjoint function, after the
whole reverse sweep, one allreduce over the kernel's communicator sums the shares of all the
parameters at once, packed into one buffer: one message per gradient call however many
time steps or uses accumulated them."""
from __future__ import annotations

from ..errors import DifferentiationError
from ..ir.core import Builder, Value
from ..ir.types import ArrayType, ScalarType, Type, i64
from .common import array_type


def reduce_parameters(b: Builder, comm: Value, shadows: list[Value],
                      adjoints: list[Value]) -> list[Value]:
    """Sum over the ranks of comm the parameters' shadows (arrays, in place) and scalar
    adjoints (the sums returned, in order) with one sum allreduce of a packed buffer."""
    dtype = _packed_dtype(shadows, adjoints)
    sizes = [_size(b, d) for d in shadows]
    offsets, total = [], _const(b, 0)
    for n in sizes + [_const(b, 1)] * len(adjoints):
        offsets.append(total)
        total = b.op1("arith.add", [total, n], i64)
    packed, summed = (b.op1("mem.alloc", [total], ArrayType(dtype, 1, "C"), {"fill": "empty"},
                            name_hint=name) for name in ("shares", "params_sum"))
    for d, lo, n in zip(shadows, offsets, sizes):
        b.op("mem.copy", [d, _piece(b, packed, lo, n, d)])
    for g, at in zip(adjoints, offsets[len(shadows):]):
        b.op("mem.store", [_cast(b, g, dtype), packed, at])
    b.op("mpi.allreduce", [packed, summed, comm], attrs={"op": "sum"})
    for d, lo, n in zip(shadows, offsets, sizes):
        b.op("mem.copy", [_piece(b, summed, lo, n, d), d])
    return [_cast(b, b.op1("mem.load", [summed, at], dtype), g.type)
            for g, at in zip(adjoints, offsets[len(shadows):])]


def _packed_dtype(shadows: list[Value], adjoints: list[Value]) -> ScalarType:
    """The buffer's dtype: the arrays' one dtype (scalars are cast to it), else the widest
    scalar's."""
    arrays = {array_type(d).dtype for d in shadows}
    scalars = {g.type for g in adjoints if isinstance(g.type, ScalarType)}
    if len(arrays) > 1 or arrays and any(s.bits > next(iter(arrays)).bits for s in scalars):
        raise DifferentiationError(
            f"params= sums all the parameters' gradients in one message, so they must share "
            f"one float dtype (got {', '.join(sorted(map(str, arrays | scalars)))}): pass "
            f"the parameter arrays in one dtype")
    return next(iter(arrays)) if arrays else max(scalars, key=lambda t: t.bits)


def _const(b: Builder, value: int) -> Value:
    return b.op1("arith.const", [], i64, {"value": value})


def _size(b: Builder, arr: Value) -> Value:
    """The element count of arr."""
    n = _const(b, 1)
    for axis in range(array_type(arr).ndim):
        extent = b.op1("mem.shape", [arr], i64, {"axis": axis})
        n = b.op1("arith.mul", [n, extent], i64)
    return n


def _piece(b: Builder, packed: Value, lo: Value, n: Value, like: Value) -> Value:
    """packed[lo:lo + n] viewed with like's shape."""
    t = array_type(packed)
    hi = b.op1("arith.add", [lo, n], i64)
    flat = b.op1("mem.view", [packed, lo, hi], ArrayType(t.dtype, 1, "C"), {"dims": "s"})
    ndim = array_type(like).ndim
    if ndim == 1:
        return flat
    dims = [b.op1("mem.shape", [like], i64, {"axis": axis}) for axis in range(ndim)]
    shaped: Value = b.op1("mem.reshape", [flat] + dims, ArrayType(t.dtype, ndim, "C"))
    return shaped


def _cast(b: Builder, v: Value, t: Type) -> Value:
    return v if v.type == t else b.op1("arith.cast", [v], t)
