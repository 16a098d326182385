"""Lowerings of the reductions and scalar collectives that are not one `mpi` op (marker
entries whose `op` names a lowering here, frontend/mpi.py `lower_mpi`): each becomes
ordinary ops whose derivative rules exist already, so forward and reverse mode, both
backends and width W need nothing more, and no rule has to read a send buffer that may have
changed by the time the reverse sweep runs (loops read their operands through the tape).

- `MPI.IN_PLACE` (Allreduce, Reduce, Allgather, Scan, Exscan): the receive buffer's current
  values (Allgather: this rank's block) are copied into a fresh send buffer, then the call
  runs as usual: the send and receive buffers of the op never alias.
- `None` as the receive buffer of Reduce/Gather (the send buffer of Scatter) on a rank where
  MPI ignores it: a scratch array of the size MPI would use on the root.
- MAX and MIN on arrays: `mpi.owner` (the lowest rank holding each element's extremum,
  also where values tie) and a SUM of every rank's element where it is the owner, zero
  elsewhere: the result is the extremum exactly, and its derivative is the owner's.
- PROD, Scan and Exscan (SUM): an Allgather of the send buffers, then each rank combines the
  ranks' blocks in rank order (Allreduce PROD ends with a Bcast from rank 0, so that its
  result is replicated); the derivative of a product is then the product of the others,
  also where an element is zero. Memory: one block per rank.
- Lower-case scalar collectives (bcast, reduce, gather, allgather, scatter, scan, exscan,
  allreduce with PROD): one-element arrays around the upper-case call. Where mpi4py returns
  None (reduce and gather off the root, exscan on rank 0), the value is NaN (an integer's:
  -2**63), never a plausible number.
- numba-mpi's gather/scatter/allgather take a count: checked at run time against the size
  of the buffer it counts; of the other (1-D) buffer the call uses the first count x ranks
  elements, as numba-mpi does (a view of them)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..ir.core import Value
from ..ir.types import ArrayType, ScalarType, i1, i64
from .arrays import elementwise, fill, loop_nest, materialize, whole

if TYPE_CHECKING:
    from .context import LoweringContext

IN_PLACE = "MPI.IN_PLACE"      # what mpi_argument gives for the constant MPI.IN_PLACE
NONE = "None"                  # and for None
_MISSING = {"f": float("nan"), "i": -2 ** 63}   # a result mpi4py gives as None


@dataclass
class Site:
    """One MPI call being lowered: where its ops go, its communicator and source node;
    `emit(op, values, attrs)` writes one ordinary `mpi` op, `operand(name, v)` checks an
    argument as that op's operand `name`."""
    ctx: LoweringContext
    comm: Value
    node: object
    emit: Callable[[str, dict, dict], object]
    operand: Callable[[str, object], Value]

    def op1(self, name: str, operands: list, t, attrs: dict | None = None) -> Value:
        v: Value = self.ctx.builder.op1(name, operands, t, attrs or {})
        return v

    def rank(self) -> Value:
        return self.op1("mpi.rank", [self.comm], i64)

    def size(self) -> Value:
        return self.op1("mpi.size", [self.comm], i64)

    def shape(self, arr: Value) -> list[Value]:
        return [self.op1("mem.shape", [arr], i64, {"axis": k}) for k in range(arr.type.ndim)]

    def alloc(self, dims: list[Value], dtype, fill: str = "zeros") -> Value:
        return self.op1("mem.alloc", dims, ArrayType(dtype, len(dims), "C"), {"fill": fill})

    def copy(self, arr: Value) -> Value:
        return materialize(self.ctx, arr, self.node)

    def refuse(self, what: str, hint: str = "") -> None:
        self.ctx.unsupported(self.node, what, hint)


def _buffer(s: Site, values: dict, name: str) -> Value:
    v = values[name]
    if v is IN_PLACE or v is NONE:
        s.refuse(f"{v} as `{name}` here", "MPI.IN_PLACE is the send buffer of Allreduce, "
                 "Reduce (root), Allgather, Scan and Exscan; None the receive buffer of "
                 "Reduce and Gather, the send buffer of Scatter, off the root")
    return s.operand(name, v)


