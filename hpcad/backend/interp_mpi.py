"""The reference interpreter's MPI ops, through mpi4py on the communicator argument. An
MPI failure (mpi4py's MPI.Exception: its communicators return errors rather than abort) is
an MpiError naming the call and the op's kernel file:line, as in compiled code."""
from __future__ import annotations

import numpy as np

from ..errors import CollectiveError, HpcadError, MpiError, where
from ..ir.core import Op
from ..ir.dialects import MPI_OPERANDS
from ..ir.types import lanes
from .semantics import buffers_overlap, fault, fortran_ordered

CALLS = {"rank": "MPI_Comm_rank", "size": "MPI_Comm_size", "cart_shift": "MPI_Cart_shift",
         "barrier": "MPI_Barrier", "sendrecv": "MPI_Sendrecv", "send": "MPI_Send",
         "recv": "MPI_Recv", "isend": "MPI_Isend", "irecv": "MPI_Irecv", "wait": "MPI_Wait",
         "allreduce": "MPI_Allreduce", "allreduce_scalar": "MPI_Allreduce",
         "reduce": "MPI_Reduce", "bcast": "MPI_Bcast", "gather": "MPI_Gather",
         "scatter": "MPI_Scatter", "allgather": "MPI_Allgather", "alltoall": "MPI_Alltoall",
         "iallreduce": "MPI_Iallreduce", "ibcast": "MPI_Ibcast", "ireduce": "MPI_Ireduce",
         "iallgather": "MPI_Iallgather",
         "gatherv": "MPI_Gatherv", "scatterv": "MPI_Scatterv", "allgatherv": "MPI_Allgatherv",
         "alltoallv": "MPI_Alltoallv", "reduce_scatter": "MPI_Reduce_scatter",
         "reduce_scatter_block": "MPI_Reduce_scatter_block",
         "neighbor_alltoall": "MPI_Neighbor_alltoall",
         "neighbor_allgather": "MPI_Neighbor_allgather", "cart_coords": "MPI_Cart_coords",
         "cart_topo": "MPI_Cart_get", "cart_ndim": "MPI_Cartdim_get", "wtime": "MPI_Wtime",
         "owner": "MPI_Allreduce"}


def _ops():
    from mpi4py import MPI
    return {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}


def _contiguous(buf: np.ndarray) -> np.ndarray:
    return buf if buf.flags.c_contiguous else np.ascontiguousarray(buf)


def _receive_into(buf: np.ndarray, fill) -> None:
    """MPI receives into contiguous memory; a strided view gets a copy back (starting from
    its current values: a receive from PROC_NULL leaves the buffer as it was)."""
    if buf.flags.c_contiguous:
        fill(buf)
    else:
        tmp = np.array(buf, order="C")
        fill(tmp)
        buf[...] = tmp


def run_mpi(op: Op, args: list):
    """Execute one mpi op on its operand values; returns its result or None."""
    from mpi4py import MPI
    kind = op.name.split(".", 1)[1]
    if any(isinstance(a, np.ndarray) and lanes(v.type) == 1 and fortran_ordered(a)
           for v, a in zip(op.operands, args, strict=False)):   # (a primal's buffer)
        raise fault("order", op.loc)
    if kind == "sendrecv" and lanes(op.operands[0].type) == 1 and MPI.PROC_NULL not in \
            (args[1], args[4]) and buffers_overlap(args[0], args[3]):
        raise fault("alias", op.loc)   # (to or from PROC_NULL one buffer is not touched)
    try:
        return _run(op, kind, args)
    except MPI.Exception as e:
        raise MpiError(where(op.loc), CALLS.get(kind, kind), e.Get_error_code()) from None


def _run(op: Op, kind: str, args: list):
    rule = RUN.get(kind)
    if rule is None:
        raise HpcadError(f"{where(op.loc)}: the interpreter has no rule for MPI call "
                         f"{op.name}")
    return rule(op, args[-1], args)


def _wait(op, comm, args):
    request = args[0]
    if isinstance(request, list):   # one request per lane (_iallgather)
        from mpi4py import MPI
        MPI.Request.Waitall(request)
    else:
        request.Wait()


def _sendrecv(op, comm, args):
    """The received message's tag (0 where the source is PROC_NULL: no message)."""
    from mpi4py import MPI
    sendbuf, dest, sendtag, recvbuf, source, recvtag = args[:6]
    status = MPI.Status()
    _receive_into(recvbuf, lambda b: comm.Sendrecv(_contiguous(sendbuf), dest, sendtag, b,
                                                    source, recvtag, status))
    return 0 if source == MPI.PROC_NULL else int(status.Get_tag())


