"""Loops written once and called from each place they repeat: a derivative repeats loops
whose bodies are the same but for their variables (the iterations peeled off either end of
an adjoint stencil, the same stage of a user's loop written several times), and numba types
and lowers every copy. A loop that may be shared (`shareable`) is written as a function of
its own; two loops whose functions read the same once their locals are renamed in order of
appearance (`canonical`) are one function, called with each place's own variables. The
writer asks in a first pass which loops repeat (codegen.generate), so that a loop that
appears once stays in its function."""
from __future__ import annotations

import io
import keyword
import tokenize
from typing import TYPE_CHECKING

from ...ir.core import Op, walk
from ...ir.dialects import in_parallel

if TYPE_CHECKING:
    from .writer import Writer

# ops whose code reads or moves state of the function around the loop (tape positions and
# buffers, arena buffers, fault codes, lanes, communication): a loop holding one stays put
_STATEFUL = ("tape.", "par.", "mpi.", "rt.", "func.")
_SMALLEST = 5          # ops in a loop worth a function of its own
# enclosing loops: none, so that a shared loop is called once per call of the function (in
# a loop, a call per outer iteration of a short inner loop costs about what the loop does)
_DEEPEST = 0


def shareable(w: Writer, op: Op) -> bool:
    """Whether a loop may run as a function of its own called in its place: not inside
    another shared or outlined function, a parallel loop, or more than _DEEPEST loops; no
    vectors; no op that touches state outside its locals and arrays (_STATEFUL, except the
    indexed tape accesses, which move no position), no buffer it sets up, no loop that would
    be outlined by itself (its sums may be reassociated there), and big enough to be worth
    a call (_SMALLEST ops)."""
    if op.name != "scf.for" or w.in_outlined or w.width > 1 or in_parallel(op) \
            or _loop_depth(op) > _DEEPEST:
        return False
    ops = list(walk(op.regions[0]))
    if len(ops) < _SMALLEST:
        return False
    for o in ops:
        if o in w.by_anchor or (o.name == "mem.alloc" and o.attrs.get("arena")):
            return False
        if o.name.startswith(_STATEFUL) and not _indexed_tape(o):
            return False
        if o.name == "scf.for" and (o.attrs.get("outline") or o.attrs.get("sums")):
            return False
    return True


def _indexed_tape(op: Op) -> bool:
    return (op.name, len(op.operands)) in (("tape.push", 2), ("tape.pop", 1))


def _loop_depth(op: Op) -> int:
    depth, block = 0, op.parent
    while block is not None and block.parent is not None:
        depth += block.parent.name in ("scf.for", "scf.while")
        block = block.parent.parent
    return depth


def canonical(lines: list[str], module: set[str], loose: bool = False) \
        -> tuple[str, list[str]]:
    """The text of generated lines with each local renamed by its first appearance (names
    in `module`, keywords and attributes kept), and the locals in that order. `loose`: with
    the unsigned casts of indices left out (`a[np.uint64(i)]` reads as `a[i]`), which copies
    of a loop make where they know different lower bounds of the same index (merged_lower)."""
    order: dict[str, str] = {}
    out: list[str] = []
    parens: list[bool] = []     # for each open paren: whether it is a dropped cast's
    tokens = list(tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline))
    k = 0
    while k < len(tokens):
        s = tokens[k].string
        if loose and [t.string for t in tokens[k:k + 4]] == ["np", ".", "uint64", "("]:
            parens.append(True)
            k += 4
            continue
        if s in "([{" and tokens[k].type == tokenize.OP:
            parens.append(False)
        elif s in ")]}" and tokens[k].type == tokenize.OP and parens.pop():
            k += 1
            continue
        if tokens[k].type == tokenize.NAME and (k == 0 or tokens[k - 1].string != ".") \
                and s not in module and not keyword.iskeyword(s):
            s = order.setdefault(s, f"v{len(order)}")
        out.append(s)
        k += 1
    return " ".join(out), list(order)


def merged_lower(w: Writer, op: Op, copies: list[Op]) -> dict:
    """The lower bounds the writer knows (w.lower) for the integer values of loop `op`,
    each the least of those of the same value in every copy of the loop (the same ops in
    the same order, canonical): an index is then written unsigned in the shared function
    only where it is non-negative in every place that calls it."""
    low = dict(w.lower)
    mine = _values(op)
    for other in copies:
        theirs = _values(other)
        if len(theirs) != len(mine):
            return {v: b for v, b in low.items() if v not in mine}   # none known: signed
        for v, u in zip(mine, theirs):
            if v in low and u in w.lower:
                low[v] = min(low[v], w.lower[u])
            else:
                low.pop(v, None)
    return low


def _values(op: Op) -> list:
    """The values a loop defines, in order: its variable and carried values, then each op's
    results and its regions' arguments."""
    out = list(op.regions[0].args)
    for o in walk(op.regions[0]):
        out += o.results
        for r in o.regions:
            out += r.args
    return out
