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
         "scatter": "MPI_Scatter", "allgather": "MPI_Allgather", "alltoall": "MPI_Alltoall"}


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
    comm = args[-1]
    if kind == "wait":
        args[0].Wait()
        return None
    if kind == "rank":
        return comm.Get_rank()
    if kind == "size":
        return comm.Get_size()
    if kind == "cart_shift":
        return comm.Shift(args[0], args[1])
    if kind == "barrier":
        comm.Barrier()
        return None
    if kind == "sendrecv":
        sendbuf, dest, sendtag, recvbuf, source, recvtag = args[:6]
        _receive_into(recvbuf, lambda b: comm.Sendrecv(_contiguous(sendbuf), dest, sendtag, b,
                                                        source, recvtag))
        return None
    if kind == "send":
        buf, dest, tag = args[:3]
        comm.Send(_contiguous(buf), dest, tag)
        return None
    if kind == "recv":
        buf, source, tag = args[:3]
        _receive_into(buf, lambda b: comm.Recv(b, source, tag))
        return None
    if kind in ("isend", "irecv"):
        buf, peer, tag = args[:3]
        if not buf.flags.c_contiguous:
            raise HpcadError(f"non-blocking MPI buffers must be contiguous ({op.name})")
        return (comm.Isend if kind == "isend" else comm.Irecv)(buf, peer, tag)
    if kind == "allreduce":
        sendbuf, recvbuf = args[:2]
        op_ = _ops()[op.attrs.get("op", "sum")]
        _receive_into(recvbuf, lambda b: comm.Allreduce(_contiguous(sendbuf), b, op_))
        return None
    if kind == "reduce":
        sendbuf, recvbuf, root = args[:3]
        op_ = _ops()[op.attrs.get("op", "sum")]
        if comm.Get_rank() == root:
            _receive_into(recvbuf, lambda b: comm.Reduce(_contiguous(sendbuf), b, op_, root))
        else:
            comm.Reduce(_contiguous(sendbuf), None, op_, root)
        return None
    if kind == "bcast":
        buf, root = args[:2]
        _receive_into(buf, lambda b: comm.Bcast(b, root)) if comm.Get_rank() != root \
            else comm.Bcast(_contiguous(buf), root)
        return None
    if kind in ("gather", "scatter"):
        sendbuf, recvbuf, root = args[:3]
        at_root = comm.Get_rank() == root
        if kind == "gather":
            send = _contiguous(sendbuf)
            if at_root:
                _receive_into(recvbuf, lambda b: comm.Gather(send, b, root))
            else:
                comm.Gather(send, None, root)
        else:
            send = _contiguous(sendbuf) if at_root else None
            _receive_into(recvbuf, lambda b: comm.Scatter(send, b, root))
        return None
    if kind in ("allgather", "alltoall"):
        sendbuf, recvbuf = args[:2]
        call = comm.Allgather if kind == "allgather" else comm.Alltoall
        _receive_into(recvbuf, lambda b: call(_contiguous(sendbuf), b))
        return None
    if kind == "allreduce_scalar":
        value = args[0]
        out = np.array([value])
        red = np.empty_like(out)
        comm.Allreduce(out, red, _ops()[op.attrs.get("op", "sum")])
        if isinstance(value, np.ndarray):   # a vector's lanes, reduced lane by lane
            return red[0]
        return type(value)(red[0]) if not isinstance(value, np.generic) else red[0]
    raise NotImplementedError(kind)