def _send(op, comm, args):
    buf, dest, tag = args[:3]
    comm.Send(_contiguous(buf), dest, tag)


def _recv(op, comm, args):
    buf, source, tag = args[:3]
    _receive_into(buf, lambda b: comm.Recv(b, source, tag))


def _nonblocking(op, comm, args):
    buf, peer, tag = args[:3]
    if not buf.flags.c_contiguous:
        raise HpcadError(f"non-blocking MPI buffers must be contiguous ({op.name})")
    return (comm.Isend if op.name.endswith("isend") else comm.Irecv)(buf, peer, tag)


def _allreduce(op, comm, args):
    sendbuf, recvbuf = args[:2]
    op_ = _ops()[op.attrs.get("op", "sum")]
    _receive_into(recvbuf, lambda b: comm.Allreduce(_contiguous(sendbuf), b, op_))


def _reduce(op, comm, args):
    sendbuf, recvbuf, root = args[:3]
    op_ = _ops()[op.attrs.get("op", "sum")]
    if comm.Get_rank() == root:
        _receive_into(recvbuf, lambda b: comm.Reduce(_contiguous(sendbuf), b, op_, root))
    else:
        comm.Reduce(_contiguous(sendbuf), None, op_, root)


def _bcast(op, comm, args):
    buf, root = args[:2]
    if comm.Get_rank() != root:
        _receive_into(buf, lambda b: comm.Bcast(b, root))
    else:
        comm.Bcast(_contiguous(buf), root)


def _gather(op, comm, args):
    sendbuf, recvbuf, root = args[:3]
    send = _contiguous(sendbuf)
    if comm.Get_rank() == root:
        _receive_into(recvbuf, lambda b: comm.Gather(send, b, root))
    else:
        comm.Gather(send, None, root)


def _scatter(op, comm, args):
    sendbuf, recvbuf, root = args[:3]
    send = _contiguous(sendbuf) if comm.Get_rank() == root else None
    _receive_into(recvbuf, lambda b: comm.Scatter(send, b, root))


def _collective(name: str):
    def run(op, comm, args):
        sendbuf, recvbuf = args[:2]
        call = getattr(comm, name)
        _receive_into(recvbuf, lambda b: call(_contiguous(sendbuf), b))
    return run


def _allreduce_scalar(op, comm, args):
    value = args[0]
    out = np.array([value])
    red = np.empty_like(out)
    comm.Allreduce(out, red, _ops()[op.attrs.get("op", "sum")])
    if isinstance(value, np.ndarray):   # a vector's lanes, reduced lane by lane
        return red[0]
    return type(value)(red[0]) if not isinstance(value, np.generic) else red[0]


def _block_problem(counts, displs, extent: int, ranks: int, disjoint: bool) -> str | None:
    """What is wrong with per-rank blocks (counts[r] elements from displs[r]) of a buffer
    of `extent` elements, or None: one block per rank, counts >= 0, every block inside the
    buffer, and (for receive buffers) no two blocks overlapping."""
    counts, displs = np.asarray(counts), np.asarray(displs)
    if len(counts) != ranks or len(displs) != ranks:
        return (f"it needs one count and one displacement per rank ({ranks}), got "
                f"{len(counts)} counts and {len(displs)} displacements")
    if (counts < 0).any():
        return f"a count is negative (counts {counts.tolist()})"
    used = counts > 0
    if (used & ((displs < 0) | (displs + counts > extent))).any():
        return (f"a block lies outside its buffer of {extent} elements (counts "
                f"{counts.tolist()}, displacements {displs.tolist()})")
    order = np.argsort(displs[used], kind="stable")
    starts, ends = displs[used][order], (displs + counts)[used][order]
    if disjoint and (starts[1:] < ends[:-1]).any():
        return (f"two receive blocks overlap (counts {counts.tolist()}, displacements "
                f"{displs.tolist()})")
    return None


def _agree(op, comm, problem: str | None) -> None:
    """Raise on every rank where any rank found its blocks wrong (a rank that raised alone
    would leave the others waiting in the collective)."""
    from mpi4py import MPI
    flags = np.array([problem is not None], dtype=np.int64)
    comm.Allreduce(MPI.IN_PLACE, flags, op=MPI.MAX)
    if flags[0]:
        detail = problem or "another rank's counts or displacements are wrong (see its error)"
        raise CollectiveError(f"{where(op.loc)}: {CALLS[op.name.split('.', 1)[1]]} on rank "
                         f"{comm.Get_rank()}: {detail}; fix the counts and displacements")


