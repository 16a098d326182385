"""MPI from compiled code. MPI's C functions are declared by name in the generated LLVM IR
and resolved against the MPI library mpi4py loaded, so a compiled kernel stays cacheable on
disk (a ctypes function pointer would not). Handles follow the MPICH ABI (C ints): the
communicator is passed in as its handle, datatype and reduction handles as arguments taken
from mpi4py at call time, never baked into cached code."""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ...errors import CollectiveError, HpcadError, MpiError, UnsupportedConstruct
from ..semantics import buffers_overlap, fortran_ordered
from .common import HANDLE_NAMES

_C_INT = ir.IntType(32)
_VOID_P = ir.IntType(8).as_pointer()
STATUS_IGNORE = 1          # MPICH: (MPI_Status *) 1
STATUS_INTS = 5            # MPICH's MPI_Status: 5 C ints (checked by load_library)
STATUS_TAG = 3             # ... of which MPI_TAG is the fourth
PROC_NULL = -1             # MPICH's MPI_PROC_NULL


_loaded = False


def load_library() -> None:
    """Make the MPI library's symbols visible to numba's JIT linker (once; before code
    that calls MPI is compiled or loaded from the cache, not at `import hpcad`, which
    stays free of mpi4py for kernels without MPI)."""
    global _loaded
    if _loaded:
        return
    from mpi4py import MPI
    if MPI._sizeof(MPI.Comm) != 4 or MPI.PROC_NULL != PROC_NULL or not _status_layout():
        raise HpcadError("the numba backend calls MPI through the MPICH ABI (int handles); "
                         "this MPI library uses another ABI: use backend='interp'")
    import llvmlite.binding as ll
    from numba_mpi.common import LIB
    ll.load_library_permanently(LIB)
    _loaded = True


def _status_layout() -> bool:
    """Whether MPI_Status is MPICH's (STATUS_INTS ints, the tag at STATUS_TAG)."""
    import ctypes

    from mpi4py import MPI
    status = MPI.Status()
    status.Set_tag(12345)
    if MPI._sizeof(MPI.Status) != 4 * STATUS_INTS:
        return False
    ints = (ctypes.c_int * STATUS_INTS).from_address(MPI._addressof(status))
    return bool(ints[STATUS_TAG] == 12345)


def _signed(handle: int) -> int:
    """mpi4py gives a C int handle as an unsigned 64-bit number (0xffffffff84000000 for
    0x84000000): the int64 with the same low 32 bits."""
    return handle - 2 ** 64 if handle >= 2 ** 63 else handle


def handles() -> np.ndarray:
    """The handles of the datatypes and reductions generated code needs, in HANDLE_NAMES
    order (read from mpi4py in the running process)."""
    from mpi4py import MPI
    return np.array([_signed(MPI._handleof(getattr(MPI, n))) for n in HANDLE_NAMES],
                    dtype=np.int64)


def comm_handle(comm) -> int:
    from mpi4py import MPI
    return _signed(MPI._handleof(comm))


def _extern(name: str, kinds: str):
    """An intrinsic calling C function `name(...) -> int`; kinds has one letter per
    argument: 'p' a pointer given as an integer address, 'i' a C int."""
    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(_C_INT, [_VOID_P if k == "p" else _C_INT for k in kinds])
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)
        cast = []
        for a, k in zip(args, kinds):
            width = a.type.width
            if k == "p":
                cast.append(builder.inttoptr(a, _VOID_P))
            else:
                cast.append(builder.trunc(a, _C_INT) if width > 32 else
                            builder.sext(a, _C_INT) if width < 32 else a)
        return builder.sext(builder.call(fn, cast), ir.IntType(64))

    # numba intrinsics need fixed parameters: write the typer with one per C argument
    params = ", ".join(f"a{k}" for k in range(len(kinds)))
    namespace = {"codegen": codegen, "types": types}
    exec(f"def typer(typingctx, {params}):\n"
         f"    return types.int64({params}), codegen\n", namespace)
    return intrinsic(namespace["typer"])


