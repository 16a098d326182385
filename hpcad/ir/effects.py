"""What an op reads and writes in array memory: the one answer every pass and analysis uses
(LICM, store forwarding, dead-store removal, activity, the reverse sweep's "may this load be
redone", race analysis, the snapshot sets of segments and revolve). It is derived from the
ops' declarations in ir/dialects.py (`reads`/`writes` name operands), never from op names.

`reads(op)`/`writes(op)` give the arrays op itself touches; `reads_within`/`writes_within`
add those of the ops in its regions. An operand that is an MPI request stands for the
buffer of the call that made it (a wait writes what its irecv receives)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from .core import Op, Value, walk
from .dialects import OPS, operand_named
from .types import ArrayType


def reads(op: Op) -> list[Value]:
    """The arrays op itself reads (not the ops in its regions)."""
    return _declared(op, OPS[op.name].reads, "reads")


def writes(op: Op) -> list[Value]:
    """The arrays op itself writes (not the ops in its regions)."""
    arrays = _declared(op, OPS[op.name].writes, "writes")
    if op.name == "func.call" and "writes" in op.attrs:   # narrowed by its declaration
        positions = {int(k) for k in op.attrs["writes"].split(",") if k}
        arrays = [op.operands[k] for k in sorted(positions)]
    return arrays


def writes_within(op: Op) -> list[Value]:
    """The arrays op or any op in its regions writes, each once, in program order."""
    return _unique(a for o in _self_and_nested(op) for a in writes(o))


def reads_within(op: Op) -> list[Value]:
    """The arrays op or any op in its regions reads, each once, in program order."""
    return _unique(a for o in _self_and_nested(op) for a in reads(o))


def touches_memory(op: Op) -> bool:
    """Whether op or an op in its regions reads or writes array memory."""
    return any(reads(o) or writes(o) for o in _self_and_nested(op))


def _self_and_nested(op: Op) -> Iterator[Op]:
    yield op
    for region in op.regions:
        yield from walk(region)


def _declared(op: Op, names: tuple[str, ...], which: str) -> list[Value]:
    out: list[Value] = []
    for name in names:
        for v in operand_named(op, name):
            if isinstance(v.type, ArrayType):
                out.append(v)
            elif v.type.name == "request":
                out.extend(_request_buffer(v, which))
    return out


def _request_buffer(request: Value, which: str) -> list[Value]:
    """The buffer the nonblocking call that made `request` reads or writes (`which`)."""
    call = request.owner
    if not (isinstance(call, Op) and call.dialect == "mpi"):
        raise ValueError(f"an MPI request not made by a nonblocking call: {request}")
    return reads(call) if which == "reads" else writes(call)


def _unique(values: Iterable[Value]) -> list[Value]:
    seen: dict[Value, None] = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)
