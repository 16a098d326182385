"""Persistent requests (`comm.Send_init`, `comm.Recv_init`, `req.Start()`,
`MPI.Prequest.Startall`, `req.Wait()`, `MPI.Request.Waitall`, `req.Free()`), lowered in the
frontend: a persistent request is a compile-time description of a message (buffer, peer, tag,
communicator), not an IR value, so loops never carry it. Each Start posts today's `mpi.isend`
or `mpi.irecv` on the described buffer and each Wait waits on that request, so the derivative
rules of non-blocking messages apply unchanged."""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from ..ir.core import Block, Value
from ..ir.types import OpaqueType
from .mpi_arguments import bind_arguments, is_request, mpi_operand, refuse_pending_access

if TYPE_CHECKING:
    from .context import LoweringContext
    from .markers import MpiCall

# the persistent call -> the non-blocking op each Start posts
_STARTS = {"send_init": "isend", "recv_init": "irecv"}
_HINT = ("start and wait a persistent request in the same loop body, e.g. "
         "MPI.Prequest.Startall(reqs) ... MPI.Request.Waitall(reqs) inside the time loop")


class Persistent:
    """What Send_init/Recv_init described, and the request of its current Start (with the
    block it was posted in: its Wait must be in the same block)."""

    def __init__(self, op: str, operands: list[Value]):
        self.op = op
        self.operands = operands
        self.request: Value | None = None
        self.block: Block | None = None


def is_persistent(v) -> bool:
    return isinstance(v, Persistent)


def takes(ctx: LoweringContext, call: MpiCall, node) -> bool:
    """Whether this module lowers the call: a persistent call, or a Waitall naming one."""
    if call.op in _STARTS or call.op == "startall":
        return True
    return call.op == "waitall" and len(node.args) == 1 \
        and isinstance(node.args[0], (ast.List, ast.Tuple)) \
        and any(isinstance(e, ast.Name) and is_persistent(ctx.env.get(e.id))
                for e in node.args[0].elts)


def lower(ctx: LoweringContext, call: MpiCall, comm: Value, node):
    if call.op in _STARTS:
        return describe(ctx, call, comm, node)
    if call.op == "startall":
        for req in _listed(ctx, node, "Startall"):
            start(ctx, _persistent(ctx, req, node), node)
        return None
    for req in _listed(ctx, node, "Waitall"):   # a Waitall naming a persistent request
        wait(ctx, req, node)
    return None


def describe(ctx: LoweringContext, call: MpiCall, comm: Value, node) -> Persistent:
    values = bind_arguments(ctx, call, node)
    operands = [mpi_operand(ctx, name, values.get(name), node)
                for name in ("buf", "dest" if call.op == "send_init" else "source", "tag")]
    if operands[0].type.layout != "C":
        ctx.unsupported(node, "a persistent request on a non-contiguous array (a strided "
                              "slice such as u[:, 1], which MPI reads or writes after Start "
                              "returns)", "use a contiguous array and copy into or out of "
                              "it: buf = np.empty(n); buf[:] = u[:, 1]")
    return Persistent(call.op, operands + [comm])


def method(ctx: LoweringContext, req: Persistent, name: str, node):
    """req.Start(), req.Wait(), req.Free()."""
    if node.args or node.keywords or name not in ("Start", "Wait", "Free"):
        ctx.unsupported(node, f"`{name}` of a persistent request",
                        "use Start(), Wait() and Free() without arguments")
    if name == "Start":
        start(ctx, req, node)
    elif name == "Wait":
        wait(ctx, req, node)
    elif req.request is not None:
        ctx.unsupported(node, "freeing a persistent request that was started and not "
                              "waited for", "wait for it first")
    return None


def start(ctx: LoweringContext, req: Persistent, node) -> None:
    if req.request is not None:
        ctx.unsupported(node, "starting a persistent request again before waiting for it",
                        _HINT)
    req.request = ctx.builder.op1(f"mpi.{_STARTS[req.op]}", req.operands,
                                  OpaqueType("request"), name_hint="request")
    req.block = ctx.builder.block


def wait(ctx: LoweringContext, req, node) -> None:
    """A wait on a plain request, or on a persistent request's current Start."""
    if is_request(ctx, req):
        ctx.builder.op("mpi.wait", [req])
        return
    persistent = _persistent(ctx, req, node)
    if persistent.request is None or persistent.block is not ctx.builder.block:
        ctx.unsupported(node, "waiting for a persistent request not started in the same "
                              "block (the same loop body or branch)", _HINT)
    refuse_pending_access(ctx, persistent.request, node)
    ctx.builder.op("mpi.wait", [persistent.request])
    persistent.request = persistent.block = None


def _listed(ctx: LoweringContext, node, what: str) -> list:
    if len(node.args) != 1 or node.keywords or not isinstance(node.args[0],
                                                              (ast.List, ast.Tuple)):
        ctx.unsupported(node, f"{what} of anything but a list of request variables")
    return [ctx.expr(e) for e in node.args[0].elts]


def _persistent(ctx: LoweringContext, req, node) -> Persistent:
    if not is_persistent(req):
        ctx.unsupported(node, "a request list that mixes in something other than requests")
    return req