def _size(buf) -> int:
    return int(np.size(buf))


def _lanewise_v(rule):
    """Arrays of vectors (lanes first here) go one lane per call, so that counts and
    displacements, in elements, stay the same for every lane."""
    def run(op, comm, args):
        names = MPI_OPERANDS[op.name.split(".", 1)[1]]
        width = lanes(op.operands[0].type)
        if width == 1:
            return rule(op, comm, args, _size(args[0]), _size(args[1]))
        for w in range(width):
            lane = [a[w] if n.endswith("buf") else a for n, a in zip(names, args)]
            rule(op, comm, lane + args[len(names):], _size(args[0][0]), _size(args[1][0]))
        return None
    return run


def _gatherv(op, comm, args, n_send, n_recv):
    sendbuf, recvbuf, counts, displs, root = args[:5]
    rank = comm.Get_rank()
    problem = None
    if rank == root:
        problem = _block_problem(counts, displs, n_recv, comm.Get_size(), True)
        if problem is None and counts[root] != n_send:
            problem = f"the root sends {n_send} elements but receives {counts[root]} from itself"
    _agree(op, comm, problem)
    send = _contiguous(sendbuf)
    if rank == root:
        _receive_into(recvbuf, lambda b: comm.Gatherv(send, [b, (counts, displs)], root))
    else:
        comm.Gatherv(send, None, root)


def _scatterv(op, comm, args, n_send, n_recv):
    sendbuf, recvbuf, counts, displs, root = args[:5]
    rank = comm.Get_rank()
    problem = None
    if rank == root:
        problem = _block_problem(counts, displs, n_send, comm.Get_size(), False)
    _agree(op, comm, problem)
    send = [_contiguous(sendbuf), (counts, displs)] if rank == root else None
    _receive_into(recvbuf, lambda b: comm.Scatterv(send, b, root))


def _allgatherv(op, comm, args, n_send, n_recv):
    sendbuf, recvbuf, counts, displs = args[:4]
    problem = _block_problem(counts, displs, n_recv, comm.Get_size(), True)
    if problem is None and counts[comm.Get_rank()] != n_send:
        problem = (f"this rank sends {n_send} elements but its count is "
                   f"{counts[comm.Get_rank()]}")
    _agree(op, comm, problem)
    send = _contiguous(sendbuf)
    _receive_into(recvbuf, lambda b: comm.Allgatherv(send, [b, (counts, displs)]))


def _alltoallv(op, comm, args, n_send, n_recv):
    sendbuf, recvbuf, scounts, sdispls, rcounts, rdispls = args[:6]
    size = comm.Get_size()
    problem = _block_problem(scounts, sdispls, n_send, size, False) \
        or _block_problem(rcounts, rdispls, n_recv, size, True)
    _agree(op, comm, problem)
    send = [_contiguous(sendbuf), (scounts, sdispls)]
    _receive_into(recvbuf, lambda b: comm.Alltoallv(send, [b, (rcounts, rdispls)]))


def _reduce_scatter(op, comm, args, n_send, n_recv):
    sendbuf, recvbuf, counts = args[:3]
    size, rank = comm.Get_size(), comm.Get_rank()
    counts = np.asarray(counts)
    problem = _block_problem(counts, np.cumsum(counts) - counts, n_send, size, True)
    if problem is None and counts[rank] != n_recv:
        problem = (f"this rank's count is {counts[rank]} but its receive buffer holds "
                   f"{n_recv} elements")
    _agree(op, comm, problem)
    send = _contiguous(sendbuf).reshape(-1)[:counts.sum()]
    op_ = _ops()[op.attrs.get("op", "sum")]
    _receive_into(recvbuf, lambda b: comm.Reduce_scatter(send, b, counts, op_))


def _reduce_scatter_block(op, comm, args, n_send, n_recv):
    sendbuf, recvbuf = args[:2]
    problem = None
    if n_send != n_recv * comm.Get_size():
        problem = (f"the send buffer holds {n_send} elements, not the size of the "
                   f"communicator times the receive buffer's ({n_recv})")
    _agree(op, comm, problem)
    op_ = _ops()[op.attrs.get("op", "sum")]
    _receive_into(recvbuf, lambda b: comm.Reduce_scatter_block(_contiguous(sendbuf), b, op_))

