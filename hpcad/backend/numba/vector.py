"""Vector values (batched derivatives, `f64x8`) in generated code. The IR keeps the width
as a type; here each run of lane-wise ops in a block (vector arithmetic, loads and stores of
arrays of vectors) becomes one inner `for w in range(W)` loop over plain scalars, which numba
compiles to small vectorizable loops. Primal ops of the block are written before that loop
(they never read vector values, and touch other arrays). A vector that lives beyond its
loop (loop-carried, used in another loop or by an MPI call, returned) is a length-W array,
allocated once per call; inside a parallel loop each thread has its own row. Arrays of
vectors keep the lanes as their last, contiguous axis (n, W), so that a lane loop reads
W adjacent numbers; the caller's arrays reach the code in that layout (lane_layout.py: in
place when their memory already is, else transposed once by the caller). Lane
loops run to `_lanes`, an argument (= W): a loop of unknown length is vectorized by LLVM's
loop vectorizer (with its run-time alias checks), where a constant 8 is unrolled first and
then left scalar, since stores to one array of vectors may alias loads from another.

Lane-outer loops (ir/lanes.py). A loop whose body only computes (pure scalar ops, loads,
tape pops) and writes vectors, such as a reverse sweep over time steps of an adjoint
stencil, runs once per lane instead: `for w in range(W): for t ...: for i ...:`, every
vector in it a plain local. Its lanes do not interact and it changes no scalar state but
the tape position, which each lane starts from afresh, so the order is free; each lane then
streams over its own contiguous row of the shadows, which stays in cache across time
steps, where lanes last the W rows together would not. When every loop that streams over
arrays of vectors is such a loop, the arrays are laid out lanes first (W, n).

Blocked lane loops (ir/lanes.py blocked_lane_loops), in the variant of lanes-last code that
reads (W, *shape) tangents in place (lane_layout.py): an innermost loop whose arrays of
vectors are all such tangents (streams_in_place) runs block by block, its scalar work over
the block first, then each lane's work over the block, so that each lane streams its own
contiguous run of the caller's memory (write_blocked)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import HpcadError, where
from ...ir.core import Block, Function, Op, Value, walk
from ...ir.dialects import MEMORY_ACCESSES, accessed_array
from ...ir.lanes import (
    blocked_lane_loops,
    is_lane_array,
    is_vector,
    lane_op,
    lane_outer_loops,
)
from ...ir.types import lanes
from .common import NP_TYPES
from .lane_layout import private_args
from .rules import rule

if TYPE_CHECKING:
    from .writer import Writer

# ops without regions that must still wait for the pending lane loop: they may touch whole
# arrays of vectors (scalar code, allocations, primal memory ops and the tape may go first:
# lane ops touch only arrays of vectors)
_BARRIERS = ("mem.fill", "mem.copy", "mem.add_into", "func.call")
# iterations of a blocked lane loop (write_blocked): each lane streams this many elements of
# each array of vectors in a run, and the scalar values its lane ops read stay in cache
# (a larger block runs no faster at any width)
BLOCK = 1024


def width_of(fn: Function) -> int:
    """The vector width W of fn's values (1 without vectors); one W per function."""
    widths = {lanes(v.type) for o in walk(fn.body) for v in o.operands + o.results}
    widths |= {lanes(a.type) for a in fn.args}
    widths.discard(1)
    if len(widths) > 1:
        raise HpcadError(f"@{fn.name} mixes vector widths {sorted(widths)}")
    return widths.pop() if widths else 1


