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
from .markers import MpiCall, mpi_frameworks, mpi_table

if TYPE_CHECKING:
    from .lower import LoweringContext


def _reduction_name(obj) -> str | None:
    """'sum'/'max'/'min' for mpi4py's MPI.SUM/MAX/MIN or numba-mpi's Operator members."""
    try:
        from mpi4py import MPI
        for name in ("SUM", "MAX", "MIN"):
            if obj is getattr(MPI, name):
                return name.lower()
    except ImportError:
        pass
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name in ("SUM", "MAX", "MIN"):
        return name.lower()
    return None


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
    attrs = {}
    if "op" in values:
        attrs["op"] = values.pop("op")
    operands = []
    for name in MPI_OPERANDS[call.op]:
        v = values.get(name)
        if name.endswith("buf"):
            if not isinstance(v, Value) or not isinstance(v.type, ArrayType):
                ctx.unsupported(node, f"MPI buffer `{name}` that is not an array or a "
                                      f"view", "pass an array or a slice like u[0:1]")
        elif name == "sendobj":
            if not isinstance(v, Value) or not isinstance(v.type, ScalarType):
                ctx.unsupported(node, "a lower-case reduction of a non-scalar",
                                "use Allreduce on arrays")
            v = v if v.type.is_float or v.type.is_bool else ctx.coerce(v, i64)
        else:
            v = ctx.coerce_index(v, node)
        operands.append(v)
    operands.append(comm)
    result = []
    if call.op in ("isend", "irecv"):
        result = [OpaqueType("request")]
    elif call.op == "allreduce_scalar":
        result = [operands[0].type]
    elif call.op in ("rank", "size"):
        result = [i64]
    elif call.op == "cart_shift":
        result = [i64, i64]
    op = ctx.builder.op(f"mpi.{call.op}", operands, result, attrs)
    if len(op.results) > 1:
        return tuple(op.results)
    return op.results[0] if op.results else None


def mpi_argument(ctx: LoweringContext, node, call_node):
    if isinstance(node, ast.Constant) and node.value is None:
        ctx.unsupported(call_node, "None as an MPI argument")
    static = ctx.static_value(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
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
    reduction = {"SUM": "sum", "MAX": "max", "MIN": "min"}.get(text)
    if reduction is not None:
        return reduction
    from mpi4py import MPI
    return ctx.const(int(getattr(MPI, text)), i64)