_comm_rank = _extern("MPI_Comm_rank", "ip")
_comm_size = _extern("MPI_Comm_size", "ip")
_barrier = _extern("MPI_Barrier", "i")
_sendrecv = _extern("MPI_Sendrecv", "piiiipiiiiip")
_send = _extern("MPI_Send", "piiiii")
_recv = _extern("MPI_Recv", "piiiiip")
_allreduce = _extern("MPI_Allreduce", "ppiiii")
_reduce = _extern("MPI_Reduce", "ppiiiii")
_bcast = _extern("MPI_Bcast", "piiii")
_gather = _extern("MPI_Gather", "piipiiii")
_scatter = _extern("MPI_Scatter", "piipiiii")
_allgather = _extern("MPI_Allgather", "piipiii")
_alltoall = _extern("MPI_Alltoall", "piipiii")
_cart_shift = _extern("MPI_Cart_shift", "iiipp")
_isend = _extern("MPI_Isend", "piiiiip")
_irecv = _extern("MPI_Irecv", "piiiiip")
_wait = _extern("MPI_Wait", "pp")

OPTIONS = dict(cache=True, nogil=True)


@njit(**OPTIONS)
def _check(rc, call, site):
    """Every MPI call's return code (mpi4py sets MPI_ERRORS_RETURN on its communicators):
    a failure raises MpiError at the op's kernel location `site`."""
    if rc != 0:
        raise MpiError(site, call, rc)


@njit(**OPTIONS)
def _receivable(buf):
    """Contiguous memory to receive buf's message into: buf itself where it is contiguous,
    else a copy of its current values, so that elements no message reaches (a short message,
    a receive from PROC_NULL) keep them, as with mpi4py."""
    return np.ascontiguousarray(buf)


_fortran_ordered = njit(**OPTIONS)(fortran_ordered)


@njit(**OPTIONS)
def memory_order(buf, message):
    """Stop where mpi4py and numba-mpi would send buf's elements in different orders
    (semantics.fortran_ordered, the interpreter's test too)."""
    if _fortran_ordered(buf):
        raise UnsupportedConstruct(message)


_buffers_overlap = njit(**OPTIONS)(buffers_overlap)


@njit(**OPTIONS)
def disjoint(sendbuf, dest, recvbuf, source, message):
    """Stop where a Sendrecv's send and receive buffers overlap (semantics.buffers_overlap,
    the interpreter's test too) and both are used (to or from PROC_NULL one is not)."""
    if dest != PROC_NULL and source != PROC_NULL and _buffers_overlap(sendbuf, recvbuf):
        raise UnsupportedConstruct(message)


@njit(**OPTIONS)
def _received(buf, data):
    if data.ctypes.data != buf.ctypes.data:
        buf[...] = data


@njit(**OPTIONS)
def rank(comm, site):
    out = np.zeros(1, np.int32)
    _check(_comm_rank(comm, out.ctypes.data), "MPI_Comm_rank", site)
    return np.int64(out[0])


@njit(**OPTIONS)
def size(comm, site):
    out = np.zeros(1, np.int32)
    _check(_comm_size(comm, out.ctypes.data), "MPI_Comm_size", site)
    return np.int64(out[0])


@njit(**OPTIONS)
def cart_shift(direction, disp, comm, site):
    ranks = np.zeros(2, np.int32)
    _check(_cart_shift(comm, direction, disp, ranks.ctypes.data, ranks.ctypes.data + 4),
           "MPI_Cart_shift", site)
    return np.int64(ranks[0]), np.int64(ranks[1])


@njit(**OPTIONS)
def barrier(comm, site):
    _check(_barrier(comm), "MPI_Barrier", site)


@njit(**OPTIONS)
def sendrecv(sendbuf, dest, sendtag, recvbuf, source, recvtag, comm, dtype, site):
    """The received message's tag (0 where the source is PROC_NULL: no message)."""
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    status = np.zeros(STATUS_INTS, np.int32)
    _check(_sendrecv(send.ctypes.data, send.size, dtype, dest, sendtag,
                     recv.ctypes.data, recv.size, dtype, source, recvtag, comm,
                     status.ctypes.data), "MPI_Sendrecv", site)
    _received(recvbuf, recv)
    return np.int64(0) if source == PROC_NULL else np.int64(status[STATUS_TAG])