def plan(w: Writer) -> None:
    """Which vectors are plain locals (of one lane loop, or of a lane-outer loop), which
    loops run lane-outer, which carried vectors are written in place."""
    if w.width == 1:
        return
    plan_lanes(w, w.fn.body)
    w.outer = lane_outer_loops(w.fn.body)
    if w.blocking:
        w.blocked = {loop for loop in blocked_lane_loops(w.fn.body) if streams_in_place(w, loop)}
    for loop in w.outer | w.blocked:   # every vector in such a loop is a plain local
        for block in [loop.regions[0]] + [r for o in walk(loop.regions[0])
                                          for r in o.regions]:
            w.local.update(a for a in block.args if is_vector(a))
        for op in walk(loop.regions[0]):
            w.local.update(r for r in op.results if is_vector(r))
    for op in walk(w.fn.body):
        if op.name == "scf.for" and op not in w.outer and op not in w.blocked:
            coalesce_carried(w, op)
    for a in w.fn.args:
        if lanes(a.type) > 1:
            w.vector_names.add(w.name(a))
    for k in sorted(private_args(w.fn)):
        a = w.fn.args[k]
        w.private[a] = w.fresh(f"{w.name(a)}_in")


def lanes_first(w: Writer) -> bool:
    """Whether arrays of vectors are laid out (W, ...): when loops run lane-outer."""
    return bool(w.outer)


def breaks_lanes(op: Op) -> bool:
    """Whether op must be written after the pending lane loop (not hoisted above it).
    Planning and writing must agree on this, so it looks at nothing but the op."""
    return bool(op.regions) or op.dialect in ("mpi", "scf", "func", "par", "vec", "linalg") \
        or op.name in _BARRIERS


def plan_lanes(w: Writer, block: Block) -> None:
    """Group each block's lane ops into lane loops; a vector is local when every use is
    in its own loop."""
    group, groups, opened = 0, {}, False
    for op in block.ops:
        if lane_op(op):
            groups[op] = group
            opened = True
        elif opened and breaks_lanes(op):
            group += 1
            opened = False
        for region in op.regions:
            plan_lanes(w, region)
    users: dict[Value, list[Op]] = {}
    for op in block.ops:
        for v in op.operands:
            users.setdefault(v, []).append(op)
    nested = {v for op in block.ops for r in op.regions for o in walk(r) for v in o.operands}
    for op, g in groups.items():
        for r in op.results:
            if is_vector(r) and r not in nested and all(groups.get(u) == g
                                                        for u in users.get(r, ())):
                w.local.add(r)


def write_lane_outer(w: Writer, loop: Op, depth: int) -> None:
    """`for w in range(W):` around the loop, its carried vectors plain locals, copied
    out to their arrays at the end of each lane, each array of vectors read and written
    through the lane's own row, each tape position it moves set back to where it was
    for the next lane. A loop with sums that may be taken in any order runs in a
    function of its own (Writer.outline_loop), as at width 1."""
    moved = sorted({w.by_slot[o.attrs["slot"]].position for o in walk(loop.regions[0])
                    if o.name == "tape.retreat" or o.name == "tape.pop" and not o.operands})
    starts = [w.fresh("start") for _ in moved]
    for start, position in zip(starts, moved, strict=True):
        w.emit(depth, f"{start} = {position}")
    lane = w.fresh("w")
    w.emit(depth, f"for {lane} in range(_lanes):")
    for start, position in zip(starts, moved, strict=True):
        w.emit(depth + 1, f"{position} = {start}")
    arrays = {accessed_array(o) for o in walk(loop.regions[0]) if o.name in MEMORY_ACCESSES}
    for arr in sorted((a for a in arrays if is_lane_array(a)), key=w.name):
        w.rows[arr] = w.fresh(f"{w.name(arr)}_row")   # the lane's own row
        w.emit(depth + 1, f"{w.rows[arr]} = {w.ref(arr)}[{lane}]")
    w.lane = w.outer_lane = lane
    carried = [w.fresh(r.name) if is_vector(r) else w.name(r) for r in loop.results]
    try:
        if w.outlines(loop):
            w.outline_loop(loop, depth + 1, carried)
        else:
            w.write_for(loop, depth + 1, carried)
    finally:
        w.lane = w.outer_lane = None
        w.rows = {}
    for r, local in zip(loop.results, carried, strict=True):
        if is_vector(r):
            w.emit(depth + 1, f"{stored(w, r)}[{lane}] = {local}")


