"""How an MPI call's Python arguments become the operands of its `mpi.<op>`: binding them to
the marker's parameters (markers/*.toml), buffer specifications, reductions, IN_PLACE and None.
Shared by the call lowerings (mpi.py, mpi_topology.py, mpi_persistent.py); imports none of them."""
from __future__ import annotations

import ast
import sys
from typing import TYPE_CHECKING

from ..errors import UnsupportedConstruct
from ..ir.core import Op, Value, walk
from ..ir.dialects import cart_ndim
from ..ir.effects import reads, writes
from ..ir.types import ArrayType, OpaqueType, ScalarType, i64, spoken
from . import words
from .arrays import ArrayExpr, Sliced, materialize, root, view_of
from .linalg import memory_transposed
from .mpi_buffers import buffer_spec, fill_displacements, index_array, is_spec
from .mpi_reductions import IN_PLACE, NONE

if TYPE_CHECKING:
    from .context import LoweringContext
    from .markers import MpiCall


def _reduction_name(obj) -> str | None:
    """'sum'/'max'/'min'/'prod' for mpi4py's MPI.SUM/MAX/MIN/PROD or numba-mpi's Operator
    members."""
    try:
        from mpi4py import MPI
        for name in ("SUM", "MAX", "MIN", "PROD"):
            if obj is getattr(MPI, name):
                return name.lower()
    except ImportError:
        pass
    numba_mpi = sys.modules.get("numba_mpi")   # loaded where a kernel names its Operator
    if numba_mpi is not None and isinstance(obj, numba_mpi.Operator):
        return str(obj.name).lower()
    return None


def _mpi_op_name(obj) -> str | None:
    """The name of an mpi4py reduction operation (MPI.MAXLOC), None for anything else."""
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    if not isinstance(obj, MPI.Op):
        return None
    return next((n for n in dir(MPI) if getattr(MPI, n) is obj), None)


def _is_in_place(obj) -> bool:
    try:
        from mpi4py import MPI
    except ImportError:
        return False
    return obj is MPI.IN_PLACE


def is_world(obj) -> bool:
    """Whether obj is mpi4py's MPI.COMM_WORLD (named in a kernel's body). Without mpi4py
    imported nothing can be (and a process without MPI does not import it: importing
    mpi4py initializes MPI)."""
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi is not None and obj is getattr(mpi, "COMM_WORLD", None)


def is_comm(ctx: LoweringContext, v) -> bool:
    return isinstance(v, Value) and isinstance(v.type, OpaqueType) \
        and (v.type.name == "comm" or cart_ndim(v.type) is not None)


def is_request(ctx: LoweringContext, v) -> bool:
    return isinstance(v, Value) and isinstance(v.type, OpaqueType) \
        and v.type.name == "request"


def bind_arguments(ctx: LoweringContext, call: MpiCall, node) -> dict[str, object]:
    """The call's arguments by the op's operand names (the marker's `rename`), each
    positional or keyword argument bound to the marker's parameter as Python binds them,
    missing ones from the parameters' defaults."""
    rename = dict(call.rename)
    params = [p.split("=", 1) for p in call.params]
    bound: dict[str, object] = {}
    if len(node.args) > len(params):
        ctx.unsupported(node, f"{call.op} with {len(node.args)} positional arguments")
    for (name, *_), arg in zip(params, node.args, strict=False):
        bound[name] = arg
    for kw in node.keywords:
        if kw.arg not in [p[0] for p in params]:
            ctx.unsupported(node, f"the keyword `{kw.arg}=` of an MPI {call.op}")
        bound[kw.arg] = kw.value
    values: dict[str, object] = {}
    for name, *default in params:
        target = rename.get(name, name)
        if name in bound and target.endswith("buf") and is_spec(bound[name]):
            values.update(buffer_spec(ctx, call.op, target, bound[name], node, mpi_argument))
        elif name in bound and target.endswith(("counts", "displs")):
            values[target] = index_array(ctx, bound[name], node, mpi_argument)
        elif name in bound:
            values[target] = mpi_argument(ctx, bound[name], node)
        elif default:
            values[target] = mpi_default(ctx, default[0])
        else:
            ctx.unsupported(node, f"an MPI {call.op} without `{name}`")
    fill_displacements(ctx, call.op, values)
    return values


def _nonblocking(node) -> bool:
    """Whether the call at node is non-blocking or persistent (comm.Iallreduce, Isend,
    numba_mpi.isend, Send_init): MPI reads its buffers after it returns."""
    func = getattr(node, "func", None)
    attr = func.attr if isinstance(func, ast.Attribute) else ""
    return attr[:1] in ("I", "i") or attr.endswith("_init")