@njit(**OPTIONS)
def send(buf, dest, tag, comm, dtype, site):
    data = np.ascontiguousarray(buf)
    _check(_send(data.ctypes.data, data.size, dtype, dest, tag, comm), "MPI_Send", site)


@njit(**OPTIONS)
def recv(buf, source, tag, comm, dtype, site):
    data = _receivable(buf)
    _check(_recv(data.ctypes.data, data.size, dtype, source, tag, comm, STATUS_IGNORE),
           "MPI_Recv", site)
    _received(buf, data)


@njit(**OPTIONS)
def isend(buf, dest, tag, comm, dtype, site):
    """Post a send of a C-contiguous buffer; the request's handle."""
    request = np.zeros(1, np.int32)
    _check(_isend(buf.ctypes.data, buf.size, dtype, dest, tag, comm, request.ctypes.data),
           "MPI_Isend", site)
    return np.int64(request[0])


@njit(**OPTIONS)
def irecv(buf, source, tag, comm, dtype, site):
    request = np.zeros(1, np.int32)
    _check(_irecv(buf.ctypes.data, buf.size, dtype, source, tag, comm, request.ctypes.data),
           "MPI_Irecv", site)
    return np.int64(request[0])


@njit(**OPTIONS)
def wait(request, site):
    handle = np.full(1, request, np.int32)
    _check(_wait(handle.ctypes.data, STATUS_IGNORE), "MPI_Wait", site)


@njit(**OPTIONS)
def allreduce(sendbuf, recvbuf, comm, dtype, op, site):
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    _check(_allreduce(send.ctypes.data, recv.ctypes.data, send.size, dtype, op, comm),
           "MPI_Allreduce", site)
    _received(recvbuf, recv)


@njit(**OPTIONS)
def reduce(sendbuf, recvbuf, root, comm, dtype, op, site):
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    _check(_reduce(send.ctypes.data, recv.ctypes.data, send.size, dtype, op, root, comm),
           "MPI_Reduce", site)
    if rank(comm, site) == root:
        _received(recvbuf, recv)


@njit(**OPTIONS)
def bcast(buf, root, comm, dtype, site):
    data = np.ascontiguousarray(buf)
    _check(_bcast(data.ctypes.data, data.size, dtype, root, comm), "MPI_Bcast", site)
    if rank(comm, site) != root:
        _received(buf, data)


@njit(**OPTIONS)
def gather(sendbuf, recvbuf, root, comm, dtype, site):
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    _check(_gather(send.ctypes.data, send.size, dtype, recv.ctypes.data, send.size, dtype,
                   root, comm), "MPI_Gather", site)
    if rank(comm, site) == root:
        _received(recvbuf, recv)


@njit(**OPTIONS)
def scatter(sendbuf, recvbuf, root, comm, dtype, site):
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    _check(_scatter(send.ctypes.data, recv.size, dtype, recv.ctypes.data, recv.size, dtype,
                    root, comm), "MPI_Scatter", site)
    _received(recvbuf, recv)


@njit(**OPTIONS)
def allgather(sendbuf, recvbuf, comm, dtype, site):
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    _check(_allgather(send.ctypes.data, send.size, dtype, recv.ctypes.data, send.size, dtype,
                      comm), "MPI_Allgather", site)
    _received(recvbuf, recv)


@njit(**OPTIONS)
def alltoall(sendbuf, recvbuf, comm, dtype, site):
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    count = send.size // size(comm, site)
    _check(_alltoall(send.ctypes.data, count, dtype, recv.ctypes.data, count, dtype, comm),
           "MPI_Alltoall", site)
    _received(recvbuf, recv)


@njit(**OPTIONS)
def allreduce_scalar(value, comm, dtype, op, site):
    send = np.full(1, value)
    recv = np.empty_like(send)
    _check(_allreduce(send.ctypes.data, recv.ctypes.data, 1, dtype, op, comm),
           "MPI_Allreduce", site)
    return recv[0]


_gatherv = _extern("MPI_Gatherv", "piipppiii")
_scatterv = _extern("MPI_Scatterv", "pppipiiii")
_allgatherv = _extern("MPI_Allgatherv", "piipppii")
_alltoallv = _extern("MPI_Alltoallv", "pppipppii")
_reduce_scatter = _extern("MPI_Reduce_scatter", "pppiii")
_reduce_scatter_block = _extern("MPI_Reduce_scatter_block", "ppiiii")