def streams_in_place(w: Writer, loop: Op) -> bool:
    """Whether every array of vectors the loop touches is (a view of) an argument passed
    in place with any strides (w.blocking), not one the code keeps lanes last (a private
    copy, an allocation), where a lane's run of a block would be W elements apart; and no
    tape slot is set up in it."""
    in_place = {w.fn.args[k] for k in set(w.blocking) - private_args(w.fn)}
    for op in walk(loop.regions[0]):
        if op in w.by_anchor:
            return False
        if op.name in MEMORY_ACCESSES and is_lane_array(accessed_array(op)):
            arr = accessed_array(op)
            while isinstance(arr.owner, Op) and arr.owner.name in ("mem.view", "mem.reshape"):
                arr = arr.owner.operands[0]
            if arr not in in_place:
                return False
    return True


def recomputed(body: Block, v: Value) -> bool:
    """Whether a lane op's scalar operand v is index arithmetic a blocked loop's lanes
    compute again (integer add, sub, mul of the induction variable, constants and values
    from outside the loop), rather than keep: their indices stay affine."""
    op = v.owner
    if not isinstance(op, Op) or op.parent is not body:
        return False
    if op.name not in ("arith.add", "arith.sub", "arith.mul") or v.type.is_float:
        return False
    return all(x is body.args[0] or is_constant(x) or _outside(x, body) or recomputed(body, x)
               for x in op.operands)


def _outside(v: Value, body: Block) -> bool:
    owner = v.owner
    block = owner.parent if isinstance(owner, Op) else owner
    while isinstance(block, Block):
        if block is body:
            return False
        block = block.parent.parent if block.parent is not None else None
    return True


def write_blocked(w: Writer, loop: Op, depth: int) -> None:
    """A blocked lane loop (ir/lanes.py blocked_lane_loops): block after block of BLOCK
    iterations, its scalar ops over the block, keeping each scalar value a lane op reads
    in a buffer of the block (allocated once per call), then, for each lane, its lane ops
    over the block, the lane's carried vectors plain locals, kept from block to block in
    their length-W arrays (the loop's results)."""
    body = loop.regions[0]
    ops, term = body.ops[:-1], body.ops[-1]
    lanes_ops = [o for o in ops if lane_op(o)]
    iv, args = body.args[0], body.args[1:]
    defined = set(args) | {r for o in ops if not lane_op(o) for r in o.results}
    read = [v for v in dict.fromkeys(x for o in lanes_ops for x in o.operands)
            if v in defined and not is_vector(v) and not is_constant(v)]
    again = [o for o in ops if any(recomputed(body, r) and r in read for r in o.results)]
    again = [o for o in ops if o in _chains(again)]
    kept = [v for v in read if not recomputed(body, v)]
    carried = carried_names(w, loop.results)
    vectors = [k for k, r in enumerate(loop.results) if is_vector(r)]
    scalars = [k for k in range(len(carried)) if k not in vectors]
    starts = [w.ref(v) for v in loop.operands[3:]]
    w.assign(depth, [carried[k] for k in scalars], [starts[k] for k in scalars])
    if vectors:
        assign_lanes(w, depth, [(carried[k], starts[k]) for k in vectors])
    buffers = {}
    for v in kept:
        buffers[v] = w.fresh(f"{w.name(v)}_block")
        w.block_buffers.append((buffers[v], NP_TYPES[v.type.name]))
    first, end = w.fresh("block"), w.fresh("block_end")
    lb, ub = (w.ref(v) for v in loop.operands[:2])
    w.emit(depth, f"for {first} in range({lb}, {ub}, {BLOCK}):")
    w.emit(depth + 1, f"{end} = min({first} + {BLOCK}, {ub})")
    i = w.name(iv)
    for k in scalars:
        w.names[args[k]] = carried[k]
    w.emit(depth + 1, f"for {i} in range({first}, {end}):")
    start = len(w.lines)
    outlined, w.in_outlined = w.in_outlined, True   # indices >= 0 unsigned, as there
    try:
        for op in ops:
            if not lane_op(op):
                w.op(op, depth + 2)
    finally:
        w.in_outlined = outlined
    at = f"np.uint64({i} - {first})"
    for v, buf in buffers.items():
        w.emit(depth + 2, f"{buf}[{at}] = {w.name(v)}")
    w.assign(depth + 2, [carried[k] for k in scalars], [w.ref(term.operands[k]) for k in scalars])
    if len(w.lines) == start:
        w.emit(depth + 2, "pass")
    lane = w.fresh("w")
    w.emit(depth + 1, f"for {lane} in range(_lanes):")
    locals_ = [w.fresh(w.name(loop.results[k])) for k in vectors]
    for k, local in zip(vectors, locals_, strict=True):
        w.names[args[k]] = local
        w.emit(depth + 2, f"{local} = {carried[k]}[{lane}]")
    w.emit(depth + 2, f"for {i} in range({first}, {end}):")
    pass1 = {v: w.names[v] for v in kept}
    for v, buf in buffers.items():
        w.names[v] = w.fresh(w.name(v))
        w.emit(depth + 3, f"{w.names[v]} = {buf}[{at}]")
    w.lane = w.outer_lane = lane
    w.in_outlined = True
    try:
        for op in again:
            w.op(op, depth + 3)
        for op in lanes_ops:
            w.op(op, depth + 3)
        w.assign(depth + 3, locals_, [w.ref(term.operands[k]) for k in vectors])
    finally:
        w.lane = w.outer_lane = None
        w.in_outlined = outlined
        w.names.update(pass1)
    for k, local in zip(vectors, locals_, strict=True):
        w.emit(depth + 2, f"{carried[k]}[{lane}] = {local}")


