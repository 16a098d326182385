"""Rules of the `mpi` dialect, one table entry per MPI call at the end of the file (adding a
call is one entry here plus its lowering): the tangent of a message is sent along
with it; the adjoint of `sendrecv` is `sendrecv` with source and destination exchanged (the
received adjoint is added to the send buffer's), of send/recv recv/send, of isend/irecv +
wait the reversed non-blocking call, of `allreduce(sum)` an `allreduce(sum)`, of
`reduce(sum -> root)` a `bcast(root)` and back, of `allgather` a `reduce_scatter_block`
(the v-forms' rules: mpi_vforms.py), of an `allreduce(max|min)` of a scalar the
summed adjoint to the rank that held the extremum (lowest rank on ties), of `barrier` a
`barrier`. MPI.IN_PLACE, array MAX/MIN/PROD, scans, Sendrecv_replace and the lower-case
collectives reach AD as these ops (frontend/mpi_reductions.py lowers them; `mpi.owner`,
the owners of an extremum, is an integer). Every rank runs the same program, so every rank
takes the same derivative steps and the adjoint communication matches. A message's adjoint
travels back with the forward message's tag."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ...errors import DifferentiationError, where
from ...ir.core import Block, Builder, Op, Value, walk
from ...ir.dialects import cart_ndim
from ...ir.types import ArrayType, ScalarType, element, i1, i64
from ..common import array_type, zero
from .mpi_vforms import vjp_allgather
from .registry import VjpRule, constant_jvp, constant_vjp, defrule, inert_jvp

if TYPE_CHECKING:
    from ..regions import Region
    from .context import ForwardContext, ReverseContext


def _sum_only(op: Op) -> None:
    if op.attrs.get("op", "sum") != "sum":
        raise DifferentiationError(
            f"{where(op.loc)}: the derivative of an MPI {op.attrs['op']}-reduction is not "
            f"supported yet; reduce a sum, or gather the values and take the extremum locally")


def jvp_sendrecv(ctx: ForwardContext, op: Op) -> None:
    new = ctx.clone(op)
    sb, rb = op.operands[0], op.operands[3]
    if not ctx.act.shadowed(rb):
        return
    ops = new.operands
    # a constant's tangent is zero, sent as a message all the same: the elements a
    # short message (or one from PROC_NULL) does not reach keep their tangents. The tangent
    # is received with the tag its value came with (never ANY_TAG: it could match another
    # message from the same peer)
    d_sb = ctx.shadow_of(sb) if ctx.act.shadowed(sb) else _zeros_like(ctx.b, ops[0])
    ctx.b.op("mpi.sendrecv", [d_sb] + ops[1:3] + [ctx.shadow_of(rb), ops[4], new.results[0],
                                                  ops[-1]], [i64])


def jvp_allreduce(ctx: ForwardContext, op: Op) -> None:
    new = ctx.clone(op)
    sb, rb = op.operands[0], op.operands[1]
    if not ctx.act.shadowed(rb):
        return
    _sum_only(op)
    if ctx.act.shadowed(sb):
        ctx.b.op("mpi.allreduce", [ctx.shadow_of(sb), ctx.shadow_of(rb), new.operands[-1]],
                  attrs=op.attrs)
    else:
        ctx.b.op("mem.fill", [zero(ctx.b, array_type(rb).dtype), ctx.shadow_of(rb)])


def jvp_allreduce_scalar(ctx: ForwardContext, op: Op) -> None:
    new = ctx.clone(op)
    if not ctx.act.active(op.results[0]):
        return
    t = ctx.tangent_or_zero(op.operands[0])
    comm = new.operands[-1]
    if op.attrs.get("op", "sum") != "sum":   # the owner's tangent, shared with everyone
        mine = _is_owner(ctx.b, new.operands[0], new.results[0], comm)
        t = ctx.b.op1("arith.select", [mine, t, zero(ctx.b, t.type)], t.type)
    ctx.tan[op.results[0]] = ctx.b.op1("mpi.allreduce_scalar", [t, comm], t.type,
                                         {"op": "sum"})


def jvp_linear(ctx: ForwardContext, op: Op) -> None:
    """gather, scatter, allgather, alltoall are linear: the same op moves the tangents."""
    new = ctx.clone(op)
    sb, rb = op.operands[0], op.operands[1]
    gather = op.name == "mpi.gather"
    if not (ctx.act.shadowed(rb) or gather and ctx.act.shadowed(sb)):
        return
    if not ctx.act.shadowed(rb):   # a gather's receive buffer nothing reads (off the root)
        d_sb = ctx.shadow_of(sb)
        ctx.b.op(op.name, [d_sb, _blocks_of(ctx.b, d_sb, new.operands[-1])] + new.operands[2:])
    elif ctx.act.shadowed(sb):
        ctx.b.op(op.name, [ctx.shadow_of(sb), ctx.shadow_of(rb)] + new.operands[2:])
    else:
        ctx.b.op("mem.fill", [zero(ctx.b, array_type(rb).dtype), ctx.shadow_of(rb)])


def jvp_bcast(ctx: ForwardContext, op: Op) -> None:
    new = ctx.clone(op)
    if ctx.act.shadowed(op.operands[0]):
        ctx.b.op("mpi.bcast", [ctx.shadow_of(op.operands[0])] + new.operands[1:])


def jvp_reduce(ctx: ForwardContext, op: Op) -> None:
    new = ctx.clone(op)
    sb, rb = op.operands[0], op.operands[1]
    if not (ctx.act.shadowed(rb) or ctx.act.shadowed(sb)):
        return
    _sum_only(op)
    root, comm = new.operands[2], new.operands[-1]
    if ctx.act.shadowed(sb):   # (into a scratch where nothing reads the receive buffer)
        d_rb = ctx.shadow_of(rb) if ctx.act.shadowed(rb) else \
            _zeros_like(ctx.b, ctx.shadow_of(sb))
        ctx.b.op("mpi.reduce", [ctx.shadow_of(sb), d_rb, root, comm], attrs=op.attrs)
    else:
        d_rb = ctx.shadow_of(rb)
        _on_rank(ctx.b, root, comm,
                 lambda b: b.op("mem.fill", [zero(b, array_type(rb).dtype), d_rb]))


# -- point to point: the tangent travels as a second message after the value ------------
def jvp_message(ctx: ForwardContext, op: Op) -> None:
    new = ctx.clone(op)
    if ctx.act.shadowed(op.operands[0]):
        if op.name in ("mpi.recv", "mpi.irecv"):
            _named_source(op, op.operands[1])
        ctx.b.op(op.name, [ctx.shadow_of(op.operands[0])] + new.operands[1:])


def jvp_nonblocking(ctx: ForwardContext, op: Op) -> None:
    new = ctx.clone(op)
    if ctx.act.shadowed(op.operands[0]):
        if op.name == "mpi.irecv":
            _named_source(op, op.operands[1])
        tangent = ctx.b.op1(op.name, [ctx.shadow_of(op.operands[0])] + new.operands[1:],
                             new.results[0].type, name_hint="d_request")
        ctx.requests[op.results[0]] = tangent


def jvp_wait(ctx: ForwardContext, op: Op) -> None:
    _started(op)
    ctx.clone(op)
    tangent = ctx.requests.get(op.operands[0])
    if tangent is not None:
        ctx.b.op("mpi.wait", [tangent])


def vjp_barrier(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    ctx.b.op("mpi.barrier", [comm])


def vjp_sendrecv(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    """The received adjoint goes back whole, also where the send buffer is constant (then
    the sender drops it): a forward message shorter than its receive buffer then fails
    as a truncated message on the sender rather than giving a wrong gradient."""
    sb, dest, stag, rb, source = op.operands[:5]
    if not ctx.act.shadowed(rb):
        return
    d_rb = ctx.shadow(rb, region)
    if _is_any_source(source):
        raise DifferentiationError(
            f"{where(op.loc)}: receiving from ANY_SOURCE cannot be differentiated: the "
            f"adjoint must be sent back to the sender; name the source rank")
    back = _zeros_like(ctx.b, ctx.shadow(sb, region) if ctx.act.shadowed(sb)
                       else ctx.primal(sb, region))
    # each adjoint travels with its forward message's tag, named exactly on both sides (an
    # ANY_TAG receive could match another message from the same peer): the one received
    # goes back with the tag it came with (the call's result, also where it received with
    # ANY_TAG), the one sent comes back with the send tag
    got = ctx.primal(op.results[0], region)
    ctx.b.op("mpi.sendrecv", [d_rb, ctx.primal(source, region), got, back,
                               ctx.primal(dest, region), ctx.primal(stag, region), comm], [i64])
    if ctx.act.shadowed(sb):
        ctx.b.op("mem.add_into", [back, ctx.shadow(sb, region)])
    _zero_if_received(ctx, rb, source, region)


def _zero_if_received(ctx: ReverseContext, buf: Value, source: Value,
                      region: Region) -> None:
    """The receive overwrote buf (unless from PROC_NULL): its adjoint starts from zero."""
    received = ctx.b.op1("arith.cmp", [ctx.primal(source, region), _proc_null(ctx.b)], i1,
                          {"pred": "ne"})
    d_buf = ctx.shadow(buf, region)
    _when(ctx.b, received, lambda b: b.op("mem.fill", [zero(b, array_type(buf).dtype), d_buf]))


def vjp_send(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    buf, dest, tag = op.operands[:3]
    if ctx.act.shadowed(buf):
        d_buf = ctx.shadow(buf, region)
        back = _zeros_like(ctx.b, d_buf)
        ctx.b.op("mpi.recv", [back, ctx.primal(dest, region), ctx.primal(tag, region), comm])
        ctx.b.op("mem.add_into", [back, d_buf])


def vjp_recv(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    buf, source, tag = op.operands[:3]
    if ctx.act.shadowed(buf):
        _named_source(op, source)
        _named_tag(op, tag)
        ctx.b.op("mpi.send", [ctx.shadow(buf, region), ctx.primal(source, region),
                               ctx.primal(tag, region), comm])
        _zero_if_received(ctx, buf, source, region)


def vjp_nonblocking(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    _reverse_nonblocking(ctx, op, region)


def vjp_wait(ctx: ReverseContext, op: Op, region: Region) -> None:
    """The adjoint of a wait posts the reversed non-blocking call (with a shadow
    request); the adjoint of the isend/irecv waits on it. A nonblocking collective's
    adjoint is its blocking form's, here (its receive happens at the wait; MPI lets no one
    touch its buffers between the call and the wait)."""
    request = op.operands[0]
    start = _started(op)
    if start.name in COMPLETED_AT_WAIT:
        COMPLETED_AT_WAIT[start.name](ctx, start, region, ctx.primal(start.operands[-1],
                                                                     region))
        return
    buf, peer, tag = start.operands[:3]
    if not ctx.act.shadowed(buf):
        return
    if op.parent is not start.parent:
        raise DifferentiationError(
            f"{where(op.loc)}: this Isend/Irecv's wait is in another block (a branch) than "
            f"its call ({where(start.loc)}); its adjoint message is posted at the wait's "
            f"reverse and completed at the call's, which hpcad needs side by side: wait in "
            f"the call's block (nonblocking collectives, Iallreduce etc., may be waited in "
            f"a branch)")
    comm = ctx.primal(start.operands[-1], region)
    d_buf = ctx.shadow(buf, region)
    peer, tag = ctx.primal(peer, region), ctx.primal(tag, region)
    if start.name == "mpi.irecv":
        _named_source(start, start.operands[1])
        _named_tag(start, start.operands[2])
        shadow_request = ctx.b.op1("mpi.isend", [d_buf, peer, tag, comm],
                                    request.type, name_hint="adj_request")
        ctx.requests[request] = (shadow_request, None)
    else:
        back = _zeros_like(ctx.b, d_buf)
        shadow_request = ctx.b.op1("mpi.irecv", [back, peer, tag, comm], request.type,
                                    name_hint="adj_request")
        ctx.requests[request] = (shadow_request, back)


def _reverse_nonblocking(ctx: ReverseContext, op: Op, region: Region) -> None:
    got = ctx.requests.get(op.results[0])
    if got is None:
        if ctx.act.shadowed(op.operands[0]):
            _check_waits(op)
            raise DifferentiationError(f"{where(op.loc)}: internal: the wait of this "
                                       f"Isend/Irecv was not reversed")
        return
    shadow_request, back = got
    ctx.b.op("mpi.wait", [shadow_request])
    if op.name == "mpi.isend":
        assert back is not None, "an isend's adjoint receives into a buffer"
        ctx.b.op("mem.add_into", [back, ctx.shadow(op.operands[0], region)])
    else:
        _zero_if_received(ctx, op.operands[0], op.operands[1], region)


def vjp_allreduce(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    sb, rb = op.operands[0], op.operands[1]
    if not ctx.act.shadowed(rb):
        return
    _sum_only(op)
    d_rb = ctx.shadow(rb, region)
    if ctx.act.shadowed(sb):
        total = _zeros_like(ctx.b, d_rb)
        ctx.b.op("mpi.allreduce", [d_rb, total, comm], attrs=op.attrs)
        ctx.b.op("mem.add_into", [total, ctx.shadow(sb, region)])
    ctx.b.op("mem.fill", [zero(ctx.b, array_type(rb).dtype), d_rb])


def vjp_allreduce_scalar(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    """Communicates wherever the result is active (on every rank alike, passes/activity.py),
    also where no adjoint reached it or the operand is constant here."""
    res = op.results[0]
    if not ctx.act.active(res):
        return
    g = ctx.current(res)
    total = ctx.b.op1("mpi.allreduce_scalar", [g, comm], g.type, {"op": "sum"})
    if op.attrs.get("op", "sum") != "sum":   # all of it to the rank holding the extremum
        mine = _is_owner(ctx.b, ctx.primal(op.operands[0], region),
                         ctx.primal(res, region), comm)
        total = ctx.b.op1("arith.select", [mine, total, zero(ctx.b, g.type)], g.type)
    if ctx.act.active(op.operands[0]):
        ctx.add_adjoint(op.operands[0], total)


def vjp_gather(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    """gather's adjoint scatters the root's adjoint back; the root's receive buffer was
    overwritten."""
    _transpose_collective(ctx, op, region, comm, "mpi.scatter", root_only_recv=True)


def vjp_scatter(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    """scatter's adjoint gathers the pieces' adjoints onto the root."""
    _transpose_collective(ctx, op, region, comm, "mpi.gather", root_only_send=True)


def vjp_alltoall(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    _transpose_collective(ctx, op, region, comm, "mpi.alltoall")


def _transpose_collective(ctx: ReverseContext, op: Op, region: Region, comm: Value,
                          adjoint: str, root_only_recv: bool = False,
                          root_only_send: bool = False) -> None:
    sb, rb = op.operands[0], op.operands[1]
    if not (ctx.act.shadowed(rb) or root_only_recv and ctx.act.shadowed(sb)):
        return
    root = [ctx.primal(op.operands[2], region)] if len(op.operands) == 4 else []
    if not ctx.act.shadowed(rb):   # a gather's receive buffer nothing reads (off the root)
        d_rb = _blocks_of(ctx.b, ctx.shadow(sb, region), comm)
    else:
        d_rb = ctx.shadow(rb, region)
    if ctx.act.shadowed(sb):
        d_sb = ctx.shadow(sb, region)
        back = _zeros_like(ctx.b, d_sb)
        ctx.b.op(adjoint, [d_rb, back] + root + [comm])
        if root_only_send:
            _on_rank(ctx.b, root[0], comm, lambda b: b.op("mem.add_into", [back, d_sb]))
        else:
            ctx.b.op("mem.add_into", [back, d_sb])
    if not ctx.act.shadowed(rb):
        return
    if root_only_recv:
        _on_rank(ctx.b, root[0], comm,
                 lambda b: b.op("mem.fill", [zero(b, array_type(rb).dtype), d_rb]))
    else:
        ctx.b.op("mem.fill", [zero(ctx.b, array_type(rb).dtype), d_rb])


def vjp_bcast(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    """bcast's adjoint: the adjoints are summed onto the root (others end at zero)."""
    buf, root = op.operands[0], ctx.primal(op.operands[1], region)
    if not ctx.act.shadowed(buf):
        return
    d_buf = ctx.shadow(buf, region)
    total = _zeros_like(ctx.b, d_buf)
    ctx.b.op("mpi.reduce", [d_buf, total, root, comm], attrs={"op": "sum"})
    ctx.b.op("mem.fill", [zero(ctx.b, array_type(buf).dtype), d_buf])
    _on_rank(ctx.b, root, comm, lambda b: b.op("mem.add_into", [total, d_buf]))


