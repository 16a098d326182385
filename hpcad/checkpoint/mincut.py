"""The store-or-recompute decision for the values a region's reverse needs, as a minimum cut
(Enzyme's formulation). Each candidate value is an edge in -> out whose capacity is its
storage cost; a value that can be recomputed gets edges from its operands, one that cannot
(a loaded element that is later overwritten, a loop-carried value, a message) hangs from the
source; needed values hang into the sink. The cut is the cheapest set of values to save
from which every needed value can be recomputed (Graph.sink_side, a maximum flow); the graph
is built in program order, so every rank takes the same decisions."""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field

from ..ir.core import Op, Value
from .cost import recompute_flops, value_bytes

SOURCE, SINK = "forward", "reverse"
Node = Hashable
Residual = dict[Node, dict[Node, float]]   # capacity left per edge (math.inf: unbounded)


class Graph:
    """A directed graph with integer edge capacities (None: unbounded), for one minimum
    cut. Pure Python: importing networkx took most of a warm start's first gradient."""

    def __init__(self) -> None:
        self.capacity: dict[Node, dict[Node, int | None]] = {}   # in insertion order

    def add_edge(self, u: Node, v: Node, capacity: int | None = None) -> None:
        """An edge u -> v; adding it again sets a capacity given, keeps one not given."""
        out = self.capacity.setdefault(u, {})
        if capacity is not None or v not in out:
            out[v] = capacity
        self.capacity.setdefault(v, {})

    def sink_side(self, source: Node, sink: Node) -> set[Node]:
        """The nodes that can reach `sink` in the residual graph of a maximum flow: the
        sink's side of the minimum cut nearest the sink, the same for every maximum flow
        (networkx.minimum_cut's second set). Dinic's algorithm; every source-sink path
        here passes a bounded edge, so the flow is finite."""
        residual: Residual = {u: {} for u in self.capacity}
        for u, out in self.capacity.items():
            for v, c in out.items():
                residual[u][v] = residual[u].get(v, 0) + (math.inf if c is None else c)
                residual[v].setdefault(u, 0)
        while True:
            level = _levels(residual, source)
            if sink not in level:
                break
            edges = {u: iter(list(out)) for u, out in residual.items()}
            while _augment(residual, level, edges, source, sink):
                pass
        reach, stack = {sink}, [sink]
        while stack:   # backwards along edges with residual capacity left
            v = stack.pop()
            for u in residual[v]:
                if u not in reach and residual[u][v] > 0:
                    reach.add(u)
                    stack.append(u)
        return reach


def _levels(residual: Residual, source: Node) -> dict[Node, int]:
    """Breadth-first distances from source along edges with capacity left."""
    level, frontier = {source: 0}, [source]
    while frontier:
        nxt: list[Node] = []
        for u in frontier:
            for v, c in residual[u].items():
                if c > 0 and v not in level:
                    level[v] = level[u] + 1
                    nxt.append(v)
        frontier = nxt
    return level


def _augment(residual: Residual, level: dict[Node, int], edges: dict[Node, Iterator[Node]],
             source: Node, sink: Node) -> bool:
    """One augmenting path of the level graph (its bottleneck pushed along it); False when
    none is left. Each node's edges are tried once per phase (`edges`: an iterator per
    node, past the edges tried); a phase that ends early is followed by another, so the
    flow is still maximal. Iterative: deep graphs stay within Python's recursion limit."""
    path: list[tuple[Node, Node]] = []
    u = source
    while u != sink:
        for v in edges[u]:
            if residual[u][v] > 0 and level.get(v) == level[u] + 1:
                path.append((u, v))
                u = v
                break
        else:   # a dead end (its edges are used up): back one step, past it
            if not path:
                return False
            u = path.pop()[0]
    pushed = min(residual[a][b] for a, b in path)
    for a, b in path:
        residual[a][b] -= pushed
        residual[b][a] += pushed
    return True


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
    graph = Graph()
    order, seen = [], set()
    stack = list(reversed(needed))
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        order.append(v)
        graph.add_edge(("in", v), ("out", v), 1000 * value_bytes(v) + 1)
        if can_recompute(v):
            for o in local_operands(v):
                graph.add_edge(("out", o), ("in", v))
                stack.append(o)
        else:
            graph.add_edge(SOURCE, ("in", v))
    for v in needed:
        graph.add_edge(("out", v), SINK)
    stored: set[Value] = set()
    if SOURCE in graph.capacity:
        sink_side = graph.sink_side(SOURCE, SINK)
        stored = {v for v in order
                  if ("in", v) not in sink_side and ("out", v) in sink_side}
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
