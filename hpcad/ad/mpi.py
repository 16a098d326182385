"""Derivatives of `mpi` ops (DESIGN.md's table): the tangent of a message is sent along
with it; the adjoint of `sendrecv` is `sendrecv` with source and destination exchanged (the
received adjoint is added to the send buffer's), of send/recv recv/send, of isend/irecv +
wait the reversed non-blocking call, of `allreduce(sum)` an `allreduce(sum)`, of
`reduce(sum -> root)` a `bcast(root)` and back, of an `allreduce(max|min)` of a scalar the
summed adjoint to the rank that held the extremum (lowest rank on ties), of `barrier` a
`barrier`. Every rank runs the same program, so every rank
takes the same derivative steps and the adjoint communication matches. A message's adjoint
travels back with the forward message's send tag (which must be the same on all ranks)."""
from __future__ import annotations

from ..errors import DifferentiationError, where
from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Op, Value
from ..ir.types import ArrayType, element, i1, i64
from .common import zero
from .rules import NON_DIFFERENTIABLE


def _sum_only(op: Op) -> None:
    if op.attrs.get("op", "sum") != "sum":
        raise DifferentiationError(
            f"{where(op.loc)}: the derivative of an MPI {op.attrs['op']}-reduction is not "
            f"supported yet; reduce a sum, or gather the values and take the extremum locally")


class MpiForward:
    """Tangent rules, mixed into forward mode."""

    def op_mpi_sendrecv(self, op):
        new = self.b.insert(clone_op(op, self.vmap))
        sb, rb = op.operands[0], op.operands[3]
        if not self.act.shadowed(rb):
            return
        ops = new.operands
        # a constant's tangent is zero, sent as a message all the same: the elements a
        # short message (or one from PROC_NULL) does not reach keep their tangents
        d_sb = self.shadow_of(sb) if self.act.shadowed(sb) else _zeros_like(self.b, ops[0])
        self.b.op("mpi.sendrecv", [d_sb] + ops[1:3] + [self.shadow_of(rb)] + ops[4:])

    def op_mpi_allreduce(self, op):
        new = self.b.insert(clone_op(op, self.vmap))
        sb, rb = op.operands[0], op.operands[1]
        if not self.act.shadowed(rb):
            return
        _sum_only(op)
        if self.act.shadowed(sb):
            self.b.op("mpi.allreduce", [self.shadow_of(sb), self.shadow_of(rb), new.operands[-1]],
                      attrs=op.attrs)
        else:
            self.b.op("mem.fill", [zero(self.b, rb.type.dtype), self.shadow_of(rb)])

    def op_mpi_allreduce_scalar(self, op):
        new = self.b.insert(clone_op(op, self.vmap))
        if not self.act.active(op.results[0]):
            return
        t = self.tangent_or_zero(op.operands[0])
        comm = new.operands[-1]
        if op.attrs.get("op", "sum") != "sum":   # the owner's tangent, shared with everyone
            mine = _is_owner(self.b, new.operands[0], new.results[0], comm)
            t = self.b.op1("arith.select", [mine, t, zero(self.b, t.type)], t.type)
        self.tan[op.results[0]] = self.b.op1("mpi.allreduce_scalar", [t, comm], t.type,
                                             {"op": "sum"})

    def op_mpi_gather(self, op):
        """gather, scatter, allgather, alltoall are linear: the same op moves the tangents."""
        new = self.b.insert(clone_op(op, self.vmap))
        sb, rb = op.operands[0], op.operands[1]
        if not self.act.shadowed(rb):
            return
        if self.act.shadowed(sb):
            self.b.op(op.name, [self.shadow_of(sb), self.shadow_of(rb)] + new.operands[2:])
        else:
            self.b.op("mem.fill", [zero(self.b, rb.type.dtype), self.shadow_of(rb)])

    op_mpi_scatter = op_mpi_allgather = op_mpi_alltoall = op_mpi_gather

    def op_mpi_bcast(self, op):
        new = self.b.insert(clone_op(op, self.vmap))
        if self.act.shadowed(op.operands[0]):
            self.b.op("mpi.bcast", [self.shadow_of(op.operands[0])] + new.operands[1:])

    def op_mpi_reduce(self, op):
        new = self.b.insert(clone_op(op, self.vmap))
        sb, rb = op.operands[0], op.operands[1]
        if not self.act.shadowed(rb):
            return
        _sum_only(op)
        root, comm = new.operands[2], new.operands[-1]
        if self.act.shadowed(sb):
            self.b.op("mpi.reduce", [self.shadow_of(sb), self.shadow_of(rb), root, comm],
                      attrs=op.attrs)
        else:
            d_rb = self.shadow_of(rb)
            _on_rank(self.b, root, comm,
                     lambda b: b.op("mem.fill", [zero(b, rb.type.dtype), d_rb]))


    # -- point to point: the tangent travels as a second message after the value ------------
    def op_mpi_send(self, op):
        new = self.b.insert(clone_op(op, self.vmap))
        if self.act.shadowed(op.operands[0]):
            self.b.op(op.name, [self.shadow_of(op.operands[0])] + new.operands[1:])

    op_mpi_recv = op_mpi_send

    def op_mpi_isend(self, op):
        new = self.b.insert(clone_op(op, self.vmap))
        if self.act.shadowed(op.operands[0]):
            tangent = self.b.op1(op.name, [self.shadow_of(op.operands[0])] + new.operands[1:],
                                 new.results[0].type, name_hint="d_request")
            self.requests[op.results[0]] = tangent

    op_mpi_irecv = op_mpi_isend

    def op_mpi_wait(self, op):
        self.b.insert(clone_op(op, self.vmap))
        tangent = self.requests.get(op.operands[0])
        if tangent is not None:
            self.b.op("mpi.wait", [tangent])


