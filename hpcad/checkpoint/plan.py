"""The checkpointing plan of one reverse sweep: a frozen, typed value that the planner
(checkpoint/planner.py) returns and the reverse sweep consumes (ad/reverse.py builds the
time-loop strategy it names: checkpoint/segments.py, checkpoint/revolve.py).

A plan has two parts. Its shape (kind, lean, restart, disk, intermediates) decides the code
of the derivative and is part of the derivative's cache key; its snapshot count only
decides how much memory the derivative uses, and is a run-time argument of the compiled
derivative (`RunArgs`), so that a new problem size never compiles the derivative again."""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class Kind(Enum):
    """How the time loop's reverse gets the states its steps start from."""
    STORE_ALL = "store_all"   # every step's tape is kept
    SEGMENTS = "segments"     # snapshots at segment starts; each segment re-run with tape
    REVOLVE = "revolve"       # a binomial schedule; the tape holds one step (or none)


@dataclass(frozen=True)
class Plan:
    """What the reverse sweep checkpoints. snapshots: how many states it keeps (None for
    store-all, and in a plan's shape). lean: revolve without the extra copy of the state
    before the last steps. restart: revolve reversing each step from its restored state,
    with no tape. disk: the snapshots in files (hpcad/runtime/snapshots.py). intermediates:
    what a step's reverse stores or recomputes (checkpoint/cost.py)."""
    kind: Kind = Kind.STORE_ALL
    snapshots: int | None = None
    lean: bool = False
    restart: bool = False
    disk: bool = False
    intermediates: str = "auto"

    @property
    def shape(self) -> Plan:
        """The plan without its snapshot count: what the derivative's code depends on."""
        return self if self.snapshots is None else replace(self, snapshots=None)

    @property
    def checkpoints(self) -> bool:
        """Whether the time loop is checkpointed (takes a snapshot count at run time)."""
        return self.kind is not Kind.STORE_ALL

    @property
    def from_slot(self) -> bool:
        """A restarting revolve with its snapshots in files reads each step's state from
        its file snapshot (checkpoint/revolve.py)."""
        return self.kind is Kind.REVOLVE and self.restart and self.disk

    def describe(self) -> str:
        """'store all', 'segments, 4 snapshots', 'revolve (lean, in files), 2 snapshots'."""
        if not self.checkpoints:
            return "store all"
        how = [w for w, on in (("lean", self.lean), ("restarting", self.restart),
                               ("in files", self.disk)) if on]
        name = self.kind.value + (f" ({', '.join(how)})" if how else "")
        return name if self.snapshots is None else f"{name}, {self.snapshots} snapshots"


STORE_ALL = Plan()


@dataclass(frozen=True)
class RunArgs:
    """The run-time arguments a checkpointed derivative takes after its seeds: the snapshot
    count, and for revolve the action table for the call's step count
    (checkpoint/revolve.py). bounds: the time loop's range, per bound an argument's index
    ("arg", k) or a constant ("const", value)."""
    plan: Plan
    bounds: tuple[tuple[str, int], ...] = ()