# what _block_fault found wrong, by its code (0: nothing)
_NO_FAULT, _LENGTH, _NEGATIVE, _OUTSIDE, _OVERLAP, _SIZES = 0, 1, 2, 3, 4, 5


@njit(**OPTIONS)
def _block_fault(counts, displs, extent, ranks, disjoint):
    """What is wrong with per-rank blocks (counts[r] elements from displs[r]) of a buffer
    of `extent` elements: one block per rank, counts >= 0, each block inside the buffer,
    and for receive buffers (disjoint) no two blocks overlapping."""
    if counts.size != ranks or displs.size != ranks:
        return _LENGTH
    for r in range(ranks):
        if counts[r] < 0:
            return _NEGATIVE
    for r in range(ranks):
        if counts[r] > 0 and (displs[r] < 0 or displs[r] + counts[r] > extent):
            return _OUTSIDE
    if disjoint:
        end = np.int64(0)
        for r in np.argsort(displs):
            if counts[r] > 0:
                if displs[r] < end:
                    return _OVERLAP
                end = max(end, np.int64(displs[r] + counts[r]))
    return _NO_FAULT


@njit(**OPTIONS)
def _fault_message(fault):
    if fault == _LENGTH:
        return "it needs one count and one displacement per rank"
    if fault == _NEGATIVE:
        return "a count is negative"
    if fault == _OUTSIDE:
        return "a block lies outside its buffer"
    if fault == _OVERLAP:
        return "two receive blocks overlap"
    if fault == _SIZES:
        return "a rank's own count differs from the size of the buffer it sends or receives"
    return "another rank's counts or displacements are wrong (see its error)"


@njit(**OPTIONS)
def _agree(fault, comm, int_type, max_op, call, site):
    """Raise on every rank where any rank found a fault (a rank raising alone would leave
    the others waiting in the collective)."""
    send = np.full(1, fault, np.int64)
    worst = np.zeros(1, np.int64)
    _check(_allreduce(send.ctypes.data, worst.ctypes.data, 1, int_type, max_op, comm),
           "MPI_Allreduce", site)
    if worst[0] != _NO_FAULT:
        raise CollectiveError(site + ": " + call + " on rank " + str(rank(comm, site)) + ": "
                         + _fault_message(fault) + "; fix the counts and displacements")


@njit(**OPTIONS)
def _c_ints(a):
    return np.ascontiguousarray(a).astype(np.int32)


@njit(**OPTIONS)
def gatherv(sendbuf, recvbuf, counts, displs, root, comm, dtype, int_type, max_op, site):
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    mine = rank(comm, site) == root
    fault = _NO_FAULT
    if mine:
        fault = _block_fault(counts, displs, recv.size, size(comm, site), True)
        if fault == _NO_FAULT and counts[root] != send.size:
            fault = _SIZES
    _agree(fault, comm, int_type, max_op, "MPI_Gatherv", site)
    c, d = _c_ints(counts), _c_ints(displs)
    _check(_gatherv(send.ctypes.data, send.size, dtype, recv.ctypes.data, c.ctypes.data,
                    d.ctypes.data, dtype, root, comm), "MPI_Gatherv", site)
    if mine:
        _received(recvbuf, recv)


@njit(**OPTIONS)
def scatterv(sendbuf, recvbuf, counts, displs, root, comm, dtype, int_type, max_op, site):
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    fault = _NO_FAULT
    if rank(comm, site) == root:
        fault = _block_fault(counts, displs, send.size, size(comm, site), False)
    _agree(fault, comm, int_type, max_op, "MPI_Scatterv", site)
    c, d = _c_ints(counts), _c_ints(displs)
    _check(_scatterv(send.ctypes.data, c.ctypes.data, d.ctypes.data, dtype, recv.ctypes.data,
                     recv.size, dtype, root, comm), "MPI_Scatterv", site)
    _received(recvbuf, recv)


