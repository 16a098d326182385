"""checkpoint/mincut.py's minimum cut (Graph.sink_side): the sink's side of the cut nearest
the sink, as networkx.minimum_cut gives it (the store-or-recompute plans were made with
networkx before), on hand-solved graphs and on random ones against networkx itself."""
import random

import networkx as nx

from hpcad.checkpoint.mincut import Graph


def _graph(edges):
    g = Graph()
    for u, v, c in edges:
        g.add_edge(u, v, c)
    return g


def test_hand_solved_cuts():
    # one path: its cheaper edge is cut; of two equal ones, the one nearest the sink
    assert _graph([("s", "a", 1), ("a", "t", 5)]).sink_side("s", "t") == {"a", "t"}
    assert _graph([("s", "a", 1), ("a", "t", 1)]).sink_side("s", "t") == {"t"}
    # unbounded edges (None) are never cut
    assert _graph([("s", "a", None), ("a", "b", 5), ("b", "t", None)]).sink_side(
        "s", "t") == {"b", "t"}
    # flow 5 through a diamond with a cross edge: every edge into t is saturated
    assert _graph([("s", "a", 3), ("s", "b", 2), ("a", "b", 1), ("a", "t", 2),
                   ("b", "t", 3)]).sink_side("s", "t") == {"t"}


def test_a_second_edge_without_capacity_keeps_the_first_ones():
    g = _graph([("s", "a", 2), ("s", "a", None), ("a", "t", 5)])
    assert g.sink_side("s", "t") == {"a", "t"}


def test_long_chains_stay_within_the_recursion_limit():
    n = 5000
    g = _graph([(k, k + 1, n + 10 - k) for k in range(n)])
    assert g.sink_side(0, n) == {n}


def test_random_graphs_agree_with_networkx():
    rng = random.Random(0)
    checked = 0
    for _ in range(1500):
        n = rng.randint(1, 10)
        nodes = ["s", "t"] + [(side, k) for k in range(n) for side in ("in", "out")]
        ours, theirs = Graph(), nx.DiGraph()
        for _ in range(rng.randint(1, 30)):
            u, v = rng.sample(nodes, 2)
            if u == "t" or v == "s" or (u, v) == ("s", "t"):
                continue
            # bounded edges leave every "in" node (as a value's storage edge), so every
            # source-sink path is bounded; the others may be unbounded
            c = rng.randint(1, 6) if u[0] == "in" else rng.choice([None, rng.randint(1, 6)])
            ours.add_edge(u, v, c)
            theirs.add_edge(u, v) if c is None else theirs.add_edge(u, v, capacity=c)
        if "s" not in theirs or "t" not in theirs:
            continue
        try:
            _, (_, sink_side) = nx.minimum_cut(theirs, "s", "t")
        except nx.NetworkXUnbounded:   # (an unbounded path: plan_region never builds one)
            continue
        assert ours.sink_side("s", "t") == sink_side
        checked += 1
    assert checked > 500
