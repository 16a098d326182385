"""The store-or-recompute decision for the values a region's reverse needs, as a minimum cut
(Enzyme's formulation). Each candidate value is an edge in -> out whose capacity is its
storage cost; a value that can be recomputed gets edges from its operands, one that cannot
(a loaded element that is later overwritten, a loop-carried value, a message) hangs from the
source; needed values hang into the sink. The cut is the cheapest set of values to save
from which every needed value can be recomputed. networkx computes it; the graph is built in
program order, so every rank takes the same decisions."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..ir.core import Op, Value
from .cost import recompute_flops, value_bytes

SOURCE, SINK = "forward", "reverse"


@dataclass
class RegionPlan:
    stored: list[Value] = field(default_factory=list)      # saved on the tape
    recomputed: list[Value] = field(default_factory=list)  # re-evaluated, in dependency order
    store_bytes: int = 0                                    # per execution of the region
    recompute_flops: int = 0                                # per execution of the region


def plan_region(needed: list[Value], local_operands: Callable[[Value], list[Value]],
                can_recompute: Callable[[Value], bool]) -> RegionPlan:
    """`needed`: values of the region its reverse uses; `local_operands(v)`: v's operands
    defined in the region (the others are available anyway); `can_recompute(v)`: whether v
    may be evaluated again in the reverse sweep."""
    import networkx as nx  # imported when a plan is made (not at `import hpcad`)
    graph = nx.DiGraph()
    order, seen = [], set()
    stack = list(reversed(needed))
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        order.append(v)
        graph.add_edge(("in", v), ("out", v), capacity=1000 * value_bytes(v) + 1)
        if can_recompute(v):
            for o in local_operands(v):
                graph.add_edge(("out", o), ("in", v))
                stack.append(o)
        else:
            graph.add_edge(SOURCE, ("in", v))
    for v in needed:
        graph.add_edge(("out", v), SINK)
    stored: set[Value] = set()
    if graph.has_node(SOURCE):
        _, (reach, _) = nx.minimum_cut(graph, SOURCE, SINK)
        stored = {v for v in order if ("in", v) in reach and ("out", v) not in reach}
    plan = RegionPlan()
    done: set[Value] = set()

    def materialize(v: Value) -> None:
        if v in done:
            return
        done.add(v)
        if v in stored:
            plan.stored.append(v)
            return
        for o in local_operands(v):
            materialize(o)
        plan.recomputed.append(v)

    for v in needed:
        materialize(v)
    plan.store_bytes = sum(value_bytes(v) for v in plan.stored)
    # an op with several results (a custom rule's fwd call) counts once
    ops = dict.fromkeys(v.owner for v in plan.recomputed if isinstance(v.owner, Op))
    plan.recompute_flops = sum(recompute_flops(op) for op in ops)
    return plan