@njit(**OPTIONS)
def allgatherv(sendbuf, recvbuf, counts, displs, comm, dtype, int_type, max_op, site):
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    fault = _block_fault(counts, displs, recv.size, size(comm, site), True)
    if fault == _NO_FAULT and counts[rank(comm, site)] != send.size:
        fault = _SIZES
    _agree(fault, comm, int_type, max_op, "MPI_Allgatherv", site)
    c, d = _c_ints(counts), _c_ints(displs)
    _check(_allgatherv(send.ctypes.data, send.size, dtype, recv.ctypes.data, c.ctypes.data,
                       d.ctypes.data, dtype, comm), "MPI_Allgatherv", site)
    _received(recvbuf, recv)


@njit(**OPTIONS)
def alltoallv(sendbuf, recvbuf, sendcounts, senddispls, recvcounts, recvdispls, comm, dtype,
              int_type, max_op, site):
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    ranks = size(comm, site)
    fault = _block_fault(sendcounts, senddispls, send.size, ranks, False)
    if fault == _NO_FAULT:
        fault = _block_fault(recvcounts, recvdispls, recv.size, ranks, True)
    _agree(fault, comm, int_type, max_op, "MPI_Alltoallv", site)
    sc, sd = _c_ints(sendcounts), _c_ints(senddispls)
    rc, rd = _c_ints(recvcounts), _c_ints(recvdispls)
    _check(_alltoallv(send.ctypes.data, sc.ctypes.data, sd.ctypes.data, dtype,
                      recv.ctypes.data, rc.ctypes.data, rd.ctypes.data, dtype, comm),
           "MPI_Alltoallv", site)
    _received(recvbuf, recv)


@njit(**OPTIONS)
def reduce_scatter(sendbuf, recvbuf, counts, comm, dtype, op, int_type, max_op, site):
    """Rank r receives the reduced block r; the blocks lie one after another."""
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    starts = np.cumsum(counts) - counts
    fault = _block_fault(counts, starts, send.size, size(comm, site), True)
    if fault == _NO_FAULT and counts[rank(comm, site)] != recv.size:
        fault = _SIZES
    _agree(fault, comm, int_type, max_op, "MPI_Reduce_scatter", site)
    c = _c_ints(counts)
    _check(_reduce_scatter(send.ctypes.data, recv.ctypes.data, c.ctypes.data, dtype, op,
                           comm), "MPI_Reduce_scatter", site)
    _received(recvbuf, recv)


@njit(**OPTIONS)
def reduce_scatter_block(sendbuf, recvbuf, comm, dtype, op, int_type, max_op, site):
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    fault = _NO_FAULT if send.size == recv.size * size(comm, site) else _SIZES
    _agree(fault, comm, int_type, max_op, "MPI_Reduce_scatter_block", site)
    _check(_reduce_scatter_block(send.ctypes.data, recv.ctypes.data, recv.size, dtype, op,
                                 comm), "MPI_Reduce_scatter_block", site)
    _received(recvbuf, recv)

@njit(**OPTIONS)
def owner(sendbuf, recvbuf, comm, dtype, op, int64, minimum, site):
    """Per element, the lowest rank holding the op (MAX/MIN) extremum (one holding a NaN
    where the extremum is NaN, or where no rank equals it), into the int64 recvbuf."""
    x = np.ascontiguousarray(sendbuf).ravel()
    top = np.empty_like(x)
    _check(_allreduce(x.ctypes.data, top.ctypes.data, x.size, dtype, op, comm),
           "MPI_Allreduce", site)
    me, nobody = rank(comm, site), size(comm, site)
    mine = np.empty(x.size, np.int64)
    for i in range(x.size):
        mine[i] = me if x[i] == top[i] or x[i] != x[i] else nobody
    recv = _receivable(recvbuf)
    _check(_allreduce(mine.ctypes.data, recv.ctypes.data, x.size, int64, minimum, comm),
           "MPI_Allreduce", site)
    _received(recvbuf, recv)


# nonblocking collectives on C-contiguous buffers (MPI reads and writes them until the wait);
# each returns its request's handle
_iallreduce = _extern("MPI_Iallreduce", "ppiiiip")
_ibcast = _extern("MPI_Ibcast", "piiiip")
_ireduce = _extern("MPI_Ireduce", "ppiiiiip")
_iallgather = _extern("MPI_Iallgather", "piipiiip")


