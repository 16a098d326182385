"""Replication types in words (passes/replication.py): the `//` comments `hpcad show-ir`
prints beside the IR (ir/printer.py `notes`), and `hpcad plan`'s lines: each argument's and
result's kind, what each rank seeds, and where the adjoint sums over the ranks."""
from __future__ import annotations

import os
from collections.abc import Iterable

from ..ir.core import Function, Op, Value, walk
from ..ir.dialects import MPI_REPLICATES
from ..ir.types import ArrayType, OpaqueType
from .replication import Kind, Replication, ReplicationTypes, collective_buffer, summand


def notes(types: ReplicationTypes, params: Iterable[int] = ()):
    """The comments `hpcad show-ir` prints (ir/printer.py `notes`): for the function, a
    header line with the arguments' and results' kinds; for an op, the values and buffers
    it leaves replicated or partial over a communicator (constants go unmarked)."""
    declared = set(params)

    def note(item, name) -> str | None:
        def kind(r: Replication) -> str:
            return r.describe(name)
        if isinstance(item, Function):
            args = ", ".join(f"{name(a)} {kind(r)}" + (" (params)" * (k in declared))
                             for k, (a, r) in enumerate(zip(item.args, types.arguments))
                             if not isinstance(a.type, OpaqueType))
            rets = ", ".join(kind(r) for r in types.results) or "none"
            return (f"replication types (unmarked values are per-rank, or computed from "
                    f"constants only): arguments {args}; results {rets}")
        share = summand(item)
        marked = [(v, types.of(v)) for v in item.results   # (an array's: its shape)
                  if not isinstance(v.type, ArrayType)] + \
            list(types.buffers.get(item, {}).items()) + \
            [(share, types.of(share)) for _ in range(share is not None and
                                                     share not in types.buffers.get(item, {}))]
        text = ", ".join(f"{name(v)} {kind(r)}" for v, r in marked
                         if r.kind is not Kind.PER_RANK and r.comm is not None)
        return text or None
    return note


def describe(types: ReplicationTypes, arg_names: list[str], summed: Iterable[str] = ()) \
        -> list[str]:
    """`hpcad plan`'s lines: each argument's and result's kind, what each rank seeds, and
    where the adjoint's reductions over the ranks happen."""
    if types.communicator is None:
        return []
    def name(v: Value) -> str:
        return v.name or "comm"
    args = ", ".join(f"{n} {r.describe(name)}" for n, a, r in
                     zip(arg_names, types.fn.args, types.arguments)
                     if not isinstance(a.type, OpaqueType))
    lines = [f"replication: arguments {args}"]
    for k, r in enumerate(types.results):
        seed = "one global output: each rank seeds 1/size" if r.one_global_output else \
            "each rank's part of the summed loss: each rank seeds it"
        lines.append(f"replication: result {k} {r.describe(name)} ({seed})")
    where = [f"{op.name} at {_short(op.loc)}" for op in walk(types.fn.body)
             if _replicates_floats(op)]
    lines.append("adjoint reductions (the ranks' shares of a replicated value's adjoint "
                 f"summed): {', '.join(where) or 'none'}")
    summed = list(summed)
    lines.append(f"adjoint reductions: the gradients of {', '.join(summed)} summed over the "
                 f"ranks once, at the end, in one allreduce (params)" if summed else
                 "adjoint reductions: none at the end; each argument's gradient is this "
                 "rank's (params= sums replicated parameters' shares)")
    return lines


def _replicates_floats(op: Op) -> bool:
    """Whether op is a collective that makes floats the same everywhere (its adjoint sums
    their adjoints' shares over the ranks)."""
    if op.dialect != "mpi" or op.name[4:] not in MPI_REPLICATES:
        return False
    role = MPI_REPLICATES[op.name[4:]]
    values = op.results if role == "result" else [collective_buffer(op)]
    return any(v is not None and _element_is_float(v.type) for v in values)


def _element_is_float(t) -> bool:
    return (t.dtype if isinstance(t, ArrayType) else t).is_float


def _short(loc) -> str:
    return "?" if loc is None else f"{os.path.basename(loc[0])}:{loc[1]}"
