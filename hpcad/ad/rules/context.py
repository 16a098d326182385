"""What a rule sees: the context each engine hands its rules, stated as protocols (the
engines, ad/forward.ForwardEngine and ad/reverse.ReverseEngine, provide them). A rule reads
and writes the derivative program only through these names."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from ...checkpoint.tape import TapeLayout
from ...ir.core import Block, Builder, Function, Op, Value
from ...ir.types import Type
from ...passes.activity import Activity
from ..custom import RuleCalls
from ..regions import Region

T = TypeVar("T")


class ForwardContext(Protocol):
    """Forward mode: the primal op's copy goes where `b` builds, its tangent beside it."""
    act: Activity                     # which values are active, which arrays shadowed
    b: Builder                        # where the derivative program is being written
    width: int                        # directions each tangent carries
    rules: RuleCalls | None           # calls to kernels with custom rules
    vmap: dict[Value, Value]          # primal value -> its copy
    tan: dict[Value, Value]           # active scalar -> its tangent
    shadow: dict[Value, Value]        # shadowed array -> its shadow (the tangent array)
    requests: dict[Value, Value]      # MPI request -> the tangent message's request
    tape_offset: int                  # forward over reverse: the tangents' tape slots follow
    taped: set[int]                   # tape slots whose values have tangents saved

    def clone(self, op: Op) -> Op:
        """The primal op with its operands mapped, appended where `b` builds."""

    def dtype(self, v: Value) -> Type:
        """The type of v's tangent or shadow."""

    def tangent_or_zero(self, v: Value) -> Value: ...

    def shadow_of(self, arr: Value) -> Value: ...

    # carried values of ops with regions (loops, branches, tasks)
    def slots(self, values: list[Value]) -> tuple[list[int], list[int]]: ...

    def extended(self, values: list[Value], tans: list[int],
                 shadows: list[int]) -> list[Value]: ...

    def extended_in(self, block: Block, values: list[Value], tans: list[int],
                    shadows: list[int]) -> list[Value]: ...

    def new_args(self, olds: list[Value], tans: list[int], shadows: list[int]) -> list[Value]:
        ...

    def bind(self, olds: list[Value], news: list[Value], tans: list[int],
             shadows: list[int]) -> None: ...

    def name_results(self, new: Op, op: Op, tans: list[int], shadows: list[int]) -> None: ...

    def region(self, old: Block, new: Block) -> Op:
        """Transform a region's ops but its terminator into `new`; the old terminator."""

    def finish(self, new: Block, name: str, operands: list[Value]) -> None: ...

    def in_block(self, block: Block, fn: Callable[[], T]) -> T: ...


class ReverseContext(Protocol):
    """Reverse mode: a rule writes the adjoint of a primal op where `b` builds, in the
    reverse of a `Region`; primal values and shadows are looked up as that region sees
    them (saved on the tape or recomputed as needed)."""
    act: Activity
    b: Builder
    width: int
    rules: RuleCalls | None
    fn: Function                          # the primal function
    vmap: dict[Value, Value]              # primal value -> its augmented-forward copy
    adj: dict[Value, Value]               # primal value -> its adjoint so far
    requests: dict[Value, tuple[Value, Value | None]]   # MPI request -> adjoint request
    tape: TapeLayout
    first_adjoint: set[Op]                # scratch loads whose adjoint may be stored
    kept_adjoint: set[Op]                 # scratch fills whose adjoint is not zeroed

    def primal(self, v: Value, ctx: Region) -> Value:
        """The value of primal v as seen from the reverse of ctx."""

    def shadow(self, arr: Value, ctx: Region) -> Value:
        """The shadow (adjoint array) of primal array arr as seen from ctx's reverse."""

    def region_of(self, v: Value, ctx: Region) -> Region: ...

    def unchanged_after(self, op: Op, arrays: list[Value]) -> bool:
        """Whether reading the arrays in the reverse sweep reads what op read."""

    @staticmethod
    def position(op: Op, block: Block) -> int: ...

    def dtype(self, v: Value) -> Type: ...

    def add_adjoint(self, v: Value, contribution: Value) -> None: ...

    def current(self, v: Value) -> Value:
        """v's adjoint so far, or a zero."""

    def region_adjoints(self, op: Op) -> tuple[list[int], list[Value]] | None: ...

    def reverse_region(self, old: Block, ctx: Region, rev: Block, adjoints: dict[Value, Value],
                       seeds: Sequence[tuple[Value, Value | None]],
                       yields: Callable[[], list[Value]],
                       avail: dict[Value, Value] | None = None,
                       shadows: dict[Value, Value] | None = None) -> Region: ...

    def reverse_loop(self, op: Op, ctx: Region, bounds: list[Value] | None = None,
                     carry_out: dict[int, Value] | None = None) -> None: ...

    def close_windows(self, r: Region, ctx: Region) -> Any: ...
