"""Lowering of MPI calls declared by marker files (markers/mpi4py.toml, numba_mpi.toml):
communicator methods (`comm.Sendrecv(...)`), attributes (`comm.rank`) and module functions
(`numba_mpi.allreduce(...)`, on COMM_WORLD) become `mpi` ops with their operands in the op's
canonical order. Communicators are constant arguments; buffers are arrays or views."""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from ..errors import UnsupportedConstruct
from ..ir.core import Op, Value, walk
from ..ir.dialects import MPI_OPERANDS
from ..ir.types import OpaqueType, f64, i1, i64
from . import mpi_topology, words
from .arrays import ArrayExpr, Sliced
from .markers import MpiCall, mpi_frameworks, mpi_table
from .mpi_arguments import bind_arguments, is_request, mpi_operand, refuse_pending_access
from .mpi_persistent import is_persistent
from .mpi_reductions import LOWERINGS, Site, elements

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
            "rank": (i64,), "size": (i64,), "cart_shift": (i64, i64),
            "iallreduce": (OpaqueType("request"),), "ibcast": (OpaqueType("request"),),
            "ireduce": (OpaqueType("request"),), "iallgather": (OpaqueType("request"),),
            "cart_ndim": (i64,), "wtime": (f64,), "sendrecv": (i64,)}
# results the IR keeps that the Python call does not return (Sendrecv's received tag)
_HIDDEN = ("sendrecv",)
_ICOLLECTIVES = ("iallreduce", "ibcast", "ireduce", "iallgather")
# collectives whose buffers' sizes the call's counts come from: (the larger buffer, the
# other, how many of the other's size the larger holds: "ranks" or 1, whether only the root's
# buffers count). Both back ends take the counts from the sizes, as mpi4py does, and check
# these at run time (mpi4py raises where they do not hold; MPI would read or write past a
# buffer, or place the blocks elsewhere)
_SIZES = {"allreduce": ("recvbuf", "sendbuf", 1, False),
          "iallreduce": ("recvbuf", "sendbuf", 1, False),
          "reduce": ("recvbuf", "sendbuf", 1, True),
          "ireduce": ("recvbuf", "sendbuf", 1, True),
          "gather": ("recvbuf", "sendbuf", "ranks", True),
          "scatter": ("sendbuf", "recvbuf", "ranks", True),
          "allgather": ("recvbuf", "sendbuf", "ranks", False),
          "iallgather": ("recvbuf", "sendbuf", "ranks", False),
          "alltoall": ("recvbuf", "sendbuf", 1, False)}


def unsupported_mpi(ctx: LoweringContext, node, what: str = "call", hint: str = ""):
    """An MPI call or attribute no marker file declares: say so, and what is supported."""
    file, line = ctx.loc_of(node)
    name = ast.unparse(node.func if isinstance(node, ast.Call) else node)
    hint = hint or mpi_topology.refusal(name)
    supported = "; ".join(f"{framework}: {', '.join(names)}"
                          for framework, names in mpi_frameworks().items())
    raise UnsupportedConstruct(f"{file}:{line}: MPI {what} `{name}` is not supported by "
                               f"hpcad{hint}; supported (markers/*.toml): {supported}")


# request-completion calls -> what they return (mpi4py's spelling; a marker's `results`
# overrides it). Each completes its requests at a known point, the same on every run (the
# derivative needs every message's completion there): Wait, Waitall, Test and Testall each
# request still active (Test* then return True), Waitany and Testany the lowest-index active
# one (its index; MPI.UNDEFINED if none is active), Waitsome every active one (their indices)
COMPLETIONS = {"wait": (), "waitall": (), "test": ("flag",), "testall": ("flag",),
               "waitany": ("index",), "testany": ("index", "flag"), "waitsome": ("indices",)}
_SINGLE = ("wait", "test")                   # take one request, not a list
_LOWEST = ("waitany", "testany")             # complete the lowest-index active request
_STATEFUL = ("waitany", "testany", "waitsome")   # results depend on which are active
# per kernel being lowered, nonblocking call -> how many loop bodies enclose it (a wait in
# more would repeat)
_LOOP_DEPTH: WeakKeyDictionary[LoweringContext, dict[Op, int]] = WeakKeyDictionary()


def request_method(ctx: LoweringContext, req: Value, name: str, node):
    call = mpi_table()[0].get("request." + name)
    if call is None or node.args or node.keywords:
        unsupported_mpi(ctx, node)
    return complete(ctx, call, [req], node)