@njit(**OPTIONS)
def iallreduce(sendbuf, recvbuf, comm, dtype, op, site):
    request = np.zeros(1, np.int32)
    _check(_iallreduce(sendbuf.ctypes.data, recvbuf.ctypes.data, sendbuf.size, dtype, op,
                       comm, request.ctypes.data), "MPI_Iallreduce", site)
    return np.int64(request[0])


@njit(**OPTIONS)
def ibcast(buf, root, comm, dtype, site):
    request = np.zeros(1, np.int32)
    _check(_ibcast(buf.ctypes.data, buf.size, dtype, root, comm, request.ctypes.data),
           "MPI_Ibcast", site)
    return np.int64(request[0])


@njit(**OPTIONS)
def ireduce(sendbuf, recvbuf, root, comm, dtype, op, site):
    request = np.zeros(1, np.int32)
    _check(_ireduce(sendbuf.ctypes.data, recvbuf.ctypes.data, sendbuf.size, dtype, op, root,
                    comm, request.ctypes.data), "MPI_Ireduce", site)
    return np.int64(request[0])


@njit(**OPTIONS)
def iallgather(sendbuf, recvbuf, comm, dtype, site):
    request = np.zeros(1, np.int32)
    _check(_iallgather(sendbuf.ctypes.data, sendbuf.size, dtype, recvbuf.ctypes.data,
                       sendbuf.size, dtype, comm, request.ctypes.data), "MPI_Iallgather",
           site)
    return np.int64(request[0])


@njit(**OPTIONS)
def wait_keeping(request, first, second, site):
    """wait, with the call's buffers passed along: they stay alive (numba frees an array
    after its last use) until MPI is done with them."""
    wait(request, site)


_neighbor_alltoall = _extern("MPI_Neighbor_alltoall", "piipiii")
_neighbor_allgather = _extern("MPI_Neighbor_allgather", "piipiii")
_cartdim_get = _extern("MPI_Cartdim_get", "ip")
_cart_coords = _extern("MPI_Cart_coords", "iiip")
_cart_get = _extern("MPI_Cart_get", "iippp")


def _wtime_codegen(context, builder, sig, args):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.DoubleType(), []),
                                        "MPI_Wtime")
    return builder.call(fn, [])


@intrinsic
def _wtime(typingctx):
    return types.float64(), _wtime_codegen


@njit(**OPTIONS)
def cart_ndim(comm, site):
    out = np.zeros(1, np.int32)
    _check(_cartdim_get(comm, out.ctypes.data), "MPI_Cartdim_get", site)
    return np.int64(out[0])


@njit(**OPTIONS)
def neighbor_alltoall(sendbuf, recvbuf, comm, dtype, site):
    """One block per neighbour, (-d0, +d0, -d1, ...); a PROC_NULL neighbour's block of
    recvbuf keeps its values."""
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    count = send.size // (2 * cart_ndim(comm, site))
    _check(_neighbor_alltoall(send.ctypes.data, count, dtype, recv.ctypes.data, count, dtype,
                              comm), "MPI_Neighbor_alltoall", site)
    _received(recvbuf, recv)


@njit(**OPTIONS)
def neighbor_allgather(sendbuf, recvbuf, comm, dtype, site):
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    _check(_neighbor_allgather(send.ctypes.data, send.size, dtype, recv.ctypes.data,
                               send.size, dtype, comm), "MPI_Neighbor_allgather", site)
    _received(recvbuf, recv)


@njit(**OPTIONS)
def cart_coords(rank, comm, ndim, site):
    """This rank's coordinates, an int64 array of ndim."""
    out = np.zeros(ndim, np.int32)
    _check(_cart_coords(comm, rank, ndim, out.ctypes.data), "MPI_Cart_coords", site)
    return out.astype(np.int64)


@njit(**OPTIONS)
def cart_topo(comm, ndim, site):
    """dims, periods and coords, one int64 array of 3 * ndim."""
    out = np.zeros(3 * ndim, np.int32)
    _check(_cart_get(comm, ndim, out.ctypes.data, out.ctypes.data + 4 * ndim,
                     out.ctypes.data + 8 * ndim), "MPI_Cart_get", site)
    return out.astype(np.int64)


@njit(**OPTIONS)
def wtime(comm, site):
    return _wtime()