def _chains(ops: list[Op]) -> set[Op]:
    """The ops and the ops in the loop body their recomputed operands come from."""
    out: set[Op] = set()
    todo = list(ops)
    while todo:
        op = todo.pop()
        if op not in out:
            out.add(op)
            todo += [x.owner for x in op.operands if isinstance(x.owner, Op)
                     and x.owner.parent is op.parent and not is_constant(x)]
    return out


def block_buffer_lines(w: Writer) -> list[str]:
    """Allocations of the blocked lane loops' buffers, at the top of the function."""
    return [f"    {name} = np.empty({BLOCK}, {dtype})" for name, dtype in w.block_buffers]


def coalesce_carried(w: Writer, loop: Op) -> None:
    """A vector the loop body computes only to carry it to the next iteration is written
    straight into the carried array, when nothing in the body reads the carried value
    after that (saves a copy loop per iteration, e.g. an adjoint summed over a loop)."""
    body = loop.regions[0]
    term = body.ops[-1]
    for k, (arg, y) in enumerate(zip(body.args[1:], term.operands, strict=True)):
        d = y.owner
        if not is_vector(y) or not isinstance(d, Op) or d.parent is not body \
                or term.operands.count(y) != 1 or arg in term.operands:
            continue
        if any(y in o.operands for o in walk(body) if o is not term):
            continue
        at = body.ops.index(d)
        if all(top_index(o, body) <= at for o in walk(body) if arg in o.operands):
            w.names[y] = w.name(loop.results[k])


def top_index(op: Op, block: Block) -> int:
    while op.parent is not block:
        op = op.parent.parent
    return block.ops.index(op)


def write_lanes(w: Writer, ops: list[Op], depth: int) -> None:
    if not ops:
        return
    if w.outer_lane is not None:   # in a lane-outer loop: the lane is fixed
        for op in ops:
            w.op(op, depth)
        return
    lane = w.fresh("w")
    w.emit(depth, f"for {lane} in range(_lanes):")
    w.lane = lane
    for op in ops:
        w.op(op, depth + 1)
    w.lane = None