def _send_buffer(s: Site, values: dict, recv: Value) -> Value:
    """The send buffer, a copy of the receive buffer's values for MPI.IN_PLACE."""
    if values["sendbuf"] is IN_PLACE:
        return s.copy(recv)
    return _buffer(s, values, "sendbuf")


def _scratch_for(s: Site, values: dict, name: str, like: Value, blocks: bool) -> Value:
    """The buffer `name`, or for None a scratch array shaped like `like` (times the ranks
    along axis 0 where blocks): MPI ignores it on this rank, as it must be."""
    if values[name] is not NONE:
        return _buffer(s, values, name)
    dims = s.shape(like)
    if blocks:
        dims[0] = s.op1("arith.mul", [dims[0], s.size()], i64)
    return s.alloc(dims, like.type.dtype)


# -- element-wise pieces ----------------------------------------------------------------------
def _owned(s: Site, x: Value, kind: str) -> Value:
    """x where this rank holds the MAX/MIN of the element (the lowest such rank), else 0."""
    owner = s.alloc(s.shape(x), i64, fill="empty")
    s.emit("owner", {"sendbuf": x, "recvbuf": owner}, {"op": kind})
    rank = s.rank()
    t = x.type.dtype

    def pick(ctx, vals):
        who, v = vals
        mine = ctx.builder.op1("arith.cmp", [who, rank], i1, {"pred": "eq"})
        return ctx.builder.op1("arith.select", [mine, v, ctx.const(0, t)], t)
    return materialize(s.ctx, elementwise(s.ctx, pick, [owner, x], s.node), s.node)


def _gathered(s: Site, x: Value) -> Value:
    """Every rank's x, one block after another along axis 0 (an Allgather)."""
    dims = s.shape(x)
    dims[0] = s.op1("arith.mul", [dims[0], s.size()], i64)
    g = s.alloc(dims, x.type.dtype)
    s.emit("allgather", {"sendbuf": x, "recvbuf": g}, {})
    return g


def _combine_blocks(s: Site, g: Value, target: Value, first: Value, stop: Value,
                    combine: str, keep: Value | None = None) -> None:
    """target[i] = combine over ranks r in [0, stop) of g's block r at i (from `first`);
    where keep (a condition) is false, target keeps its values."""
    ctx, t = s.ctx, target.type.dtype
    dims = s.shape(target)

    def element(ivs, accs):
        def step(rs, acc):
            row = ctx.builder.op1("arith.add", [ctx.builder.op1(
                "arith.mul", [rs[0], dims[0]], i64), ivs[0]], i64)
            v = ctx.builder.op1("mem.load", [g, row, *ivs[1:]], t)
            return [ctx.builder.op1(combine, [acc[0], v], t)]
        value = loop_nest(ctx, [stop], step, s.node, carried=[first])[0]
        if keep is not None:
            old = ctx.builder.op1("mem.load", [target, *ivs], t)
            value = ctx.builder.op1("arith.select", [keep, value, old], t)
        ctx.builder.op("mem.store", [value, target, *ivs])
        return []
    loop_nest(ctx, dims, element, s.node)


# -- the upper-case calls ---------------------------------------------------------------------
def lower_allreduce(s: Site, values: dict, attrs: dict):
    recv = _buffer(s, values, "recvbuf")
    send = _send_buffer(s, values, recv)
    kind = attrs.get("op", "sum")
    if kind in ("max", "min"):
        return s.emit("allreduce", {"sendbuf": _owned(s, send, kind), "recvbuf": recv},
                      {"op": "sum"})
    if kind == "prod":
        one = s.ctx.const(1, recv.type.dtype)
        _combine_blocks(s, _gathered(s, send), recv, one, s.size(), "arith.mul")
        return s.emit("bcast", {"buf": recv, "root": s.ctx.const(0, i64)}, {})
    return s.emit("allreduce", {"sendbuf": send, "recvbuf": recv}, attrs)


