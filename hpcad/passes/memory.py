"""Memory forwarding within a block. A load of an element the block just stored or loaded
reuses the value; a store overwritten before anything could read it is dropped; an
accumulation into an element just stored becomes a store of the sum, two accumulations one;
a store of the value the element already holds is dropped (together these turn the
adjoint of an in-place update,
`g = da[i]; da[i] = 0; ...; da[i] += g`, into nothing). Elements are (array class, index
values); two different index values may name the same element, so any other access to the
class ends what is known about it. Nested regions start afresh."""
from __future__ import annotations

from ..ir.core import Block, Function, Op, Value
from ..ir.effects import reads, writes
from .aliases import is_const, variable_classes
from .rewrite import resolve


def _is_zero(v: Value) -> bool:
    return is_const(v) and v.owner.attrs["value"] == 0 and v.type.is_float


class _BlockState:
    def __init__(self, key):
        self.key = key
        self.known: dict[tuple, Value] = {}     # element -> value memory holds there
        self.pending: dict[tuple, tuple] = {}   # element -> (store op, value held before it)

    def forget(self, cls, keep=None) -> None:
        """Something wrote class cls (except, perhaps, element `keep`)."""
        self.known = {e: v for e, v in self.known.items() if self.key(e[0]) != cls or e == keep}
        self.keep_pending(cls, keep)

    def keep_pending(self, cls, keep=None) -> None:
        """Something may read class cls: its pending stores must stay."""
        self.pending = {e: p for e, p in self.pending.items()
                        if self.key(e[0]) != cls or e == keep}


def _forward_block(block: Block, key, replace: dict[Value, Value]) -> tuple[bool, set, set]:
    """Forwards within block and each nested region; whether anything changed, and the
    array classes the block's ops (nested ones included) read and write afterwards (as
    ir/effects.py's reads_within and writes_within, gathered on the way up)."""
    st = _BlockState(key)
    changed = False
    kept: list[Op] = []
    dropped: set[int] = set()
    accessed: dict[Op, tuple[set, set]] = {}   # an op of the block, its regions' included
    for op in block.ops:
        op.operands = [resolve(replace, v) for v in op.operands]
        read, written = {key(a) for a in reads(op)}, {key(a) for a in writes(op)}
        for r in op.regions:
            changed_r, read_r, written_r = _forward_block(r, key, replace)
            changed |= changed_r
            read |= read_r
            written |= written_r
        accessed[op] = read, written
        if op.name not in ("mem.load", "mem.store", "mem.accumulate"):
            for cls in written:
                st.forget(cls)
            for cls in read:
                st.keep_pending(cls)
            kept.append(op)
            continue
        if op.name == "mem.load":
            element = tuple(op.operands)
            got = st.known.get(element)
            if got is not None:
                replace[op.results[0]] = got
                changed = True
                continue
            st.keep_pending(key(element[0]))
            st.known[element] = op.results[0]
        elif op.name in ("mem.store", "mem.accumulate"):
            element = tuple(op.operands[1:])
            value = op.operands[0]
            held = st.known.get(element)
            pend = st.pending.pop(element, None)
            if pend is not None:        # the earlier write is overwritten or merged: drop it
                earlier, held = pend
                dropped.add(id(earlier))
                changed = True
                if op.name == "mem.accumulate":
                    prior = earlier.operands[0]
                    if not _is_zero(prior):
                        total = Op("arith.add", [prior, value], [value.type], loc=op.loc)
                        total.parent = block
                        kept.append(total)
                        value = total.results[0]
                    # store then add = store of the sum; add then add = one add
                    op = Op(earlier.name, [value] + op.operands[1:], [], loc=op.loc)
                    op.parent = block
            st.forget(key(element[0]), keep=element)
            if op.name == "mem.accumulate":
                st.known.pop(element, None)
                st.pending[element] = (op, None)
            elif held is value:         # memory already holds it
                st.known[element] = value
                continue
            else:
                st.known[element] = value
                st.pending[element] = (op, held)
        kept.append(op)
    block.ops = [op for op in kept if id(op) not in dropped]
    read, written = set(), set()
    for op in block.ops:    # (a sum or merged store made here: its own accesses)
        op_read, op_written = accessed.get(op) or ({key(a) for a in reads(op)},
                                                   {key(a) for a in writes(op)})
        read |= op_read
        written |= op_written
    return changed, read, written


def forward_memory(fn: Function) -> bool:
    key = variable_classes(fn).find
    return _forward_block(fn.body, key, {})[0]
