"""`mpi` ops in generated code: calls of the compiled MPI helpers in `mpi.py`, with the
datatype and reduction handles read from the `mpi_handles` argument. Buffers of vectors
(batched derivatives) are sent whole: one message carries every direction."""
from __future__ import annotations

from ...errors import HpcadError, where
from ...ir.types import lanes
from .mpi import DTYPE_SLOT, OP_SLOT, WORLD_SLOT
from .vector import is_vector


class MpiWriter:
    """Mixed into the source writer."""

    def mpi_args(self, op, extra=()):
        return ", ".join([self.ref(v) for v in op.operands] + list(extra) + [self.site(op)])

    def site(self, op) -> str:
        """The op's kernel location, a string constant the compiled MPI helpers put in an
        MpiError when the call fails."""
        return repr(where(op.loc or self.fn.loc))

    @staticmethod
    def dtype_of(buffer) -> str:
        t = buffer.type.dtype if hasattr(buffer.type, "dtype") else buffer.type
        return f"mpi_handles[{DTYPE_SLOT[t.name]}]"

    @staticmethod
    def reduction_of(op) -> str:
        return f"mpi_handles[{OP_SLOT[op.attrs.get('op', 'sum')]}]"

    def op_mpi_world(self, op, depth):
        self.emit(depth, f"{self.name(op.results[0])} = mpi_handles[{WORLD_SLOT}]")

    def op_mpi_rank(self, op, depth):
        self.emit(depth, f"{self.name(op.results[0])} = hpcad_mpi.rank({self.mpi_args(op)})")

    def op_mpi_size(self, op, depth):
        self.emit(depth, f"{self.name(op.results[0])} = hpcad_mpi.size({self.mpi_args(op)})")

    def op_mpi_barrier(self, op, depth):
        self.emit(depth, f"hpcad_mpi.barrier({self.mpi_args(op)})")

    def op_mpi_sendrecv(self, op, depth):
        self.emit(depth, f"hpcad_mpi.sendrecv({self.mpi_args(op, [self.dtype_of(op.operands[0])])})")

    def op_mpi_send(self, op, depth):
        self.emit(depth, f"hpcad_mpi.send({self.mpi_args(op, [self.dtype_of(op.operands[0])])})")

    def op_mpi_recv(self, op, depth):
        self.emit(depth, f"hpcad_mpi.recv({self.mpi_args(op, [self.dtype_of(op.operands[0])])})")

    def op_mpi_allreduce(self, op, depth):
        extra = [self.dtype_of(op.operands[0]), self.reduction_of(op)]
        self.emit(depth, f"hpcad_mpi.allreduce({self.mpi_args(op, extra)})")

    def op_mpi_allreduce_scalar(self, op, depth):
        extra = [self.dtype_of(op.operands[0]), self.reduction_of(op)]
        if is_vector(op.results[0]):   # a vector's lanes, reduced in one message
            self.emit(depth, f"hpcad_mpi.allreduce({self.vector_operand(op.operands[0])}, "
                             f"{self.stored(op.results[0])}, {self.ref(op.operands[1])}, "
                             f"{', '.join(extra)}, {self.site(op)})")
            return
        self.emit(depth, f"{self.name(op.results[0])} = "
                         f"hpcad_mpi.allreduce_scalar({self.mpi_args(op, extra)})")

    def lanewise(self, op, depth, call: str) -> None:
        """gather, scatter, allgather, alltoall place each rank's buffer whole: arrays of
        vectors go one lane per message, so that lanes stay apart."""
        args = self.mpi_args(op, [self.dtype_of(op.operands[0])])
        if lanes(op.operands[0].type) == 1:
            self.emit(depth, f"hpcad_mpi.{call}({args})")
            return
        lane = self.fresh("w")
        sb, rb = (self.ref(v) for v in op.operands[:2])
        self.emit(depth, f"for {lane} in range({lanes(op.operands[0].type)}):")
        rest = args.split(", ", 2)[2]
        self.emit(depth + 1, f"hpcad_mpi.{call}({sb}[..., {lane}], {rb}[..., {lane}], {rest})")

    def nonblocking(self, op, depth, kind):
        buf = op.operands[0]
        if buf.type.layout != "C":
            raise HpcadError(f"{where(op.loc)}: a non-blocking MPI call needs a C-contiguous "
                             f"buffer in the numba backend (a unit slice along the last axis)")
        self.emit(depth, f"{self.name(op.results[0])} = "
                         f"hpcad_mpi.{kind}({self.mpi_args(op, [self.dtype_of(buf)])})")

    def op_mpi_isend(self, op, depth):
        self.nonblocking(op, depth, "isend")

    def op_mpi_irecv(self, op, depth):
        self.nonblocking(op, depth, "irecv")

    def op_mpi_wait(self, op, depth):
        self.emit(depth, f"hpcad_mpi.wait({self.ref(op.operands[0])}, {self.site(op)})")

    def op_mpi_reduce(self, op, depth):
        extra = [self.dtype_of(op.operands[0]), self.reduction_of(op)]
        self.emit(depth, f"hpcad_mpi.reduce({self.mpi_args(op, extra)})")

    def op_mpi_bcast(self, op, depth):
        self.emit(depth, f"hpcad_mpi.bcast({self.mpi_args(op, [self.dtype_of(op.operands[0])])})")

    def op_mpi_gather(self, op, depth):
        self.lanewise(op, depth, "gather")

    def op_mpi_scatter(self, op, depth):
        self.lanewise(op, depth, "scatter")

    def op_mpi_allgather(self, op, depth):
        self.lanewise(op, depth, "allgather")

    def op_mpi_alltoall(self, op, depth):
        self.lanewise(op, depth, "alltoall")

    def op_mpi_cart_shift(self, op, depth):
        self.emit(depth, f"{self.name(op.results[0])}, {self.name(op.results[1])} = "
                         f"hpcad_mpi.cart_shift({self.mpi_args(op)})")
