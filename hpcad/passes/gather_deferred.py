"""The zeroing that ends a time step's gathered adjoint, deferred into the next step's
gather: one parallel region per step where there were two. The adjoint of a parallel
sweep `v[i, j] = f(u[.., ..])` inside a time loop that swaps u and v is, per step, the
gather `d_u[x] += terms(d_v)` (passes/gather_parallel.py) and the zeroing `d_v[i, j] = 0`
of what the sweep overwrote. The zeroing cannot join the gather's region (a gather
iteration reads the d_v rows its neighbours would zero; numba has no barrier), but the
next step's gather accumulates into that very array, at each element once, from one load
of it: that load reads zero instead (when the element is in the zeroing's domain and the
step is not the first), and the zeroing itself runs once, after the time loop, for the
last step.

Legality, for a time loop T (a counted sequential loop with step 1, outside parallel code)
and a parallel loop or nest N, of any depth, that is the last op of T's body, whose array
A (a value T carries) takes gather form (passes/gather_nest.py) into a gather G:
- what N keeps besides G's terms writes one thing: the constant 0 into an array B, a
  value T carries, at N's own element (iv_0, ..., iv_{D-1}); its other ops only read
  memory or compute (no tape, no communication) and it carries no value (no sums);
- T's yield passes B, once, to A's position, and G indexes A by the gather position
  itself (one level per component, in order): the element B[e] zeroed in one step is
  the element A[e] the next step's G loads, once, before it stores it;
- G's positions cover N's domain: on every level its terms' offsets span 0 (G stores
  each element it loads, so no zeroed element keeps its old value);
- nothing else in T's body touches an array that may alias A (so nothing sees the
  elements between the end of one step and that load), and N uses nothing T's body
  defines except B (so N run after T, on T's result, does what the last step's N did).
Then each load reads what it read before: zero where the element was zeroed, the memory
elsewhere (and on the first step, which no zeroing precedes)."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.core import Block, Builder, Op, Value, defining_block, replace_uses, walk
from ..ir.dialects import OPS, access_index, in_parallel, unit_step
from ..ir.effects import reads, writes
from ..ir.types import i1
from .affine import Nest
from .gather_nest import Gather, index_levels
from .race import Accesses


@dataclass(frozen=True)
class Deferral:
    """N's zeroing deferred: T, the gather whose loads read zero, and A's position among
    the values T carries."""
    time_loop: Op
    gather: Gather
    position: int


def _inside(block: Block | None, op: Op) -> bool:
    """Whether block is one of op's regions or nested in one."""
    while block is not None and block.parent is not None:
        if block.parent is op:
            return True
        block = block.parent.parent
    return False


def _zero_store(nest: Nest, terms: set[Op]) -> Op | None:
    """N's only write besides the gathered terms, when it stores the constant 0 at N's own
    element and nothing in N moves the tape or communicates; else None."""
    stores = []
    for op in walk(nest.loops[0].regions[0]):
        if op in terms or op.name in ("scf.for", "scf.yield"):
            continue
        if writes(op):
            stores.append(op)
        elif OPS[op.name].effect not in ("pure", "read"):
            return None
    if len(stores) != 1 or stores[0].name != "mem.store":
        return None
    store = stores[0]
    value = store.operands[0].owner
    zero = isinstance(value, Op) and value.name == "arith.const" \
        and value.attrs.get("value") == 0
    return store if zero and list(access_index(store)) == list(nest.ivs) else None


def _free_values_outside(nest_loop: Op, terms: set[Op], time_loop: Op,
                         allowed: Value) -> bool:
    """Whether N, less the gathered terms, uses nothing T's body defines but `allowed`."""
    for op in [nest_loop, *walk(nest_loop.regions[0])]:
        for v in op.operands if op not in terms else ():
            home = defining_block(v)
            if v is not allowed and _inside(home, time_loop) and not _inside(home, nest_loop):
                return False
    return True


def _untouched_elsewhere(body: Block, nest_loop: Op, array: Value, acc: Accesses) -> bool:
    """Whether no op of T's body outside N reads or writes an array that may alias A."""
    for op in walk(body):
        if op is nest_loop or _inside(op.parent, nest_loop):
            continue
        if any(acc.may_alias(a, array) for a in reads(op) + writes(op)):
            return False
    return True


def deferrable(nest: Nest, gathers: list[Gather], acc: Accesses) -> Deferral | None:
    """The deferral of N's zeroing (module docstring), or None when its conditions fail."""
    loop = nest.loops[0]
    body = loop.parent
    time_loop = body.parent if body is not None else None
    if loop.results or time_loop is None or time_loop.name != "scf.for" \
            or in_parallel(time_loop) or not unit_step(time_loop) \
            or body.ops.index(loop) != len(body.ops) - 2:
        return None
    terms = {op for g in gathers for _, op in g.terms}
    store = _zero_store(nest, terms)
    zeroed = store.operands[1] if store is not None else None
    carried = body.args[1:]
    passed = body.ops[-1].operands
    if zeroed not in carried or passed.count(zeroed) != 1:
        return None
    position = passed.index(zeroed)
    target = carried[position]
    gather = next((g for g in gathers if g.array is target), None)
    if gather is None or index_levels(gather) != tuple(range(nest.depth)) \
            or not all(c_min <= 0 <= c_max for c_min, c_max in
                       (gather.span(level) for level in range(nest.depth))) \
            or not _untouched_elsewhere(body, loop, target, acc) \
            or not _free_values_outside(loop, terms, time_loop, zeroed):
        return None
    return Deferral(time_loop, gather, position)


def not_first_step(b: Builder, time_loop: Op) -> Value:
    """Whether T runs a step other than its first (a reverse loop runs from its last
    index down), built at b inside T's body."""
    lb, ub = time_loop.operands[0], time_loop.operands[1]
    iv = time_loop.regions[0].args[0]
    if time_loop.attrs.get("reverse"):
        one = b.op1("arith.const", [], iv.type, {"value": 1})
        return b.op1("arith.cmp", [b.op1("arith.add", [iv, one], iv.type), ub], i1,
                     {"pred": "lt"})
    return b.op1("arith.cmp", [iv, lb], i1, {"pred": "gt"})


def zero_after(d: Deferral, nest_loop: Op) -> None:
    """Move N after T, onto T's result at A's position, run only when T ran a step."""
    t = d.time_loop
    t.regions[0].ops.remove(nest_loop)
    zeroed = t.regions[0].ops[-1].operands[d.position]
    replace_uses(nest_loop.regions[0], {zeroed: t.results[d.position]})
    b = Builder(t.parent, t.loc)
    b.index = t.parent.ops.index(t) + 1
    ran = b.op1("arith.cmp", [t.operands[0], t.operands[1]], i1, {"pred": "lt"})
    then, other = Block(), Block()
    Builder(then, t.loc).insert(nest_loop)
    Builder(then, t.loc).op("scf.yield", [])
    Builder(other, t.loc).op("scf.yield", [])
    b.op("scf.if", [ran], [], regions=[then, other])