def vjp_reduce(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    """reduce(sum)'s adjoint: the root's adjoint is broadcast and added to every send
    buffer's adjoint; the root's receive buffer was overwritten (its adjoint ends 0)."""
    sb, rb = op.operands[0], op.operands[1]
    if not _either_shadowed(ctx, sb, rb):
        return
    _sum_only(op)
    root = ctx.primal(op.operands[2], region)
    if ctx.act.shadowed(sb):
        d_sb = ctx.shadow(sb, region)
        shared = _zeros_like(ctx.b, d_sb)
        if ctx.act.shadowed(rb):
            d_rb = ctx.shadow(rb, region)
            _on_rank(ctx.b, root, comm, lambda b: b.op("mem.add_into", [d_rb, shared]))
        ctx.b.op("mpi.bcast", [shared, root, comm])
        ctx.b.op("mem.add_into", [shared, d_sb])
    if ctx.act.shadowed(rb):
        d_rb = ctx.shadow(rb, region)
        _on_rank(ctx.b, root, comm,
                 lambda b: b.op("mem.fill", [zero(b, array_type(rb).dtype), d_rb]))


def _either_shadowed(ctx: ReverseContext, sb: Value, rb: Value) -> bool:
    """Whether a rooted collective's adjoint communicates: also where this rank's receive
    buffer has no derivative while its send buffer has, as where MPI ignores it off the
    root (`comm.Reduce(x, None)` in a branch beside the root's call: the ranks' adjoint
    messages must match)."""
    return ctx.act.shadowed(rb) or ctx.act.shadowed(sb)


def _zeros_like(b: Builder, arr: Value) -> Value:
    """A zero array of arr's shape: the buffer an adjoint message is received into."""
    return _zeros_shaped(b, arr, arr)


def _blocks_of(b: Builder, arr: Value, comm: Value) -> Value:
    """Zeros of arr's type, one block of arr's shape per rank along axis 0: a gather's
    receive buffer."""
    t = array_type(arr)
    dims = [b.op1("mem.shape", [arr], i64, {"axis": k}) for k in range(t.ndim)]
    dims[0] = b.op1("arith.mul", [dims[0], b.op1("mpi.size", [comm], i64)], i64)
    buf: Value = b.op1("mem.alloc", dims, ArrayType(t.dtype, t.ndim, "C"), {"fill": "zeros"},
                       name_hint="received")
    return buf


def _zeros_shaped(b: Builder, arr: Value, typed: Value) -> Value:
    """A zero array of arr's shape and the element type of array `typed`."""
    t = array_type(arr)
    dims = [b.op1("mem.shape", [arr], i64, {"axis": k}) for k in range(t.ndim)]
    buf: Value = b.op1("mem.alloc", dims, ArrayType(array_type(typed).dtype, t.ndim, "C"),
                       {"fill": "zeros"}, name_hint="received")
    return buf


def _when(b: Builder, cond: Value, body: Callable[[Builder], object]) -> None:
    """if cond: body(builder)."""
    then, other = Block(), Block()
    tb = Builder(then)
    body(tb)
    tb.op("scf.yield", [])
    Builder(other).op("scf.yield", [])
    b.op("scf.if", [cond], [], regions=[then, other])


def _on_rank(b: Builder, root: Value, comm: Value, body: Callable[[Builder], object]) -> None:
    """if rank == root: body(builder)."""
    _when(b, b.op1("arith.cmp", [b.op1("mpi.rank", [comm], i64), root], i1, {"pred": "eq"}),
          body)


def _is_owner(b: Builder, x: Value, extremum: Value, comm: Value) -> Value:
    """Whether this rank holds the reduction's extremum, the lowest such rank on ties."""
    rank = b.op1("mpi.rank", [comm], i64)
    size = b.op1("mpi.size", [comm], i64)
    holds = b.op1("arith.cmp", [x, extremum], i1, {"pred": "eq"})
    candidate = b.op1("arith.select", [holds, rank, size], i64)
    owner = b.op1("mpi.allreduce_scalar", [candidate, comm], i64, {"op": "min"})
    mine: Value = b.op1("arith.cmp", [rank, owner], i1, {"pred": "eq"})
    return mine


def _proc_null(b: Builder) -> Value:
    from mpi4py import MPI
    null: Value = b.op1("arith.const", [], i64, {"value": int(MPI.PROC_NULL)})
    return null


def _is_any_source(v: Value) -> bool:
    return _is_constant(v, "ANY_SOURCE")


def _is_any_tag(v: Value) -> bool:
    return _is_constant(v, "ANY_TAG")


def _is_constant(v: Value, name: str) -> bool:
    """Whether v is the constant MPI.<name>."""
    owner = v.owner
    if isinstance(owner, Op) and owner.name == "arith.const":
        from mpi4py import MPI
        return bool(owner.attrs["value"] == getattr(MPI, name))
    return False


def global_seed(b: Builder, value: Value, seed: Value, comm: Value) -> Value:
    """A replicated return value is one global output: every rank seeds it, so each rank's
    seed counts 1/size (the allreduce's adjoint sums them back to one)."""
    t = seed.type
    assert isinstance(t, ScalarType)
    size = b.op1("arith.cast", [b.op1("mpi.size", [comm], i64)], element(t))
    share: Value = b.op1("arith.div", [seed, size], seed.type)
    return share


def _with_comm(rule: Callable[[ReverseContext, Op, Region, Value], None]) -> VjpRule:
    """A collective's reverse rule, given the communicator as the reverse sweep sees it."""
    def vjp(ctx: ReverseContext, op: Op, region: Region) -> None:
        rule(ctx, op, region, ctx.primal(op.operands[-1], region))
    return vjp


# The table: one entry per MPI call, its tangent rule beside its adjoint rule.
defrule("mpi.sendrecv", jvp=jvp_sendrecv, vjp=_with_comm(vjp_sendrecv))
defrule("mpi.allreduce", jvp=jvp_allreduce, vjp=_with_comm(vjp_allreduce))
defrule("mpi.allreduce_scalar", jvp=jvp_allreduce_scalar,
        vjp=_with_comm(vjp_allreduce_scalar))
defrule("mpi.gather", jvp=jvp_linear, vjp=_with_comm(vjp_gather))
defrule("mpi.scatter", jvp=jvp_linear, vjp=_with_comm(vjp_scatter))
defrule("mpi.allgather", jvp=jvp_linear, vjp=_with_comm(vjp_allgather))
defrule("mpi.alltoall", jvp=jvp_linear, vjp=_with_comm(vjp_alltoall))
defrule("mpi.bcast", jvp=jvp_bcast, vjp=_with_comm(vjp_bcast))
defrule("mpi.reduce", jvp=jvp_reduce, vjp=_with_comm(vjp_reduce))
defrule("mpi.send", jvp=jvp_message, vjp=_with_comm(vjp_send))
defrule("mpi.recv", jvp=jvp_message, vjp=_with_comm(vjp_recv))
defrule("mpi.isend", "mpi.irecv", jvp=jvp_nonblocking, vjp=_with_comm(vjp_nonblocking))
defrule("mpi.wait", jvp=jvp_wait, vjp=vjp_wait)
defrule("mpi.barrier", jvp=inert_jvp, vjp=_with_comm(vjp_barrier))
# the owners of a MAX/MIN are integers: no derivative (the reduction's derivative flows
# through the SUM of the owners' elements it lowers to, frontend/mpi_reductions.py)
defrule("mpi.owner", jvp=constant_jvp, vjp=constant_vjp)

def _started(wait: Op) -> Op:
    """The nonblocking call a wait completes, checked to be completed once: a wait in a loop
    that the call is outside of would complete it again in every iteration."""
    start = wait.operands[0].owner
    if not isinstance(start, Op):
        raise DifferentiationError(
            f"{where(wait.loc)}: this wait's request is carried by a loop; hpcad "
            f"differentiates a request waited in the iteration that made it")
    o = wait
    while o.parent is not start.parent:
        assert o.parent is not None and isinstance(o.parent.parent, Op)
        o = o.parent.parent
        if o.name in ("scf.for", "scf.while", "par.parallel_for"):
            raise DifferentiationError(
                f"{where(wait.loc)}: this wait is in a loop that its request's call "
                f"({where(start.loc)}) is outside of, so it would complete the request "
                f"again in every iteration: wait before the loop, or post the call inside it")
    return start


def _check_waits(call: Op) -> None:
    """Every wait of a nonblocking call completes it once, where the derivative sees it (a
    wait in a loop's condition, as in `while not req.Test()`, is in no reversed body)."""
    assert call.parent is not None
    waits = [o for o in walk(call.parent) if o.name == "mpi.wait" and o.operands[0] is
             call.results[0]]
    if not waits:
        raise DifferentiationError(
            f"{where(call.loc)}: this nonblocking call is never waited for; complete it with "
            f"req.Wait() or MPI.Request.Waitall in its block")
    for wait in waits:
        _started(wait)


def jvp_icollective(ctx: ForwardContext, op: Op) -> None:
    """The same nonblocking call on the tangents, waited at the call's wait (jvp_wait)."""
    _check_waits(op)
    new = ctx.clone(op)
    sb, rb = op.operands[0], op.operands[0 if op.name == "mpi.ibcast" else 1]
    if not ctx.act.shadowed(rb):
        return
    _sum_only(op)
    if ctx.act.shadowed(sb):
        shadows = [ctx.shadow_of(sb)] + ([] if rb is sb else [ctx.shadow_of(rb)])
        ctx.requests[op.results[0]] = ctx.b.op1(
            op.name, shadows + new.operands[len(shadows):], new.results[0].type, op.attrs,
            name_hint="d_request")
        return
    d_rb = ctx.shadow_of(rb)
    if op.name == "mpi.ireduce":
        _on_rank(ctx.b, new.operands[2], new.operands[-1],
                 lambda b: b.op("mem.fill", [zero(b, array_type(rb).dtype), d_rb]))
    else:
        ctx.b.op("mem.fill", [zero(ctx.b, array_type(rb).dtype), d_rb])


def vjp_icollective(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    """Nothing at the call: its adjoint is done at its wait's (vjp_wait)."""
    _check_waits(op)
    if ctx.act.shadowed(op.operands[0 if op.name == "mpi.ibcast" else 1]):
        _sum_only(op)


# nonblocking collective -> its blocking form's reverse rule, done at the wait's reverse
COMPLETED_AT_WAIT: dict[str, Callable[[ReverseContext, Op, Region, Value], None]] = {
    "mpi.iallreduce": vjp_allreduce, "mpi.ibcast": vjp_bcast, "mpi.ireduce": vjp_reduce,
    "mpi.iallgather": vjp_allgather}
defrule(*COMPLETED_AT_WAIT, jvp=jvp_icollective, vjp=_with_comm(vjp_icollective))
# Neighbourhood collectives on a Cartesian communicator: block k goes to neighbour k of
# (-d0, +d0, -d1, +d1, ...), who receives it as its block for the opposite direction, so
# the adjoint of Neighbor_alltoall is Neighbor_alltoall of the received blocks' adjoints
# (each goes back to its sender and lands in its send block for the opposite direction);
# of Neighbor_allgather, the sum over blocks of that. A PROC_NULL neighbour's block was not
# received: its adjoint is kept.
def jvp_neighbourhood(ctx: ForwardContext, op: Op) -> None:
    """Linear: the same collective moves the tangents (zeros from a constant send buffer,
    so that PROC_NULL blocks keep their tangents and the others are overwritten)."""
    new = ctx.clone(op)
    sb, rb = op.operands[0], op.operands[1]
    if not ctx.act.shadowed(rb):
        return
    d_sb = ctx.shadow_of(sb) if ctx.act.shadowed(sb) else _zeros_like(ctx.b, new.operands[0])
    ctx.b.op(op.name, [d_sb, ctx.shadow_of(rb), new.operands[-1]])


def vjp_neighbourhood(ctx: ReverseContext, op: Op, region: Region, comm: Value) -> None:
    sb, rb = op.operands[0], op.operands[1]
    if not ctx.act.shadowed(rb):
        return
    d_rb = ctx.shadow(rb, region)
    back = _zeros_like(ctx.b, d_rb)
    ctx.b.op("mpi.neighbor_alltoall", [d_rb, back, comm])
    if ctx.act.shadowed(sb):
        d_sb = ctx.shadow(sb, region)
        if op.name == "mpi.neighbor_alltoall":
            ctx.b.op("mem.add_into", [back, d_sb])
        else:
            for k in range(2 * _cart_dims(op)):
                ctx.b.op("mem.add_into", [_block(ctx.b, back, k, keep_axis=False), d_sb])
    _zero_received_blocks(ctx.b, d_rb, comm, _cart_dims(op))


def _cart_dims(op: Op) -> int:
    ndim = cart_ndim(op.operands[-1].type)
    if ndim is None:
        raise DifferentiationError(
            f"{where(op.loc)}: a neighbourhood collective is differentiated on Cartesian "
            f"communicators only (comm.Create_cart), whose neighbours come in +/- pairs")
    return ndim


def _block(b: Builder, arr: Value, k: int, keep_axis: bool = True) -> Value:
    """Block k of arr along its first axis (arr[k:k+1] or arr[k])."""
    t = array_type(arr)
    lo = b.op1("arith.const", [], i64, {"value": k})
    bounds = [lo, b.op1("arith.const", [], i64, {"value": k + 1})] if keep_axis else [lo]
    for axis in range(1, t.ndim):
        bounds += [b.op1("arith.const", [], i64, {"value": 0}),
                   b.op1("mem.shape", [arr], i64, {"axis": axis})]
    view: Value = b.op1("mem.view", [arr] + bounds,
                        ArrayType(t.dtype, t.ndim - (not keep_axis), "A"),
                        {"dims": ("s" if keep_axis else "i") + "s" * (t.ndim - 1)})
    return view


def _zero_received_blocks(b: Builder, d_rb: Value, comm: Value, ndim: int) -> None:
    """The blocks received from a rank (not PROC_NULL) were overwritten: adjoints to 0 (a
    plain zero fills every lane of an array of vectors)."""
    dtype = element(array_type(d_rb).dtype)
    for axis in range(ndim):
        direction = b.op1("arith.const", [], i64, {"value": axis})
        one = b.op1("arith.const", [], i64, {"value": 1})
        peers = b.op("mpi.cart_shift", [direction, one, comm], [i64, i64]).results
        for k, peer in zip((2 * axis, 2 * axis + 1), peers, strict=True):
            received = b.op1("arith.cmp", [peer, _proc_null(b)], i1, {"pred": "ne"})
            _when(b, received, _filler(d_rb, k, dtype))


def _filler(d_rb: Value, k: int, dtype: ScalarType) -> Callable[[Builder], object]:
    """Zero block k of d_rb (a branch's body)."""
    def fill(b: Builder) -> object:
        return b.op("mem.fill", [zero(b, dtype), _block(b, d_rb, k)])
    return fill


def _named_source(op: Op, source: Value) -> None:
    """A derivative sends the adjoint back to (or receives the tangent from) the sender:
    a receive from ANY_SOURCE does not say which rank that is."""
    if _is_any_source(source):
        raise DifferentiationError(
            f"{where(op.loc)}: receiving from ANY_SOURCE cannot be differentiated: the "
            f"derivative must travel along the same pair of ranks as the value; name the "
            f"source rank")


def _named_tag(op: Op, tag: Value) -> None:
    """The adjoint of a receive goes back with the message's tag, which the sender's
    adjoint receive names: a receive with ANY_TAG does not say which tag that was (sent with
    MPI's ANY_TAG, -1, it failed as an invalid tag on the receiving rank)."""
    if _is_any_tag(tag):
        raise DifferentiationError(
            f"{where(op.loc)}: receiving with tag ANY_TAG cannot be differentiated in reverse "
            f"mode: the adjoint goes back with the message's tag, which the sender's "
            f"derivative receives; name the tag the sender uses")


defrule("mpi.neighbor_alltoall", "mpi.neighbor_allgather", jvp=jvp_neighbourhood,
        vjp=_with_comm(vjp_neighbourhood))
TOPOLOGY_QUERIES = ("mpi.cart_coords", "mpi.cart_topo", "mpi.cart_ndim", "mpi.wtime")

# ranks, sizes and communicators are integers or handles: no derivative, no message
SILENT = ("mpi.rank", "mpi.size", "mpi.world", "mpi.cart_shift") + TOPOLOGY_QUERIES
defrule(*SILENT, jvp=constant_jvp, vjp=constant_vjp)


def communicates(op: Op) -> bool:
    """Whether op is an MPI call whose reverse sends or waits too (the reverse sweep mirrors
    every message, also where no derivative travels)."""
    return op.dialect == "mpi" and op.name not in SILENT
