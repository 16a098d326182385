"""`mpi` ops in generated code: calls of the compiled MPI helpers in `mpi.py`, with the
datatype and reduction handles read from the `mpi_handles` argument. Buffers of vectors
(batched derivatives) are sent whole: one message carries every direction."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ...errors import HpcadError, where
from ...ir.dialects import MPI_WHOLE_BUFFERS, cart_ndim
from ...ir.types import lanes
from . import vector
from .common import DTYPE_SLOT, OP_SLOT, WORLD_SLOT
from .rules import rule
from .vector import is_vector

if TYPE_CHECKING:
    from .writer import Writer


def mpi_args(w: Writer, op, extra=()):
    return ", ".join([w.ref(v) for v in op.operands] + list(extra) + [site(w, op)])


def site(w: Writer, op) -> str:
    """The op's kernel location, a string constant the compiled MPI helpers put in an
    MpiError when the call fails."""
    return repr(where(op.loc or w.fn.loc))


def dtype_of(buffer) -> str:
    t = buffer.type.dtype if hasattr(buffer.type, "dtype") else buffer.type
    return f"mpi_handles[{DTYPE_SLOT[t.name]}]"


def reduction_of(op) -> str:
    return f"mpi_handles[{OP_SLOT[op.attrs.get('op', 'sum')]}]"


@rule("mpi.world")
def mpi_world(w: Writer, op, depth):
    w.emit(depth, f"{w.name(op.results[0])} = mpi_handles[{WORLD_SLOT}]")


@rule("mpi.allreduce_scalar")
def mpi_allreduce_scalar(w: Writer, op, depth):
    extra = _dtype_reduction(op)
    if is_vector(op.results[0]):   # a vector's lanes, reduced in one message
        w.emit(depth, f"hpcad_mpi.allreduce({vector.vector_operand(w, op.operands[0])}, "
                      f"{vector.stored(w, op.results[0])}, {w.ref(op.operands[1])}, "
                      f"{', '.join(extra)}, {site(w, op)})")
        return
    w.emit(depth, f"{w.name(op.results[0])} = "
                  f"hpcad_mpi.allreduce_scalar({mpi_args(w, op, extra)})")


def lanewise(w: Writer, op, depth, call: str) -> None:
    """gather, scatter, allgather, alltoall place each rank's buffer whole: arrays of
    vectors go one lane per message, so that lanes stay apart."""
    args = mpi_args(w, op, [dtype_of(op.operands[0])])
    if lanes(op.operands[0].type) == 1:
        w.emit(depth, f"hpcad_mpi.{call}({args})")
        return
    lane = w.fresh("w")
    sb, rb = (w.ref(v) for v in op.operands[:2])
    w.emit(depth, f"for {lane} in range({lanes(op.operands[0].type)}):")
    rest = args.split(", ", 2)[2]
    w.emit(depth + 1, f"hpcad_mpi.{call}({sb}[..., {lane}], {rb}[..., {lane}], {rest})")


def nonblocking(w: Writer, op, depth, kind):
    buf = op.operands[0]
    if buf.type.layout != "C":
        raise HpcadError(f"{where(op.loc)}: a non-blocking MPI call needs a C-contiguous "
                         f"buffer in the numba backend (a unit slice along the last axis)")
    w.emit(depth, f"{w.name(op.results[0])} = "
                  f"hpcad_mpi.{kind}({mpi_args(w, op, [dtype_of(buf)])})")


@rule("mpi.wait")
def mpi_wait(w: Writer, op, depth):
    call = op.operands[0].owner
    buffers = [v for v in getattr(call, "operands", ()) if hasattr(v.type, "dtype")]
    if buffers and call.parent is op.parent:   # kept alive until MPI is done with them
        w.emit(depth, f"hpcad_mpi.wait_keeping({w.ref(op.operands[0])}, "
                      f"{w.ref(buffers[0])}, {w.ref(buffers[-1])}, {site(w, op)})")
        return
    w.emit(depth, f"hpcad_mpi.wait({w.ref(op.operands[0])}, {site(w, op)})")


def _dtype(op) -> list[str]:
    return [dtype_of(op.operands[0])]


def _dtype_reduction(op) -> list[str]:
    return [dtype_of(op.operands[0]), reduction_of(op)]


def _none(op) -> list[str]:
    return []


def _call(name: str, extra=_none):
    """The rule of an op that is one call of the compiled helper `name` on its operands,
    the `extra` handles and its site, assigning its results (if any)."""
    def write(w: Writer, op, depth):
        results = ", ".join(w.name(r) for r in op.results)
        w.emit(depth, f"{results + ' = ' if results else ''}"
                      f"hpcad_mpi.{name}({mpi_args(w, op, extra(op))})")
    return write


# ops that are one call: op name -> (helper, extra handles after the operands)
for _name, _extra in {"rank": _none, "size": _none, "barrier": _none, "cart_shift": _none,
                      "sendrecv": _dtype, "send": _dtype, "recv": _dtype, "bcast": _dtype,
                      "allreduce": _dtype_reduction, "reduce": _dtype_reduction}.items():
    rule(f"mpi.{_name}")(_call(_name, _extra))
for _name in ("isend", "irecv"):
    rule(f"mpi.{_name}")(functools.partial(nonblocking, kind=_name))


def vform(w: Writer, op, depth, reduces: bool) -> None:
    """A v-form collective or a reduce-scatter: the buffers' handles, the reduction's, and
    those of the int64 agreement on the run-time checks of counts and displacements.
    Arrays of vectors go one lane per call: counts and displacements count elements."""
    kind = op.name.split(".", 1)[1]
    handles = [dtype_of(op.operands[0])] + ([reduction_of(op)] if reduces else []) + \
        [f"mpi_handles[{DTYPE_SLOT['i64']}]", f"mpi_handles[{OP_SLOT['max']}]", site(w, op)]
    refs = [w.ref(v) for v in op.operands]
    width = lanes(op.operands[0].type)
    if width == 1:
        w.emit(depth, f"hpcad_mpi.{kind}({', '.join(refs + handles)})")
        return
    lane = w.fresh("w")
    w.emit(depth, f"for {lane} in range({width}):")
    refs[:2] = [f"{r}[..., {lane}]" for r in refs[:2]]
    w.emit(depth + 1, f"hpcad_mpi.{kind}({', '.join(refs + handles)})")


for _name in ("gatherv", "scatterv", "allgatherv", "alltoallv"):
    rule(f"mpi.{_name}")(functools.partial(vform, reduces=False))
for _name in ("reduce_scatter", "reduce_scatter_block"):
    rule(f"mpi.{_name}")(functools.partial(vform, reduces=True))

def _owner_handles(op) -> list[str]:
    """The send buffer's datatype and reduction, then int64 and MIN for the owners."""
    return _dtype_reduction(op) + [f"mpi_handles[{DTYPE_SLOT['i64']}]",
                                   f"mpi_handles[{OP_SLOT['min']}]"]


