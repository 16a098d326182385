"""Binomial checkpointing (Griewank & Walther, ACM TOMS 26, 2000) in closed form: the
repetition number, the optimal number of recomputed steps, and the Revolve schedule itself,
action for action the one `checkpoint_schedules.Revolve` gives (its Revolve with unit
forward and reverse costs), without its O(s n^2) table of optimal costs: each split is found
from the repetition numbers by a binary search. checkpoint/revolve.py turns the actions
into its table; tests/checkpoint/test_revolve_plan.py compares them with the package's."""
from __future__ import annotations

from collections.abc import Iterator
from math import comb
from typing import Any


def repetition_number(steps: int, snapshots: int) -> int:
    """The least t with C(snapshots + t, t) >= steps: how often an optimal binomial schedule
    runs a step forward at most."""
    lo, hi = 0, 1
    while comb(snapshots + hi, hi) < steps:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:          # C(s + lo, lo) < steps <= C(s + hi, hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if comb(snapshots + mid, mid) < steps else (lo, mid)
    return lo if comb(snapshots + lo, lo) >= steps else hi


def binomial_recomputation(steps: int, snapshots: int) -> int:
    """Forward steps beyond one taped run per step that an optimal binomial schedule with
    `snapshots` snapshots runs to reverse `steps` steps: t * steps - C(s + t, t - 1), t the
    repetition number."""
    if steps <= 1:
        return 0
    t = repetition_number(steps, snapshots)
    return t * steps - comb(snapshots + t, t - 1)


def _split(steps: int, snapshots: int) -> int:
    """Where Revolve puts its first snapshot after the start of `steps` >= 3 steps with
    `snapshots` >= 2: the largest j in [1, steps - 2] minimizing j + cost(steps - j,
    snapshots - 1) + cost(j, snapshots) (checkpoint_schedules takes the last minimum). The
    cost is convex; its increment at j is positive iff t(steps - j, s - 1) <= t(j + 1, s)
    (t the repetition number), i.e. for j + 1 in (C(s + r - 1, s), C(s + r, s)], iff
    j >= steps - C(s + r - 1, s - 1). A binary search over r finds the least such j."""
    s = snapshots

    def least(r: int) -> int | None:
        lo, hi = comb(s + r - 1, s), comb(s + r, s) - 1
        j = max(lo, steps - comb(s + r - 1, s - 1))
        return j if j <= hi else None

    lo, hi = 1, repetition_number(steps, s) + 1
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if least(mid) is not None else (mid + 1, hi)
    found = least(lo)
    assert found is not None, "the repetition number bounds the split"
    return min(max(found, 1), steps - 2)


Operation = tuple[Any, ...]


def _operations(steps: int, snapshots: int) -> Iterator[Operation]:
    """Revolve's operations for `steps` steps (hrevolve's sequence, flat): ("W", n) save
    the state of step n, ("R", n) restore it, ("D", n) drop it, ("F", n0, n1) run forward,
    ("T", n) tape the next step (its forward run ends at n), ("B", n1, n0) reverse it,
    ("DT", n) drop the tape. Iterative (the recursion is as deep as there are splits)."""
    # (origin, last = steps - 1, snapshots, save)
    work: list[Operation] = [(0, steps - 1, snapshots, True)]
    while work:
        item = work.pop()
        if isinstance(item[0], str):
            yield item
            continue
        o, last, cm, save = item
        if last == 0:
            yield from (("T", o + 1), ("F", o, o + 1), ("B", o + 1, o), ("DT", o + 1),
                        ("D", o))
            continue
        if save:
            yield ("W", o)
        if last == 1 or cm == 1:
            for index in range(last - 1, -1, -1):
                if index != last - 1:
                    yield ("R", o)
                if index + 1 != 0:
                    yield ("F", o, o + index + 1)
                yield from (("T", o + index + 2), ("F", o + index + 1, o + index + 2),
                            ("B", o + index + 2, o + index + 1), ("DT", o + index + 2))
            yield from (("R", o), ("T", o + 1), ("F", o, o + 1), ("B", o + 1, o),
                        ("DT", o + 1), ("D", o))
            continue
        j = _split(last + 1, cm)
        yield ("F", o, o + j)
        # the first part, then a restore and the rest (its own save of o left out)
        work += [(o, j - 1, cm, False), ("R", o), (o + j, last - j, cm - 1, True)]


def revolve_actions(steps: int, snapshots: int) -> Iterator[tuple[Any, ...]]:
    """checkpoint_schedules.Revolve(steps, snapshots)'s actions as tuples: ("Forward", n0,
    n1, write_ics, write_adj_deps), ("EndForward",), ("Reverse", n0, n1), ("Copy", n),
    ("Move", n) (a last restore, freeing the snapshot), ("EndReverse",)."""
    previous, n, reversed_ = None, 0, 0
    for op in _operations(steps, snapshots):
        kind = op[0]
        if kind == "F":
            n = op[2]
            ics = previous is not None and previous[0] == "W" and previous[1] == op[1]
            adj = previous is not None and previous[0] == "T" and previous[1] == op[2]
            yield ("Forward", op[1], op[2], ics, adj)
            if n == steps:
                yield ("EndForward",)
        elif kind == "B":
            reversed_ += 1
            yield ("Reverse", op[2], op[1])
        elif kind == "R":
            n = op[1]
            yield ("Move" if n == steps - reversed_ - 1 else "Copy", n)
        previous = op
    yield ("EndReverse",)