def lower_reduce(s: Site, values: dict, attrs: dict):
    if values["sendbuf"] is IN_PLACE:
        recv = _buffer(s, values, "recvbuf")
        send = s.copy(recv)
    else:
        send = _buffer(s, values, "sendbuf")
        recv = _scratch_for(s, values, "recvbuf", send, blocks=False)
    root = s.operand("root", values["root"])
    kind = attrs.get("op", "sum")
    if kind in ("max", "min"):
        send, attrs = _owned(s, send, kind), {"op": "sum"}
    elif kind == "prod":
        mine = s.op1("arith.cmp", [s.rank(), root], i1, {"pred": "eq"})
        one = s.ctx.const(1, recv.type.dtype)
        _combine_blocks(s, _gathered(s, send), recv, one, s.size(), "arith.mul", keep=mine)
        return None
    return s.emit("reduce", {"sendbuf": send, "recvbuf": recv, "root": root}, attrs)


def lower_allgather(s: Site, values: dict, attrs: dict):
    recv = _buffer(s, values, "recvbuf")
    if values["sendbuf"] is not IN_PLACE:
        return s.emit("allgather", {"sendbuf": _buffer(s, values, "sendbuf"),
                                    "recvbuf": recv}, {})
    dims = s.shape(recv)
    n = s.op1("arith.floordiv", [dims[0], s.size()], i64)
    lo = s.op1("arith.mul", [s.rank(), n], i64)
    bounds = [lo, s.op1("arith.add", [lo, n], i64)]
    for d in dims[1:]:
        bounds += [s.ctx.const(0, i64), d]
    t = recv.type
    mine = s.op1("mem.view", [recv, *bounds], ArrayType(t.dtype, t.ndim, "A"),
                 {"dims": "s" * t.ndim})
    return s.emit("allgather", {"sendbuf": s.copy(mine), "recvbuf": recv}, {})


def lower_gather(s: Site, values: dict, attrs: dict):
    send = _buffer(s, values, "sendbuf")
    recv = _scratch_for(s, values, "recvbuf", send, blocks=True)
    return s.emit("gather", {"sendbuf": send, "recvbuf": recv, "root": values["root"]}, {})


def lower_scatter(s: Site, values: dict, attrs: dict):
    recv = _buffer(s, values, "recvbuf")
    send = _scratch_for(s, values, "sendbuf", recv, blocks=True)
    return s.emit("scatter", {"sendbuf": send, "recvbuf": recv, "root": values["root"]}, {})


def _scan(s: Site, values: dict, attrs: dict, exclusive: bool):
    if attrs.get("op", "sum") != "sum":
        s.refuse(f"Scan/Exscan with op={attrs['op'].upper()}", "only MPI.SUM scans")
    recv = _buffer(s, values, "recvbuf")
    send = _send_buffer(s, values, recv)
    rank = s.rank()
    zero = s.ctx.const(0, recv.type.dtype)
    if exclusive:   # rank 0's receive buffer stays as it was
        later = s.op1("arith.cmp", [rank, s.ctx.const(0, i64)], i1, {"pred": "gt"})
        _combine_blocks(s, _gathered(s, send), recv, zero, rank, "arith.add", keep=later)
    else:
        upto = s.op1("arith.add", [rank, s.ctx.const(1, i64)], i64)
        _combine_blocks(s, _gathered(s, send), recv, zero, upto, "arith.add")


def lower_scan(s: Site, values: dict, attrs: dict):
    _scan(s, values, attrs, exclusive=False)


def lower_exscan(s: Site, values: dict, attrs: dict):
    _scan(s, values, attrs, exclusive=True)