def lane_ref(w: Writer, v: Value, text: str) -> str:
    """How a lane loop reads vector v (a local scalar, or lane w of its array)."""
    if w.lane is None or v in w.local or (isinstance(v.owner, Op)
                                          and v.owner.name == "arith.const"):
        return text
    return f"{text}[{w.lane}]"


def target(w: Writer, v: Value) -> str:
    """Where op results are written: a local, or lane w of a vector's array."""
    if not is_vector(v) or v in w.local:
        return w.name(v)
    return f"{stored(w, v)}[{w.lane}]"


def stored(w: Writer, v: Value) -> str:
    """The name of the length-W array that holds vector v (allocated once per call, or
    per thread inside a parallel loop)."""
    name = w.name(v)
    if name not in w.vector_names:
        w.vector_names.add(name)
        home = w.homes[-1] if w.homes else None
        w.storage[name] = (NP_TYPES[v.type.name], home)
        if home is not None:
            home["rows"].append(name)
    return name


def carried_names(w: Writer, values: list[Value]) -> list[str]:
    return [stored(w, v) if is_vector(v) and v not in w.local else w.name(v)
            for v in values]


def assign_lanes(w: Writer, depth: int, pairs: list[tuple[str, str]]) -> None:
    """targets[w] = sources[w] for every lane, all sources read before any is written
    (loops may yield their carried vectors swapped)."""
    lane = w.fresh("w")
    w.emit(depth, f"for {lane} in range(_lanes):")
    temps = []
    for _, src in pairs:
        temp = w.fresh("lane")
        read = f"{src}[{lane}]" if src in w.vector_names else src
        w.emit(depth + 1, f"{temp} = {read}")
        temps.append(temp)
    for (dst, _), temp in zip(pairs, temps, strict=True):
        w.emit(depth + 1, f"{dst}[{lane}] = {temp}")


def vector_operand(w: Writer, v: Value) -> str:
    """A vector as an array argument (a constant becomes a filled array)."""
    text = w.ref(v)
    if text in w.vector_names:
        return text
    return f"np.full({w.width}, {text})"


@rule("vec.extract")
def vec_extract(w: Writer, op: Op, depth: int) -> None:
    vector, lane = op.operands
    value = w.ref(vector) if is_constant(vector) else \
        f"{stored(w, vector)}[{w.ref(lane)}]"
    w.emit(depth, f"{w.name(op.results[0])} = {value}")


@rule("vec.insert")
def vec_insert(w: Writer, op: Op, depth: int) -> None:
    """In place when the result shares the operand's array (a lane loop's carried
    vector, see coalesce_carried), else into a copy."""
    vector, value, lane = op.operands
    out = stored(w, op.results[0])
    source = w.ref(vector) if is_constant(vector) else stored(w, vector)
    if source != out:
        assign_lanes(w, depth, [(out, source)])
    w.emit(depth, f"{out}[{w.ref(lane)}] = {w.ref(value)}")


@rule("vec.lane")
def vec_lane(w: Writer, op: Op, depth: int) -> None:
    arr, lane = op.operands
    index = ", ".join(with_lane(w, [":"] * arr.type.ndim, w.ref(lane)))
    w.emit(depth, f"{w.name(op.results[0])} = {w.ref(arr)}[{index}]")


def is_constant(v: Value) -> bool:
    return isinstance(v.owner, Op) and v.owner.name == "arith.const"


def enter_home(w: Writer, depth: int) -> dict:
    home = {"at": len(w.lines), "depth": depth, "rows": [], "tid": None}
    w.homes.append(home)
    return home


def thread_id(w: Writer, home: dict) -> str:
    if home["tid"] is None:
        home["tid"] = w.fresh("thread")
    return home["tid"]


def leave_home(w: Writer, home: dict) -> None:
    """Give the body its thread's rows of the vectors it keeps in arrays."""
    w.homes.pop()
    lines = []
    if home["rows"]:
        thread_id(w, home)
    if home["tid"] is not None:
        lines.append(f"{home['tid']} = get_thread_id()")
    lines += [f"{name} = {name}_rows[{home['tid']}]" for name in home["rows"]]
    w.lines[home["at"]:home["at"]] = ["    " * home["depth"] + line for line in lines]


