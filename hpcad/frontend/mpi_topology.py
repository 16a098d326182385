"""MPI calls that need the communicator's topology at lowering time, and persistent requests
(mpi_persistent.py): neighbourhood collectives and Get_coords/Get_topo on a Cartesian
communicator (typed `!cart<ndim>` by signature.py, so the number of neighbours and of
coordinates is known), and the calls hpcad refuses, each with the reason."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..ir.core import Value
from ..ir.dialects import cart_ndim
from ..ir.types import ArrayType, i1, i64
from . import mpi_persistent
from .mpi_arguments import bind_arguments, mpi_operand

if TYPE_CHECKING:
    from .context import LoweringContext
    from .markers import MpiCall

_NEIGHBOURHOOD = ("neighbor_alltoall", "neighbor_allgather")
_CART_QUERIES = ("cart_coords", "cart_topo")
# calls declared in a marker file only to be refused with their reason
_REFUSED = {"processor_name": (
    "MPI.Get_processor_name: it returns a string, which a kernel cannot hold",
    "call it outside the kernel and print it there")}

# MPI families refused wherever they appear in a kernel: a word of the call -> why
_FAMILIES = {"Win": " (one-sided communication: a Put or Get has no matching call on the "
                    "target rank that could carry its adjoint back; use Sendrecv or "
                    "Isend/Irecv)",
             "Create_intercomm": " (intercommunicators: a rank there names a process of "
                                 "the other group)",
             "Start": " (Start applies to persistent requests, made by comm.Send_init or "
                      "comm.Recv_init)"}
# calls that make a communicator: a kernel takes its communicators as arguments
_MAKE_COMM = (" (a kernel cannot make a communicator: make it before calling the kernel, "
              "cart = comm.Create_cart(dims, periods=periods) or sub = comm.Split(color, "
              "key), and pass it to the kernel as an argument)")
_FAMILIES.update({word: _MAKE_COMM for word in (
    "Split", "Split_type", "Create_cart", "Create_graph", "Create_dist_graph",
    "Create_dist_graph_adjacent", "Create", "Create_group", "Dup", "Clone", "Idup", "Sub")})
_FAMILIES.update({word: (" (derived datatypes: hpcad sends a buffer's elements in its own dtype; "
                          "pass a strided slice such as u[:, 1] to a blocking call, which "
                          "hpcad packs, or copy it into a contiguous array first)")
                   for word in ("Create_contiguous", "Create_vector", "Create_hvector",
                                "Create_indexed", "Create_indexed_block", "Create_subarray",
                                "Create_struct", "Create_resized", "Commit")})
_FAMILIES["Compute_dims"] = (" (compute the process grid before calling the kernel: cart = "
                             "comm.Create_cart(MPI.Compute_dims(size, 2), periods=periods), "
                             "and pass cart to the kernel as an argument)")


def refusal(name: str) -> str:
    """Why hpcad refuses the MPI call `name` (as written in the kernel), or ''."""
    return next((why for word, why in _FAMILIES.items() if word in name.split(".")), "")


def handles(ctx: LoweringContext, call: MpiCall, node) -> bool:
    return call.op in _NEIGHBOURHOOD or call.op in _CART_QUERIES or call.op in _REFUSED \
        or mpi_persistent.takes(ctx, call, node)


def lower(ctx: LoweringContext, call: MpiCall, comm: Value, node):
    if call.op in _REFUSED:
        ctx.unsupported(node, *_REFUSED[call.op])
    if mpi_persistent.takes(ctx, call, node):
        return mpi_persistent.lower(ctx, call, comm, node)
    ndim = cart_ndim(comm.type)
    if ndim is None:
        ctx.unsupported(node, f"MPI {call.op} on a communicator without a Cartesian topology",
                        "hpcad knows the neighbours of communicators made by comm.Create_cart "
                        "only (graph and dist-graph topologies are not supported)")
    values = bind_arguments(ctx, call, node)
    if call.op in _NEIGHBOURHOOD:
        return neighbourhood(ctx, call.op, values, comm, ndim, node)
    count = ndim * (3 if call.op == "cart_topo" else 1)
    rank = [ctx.coerce_index(values["rank"], node)] if "rank" in values else []
    results = ctx.builder.op(f"mpi.{call.op}", rank + [comm], [i64] * count).results
    if call.op == "cart_coords":
        return tuple(results)
    return tuple(tuple(results[k * ndim:(k + 1) * ndim]) for k in range(3))


def neighbourhood(ctx: LoweringContext, op: str, values: dict, comm: Value, ndim: int,
                  node) -> None:
    """A neighbourhood collective: one block per neighbour along the buffers' first axis
    (checked when it runs), in MPI's order (-d0, +d0, -d1, +d1, ...)."""
    send, recv = (mpi_operand(ctx, name, values.get(name), node)
                  for name in ("sendbuf", "recvbuf"))
    neighbours = 2 * ndim
    _check_blocks(ctx, recv, neighbours, node)
    if op == "neighbor_alltoall":
        _check_blocks(ctx, send, neighbours, node)
        _check(ctx, _size(ctx, send), _size(ctx, recv),
               "Neighbor_alltoall's send and receive buffers have the same size", node)
    elif send.type.ndim + 1 != recv.type.ndim:
        ctx.unsupported(node, "Neighbor_allgather into a buffer that is not one block per "
                              "neighbour of the send buffer's shape",
                        f"receive into an array of shape ({neighbours}, *sendbuf.shape)")
    else:
        total = ctx.builder.op1("arith.mul", [_size(ctx, send), ctx.const(neighbours, i64)],
                                i64)
        _check(ctx, total, _size(ctx, recv), "Neighbor_allgather receives one send buffer "
                                             "per neighbour", node)
    ctx.builder.op(f"mpi.{op}", [send, recv, comm])


def _extent(ctx: LoweringContext, buf: Value, axis: int) -> Value:
    return ctx.builder.op1("mem.shape", [buf], i64, {"axis": axis})


def _size(ctx: LoweringContext, buf: Value) -> Value:
    assert isinstance(buf.type, ArrayType)
    total = _extent(ctx, buf, 0)
    for axis in range(1, buf.type.ndim):
        total = ctx.builder.op1("arith.mul", [total, _extent(ctx, buf, axis)], i64)
    return total


def _check(ctx: LoweringContext, a: Value, b: Value, what: str, node) -> None:
    cond = ctx.builder.op1("arith.cmp", [a, b], i1, {"pred": "eq"})
    ctx.runtime_check(cond, what, node)


def _check_blocks(ctx: LoweringContext, buf: Value, neighbours: int, node) -> None:
    _check(ctx, _extent(ctx, buf, 0), ctx.const(neighbours, i64),
           f"a neighbourhood collective's buffers have one block per neighbour along their "
           f"first axis ({neighbours} on this Cartesian communicator)", node)
