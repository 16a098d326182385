"""What numba's parfor lowering must not hoist out of a parallel body. Before it compiles a
prange body, numba moves out of the loop every statement whose operands all come from before
the loop (parfor_lowering.hoist), element reads of arrays included unless the body stores
into the array by that very name (numba #3089): it sees neither views (`w = out[1:4]` written,
`out[1]` read) nor the writes of calls (outlined loops, np.dot into an argument, atomic
adds). A read at an index that does not change between iterations, which is every index of
a fork-join task (each is one iteration of a prange over the tasks), then sees the array as
it was before the loop. So the body reads each array from outside it whose memory it may
write, under any name, through a view of its own (`out_in = out[0:out.shape[0]]`): numba
hoists that view, an array, but no read through it (only values that are not arrays count
as coming from before the loop)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ...ir.core import Block, Op, Value, walk
from ...ir.dialects import VIEWS
from ...ir.effects import reads, writes

if TYPE_CHECKING:
    from .writer import Writer


def own_views(w: Writer, regions: list[Block], depth: int) -> dict[Value, str]:
    """Emit, at the top of a parallel body made of `regions`, a view of each array from
    outside it that the body reads and may write (may_share), and have the body refer to
    it by the view's name; returns {array: its name outside}, for restore()."""
    made = {v for region in regions for o in walk(region) for v in o.results} | \
        {a for region in regions for b in _blocks(region) for a in b.args}
    ops = [o for region in regions for o in walk(region)]
    written = {b for o in ops for b in writes(o)}
    outside: dict[Value, str] = {}
    for o in ops:
        for a in reads(o):
            if a in made or a in outside or not any(may_share(w, a, b) for b in written):
                continue
            outside[a] = name = w.ref(a)
            view = w.names[a] = w.fresh(f"{name}_in")
            w.emit(depth, f"{view} = {name}[0:{name}.shape[0]]")
    return outside


def restore(w: Writer, outside: dict[Value, str]) -> None:
    """The arrays own_views gave views of are called by their own names again."""
    w.names.update(outside)


def may_share(w: Writer, a: Value, b: Value) -> bool:
    """Whether arrays a and b may be views of one memory: not where both are views of
    distinct arguments (which never overlap) or distinct allocations."""
    x, y = _root(w, a), _root(w, b)
    return x is None or y is None or x is y


def _root(w: Writer, a: Value) -> Value | None:
    """The argument or allocation whose memory a is a view of; None where a loop or branch
    chooses it (or a call returns it)."""
    while isinstance(a.owner, Op) and a.owner.name in VIEWS:
        a = a.owner.operands[0]
    made = isinstance(a.owner, Op) and a.owner.name == "mem.alloc"
    return a if made or a in w.fn.args else None


def _blocks(region: Block) -> Iterator[Block]:
    yield region
    for o in walk(region):
        yield from o.regions