def mpi_operand(ctx: LoweringContext, name: str, v, node) -> Value:
    """Operand `name` of an MPI op: a buffer (an array or a view), a lower-case reduction's
    scalar, an integer array (counts, displacements) or an integer (a rank, a tag)."""
    if v is IN_PLACE or v is NONE:
        ctx.unsupported(node, f"{v} as the MPI argument `{name}` of this call")
    if name.endswith(("counts", "displs")):
        if v is None:
            ctx.unsupported(node, f"a v-form MPI call without its `{name}`",
                            "give them in the buffer specification: "
                            "[buf, counts, displs, MPI.DOUBLE]")
        return v
    if name.endswith("buf"):
        if memory_transposed(v) or (isinstance(v, Value) and v in ctx.transposed_copies):
            ctx.unsupported(node, "a transposed array (a.T, np.transpose(a), or an "
                                  "expression of one) as an MPI buffer",
                            "NumPy lays it out in Fortran order, which mpi4py sends as "
                            "it lies in memory, not in index order; send a C-ordered "
                            "copy, a.T.copy()")
        if isinstance(v, Sliced):   # a slice with a step: its view (blocking calls pack it)
            if not v.viewable:
                ctx.unsupported(node, "a slice with np.newaxis as an MPI buffer",
                                "send or receive the array itself (a new axis adds no "
                                "element)")
            v = view_of(ctx, v)
        if isinstance(v, ArrayExpr) and name == "sendbuf" and not _nonblocking(node):
            # a blocking collective's or Sendrecv's send buffer (`comm.Allreduce(x * x, g)`):
            # MPI only reads it during the call, so a fresh array of its elements serves
            v = materialize(ctx, v, node)
        if isinstance(v, ArrayExpr):
            ctx.unsupported(node, "an array expression as an MPI buffer",
                            "store it into an array first: buf = np.empty(n); buf[:] = expr")
        if not isinstance(v, Value) or not isinstance(v.type, ArrayType):
            ctx.unsupported(node, f"MPI buffer `{name}` that is not an array or a "
                                  f"view", "pass an array or a slice like u[0:1]")
        return v
    if name == "sendobj":
        if not isinstance(v, Value) or not isinstance(v.type, ScalarType):
            ctx.unsupported(node, "a lower-case reduction of a non-scalar",
                            "use Allreduce on arrays")
        return v if v.type.is_float or v.type.is_bool else ctx.coerce(v, i64)
    if not isinstance(v, Value) or not isinstance(v.type, ScalarType) or v.type.is_float:
        got = spoken(v.type) if isinstance(v, Value) else \
            "an array" if isinstance(v, ArrayExpr) else words.value(getattr(v, "obj", v))
        called = ast.unparse(node.func) if isinstance(node, ast.Call) else "this call"
        ctx.type_error(node, f"the MPI argument `{name}` of `{called}` must be an integer "
                             f"(a rank, a tag, a root or a count), got {got}; check the "
                             f"order of the call's arguments")
    return ctx.coerce_index(v, node)


def mpi_argument(ctx: LoweringContext, node, call_node):
    if isinstance(node, ast.Constant) and node.value is None:
        return NONE   # a receive buffer MPI ignores on this rank (mpi_reductions.py)
    static = ctx.static_value(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
    if static is not None and _is_in_place(static):
        return IN_PLACE
    # numba-mpi's Operator members are integers (an IntEnum): look for a reduction first
    reduction = _reduction_name(static) if static is not None else None
    if reduction is not None:
        return reduction
    if static is not None and not isinstance(static, (int, float, bool)):
        op = _mpi_op_name(static)
        if op is not None:
            logical = {"LAND": "MIN", "LOR": "MAX"}.get(op)
            hint = (f"for MPI.{op} of a condition, reduce it as an integer with "
                    f"MPI.{logical}: `comm.allreduce(int(cond), op=MPI.{logical}) == 1`"
                    if logical else "for MAXLOC/MINLOC: the MAX/MIN value, then the lowest "
                    "rank holding it by a MIN allreduce of the rank, or size where it does "
                    "not hold it")
            ctx.unsupported(call_node, f"the reduction MPI.{op}",
                            f"reduce with MPI.SUM, MAX, MIN or PROD ({hint})")
        ctx.unsupported(call_node, f"the MPI argument {static!r}")
    value = ctx.expr(node)
    return value


def mpi_default(ctx: LoweringContext, text: str):
    try:
        return ctx.const(int(text), i64)
    except ValueError:
        pass
    reduction = {"SUM": "sum", "MAX": "max", "MIN": "min", "PROD": "prod"}.get(text)
    if reduction is not None:
        return reduction
    from mpi4py import MPI
    return ctx.const(int(getattr(MPI, text)), i64)


def refuse_pending_access(ctx: LoweringContext, request: Value, node) -> None:
    """Before the wait of `request`: an op between its call and here that reads or writes
    the array a nonblocking receive fills (the receive buffer itself, or the array whose
    whole memory it is) is refused at that op's line. MPI fills the buffer at some time
    before the wait returns, so what such a read sees depends on the library and the
    message size, while hpcad's derivative takes the message to arrive at the wait. (A
    receive into a slice leaves the rest of its array free to use meanwhile; the waits of
    other nonblocking calls on the same array are not looked at.)"""
    call = request.owner
    if not isinstance(call, Op) or call.parent is None:
        return
    received = writes(call)
    if not received:
        return
    ops = call.parent.ops
    after = ops[ops.index(call) + 1:] if call in ops else []
    blocks_ops = list(after) + ([o for o in ctx.builder.block.ops]
                                if ctx.builder.block is not call.parent else [])
    for top in blocks_ops:
        for op in [top, *(o for r in top.regions for o in walk(r))]:
            if any(getattr(v.type, "name", "") == "request" for v in op.operands):
                continue   # (a wait: what other pending calls read is MPI's to order)
            for a in [*reads(op), *writes(op)]:
                for b in received:
                    if a is b or (b is root(b) and root(a) is b):
                        file, line = op.loc or ctx.loc_of(node)
                        raise UnsupportedConstruct(
                            f"{file}:{line}: reading or writing the receive buffer of a "
                            f"nonblocking call before its wait (line {ctx.loc_of(node)[1]}) "
                            f"is not supported in hpcad kernels; MPI fills it at some time "
                            f"before the wait returns, so what the kernel sees depends on "
                            f"the MPI library and the message size: use it after the wait, "
                            f"or receive into a separate array")
