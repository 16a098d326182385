"""Rules of the v-form collectives (per-rank counts and displacements) and the reduce-scatters.
All are linear: the tangent travels by the same call. Adjoints transpose the data movement:
gatherv <-> scatterv, alltoallv with send and receive sides exchanged, allgatherv -> a
reduce onto rank 0 and a scatterv (a reduce-scatter for any displacements),
reduce_scatter -> allgatherv, reduce_scatter_block -> allgather. A receive buffer's
adjoint is zeroed only where the forward call wrote it: the same call run again on zeros
writes exactly those blocks, so elements between or after the blocks keep their adjoint."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import DifferentiationError, where
from ...frontend.mpi_buffers import exclusive_prefix_sums
from ...ir.core import Builder, Op, Value
from ...ir.types import ArrayType, element, i64
from ..common import array_type, zero
from .registry import defrule

if TYPE_CHECKING:
    from ..regions import Region
    from .context import ForwardContext, ReverseContext

SUM = {"op": "sum"}


def zeros(b: Builder, shape_of: Value, dtype_of: Value) -> Value:
    """A zero C-contiguous array of shape_of's shape and dtype_of's element type (a vector
    type for batched derivatives)."""
    t = array_type(shape_of)
    dims = [b.op1("mem.shape", [shape_of], i64, {"axis": k}) for k in range(t.ndim)]
    new: Value = b.op1("mem.alloc", dims, ArrayType(array_type(dtype_of).dtype, t.ndim, "C"),
                       {"fill": "zeros"}, name_hint="received")
    return new


def linear_only(op: Op) -> None:
    if op.attrs.get("op", "sum") != "sum":
        raise DifferentiationError(
            f"{where(op.loc)}: the derivative of an MPI reduce-scatter with "
            f"{op.attrs['op']} is not supported; reduce a sum")


def jvp_vform(ctx: ForwardContext, op: Op) -> None:
    """The tangents move as the values do; a constant send buffer sends zeros, so that
    the receive buffer's tangent changes exactly where its values do."""
    new = ctx.clone(op)
    sb, rb = op.operands[0], op.operands[1]
    if not ctx.act.shadowed(rb):
        return
    linear_only(op)
    d_rb = ctx.shadow_of(rb)
    d_sb = ctx.shadow_of(sb) if ctx.act.shadowed(sb) else zeros(ctx.b, new.operands[0], d_rb)
    ctx.b.op(op.name, [d_sb, d_rb] + new.operands[2:], attrs=dict(op.attrs))


def kept_as_read(ctx: ReverseContext, op: Op, arr: Value, region: Region) -> None:
    """The adjoint reads the counts and displacements as the call did: they must neither
    change after it nor be made inside a loop (the tape keeps scalars, not these arrays)."""
    if not ctx.region_of(arr, region).top or not ctx.unchanged_after(op, [arr]):
        raise DifferentiationError(
            f"{where(op.loc)}: the counts or displacements `{arr.name or '?'}` of this MPI "
            f"{op.name[4:]} are made or changed inside a loop or after the call; its "
            f"derivative reads them as the call did: fill them once before the loop (one "
            f"array per set of counts) and leave them unchanged")


class Adjoint:
    """What every v-form adjoint needs: the primal operands as the reverse sweep sees
    them, the receive buffer's adjoint, and the send buffer's where it has one."""

    def __init__(self, ctx: ReverseContext, op: Op, region: Region, comm: Value | None = None):
        self.op, self.b = op, ctx.b
        sb, rb = op.operands[0], op.operands[1]
        self.d_rb = ctx.shadow(rb, region)
        self.d_sb = ctx.shadow(sb, region) if ctx.act.shadowed(sb) else None
        # neither buffer's values are needed, only their shapes: the send buffer's is its
        # adjoint's and the receive buffer's its adjoint's (a buffer allocated inside a loop
        # is not kept for the reverse sweep)
        send = self.d_sb if self.d_sb is not None else ctx.primal(sb, region)
        for v in op.operands[2:]:
            if isinstance(v.type, ArrayType):
                kept_as_read(ctx, op, v, region)
        self.args = [send, self.d_rb] + [ctx.primal(v, region) for v in op.operands[2:]]
        self.comm = comm if comm is not None else self.args[-1]

    def call(self, kind: str, operands: list[Value]) -> None:
        self.b.op(f"mpi.{kind}", operands + [self.comm], attrs=SUM)

    def received(self) -> Value:
        """A zero array like the send buffer's adjoint, to receive its increment into."""
        assert self.d_sb is not None
        return zeros(self.b, self.d_sb, self.d_sb)

    def add(self, back: Value) -> None:
        assert self.d_sb is not None
        self.b.op("mem.add_into", [back, self.d_sb])

    def clear_received(self) -> None:
        """Zero the receive buffer's adjoint where the forward call wrote: run it again
        with a zero send buffer."""
        again = zeros(self.b, self.args[0], self.d_rb)
        self.b.op(self.op.name, [again, self.d_rb] + self.args[2:], attrs=SUM)

    def clear_all(self) -> None:
        self.b.op("mem.fill", [zero(self.b, element(array_type(self.d_rb).dtype)), self.d_rb])


