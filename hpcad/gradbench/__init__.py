"""hpcad as a GradBench tool: `python -m hpcad.gradbench` speaks GradBench's JSON-lines protocol.

GradBench (github.com/gradbench/gradbench) runs an *eval* process and a *tool* process and relays
one JSON object per line between them. This package is the tool. Each eval is one module in
`hpcad/gradbench/evals/`, written as kernels a user would write and differentiated only through
hpcad's public API (`hpcad.ad`); `protocol.py` answers the messages.
"""
from __future__ import annotations

EVALS = ("hello", "ode", "gmm", "lse", "llsq", "kmeans", "det", "lstm", "ba", "ht", "particle",
         "saddle")