def request_list(ctx: LoweringContext, node):
    """A list literal of MPI requests (`reqs = [r1, r2]`): the tuple of them; any other
    list literal is not supported."""
    if not node.elts:   # (filled by reqs.append(comm.Irecv(...)), as mpi4py codes do)
        ctx.unsupported(node, "an empty list (a list of requests filled by append)",
                        "write the requests in one list literal, reqs = [comm.Irecv(...), "
                        "comm.Isend(...)], and complete them with MPI.Request.Waitall(reqs)")
    items = tuple(ctx.expr(e) for e in node.elts
                  if isinstance(e, (ast.Name, ast.Call, ast.Attribute)))
    if items and len(items) == len(node.elts) and any(is_persistent(v) for v in items):
        ctx.unsupported(node, "a list of persistent requests bound to a name",
                        "name each request (r1 = comm.Recv_init(...), r2 = "
                        "comm.Send_init(...)) and list the names in each call: "
                        "MPI.Prequest.Startall([r1, r2]), MPI.Request.Waitall([r1, r2])")
    if not items or len(items) != len(node.elts) or \
            not all(is_request(ctx, v) for v in items):
        ctx.unsupported(node, *words.describe(node, words.EXPRESSIONS))
    return items


def _requests(ctx: LoweringContext, call: MpiCall, node) -> list[Value]:
    """The requests a completion call is given: one, or a list or tuple (literal or bound
    to a name) of request variables."""
    if len(node.args) != 1 or node.keywords:
        ctx.unsupported(node, f"MPI {call.op} with other than one positional argument")
    arg = node.args[0]
    if call.op in _SINGLE:
        got: object = (ctx.expr(arg),)
    elif isinstance(arg, (ast.List, ast.Tuple)):
        got = tuple(ctx.expr(e) for e in arg.elts)
    else:
        got = ctx.expr(arg)
    if not isinstance(got, tuple) or not all(is_request(ctx, r) for r in got):
        ctx.unsupported(node, f"MPI {call.op} of something that is not a list or tuple of "
                              f"requests", words.REQUESTS)
    return list(got)


def complete(ctx: LoweringContext, call: MpiCall, reqs: list[Value], node):
    """A wait for each request the call completes (COMPLETIONS), and its results."""
    done = []
    for k, req in enumerate(reqs):
        if not (isinstance(req.owner, Op) and req.owner.dialect == "mpi"):
            ctx.unsupported(node, f"`{ast.unparse(node.func)}` of a request that an `if` or a loop "
                                  f"above chose among several nonblocking calls",
                            "post the call and complete it in the same branch (each `if` "
                            "arm with its Isend/Irecv and their Wait), or make one call "
                            "whose peer and tag are computed before it (peer = 1 - rank)")
        depth = _LOOP_DEPTH.get(ctx, {}).get(req.owner)   # (None: made by other lowering)
        if depth is not None and depth < len(ctx.loops):
            ctx.unsupported(node, f"MPI {call.op} in a loop that its request's call is "
                                  f"outside of (it would complete the request again in "
                                  f"every iteration)", "complete it before the loop, or "
                                  "post the call inside the loop")
        if call.op in _STATEFUL and req.owner.parent is not ctx.builder.block:
            ctx.unsupported(node, f"MPI {call.op} in a loop or branch that its requests "
                                  f"were made outside of", "hpcad completes requests at "
                                  "points known when it compiles, which needs to know "
                                  "there which are still active: call it in the block "
                                  "that made the requests, or use MPI.Request.Waitall")
        if _completed(ctx, req, node) or (call.op in _LOWEST and done):
            continue
        refuse_pending_access(ctx, req, node)
        ctx.builder.op("mpi.wait", [req])
        done.append(k)
    values = {"status": lambda: ctx.const(0, i64), "flag": lambda: ctx.const(True, i1),
              "index": lambda: ctx.const(done[0] if done else _undefined(), i64),
              "indices": lambda: tuple(ctx.const(k, i64) for k in done)}
    results = tuple(values[name]() for name in call.results or COMPLETIONS[call.op])
    return results[0] if len(results) == 1 else (results or None)


def _completed(ctx: LoweringContext, req: Value, node) -> bool:
    """Whether a wait above in the request's block (or the current one) completed it; an
    error where a branch or loop above may have."""
    start = req.owner
    if not isinstance(start, Op) or start.parent is None:
        ctx.unsupported(node, "completing a request carried by a loop or chosen by a "
                              "branch", "wait for it in the iteration that made it")
    blocks = [start.parent] + [b for b in (ctx.builder.block,) if b is not start.parent]
    found = False
    for block in blocks:
        for op in block.ops:
            if op.name == "mpi.wait" and op.operands[0] is req:
                found = True
            elif any(o.name == "mpi.wait" and o.operands[0] is req
                     for region in op.regions for o in walk(region)):
                ctx.unsupported(node, "completing a request that a branch or loop above "
                                      "may have completed already", "complete each request "
                                      "once, in its call's block or in every branch")
    return found


def _undefined() -> int:
    from mpi4py import MPI
    return int(MPI.UNDEFINED)


