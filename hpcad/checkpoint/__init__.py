"""Checkpointing: what the reverse sweep stores, recomputes and snapshots.

planner.py   per call, the Plan (plan.py: store-all, segments or revolve; snapshots, lean,
             restart, disk, intermediates) from the kernel's pinned plan or its memory
             budget (budget.py: sizes for the call's arguments, agreed over MPI ranks)
strategy.py  the time-loop strategy a plan names, handed to the reverse engine:
             segments.py, revolve.py (binomial.py: the schedule); they get the engine as
             an argument and use what engine.py states
tape.py      where the engine saves a value and how its reverse finds it; mincut.py and
             cost.py: what to save and what to recompute; windows.py: stencil windows
A plan's snapshot count is a run-time argument of the derivative; its shape is the
derivative's cache key. Imports ir/ and runtime/, never a backend."""