def _owner(op, comm, args):
    """Per element, the lowest rank holding the MAX/MIN (one holding a NaN where the
    extremum is NaN, or where no rank equals it)."""
    from mpi4py import MPI
    sendbuf, recvbuf = args[:2]
    x = _contiguous(sendbuf)
    top = np.empty_like(x)
    comm.Allreduce(x, top, _ops()[op.attrs["op"]])
    held = (x == top) | np.isnan(x) if x.dtype.kind == "f" else x == top
    mine = np.where(held, comm.Get_rank(), comm.Get_size()).astype(np.int64)
    _receive_into(recvbuf, lambda b: comm.Allreduce(mine, b, MPI.MIN))


def _posted(op, buffers) -> None:
    """MPI reads and writes a nonblocking collective's buffers until its wait: they are the
    arrays themselves, never copies."""
    if not all(b is None or b.flags.c_contiguous for b in buffers):
        raise HpcadError(f"{where(op.loc)}: non-blocking MPI buffers must be contiguous "
                         f"({op.name})")


def _iallreduce(op, comm, args):
    sendbuf, recvbuf = args[:2]
    _posted(op, (sendbuf, recvbuf))
    return comm.Iallreduce(sendbuf, recvbuf, _ops()[op.attrs.get("op", "sum")])


def _ibcast(op, comm, args):
    buf, root = args[:2]
    _posted(op, (buf,))
    return comm.Ibcast(buf, root)


def _ireduce(op, comm, args):
    sendbuf, recvbuf, root = args[:3]
    recv = recvbuf if comm.Get_rank() == root else None
    _posted(op, (sendbuf, recv))
    return comm.Ireduce(sendbuf, recv, _ops()[op.attrs.get("op", "sum")], root)


def _iallgather(op, comm, args):
    """Each rank's buffer is placed whole: arrays of vectors (the lane the first axis here)
    go one lane per message, their requests waited together."""
    sendbuf, recvbuf = args[:2]
    _posted(op, (sendbuf, recvbuf))
    if lanes(op.operands[0].type) == 1:
        return comm.Iallgather(sendbuf, recvbuf)
    return [comm.Iallgather(s, r) for s, r in zip(sendbuf, recvbuf, strict=True)]


def _cart_topo(op, comm, args):
    """Get_topo's dims, periods and coords, one flat tuple (the op's results)."""
    return tuple(int(x) for part in comm.Get_topo() for x in part)


def _wtime(op, comm, args):
    from mpi4py import MPI
    return MPI.Wtime()


# mpi op kind -> rule(op, communicator, operand values) -> result or None
RUN = {
    "wait": _wait,
    "rank": lambda op, comm, args: comm.Get_rank(),
    "size": lambda op, comm, args: comm.Get_size(),
    "cart_shift": lambda op, comm, args: comm.Shift(args[0], args[1]),
    "barrier": lambda op, comm, args: comm.Barrier(),
    "sendrecv": _sendrecv,
    "send": _send,
    "recv": _recv,
    "isend": _nonblocking,
    "irecv": _nonblocking,
    "allreduce": _allreduce,
    "reduce": _reduce,
    "bcast": _bcast,
    "gather": _gather,
    "scatter": _scatter,
    "allgather": _collective("Allgather"),
    "alltoall": _collective("Alltoall"),
    "allreduce_scalar": _allreduce_scalar,
    "gatherv": _lanewise_v(_gatherv),
    "scatterv": _lanewise_v(_scatterv),
    "allgatherv": _lanewise_v(_allgatherv),
    "alltoallv": _lanewise_v(_alltoallv),
    "reduce_scatter": _lanewise_v(_reduce_scatter),
    "reduce_scatter_block": _lanewise_v(_reduce_scatter_block),

    "owner": _owner,

    "iallreduce": _iallreduce,
    "ibcast": _ibcast,
    "ireduce": _ireduce,
    "iallgather": _iallgather,
    "neighbor_alltoall": _collective("Neighbor_alltoall"),
    "neighbor_allgather": _collective("Neighbor_allgather"),
    "cart_coords": lambda op, comm, args: tuple(comm.Get_coords(args[0])),
    "cart_topo": _cart_topo,
    "cart_ndim": lambda op, comm, args: comm.Get_dim(),
    "wtime": _wtime,
}