class MpiReverse:
    """Adjoint rules, mixed into reverse mode."""

    def reverse_mpi(self, op: Op, ctx) -> None:
        kind = op.name.split(".", 1)[1]
        handler = getattr(self, f"reverse_mpi_{kind}", None)
        if handler is None:
            if op.name not in NON_DIFFERENTIABLE:
                raise DifferentiationError(f"{where(op.loc)}: the MPI call '{kind}' has no "
                                           f"reverse-mode rule in hpcad; move it into a kernel "
                                           f"with an ad.custom_vjp rule")
            return
        comm = op.operands[-1] if op.operands and kind != "wait" else None
        handler(op, ctx, None if comm is None else self.primal(comm, ctx))

    def reverse_mpi_barrier(self, op, ctx, comm):
        self.b.op("mpi.barrier", [comm])

    def scratch_like(self, arr: Value) -> Value:
        return _zeros_like(self.b, arr)

    def reverse_mpi_sendrecv(self, op, ctx, comm):
        """The received adjoint goes back whole, also where the send buffer is constant (then
        the sender drops it): a forward message shorter than its receive buffer then fails
        as a truncated message on the sender rather than giving a wrong gradient."""
        sb, dest, stag, rb, source, _ = op.operands[:6]
        if not self.act.shadowed(rb):
            return
        d_rb = self.shadow(rb, ctx)
        if _is_any_source(source):
            raise DifferentiationError(
                f"{where(op.loc)}: receiving from ANY_SOURCE cannot be differentiated: the "
                f"adjoint must be sent back to the sender; name the source rank")
        back = self.scratch_like(self.shadow(sb, ctx) if self.act.shadowed(sb)
                                 else self.primal(sb, ctx))
        tag = self.primal(stag, ctx)
        self.b.op("mpi.sendrecv", [d_rb, self.primal(source, ctx), tag, back,
                                   self.primal(dest, ctx), tag, comm])
        if self.act.shadowed(sb):
            self.b.op("mem.add_into", [back, self.shadow(sb, ctx)])
        self.zero_if_received(rb, source, ctx)

    def zero_if_received(self, buf: Value, source: Value, ctx) -> None:
        """The receive overwrote buf (unless from PROC_NULL): its adjoint starts from zero."""
        received = self.b.op1("arith.cmp", [self.primal(source, ctx), _proc_null(self.b)], i1,
                              {"pred": "ne"})
        d_buf = self.shadow(buf, ctx)
        _when(self.b, received, lambda b: b.op("mem.fill", [zero(b, buf.type.dtype), d_buf]))

    def reverse_mpi_send(self, op, ctx, comm):
        buf, dest, tag = op.operands[:3]
        if self.act.shadowed(buf):
            d_buf = self.shadow(buf, ctx)
            back = self.scratch_like(d_buf)
            self.b.op("mpi.recv", [back, self.primal(dest, ctx), self.primal(tag, ctx), comm])
            self.b.op("mem.add_into", [back, d_buf])

    def reverse_mpi_recv(self, op, ctx, comm):
        buf, source, tag = op.operands[:3]
        if self.act.shadowed(buf):
            self.b.op("mpi.send", [self.shadow(buf, ctx), self.primal(source, ctx),
                                   self.primal(tag, ctx), comm])
            self.zero_if_received(buf, source, ctx)

    def reverse_mpi_wait(self, op, ctx, comm):
        """The adjoint of a wait posts the reversed non-blocking call (with a shadow
        request); the adjoint of the isend/irecv waits on it."""
        request = op.operands[0]
        start = request.owner
        buf, peer, tag = start.operands[:3]
        if not self.act.shadowed(buf):
            return
        comm = self.primal(start.operands[-1], ctx)
        d_buf = self.shadow(buf, ctx)
        peer, tag = self.primal(peer, ctx), self.primal(tag, ctx)
        if start.name == "mpi.irecv":
            shadow_request = self.b.op1("mpi.isend", [d_buf, peer, tag, comm],
                                        request.type, name_hint="adj_request")
            self.requests[request] = (shadow_request, None)
        else:
            back = self.scratch_like(d_buf)
            shadow_request = self.b.op1("mpi.irecv", [back, peer, tag, comm], request.type,
                                        name_hint="adj_request")
            self.requests[request] = (shadow_request, back)

    def reverse_nonblocking(self, op, ctx):
        got = self.requests.get(op.results[0])
        if got is None:
            if self.act.shadowed(op.operands[0]):
                raise DifferentiationError(
                    f"{where(op.loc)}: this non-blocking call's wait is in another block "
                    f"(loop or branch); hpcad needs the call and its wait side by side")
            return
        shadow_request, back = got
        self.b.op("mpi.wait", [shadow_request])
        if op.name == "mpi.isend":
            self.b.op("mem.add_into", [back, self.shadow(op.operands[0], ctx)])
        else:
            self.zero_if_received(op.operands[0], op.operands[1], ctx)

    def reverse_mpi_isend(self, op, ctx, comm):
        self.reverse_nonblocking(op, ctx)

    reverse_mpi_irecv = reverse_mpi_isend

    def reverse_mpi_allreduce(self, op, ctx, comm):
        sb, rb = op.operands[0], op.operands[1]
        if not self.act.shadowed(rb):
            return
        _sum_only(op)
        d_rb = self.shadow(rb, ctx)
        if self.act.shadowed(sb):
            total = self.scratch_like(d_rb)
            self.b.op("mpi.allreduce", [d_rb, total, comm], attrs=op.attrs)
            self.b.op("mem.add_into", [total, self.shadow(sb, ctx)])
        self.b.op("mem.fill", [zero(self.b, rb.type.dtype), d_rb])

    def reverse_mpi_allreduce_scalar(self, op, ctx, comm):
        g = self.adj.get(op.results[0])
        if g is None or not self.act.active(op.operands[0]):
            return
        total = self.b.op1("mpi.allreduce_scalar", [g, comm], g.type, {"op": "sum"})
        if op.attrs.get("op", "sum") != "sum":   # all of it to the rank holding the extremum
            mine = _is_owner(self.b, self.primal(op.operands[0], ctx),
                             self.primal(op.results[0], ctx), comm)
            total = self.b.op1("arith.select", [mine, total, zero(self.b, g.type)], g.type)
        self.add_adjoint(op.operands[0], total)

    def reverse_mpi_gather(self, op, ctx, comm):
        """gather's adjoint scatters the root's adjoint back; the root's receive buffer was
        overwritten."""
        self.transpose_collective(op, ctx, comm, "mpi.scatter", root_only_recv=True)

    def reverse_mpi_scatter(self, op, ctx, comm):
        """scatter's adjoint gathers the pieces' adjoints onto the root."""
        self.transpose_collective(op, ctx, comm, "mpi.gather", root_only_send=True)

    def reverse_mpi_alltoall(self, op, ctx, comm):
        self.transpose_collective(op, ctx, comm, "mpi.alltoall")

    def transpose_collective(self, op, ctx, comm, adjoint: str, root_only_recv=False,
                             root_only_send=False):
        sb, rb = op.operands[0], op.operands[1]
        if not self.act.shadowed(rb):
            return
        root = [self.primal(op.operands[2], ctx)] if len(op.operands) == 4 else []
        d_rb = self.shadow(rb, ctx)
        if self.act.shadowed(sb):
            d_sb = self.shadow(sb, ctx)
            back = self.scratch_like(d_sb)
            self.b.op(adjoint, [d_rb, back] + root + [comm])
            if root_only_send:
                _on_rank(self.b, root[0], comm, lambda b: b.op("mem.add_into", [back, d_sb]))
            else:
                self.b.op("mem.add_into", [back, d_sb])
        if root_only_recv:
            _on_rank(self.b, root[0], comm,
                     lambda b: b.op("mem.fill", [zero(b, rb.type.dtype), d_rb]))
        else:
            self.b.op("mem.fill", [zero(self.b, rb.type.dtype), d_rb])

    def reverse_mpi_allgather(self, op, ctx, comm):
        """allgather's adjoint is a reduce-scatter: every rank's piece of the summed
        adjoints goes back to the rank that contributed it."""
        sb, rb = op.operands[0], op.operands[1]
        if not self.act.shadowed(rb):
            return
        d_rb = self.shadow(rb, ctx)
        if self.act.shadowed(sb):
            d_sb = self.shadow(sb, ctx)
            total = self.scratch_like(d_rb)
            self.b.op("mpi.allreduce", [d_rb, total, comm], attrs={"op": "sum"})
            n = self.b.op1("mem.shape", [d_sb], i64, {"axis": 0})
            lo = self.b.op1("arith.mul", [self.b.op1("mpi.rank", [comm], i64), n], i64)
            hi = self.b.op1("arith.add", [lo, n], i64)
            dims = "s"
            rest = []
            for axis in range(1, d_rb.type.ndim):
                rest += [self.b.op1("arith.const", [], i64, {"value": 0}),
                         self.b.op1("mem.shape", [d_rb], i64, {"axis": axis})]
                dims += "s"
            piece = self.b.op1("mem.view", [total, lo, hi] + rest,
                               ArrayType(d_sb.type.dtype, d_rb.type.ndim, "A"), {"dims": dims})
            self.b.op("mem.add_into", [piece, d_sb])
        self.b.op("mem.fill", [zero(self.b, rb.type.dtype), d_rb])

    def reverse_mpi_bcast(self, op, ctx, comm):
        """bcast's adjoint: the adjoints are summed onto the root (others end at zero)."""
        buf, root = op.operands[0], self.primal(op.operands[1], ctx)
        if not self.act.shadowed(buf):
            return
        d_buf = self.shadow(buf, ctx)
        total = self.scratch_like(d_buf)
        self.b.op("mpi.reduce", [d_buf, total, root, comm], attrs={"op": "sum"})
        self.b.op("mem.fill", [zero(self.b, buf.type.dtype), d_buf])
        _on_rank(self.b, root, comm, lambda b: b.op("mem.add_into", [total, d_buf]))

    def reverse_mpi_reduce(self, op, ctx, comm):
        """reduce(sum)'s adjoint: the root's adjoint is broadcast and added to every send
        buffer's adjoint; the root's receive buffer was overwritten (its adjoint ends 0)."""
        sb, rb = op.operands[0], op.operands[1]
        if not self.act.shadowed(rb):
            return
        _sum_only(op)
        root = self.primal(op.operands[2], ctx)
        d_rb = self.shadow(rb, ctx)
        if self.act.shadowed(sb):
            shared = self.scratch_like(d_rb)
            _on_rank(self.b, root, comm, lambda b: b.op("mem.add_into", [d_rb, shared]))
            self.b.op("mpi.bcast", [shared, root, comm])
            self.b.op("mem.add_into", [shared, self.shadow(sb, ctx)])
        _on_rank(self.b, root, comm,
                 lambda b: b.op("mem.fill", [zero(b, rb.type.dtype), d_rb]))