def vector_reduction(w: Writer, loop: Op, update: Op | None, var: str, depth: int) -> str | None:
    """A sum reduction of a vector: each chunk of a top-level parallel loop
    (parallel.chunked_loop; else each thread) adds into its own row of a partial-sums array;
    the rows are added to the result after the loop in order (see reduce_rows)."""
    body = loop.regions[0]
    if update is None:   # passed through unchanged: the result is the initial value
        return None
    if not isinstance(update, Op) or update.parent is not body \
            or update.name not in ("arith.add", "arith.sub") \
            or not any(v in body.args for v in update.operands):
        raise HpcadError(f"{where(loop.loc)}: numba backend: a vector reduction of a "
                         f"parallel loop must be one sum update in its body")
    part = w.fresh(f"{var}_part")
    w.emit(depth, f"{part} = np.zeros((_nthreads, {w.width}), "
                  f"{NP_TYPES[update.results[0].type.name]})")
    w.vector_reductions[update] = (part, update.name == "arith.sub")
    w.names[update.results[0]] = var
    return part


def reduction_lane(w: Writer, op: Op, depth: int) -> None:
    part, minus = w.vector_reductions[op]
    acc = w.names[op.results[0]]
    other = op.operands[1] if w.names.get(op.operands[0]) == acc else op.operands[0]
    home = w.homes[-1]
    # a loop in chunks (parallel.chunked_loop): the chunk's row, added in chunk order after
    # the loop, the same sum whichever thread runs which chunk
    tid = home["copies"][None] if home.get("copies") else thread_id(w, home)
    w.emit(depth, f"{part}[{tid}, {w.lane}] {'-' if minus else '+'}= "
                  f"{w.ref(other)}")


def reduce_rows(w: Writer, var: str, part: str, depth: int) -> None:
    lane, t = w.fresh("w"), w.fresh("t")
    w.emit(depth, f"for {lane} in range(_lanes):")
    w.emit(depth + 1, f"for {t} in range(_nthreads):")
    w.emit(depth + 2, f"{var}[{lane}] += {part}[{t}, {lane}]")


def storage_lines(w: Writer) -> list[str]:
    """Allocations of the vectors' arrays, at the top of the function."""
    lines = []
    for name, (dtype, home) in w.storage.items():
        if home is None:
            lines.append(f"{name} = np.empty({w.width}, {dtype})")
        else:
            lines.append(f"{name}_rows = np.empty((_nthreads, {w.width}), {dtype})")
    return ["    " + line for line in lines]


def with_lane(w: Writer, index: list[str], lane: str) -> list[str]:
    """The index of one element of an array of vectors: lane last, or first."""
    return [lane] + index if lanes_first(w) else index + [lane]


def lane_axis(w: Writer, axis: int) -> int:
    """The array axis of an array of vectors' element axis."""
    return axis + 1 if lanes_first(w) else axis


def parameter(w: Writer, a: Value) -> str:
    """The parameter name of argument a: the caller's array of a private one."""
    return w.private.get(a) or w.name(a)


def private_in(w: Writer) -> list[str]:
    """The private (*shape, W) buffers of the arrays of vectors read and written in place
    (lane_layout.private_args), filled from the caller's arrays."""
    lines = []
    for a, caller in w.private.items():
        dims = "".join(f"{caller}.shape[{k}], " for k in range(a.type.ndim))
        name = w.name(a)
        lines += [f"{name} = np.empty(({dims}{w.width}), {NP_TYPES[a.type.dtype.name]})",
                  f"{name}[...] = {caller}"]
    return ["    " + line for line in lines]


def private_out(w: Writer, depth: int) -> None:
    """The private buffers back into the caller's arrays (before the return)."""
    for a, caller in w.private.items():
        w.emit(depth, f"{caller}[...] = {w.name(a)}")