rule("mpi.owner")(_call("owner", _owner_handles))

def icollective(w: Writer, op, depth, extra):
    """A nonblocking collective: MPI uses its buffers until the wait, so they must be
    C-contiguous (whole buffers of vectors are lane-correct: the lane is the last axis)."""
    for buf in op.operands:
        if hasattr(buf.type, "layout") and buf.type.layout != "C":
            raise HpcadError(f"{where(op.loc)}: a non-blocking MPI collective needs "
                             f"C-contiguous buffers in the numba backend")
    _call(op.name[4:], extra)(w, op, depth)


for _name, _extra in {"iallreduce": _dtype_reduction, "ibcast": _dtype,
                      "ireduce": _dtype_reduction, "iallgather": _dtype}.items():
    rule(f"mpi.{_name}")(functools.partial(icollective, extra=_extra))
for _name in MPI_WHOLE_BUFFERS:   # one message per lane (ir/dialects.py)
    rule(f"mpi.{_name}")(functools.partial(lanewise, call=_name))
for _name in ("cart_ndim", "wtime"):
    rule(f"mpi.{_name}")(_call(_name))


def _cart_query(w: Writer, op, depth):
    """Get_coords and Get_topo: the helper's array, unpacked into the op's results."""
    values = w.fresh("cart")
    w.emit(depth, f"{values} = hpcad_mpi.{op.name.split('.', 1)[1]}"
                  f"({mpi_args(w, op, [str(cart_ndim(op.operands[-1].type))])})")
    for k, r in enumerate(op.results):
        w.emit(depth, f"{w.name(r)} = {values}[{k}]")


rule("mpi.cart_coords")(_cart_query)
rule("mpi.cart_topo")(_cart_query)