def lower_sendrecv_replace(s: Site, values: dict, attrs: dict):
    buf = _buffer(s, values, "buf")
    sent = s.copy(buf)
    return s.emit("sendrecv", {"sendbuf": sent, "dest": values["dest"],
                               "sendtag": values["sendtag"], "recvbuf": buf,
                               "source": values["source"], "recvtag": values["recvtag"]}, {})


# -- the lower-case calls on scalars ----------------------------------------------------------
def _scalar(s: Site, values: dict) -> Value:
    x = s.operand("sendobj", values["sendobj"])
    if not isinstance(x.type, ScalarType):
        s.refuse("a lower-case MPI call on an array", "use the upper-case call (Bcast, "
                 "Reduce, Gather, ...) with arrays")
    return x


def _one(s: Site, x: Value) -> Value:
    """A one-element array holding x."""
    buf = s.alloc([s.ctx.const(1, i64)], x.type, fill="empty")
    s.ctx.builder.op("mem.store", [x, buf, s.ctx.const(0, i64)])
    return buf


def _missing(s: Site, dims: list[Value], t: ScalarType) -> Value:
    """An array of the value a result mpi4py gives as None has (NaN, or -2**63)."""
    if t.is_bool:
        s.refuse("a lower-case reduce, gather or exscan of booleans",
                 "convert them to integers first")
    buf = s.alloc(dims, t, fill="empty")
    fill(s.ctx, whole(s.ctx, buf), s.ctx.const(_MISSING["f" if t.is_float else "i"], t),
         s.node)
    return buf


def _first(s: Site, buf: Value) -> Value:
    return s.op1("mem.load", [buf, s.ctx.const(0, i64)], buf.type.dtype)


def lower_bcast_object(s: Site, values: dict, attrs: dict):
    buf = _one(s, _scalar(s, values))
    s.emit("bcast", {"buf": buf, "root": values["root"]}, {})
    return _first(s, buf)


def lower_reduce_object(s: Site, values: dict, attrs: dict):
    x = _scalar(s, values)
    recv = _missing(s, [s.ctx.const(1, i64)], x.type)
    lower_reduce(s, {"sendbuf": _one(s, x), "recvbuf": recv, "root": values["root"]}, attrs)
    return _first(s, recv)


def lower_allreduce_object(s: Site, values: dict, attrs: dict):
    """comm.allreduce(x, op): PROD through a one-element Allreduce, others as they were."""
    if attrs.get("op") != "prod":
        return s.emit("allreduce_scalar", values, attrs)
    x = _scalar(s, values)
    recv = s.alloc([s.ctx.const(1, i64)], x.type)
    lower_allreduce(s, {"sendbuf": _one(s, x), "recvbuf": recv}, attrs)
    return _first(s, recv)


def lower_gather_object(s: Site, values: dict, attrs: dict):
    x = _scalar(s, values)
    recv = _missing(s, [s.size()], x.type)
    s.emit("gather", {"sendbuf": _one(s, x), "recvbuf": recv, "root": values["root"]}, {})
    return recv


def lower_allgather_object(s: Site, values: dict, attrs: dict):
    x = _scalar(s, values)
    recv = s.alloc([s.size()], x.type)
    s.emit("allgather", {"sendbuf": _one(s, x), "recvbuf": recv}, {})
    return recv


def lower_scatter_object(s: Site, values: dict, attrs: dict):
    """comm.scatter(seq, root): seq a 1-D array of one value per rank (on the root; every
    rank passes an array, as every rank's result has the same type)."""
    seq = _buffer(s, values, "sendbuf")
    if seq.type.ndim != 1:
        s.refuse("comm.scatter of an array that is not 1-D", "pass one value per rank")
    root = s.operand("root", values["root"])
    elsewhere = s.op1("arith.cmp", [s.rank(), root], i1, {"pred": "ne"})
    fits = s.op1("arith.cmp", [s.shape(seq)[0], s.size()], i1, {"pred": "eq"})
    s.ctx.runtime_check(s.op1("arith.or", [elsewhere, fits], i1),
                        "comm.scatter(seq) needs one value per rank in seq on the root",
                        s.node)
    recv = s.alloc([s.ctx.const(1, i64)], seq.type.dtype)
    s.emit("scatter", {"sendbuf": seq, "recvbuf": recv, "root": root}, {})
    return _first(s, recv)