def _zeros_like(b, arr: Value) -> Value:
    dims = [b.op1("mem.shape", [arr], i64, {"axis": k}) for k in range(arr.type.ndim)]
    return b.op1("mem.alloc", dims, ArrayType(arr.type.dtype, arr.type.ndim, "C"),
                 {"fill": "zeros"}, name_hint="received")


def _when(b, cond: Value, body) -> None:
    """if cond: body(builder)."""
    then, other = Block(), Block()
    tb = Builder(then)
    body(tb)
    tb.op("scf.yield", [])
    Builder(other).op("scf.yield", [])
    b.op("scf.if", [cond], [], regions=[then, other])


def _on_rank(b, root: Value, comm: Value, body) -> None:
    """if rank == root: body(builder)."""
    _when(b, b.op1("arith.cmp", [b.op1("mpi.rank", [comm], i64), root], i1, {"pred": "eq"}),
          body)


def _is_owner(b, x: Value, extremum: Value, comm: Value) -> Value:
    """Whether this rank holds the reduction's extremum, the lowest such rank on ties."""
    rank = b.op1("mpi.rank", [comm], i64)
    size = b.op1("mpi.size", [comm], i64)
    holds = b.op1("arith.cmp", [x, extremum], i1, {"pred": "eq"})
    candidate = b.op1("arith.select", [holds, rank, size], i64)
    owner = b.op1("mpi.allreduce_scalar", [candidate, comm], i64, {"op": "min"})
    return b.op1("arith.cmp", [rank, owner], i1, {"pred": "eq"})


def _proc_null(b) -> Value:
    from mpi4py import MPI
    return b.op1("arith.const", [], i64, {"value": int(MPI.PROC_NULL)})


def _is_any_source(v: Value) -> bool:
    owner = v.owner
    if isinstance(owner, Op) and owner.name == "arith.const":
        from mpi4py import MPI
        return owner.attrs["value"] == MPI.ANY_SOURCE
    return False


def global_seed(b, value: Value, seed: Value, comm: Value) -> Value:
    """A replicated return value is one global output: every rank seeds it, so each rank's
    seed counts 1/size (the allreduce's adjoint sums them back to one)."""
    size = b.op1("arith.cast", [b.op1("mpi.size", [comm], i64)], element(seed.type))
    return b.op1("arith.div", [seed, size], seed.type)
