"""What checkpoint/ uses of the reverse-mode engine (ad/reverse.py), stated once: the
time-loop strategies (segments.py, revolve.py) and stencil windows (windows.py) receive the
engine as an explicit argument and use only these attributes and methods."""
from __future__ import annotations

from typing import Any, Protocol

from ..ir.core import Block, Builder, Function, Op, Value
from .tape import TapeLayout


class Engine(Protocol):
    fn: Function                   # the primal function being differentiated
    act: Any                       # its activity analysis (passes/activity.py)
    vmap: dict[Value, Value]       # primal value -> its augmented-forward copy
    adj: dict[Value, Value]        # primal value -> its current adjoint
    b: Builder                     # where the reverse sweep is being written
    tape: TapeLayout
    intermediates: str             # store or recompute them (checkpoint/cost.py)

    def augment(self, old: Block, new: Block) -> None: ...

    def free_adjoints(self, op: Op) -> list[Value]: ...

    def current(self, v: Value) -> Value: ...

    def add_adjoint(self, v: Value, contribution: Value) -> None: ...

    def dtype(self, v: Value) -> Any: ...

    def primal(self, v: Value, ctx: Any) -> Value: ...

    def region_of(self, v: Value, ctx: Any) -> Any: ...

    def recomputable_op(self, op: Any) -> bool: ...

    def reverse_loop(self, op: Op, ctx: Any, bounds: list[Value] | None = None,
                     carry_out: dict[int, Value] | None = None) -> None: ...
