"""Lowering of MPI calls declared by marker files (markers/mpi4py.toml, numba_mpi.toml):
communicator methods (`comm.Sendrecv(...)`), attributes (`comm.rank`) and module functions
(`numba_mpi.allreduce(...)`, on COMM_WORLD) become `mpi` ops with their operands in the op's
canonical order. Communicators are constant arguments; buffers are arrays or views."""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from ..errors import UnsupportedConstruct
from ..ir.core import Value
from ..ir.dialects import MPI_OPERANDS
from ..ir.types import ArrayType, OpaqueType, ScalarType, i64
from .arrays import ArrayExpr, Sliced
from .markers import MpiCall, mpi_frameworks, mpi_table
from .mpi_reductions import IN_PLACE, LOWERINGS, NONE, Site

if TYPE_CHECKING:
    from .context import LoweringContext


# non-blocking ops -> how their buffer is named in an error: MPI reads or writes it after the
# call returns, so a strided one cannot be packed into contiguous memory around the call
_NONBLOCKING = {"isend": "a non-blocking send of", "irecv": "a non-blocking receive into"}
_NONBLOCKING_HINT = {
    "isend": "use comm.Sendrecv or comm.Send (hpcad packs strided slices for blocking calls), "
             "or copy it into a contiguous array first: buf = np.empty(n); buf[:] = u[:, 1]",
    "irecv": "receive into a contiguous array and copy it in after the wait "
             "(u[:, -1] = buf), or use comm.Sendrecv or comm.Recv"}

# the result types of the MPI ops that have results (allreduce_scalar: its operand's)
_RESULTS = {"isend": (OpaqueType("request"),), "irecv": (OpaqueType("request"),),
            "rank": (i64,), "size": (i64,), "cart_shift": (i64, i64)}


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
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name in ("SUM", "MAX", "MIN"):
        return name.lower()
    return None


def _is_in_place(obj) -> bool:
    try:
        from mpi4py import MPI
    except ImportError:
        return False
    return obj is MPI.IN_PLACE


def is_comm(ctx: LoweringContext, v) -> bool:
    return isinstance(v, Value) and isinstance(v.type, OpaqueType) and v.type.name == "comm"


def is_request(ctx: LoweringContext, v) -> bool:
    return isinstance(v, Value) and isinstance(v.type, OpaqueType) \
        and v.type.name == "request"


def unsupported_mpi(ctx: LoweringContext, node, what: str = "call", hint: str = ""):
    """An MPI call or attribute no marker file declares: say so, and what is supported."""
    file, line = ctx.loc_of(node)
    name = ast.unparse(node.func if isinstance(node, ast.Call) else node)
    supported = "; ".join(f"{framework}: {', '.join(names)}"
                          for framework, names in mpi_frameworks().items())
    raise UnsupportedConstruct(f"{file}:{line}: MPI {what} `{name}` is not supported by "
                               f"hpcad{hint}; supported (markers/*.toml): {supported}")


def request_method(ctx: LoweringContext, req: Value, name: str, node):
    call = mpi_table()[0].get("request." + name)
    if call is None or node.args or node.keywords:
        unsupported_mpi(ctx, node)
    ctx.builder.op(f"mpi.{call.op}", [req])
    return None


def wait_all(ctx: LoweringContext, node):
    """MPI.Request.Waitall([r1, r2, ...]): a wait per request, in order."""
    if len(node.args) != 1 or not isinstance(node.args[0], (ast.List, ast.Tuple)):
        ctx.unsupported(node, "Waitall of anything but a list of request variables")
    for elt in node.args[0].elts:
        req = ctx.expr(elt)
        if not is_request(ctx, req):
            ctx.unsupported(node, "Waitall of something that is not a request")
        ctx.builder.op("mpi.wait", [req])
    return None


def comm_method(ctx: LoweringContext, comm: Value, name: str, node):
    call = mpi_table()[0].get(name)
    if call is None:
        unsupported_mpi(ctx, node)
    return lower_mpi(ctx, call, comm, node)


def comm_attribute(ctx: LoweringContext, comm: Value, name: str, node):
    call = mpi_table()[1].get(name)
    if call is None:
        unsupported_mpi(ctx, node, "attribute")
    return ctx.builder.op1(f"mpi.{call.op}", [comm], i64)


def world(ctx: LoweringContext) -> Value:
    return ctx.builder.op1("mpi.world", [], OpaqueType("comm"), name_hint="world")


def lower_mpi(ctx: LoweringContext, call: MpiCall, comm: Value, node):
    """Bind the call's arguments to the marker's parameters and emit the op."""
    if call.op == "waitall":
        return wait_all(ctx, node)
    values = bind_arguments(ctx, call, node)
    attrs = {}
    if "op" in values:
        attrs["op"] = values.pop("op")
    lowering = LOWERINGS.get(call.op)
    if lowering is not None:
        site = Site(ctx, comm, node,
                    lambda op, vals, at: emit_mpi(ctx, op, vals, at, comm, node),
                    lambda name, v: mpi_operand(ctx, name, v, node))
        return lowering(site, values, attrs)
    return emit_mpi(ctx, call.op, values, attrs, comm, node)


def emit_mpi(ctx: LoweringContext, kind: str, values: dict, attrs: dict, comm: Value, node):
    """One `mpi.<kind>` op on the values of its operands (by name); its result, if any."""
    operands = [mpi_operand(ctx, name, values.get(name), node)
                for name in MPI_OPERANDS[kind]] + [comm]
    if kind in _NONBLOCKING and operands[0].type.layout != "C":
        ctx.unsupported(node, f"{_NONBLOCKING[kind]} a non-contiguous array (a strided "
                              f"slice such as u[:, 1])", _NONBLOCKING_HINT[kind])
    if kind == "allreduce_scalar":
        result = [operands[0].type]
    else:
        result = list(_RESULTS.get(kind, ()))
    op = ctx.builder.op(f"mpi.{kind}", operands, result, attrs)
    if len(op.results) > 1:
        return tuple(op.results)
    return op.results[0] if op.results else None


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
        if name in bound:
            values[target] = mpi_argument(ctx, bound[name], node)
        elif default:
            values[target] = mpi_default(ctx, default[0])
        else:
            ctx.unsupported(node, f"an MPI {call.op} without `{name}`")
    return values


def mpi_operand(ctx: LoweringContext, name: str, v, node) -> Value:
    """Operand `name` of an MPI op: a buffer (an array or a view), a lower-case reduction's
    scalar, or an integer (a rank, a tag, a count)."""
    if v is IN_PLACE or v is NONE:
        ctx.unsupported(node, f"{v} as the MPI argument `{name}` of this call")
    if name.endswith("buf"):
        if isinstance(v, Sliced):
            ctx.unsupported(node, "a slice with a step as an MPI buffer",
                            "copy it into a contiguous array (buf = np.empty(k); "
                            "buf[:] = u[::2]) and send or receive that")
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
    return ctx.coerce_index(v, node)


def mpi_argument(ctx: LoweringContext, node, call_node):
    if isinstance(node, ast.Constant) and node.value is None:
        return NONE   # a receive buffer MPI ignores on this rank (mpi_reductions.py)
    static = ctx.static_value(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
    if static is not None and _is_in_place(static):
        return IN_PLACE
    if static is not None and not isinstance(static, (int, float, bool)):
        reduction = _reduction_name(static)
        if reduction is None:
            ctx.unsupported(call_node, f"the MPI argument {static!r}")
        return reduction
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
