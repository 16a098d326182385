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

from ...errors import HpcadError, MpiError

_C_INT = ir.IntType(32)
_VOID_P = ir.IntType(8).as_pointer()
STATUS_IGNORE = 1          # MPICH: (MPI_Status *) 1
HANDLE_NAMES = ("DOUBLE", "FLOAT", "INT64_T", "INT32_T", "C_BOOL", "SUM", "MAX", "MIN",
                "COMM_WORLD")
DTYPE_SLOT = {"f64": 0, "f32": 1, "i64": 2, "i32": 3, "i1": 4}
OP_SLOT = {"sum": 5, "max": 6, "min": 7}
WORLD_SLOT = 8
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
    if MPI._sizeof(MPI.Comm) != 4 or MPI.PROC_NULL != PROC_NULL:
        raise HpcadError("the numba backend calls MPI through the MPICH ABI (int handles); "
                         "this MPI library uses another ABI: use backend='interp'")
    import llvmlite.binding as ll
    from numba_mpi.common import LIB
    ll.load_library_permanently(LIB)
    _loaded = True


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
    send = np.ascontiguousarray(sendbuf)
    recv = _receivable(recvbuf)
    _check(_sendrecv(send.ctypes.data, send.size, dtype, dest, sendtag,
                     recv.ctypes.data, recv.size, dtype, source, recvtag, comm,
                     STATUS_IGNORE), "MPI_Sendrecv", site)
    _received(recvbuf, recv)


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


# -- v-forms (helper V) --

# -- reductions (helper R) --
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


# -- nonblocking (helper N) --

# -- topology (helper T) --