def vjp_gatherv(ctx: ReverseContext, op: Op, region: Region) -> None:
    """The root's adjoint blocks are scattered back to the ranks that sent them."""
    if not ctx.act.shadowed(op.operands[1]):
        return
    a = Adjoint(ctx, op, region)
    _, _, counts, displs, root = a.args[:5]
    if a.d_sb is not None:
        back = a.received()
        a.call("scatterv", [a.d_rb, back, counts, displs, root])
        a.add(back)
    a.clear_received()


def vjp_scatterv(ctx: ReverseContext, op: Op, region: Region) -> None:
    """The pieces' adjoints are gathered into the root's blocks (blocks a scatterv sends
    twice would be received twice: the gatherv's run-time check rejects overlaps)."""
    if not ctx.act.shadowed(op.operands[1]):
        return
    a = Adjoint(ctx, op, region)
    _, _, counts, displs, root = a.args[:5]
    if a.d_sb is not None:
        back = a.received()   # stays zero off the root
        a.call("gatherv", [a.d_rb, back, counts, displs, root])
        a.add(back)
    a.clear_received()


def vjp_allgatherv(ctx: ReverseContext, op: Op, region: Region) -> None:
    """Every rank's block of the summed adjoints goes back to its sender: a reduce onto
    rank 0, then a scatterv of the blocks (a reduce-scatter that takes displacements)."""
    if not ctx.act.shadowed(op.operands[1]):
        return
    a = Adjoint(ctx, op, region)
    _, _, counts, displs = a.args[:4]
    if a.d_sb is not None:
        root = a.b.op1("arith.const", [], i64, {"value": 0})
        total = zeros(a.b, a.d_rb, a.d_rb)
        a.call("reduce", [a.d_rb, total, root])
        back = a.received()
        a.call("scatterv", [total, back, counts, displs, root])
        a.add(back)
    a.clear_received()


def vjp_alltoallv(ctx: ReverseContext, op: Op, region: Region) -> None:
    """alltoallv with the send and receive counts and displacements exchanged."""
    if not ctx.act.shadowed(op.operands[1]):
        return
    a = Adjoint(ctx, op, region)
    _, _, send_counts, send_displs, recv_counts, recv_displs = a.args[:6]
    if a.d_sb is not None:
        back = a.received()
        a.call("alltoallv", [a.d_rb, back, recv_counts, recv_displs, send_counts,
                             send_displs])
        a.add(back)
    a.clear_received()


def vjp_reduce_scatter(ctx: ReverseContext, op: Op, region: Region) -> None:
    """Every rank's received adjoint goes to its block of every send buffer: an
    allgatherv at the blocks' offsets (the prefix sums of the counts)."""
    if not ctx.act.shadowed(op.operands[1]):
        return
    linear_only(op)
    a = Adjoint(ctx, op, region)
    counts = a.args[2]
    if a.d_sb is not None:
        back = a.received()
        a.call("allgatherv", [a.d_rb, back, counts, exclusive_prefix_sums(a.b, counts)])
        a.add(back)
    a.clear_all()   # the run-time check makes the receive buffer exactly this rank's block


def vjp_reduce_scatter_block(ctx: ReverseContext, op: Op, region: Region) -> None:
    """Every rank's received adjoint goes to its block of every send buffer."""
    if not ctx.act.shadowed(op.operands[1]):
        return
    linear_only(op)
    a = Adjoint(ctx, op, region)
    if a.d_sb is not None:
        back = a.received()
        a.call("allgather", [a.d_rb, back])
        a.add(back)
    a.clear_all()


def vjp_allgather(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    """allgather's adjoint is one reduce_scatter_block: every rank's piece of the summed
    adjoints goes back to the rank that contributed it."""
    if not ctx.act.shadowed(op.operands[1]):
        return
    a = Adjoint(ctx, op, region, comm)
    if a.d_sb is not None:
        back = a.received()
        a.call("reduce_scatter_block", [a.d_rb, back])
        a.add(back)
    a.clear_all()


VJPS = {"gatherv": vjp_gatherv, "scatterv": vjp_scatterv, "allgatherv": vjp_allgatherv,
        "alltoallv": vjp_alltoallv, "reduce_scatter": vjp_reduce_scatter,
        "reduce_scatter_block": vjp_reduce_scatter_block}
for _kind, _vjp in VJPS.items():
    defrule(f"mpi.{_kind}", jvp=jvp_vform, vjp=_vjp)
