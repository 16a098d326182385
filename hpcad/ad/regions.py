"""A region of the primal program while reverse mode reverses it: its forward copy, the
block its reverse is written into, and what that reverse can see (values, shadows)."""
from __future__ import annotations

from typing import Any

from ..ir.core import Block, Op, Value


class Region:
    """One region of the primal program while it is being reversed."""

    def __init__(self, old: Block | None, fwd: Block, rev: Block, parent: Region | None):
        self.old = old            # primal block (None for the function body: see `top`)
        self.fwd = fwd            # its copy in the augmented forward sweep
        self.rev = rev            # the block its reverse is written into
        self.parent = parent
        self.avail: dict[Value, Value] = {}   # primal value -> value usable in `rev`
        self.needs: list[tuple[Value, Value]] = []  # (primal value, placeholder) to resolve
        self.shadows: dict[Value, Value] = {}  # primal array -> shadow usable in `rev`
        self.setup: list[Op] = []              # shadow allocations etc. for the prologue
        self.prologue_at = len(rev.ops)        # after the reversed induction variable
        # in a parallel-loop body and its loops (checkpoint/tape.py):
        self.entry: tuple[Any, ...] | None = None        # the tape entry of a save here, fwd / rev
        self.index_ops: list[Op] = []          # computing the reverse entry
        self.saved_slots: list[tuple[Any, ...]] = []   # parallel body: (slot, loops laying
        #                                                it out)
        self.capacities: dict[Any, Any] = {}   # parallel body: loop -> most trips, fwd / rev
        self.reverse_setup: list[Op] = []      # parallel body: reverse capacities' ops
        self.windows: dict[Any, Any] = {}      # loop body: loads served by a stencil window

    @property
    def top(self) -> bool:
        return self.parent is None