def _returned(ctx: LoweringContext, call: MpiCall, value):
    """What a call whose marker names its `results` returns: its op's request beside the
    status numba-mpi returns first (hpcad raises MpiError on failures, so it is 0)."""
    if not call.results:
        return value
    return tuple(value if name == "request" else ctx.const(0, i64) for name in call.results)


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
    if mpi_topology.handles(ctx, call, node):
        return mpi_topology.lower(ctx, call, comm, node)
    if call.op in COMPLETIONS:
        return complete(ctx, call, _requests(ctx, call, node), node)
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
    out = emit_mpi(ctx, call.op, values, attrs, comm, node)
    return out if isinstance(out, tuple) else _returned(ctx, call, out)


def emit_mpi(ctx: LoweringContext, kind: str, values: dict, attrs: dict, comm: Value, node):
    """One `mpi.<kind>` op on the values of its operands (by name); its result, if any."""
    if kind == "send" and isinstance(values.get("buf"), ArrayExpr) \
            and not isinstance(values["buf"], Sliced):   # `comm.Send(x * 2, ...)` (a slice
        # sends its view): a blocking send reads it as a collective's send buffer
        values = {**values, "buf": mpi_operand(ctx, "sendbuf", values["buf"], node)}
    operands = [mpi_operand(ctx, name, values.get(name), node)
                for name in MPI_OPERANDS[kind]] + [comm]
    if kind in _NONBLOCKING and operands[0].type.layout != "C":
        ctx.unsupported(node, f"{_NONBLOCKING[kind]} a non-contiguous array (a strided "
                              f"slice such as u[:, 1])", _NONBLOCKING_HINT[kind])
    if kind in _ICOLLECTIVES:
        _check_contiguous(ctx, kind, operands, node)
    if kind in _SIZES:
        _check_sizes(ctx, kind, dict(zip(MPI_OPERANDS[kind], operands, strict=False)), comm,
                     node)
    if kind == "allreduce_scalar":
        result = [operands[0].type]
    else:
        result = list(_RESULTS.get(kind, ()))
    op = ctx.builder.op(f"mpi.{kind}", operands, result, attrs)
    if result == [OpaqueType("request")]:
        _LOOP_DEPTH.setdefault(ctx, {})[op] = len(ctx.loops)
    if kind in _HIDDEN:
        return None
    if len(op.results) > 1:
        return tuple(op.results)
    return op.results[0] if op.results else None


def _check_sizes(ctx: LoweringContext, kind: str, named: dict, comm: Value, node):
    """A run-time check of the buffer sizes a collective's counts come from (_SIZES)."""
    large, small, times, rooted = _SIZES[kind]
    b = ctx.builder
    n_small = elements(ctx, named[small])
    ranks = b.op1("mpi.size", [comm], i64) if times == "ranks" or kind == "alltoall" \
        else None
    want = b.op1("arith.mul", [n_small, ranks], i64) if times == "ranks" else n_small
    ok = b.op1("arith.cmp", [elements(ctx, named[large]), want], i1, {"pred": "eq"})
    if kind == "alltoall":   # (one block per rank from each buffer)
        whole = b.op1("arith.cmp", [b.op1("arith.mod", [n_small, ranks], i64),
                                    ctx.const(0, i64)], i1, {"pred": "eq"})
        ok = b.op1("arith.and", [ok, whole], i1)
    if rooted:
        rank = b.op1("mpi.rank", [comm], i64)
        elsewhere = b.op1("arith.cmp", [rank, named["root"]], i1, {"pred": "ne"})
        ok = b.op1("arith.or", [ok, elsewhere], i1)
    written = ast.unparse(node.func) if isinstance(node, ast.Call) else kind
    names = {"recvbuf": "receive buffer", "sendbuf": "send buffer"}
    need = ("one block of the send buffer's elements per rank" if kind == "alltoall" else
            f"the number of ranks times the {names[small]}'s elements" if times == "ranks"
            else f"as many elements as the {names[small]}")
    ctx.runtime_check(ok, f"`{written}`: the {names[large]}{' on the root' if rooted else ''}"
                          f" must hold {need} (MPI takes the counts from the buffers' sizes)",
                      node)


def _check_contiguous(ctx: LoweringContext, kind: str, operands: list[Value], node):
    """MPI reads and writes a nonblocking collective's buffers until its wait: no copy may
    stand in for a strided one."""
    for name, v in zip(MPI_OPERANDS[kind], operands, strict=False):
        if name.endswith("buf") and v.type.layout != "C":
            ctx.unsupported(node, f"a non-blocking collective on a non-contiguous array "
                                  f"(`{name}`, a strided slice such as u[:, 1])",
                            "copy it into a contiguous array first (buf = np.empty(n); "
                            "buf[:] = u[:, 1]), or use the blocking call")
