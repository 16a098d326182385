"""The reference interpreter's MPI ops, through mpi4py on the communicator argument. An
MPI failure (mpi4py's MPI.Exception: its communicators return errors rather than abort) is
an MpiError naming the call and the op's kernel file:line, as in compiled code."""
from __future__ import annotations

import numpy as np

from ..errors import HpcadError, MpiError, where
from ..ir.core import Op

CALLS = {"rank": "MPI_Comm_rank", "size": "MPI_Comm_size", "cart_shift": "MPI_Cart_shift",
         "barrier": "MPI_Barrier", "sendrecv": "MPI_Sendrecv", "send": "MPI_Send",
         "recv": "MPI_Recv", "isend": "MPI_Isend", "irecv": "MPI_Irecv", "wait": "MPI_Wait",
         "allreduce": "MPI_Allreduce", "allreduce_scalar": "MPI_Allreduce",
         "reduce": "MPI_Reduce", "bcast": "MPI_Bcast", "gather": "MPI_Gather",
         "scatter": "MPI_Scatter", "allgather": "MPI_Allgather", "alltoall": "MPI_Alltoall",
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
    args[0].Wait()


def _sendrecv(op, comm, args):
    sendbuf, dest, sendtag, recvbuf, source, recvtag = args[:6]
    _receive_into(recvbuf, lambda b: comm.Sendrecv(_contiguous(sendbuf), dest, sendtag, b,
                                                    source, recvtag))


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


# -- v-forms (helper V) --

# -- reductions (helper R) --
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


# -- nonblocking (helper N) --

# -- topology (helper T) --


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
    # -- v-forms (helper V) --

    # -- reductions (helper R) --
    "owner": _owner,

    # -- nonblocking (helper N) --

    # -- topology (helper T) --

}