def _scan_object(s: Site, values: dict, attrs: dict, exclusive: bool):
    x = _scalar(s, values)
    recv = _missing(s, [s.ctx.const(1, i64)], x.type) if exclusive else \
        s.alloc([s.ctx.const(1, i64)], x.type)
    _scan(s, {"sendbuf": _one(s, x), "recvbuf": recv}, attrs, exclusive)
    return _first(s, recv)


def lower_scan_object(s: Site, values: dict, attrs: dict):
    return _scan_object(s, values, attrs, exclusive=False)


def lower_exscan_object(s: Site, values: dict, attrs: dict):
    return _scan_object(s, values, attrs, exclusive=True)


# -- numba-mpi's counted gather, scatter, allgather -------------------------------------------
def elements(ctx: LoweringContext, arr: Value) -> Value:
    """The number of elements of an array, an i64."""
    n = ctx.const(1, i64)
    for k in range(arr.type.ndim):
        d = ctx.builder.op1("mem.shape", [arr], i64, {"axis": k})
        n = ctx.builder.op1("arith.mul", [n, d], i64)
    return n


def _leading(s: Site, arr: Value, n: Value) -> Value:
    """The view of a 1-D array's first n elements (all of them where it has fewer)."""
    end = s.op1("arith.min", [s.shape(arr)[0], n], i64)
    return s.op1("mem.view", [arr, s.ctx.const(0, i64), end], arr.type, {"dims": "s"})


def _counted(kind: str, counted: str, root: bool):
    """numba_mpi.<kind>(send, recv, count[, root]): count must be the size of the buffer
    `counted` (the elements per rank, which the call takes from it); of the other buffer the
    call uses the first count x ranks elements (where it is 1-D: a view of those; else it
    must have that size, the op's check)."""
    def lower(s: Site, values: dict, attrs: dict):
        count = s.ctx.coerce_index(values.pop("count"), s.node)
        ops = {k: _buffer(s, values, k) for k in ("sendbuf", "recvbuf")}
        same = s.op1("arith.cmp", [count, elements(s.ctx, ops[counted])], i1,
                     {"pred": "eq"})
        s.ctx.runtime_check(same, f"numba_mpi.{kind}'s count must be the size of "
                                  f"{'send_data' if counted == 'sendbuf' else 'recv_data'}"
                                  f" (hpcad sends whole buffers)", s.node)
        other = "recvbuf" if counted == "sendbuf" else "sendbuf"
        if ops[other].type.ndim == 1:
            ops[other] = _leading(s, ops[other], s.op1("arith.mul", [count, s.size()], i64))
        if root:
            ops["root"] = values["root"]
        return s.emit(kind, ops, {})
    return lower


# marker op -> its lowering(site, argument values by operand name, attributes)
LOWERINGS: dict[str, Callable[[Site, dict, dict], object]] = {
    "allreduce": lower_allreduce,
    "reduce": lower_reduce,
    "allgather": lower_allgather,
    "gather": lower_gather,
    "scatter": lower_scatter,
    "scan": lower_scan,
    "exscan": lower_exscan,
    "sendrecv_replace": lower_sendrecv_replace,
    "allreduce_scalar": lower_allreduce_object,
    "bcast_object": lower_bcast_object,
    "reduce_object": lower_reduce_object,
    "gather_object": lower_gather_object,
    "allgather_object": lower_allgather_object,
    "scatter_object": lower_scatter_object,
    "scan_object": lower_scan_object,
    "exscan_object": lower_exscan_object,
    "gather_counted": _counted("gather", "sendbuf", root=True),
    "scatter_counted": _counted("scatter", "recvbuf", root=True),
    "allgather_counted": _counted("allgather", "sendbuf", root=False),
}
