"""mpi4py's buffer specifications in MPI calls: `[buf, MPI.DOUBLE]`, `(buf, counts)`,
`[buf, counts, displs, MPI.DOUBLE]`, `[buf, (counts, displs), MPI.DOUBLE]`. A specification
becomes the op's buffer operand plus, for the v-form collectives, its counts and
displacements operands (1-D integer arrays in elements of the buffer's dtype); omitted
displacements are the exclusive prefix sums of the counts, as mpi4py computes them."""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from ..ir.core import Block, Builder, Value
from ..ir.dialects import MPI_OPERANDS
from ..ir.types import ArrayType, i64
from .arrays import ArrayExpr, as_array_value

if TYPE_CHECKING:
    from .context import LoweringContext

# mpi4py datatype name -> the array dtype it describes
DATATYPES = {"DOUBLE": "f64", "FLOAT": "f32", "INT64_T": "i64", "LONG": "i64",
             "INT32_T": "i32", "INT": "i32", "C_BOOL": "i1"}


def is_spec(node) -> bool:
    return isinstance(node, (ast.List, ast.Tuple))


def buffer_spec(ctx: LoweringContext, op: str, target: str, node, call_node,
                argument) -> dict[str, object]:
    """Operand values for buffer `target` of op given as the specification `node`: the
    buffer, its datatype checked against its dtype, its counts and displacements."""
    elts = list(node.elts)
    datatype = _datatype(ctx, elts[-1]) if len(elts) > 1 else None
    if datatype is not None:
        elts.pop()
    if not elts:
        ctx.unsupported(call_node, f"an empty buffer specification in an MPI {op}")
    buf = argument(ctx, elts[0], call_node)
    if datatype is not None:
        _check_datatype(ctx, op, buf, datatype, call_node)
    parts = elts[1:]
    if len(parts) == 1 and isinstance(parts[0], ast.Tuple):   # [buf, (counts, displs), type]
        parts = list(parts[0].elts)
    values: dict[str, object] = {target: buf}
    if not parts:
        return values
    prefix = target[:-len("buf")]
    counts_name, displs_name = prefix + "counts", prefix + "displs"
    if counts_name not in MPI_OPERANDS.get(op, ()) or len(parts) > 2:
        ctx.unsupported(call_node, f"counts or displacements in the buffer specification of "
                                   f"`{target}` of an MPI {op}",
                        "only the v-form collectives (Gatherv, Scatterv, Allgatherv, "
                        "Alltoallv) take them; pass a slice such as buf[:n] instead")
    values[counts_name] = index_array(ctx, parts[0], call_node, argument)
    if len(parts) == 2:
        values[displs_name] = index_array(ctx, parts[1], call_node, argument)
    return values


def fill_displacements(ctx: LoweringContext, op: str, values: dict[str, object]) -> None:
    """Omitted displacements: the exclusive prefix sums of their counts."""
    for name in MPI_OPERANDS.get(op, ()):
        counts = values.get(name[:-len("displs")] + "counts")
        if name.endswith("displs") and name not in values and isinstance(counts, Value):
            values[name] = exclusive_prefix_sums(ctx.builder, counts)


def index_array(ctx: LoweringContext, node, call_node, argument) -> Value:
    """Counts or displacements: a 1-D integer array (an array expression is computed)."""
    v = argument(ctx, node, call_node)
    if isinstance(v, ArrayExpr):
        v = as_array_value(ctx, v, call_node)
    if not isinstance(v, Value) or not isinstance(v.type, ArrayType) or v.type.ndim != 1 \
            or not v.type.dtype.is_int:
        ctx.unsupported(call_node, f"MPI counts or displacements `{ast.unparse(node)}` that "
                                   f"are not a 1-D integer array",
                        "make them arrays: counts = np.array([...], dtype=np.int64)")
    return v


def exclusive_prefix_sums(b: Builder, counts: Value) -> Value:
    """displs[r] = counts[0] + ... + counts[r - 1] (an i64 array of counts' length)."""
    n = b.op1("mem.shape", [counts], i64, {"axis": 0})
    displs = b.op1("mem.alloc", [n], ArrayType(i64, 1, "C"), {"fill": "zeros"},
                   name_hint="displs")
    zero = b.op1("arith.const", [], i64, {"value": 0})
    one = b.op1("arith.const", [], i64, {"value": 1})
    body = Block([Value(i64, "r"), Value(i64, "offset")])
    b.op("scf.for", [zero, n, one, zero], [i64], regions=[body])
    lb = Builder(body, b.loc)
    r, offset = body.args
    lb.op("mem.store", [offset, displs, r])
    count = lb.op1("mem.load", [counts, r], array_dtype(counts))
    if count.type != i64:
        count = lb.op1("arith.cast", [count], i64)
    lb.op("scf.yield", [lb.op1("arith.add", [offset, count], i64)])
    return displs


def array_dtype(v: Value):
    t = v.type
    assert isinstance(t, ArrayType)
    return t.dtype


def _datatype(ctx: LoweringContext, node) -> str | None:
    """The name of the mpi4py datatype node names, or None where it names none."""
    if not isinstance(node, (ast.Name, ast.Attribute)):
        return None
    obj = ctx.static_value(node)
    try:
        from mpi4py import MPI
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(obj, MPI.Datatype):
        return None
    for name in DATATYPES:
        if obj == getattr(MPI, name):
            return name
    ctx.unsupported(node, f"the MPI datatype {ast.unparse(node)}",
                    f"use one of MPI.{', MPI.'.join(DATATYPES)}")
    return None


def _check_datatype(ctx: LoweringContext, op: str, buf, datatype: str, call_node) -> None:
    if not isinstance(buf, Value) or not isinstance(buf.type, ArrayType):
        return   # mpi_operand says what the buffer must be
    if buf.type.dtype.name != DATATYPES[datatype]:
        ctx.type_error(call_node, f"the buffer specification of an MPI {op} names "
                                  f"MPI.{datatype} for an array of {buf.type.dtype.np_dtype}; "
                                  f"name the array's own datatype or convert the array")
