"""Parallel ops in generated code: `par.parallel_for` becomes a numba `prange` loop whose
reductions are written the way numba recognizes them (`s += e`, `s = max(s, e)`);
`par.join` becomes a `prange` over its tasks, each task's results passing through a
one-element array (variables assigned inside a prange body are private to it). Sums of
vectors (batched derivatives) go through per-thread rows (vector.py), and so do the
accumulations of a loop whose race-free form is "private copies" (passes/race.py): the
loop runs as a prange over chunks of iterations, as many as numba may run threads, each
adding into its own zeroed copy of the array; the copies are added to it after the loop,
in a parallel loop over its first axis, in chunk order (deterministic for a given
NUMBA_NUM_THREADS, whatever the layer and its scheduling). A loop that carries scalar
reductions (sums, products, min, max) runs over the same chunks, each from its own start,
combined in chunk order after the loop (chunk_sums), so numba's parfor pass is never given a
reduction to analyse; a prange inside parallel code, which numba runs serially, is written
as a range. A loop whose body is plain and
which carries float sums or nothing (outlined_chunks) runs over the same chunks, each
chunk's iterations in a function of its own, whose sums LLVM may reorder and whose indices
are unsigned (Writer.outline_loop): LLVM vectorizes it, where in numba's parfor body (sums
as prange reductions) it did not. The chunks' partial sums are added after the loop, in
chunk order (deterministic the same way)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...ir.core import Op, Value, walk
from ...ir.dialects import (
    in_parallel,
    join_arities,
    lower_bounds,
    plain_body,
    reduction_kinds,
    sum_update,
)
from . import hoisting, vector
from .common import NP_TYPES, without_terminator
from .rules import rule
from .tape import reserve_for_tasks
from .vector import is_vector

if TYPE_CHECKING:
    from .writer import Writer


@rule("par.parallel_for")
def par_parallel_for(w: Writer, op, depth):
    if outlined_chunks(op, w.width):
        outlined_chunks_loop(w, op, depth)
        return
    body = op.regions[0]
    carried = vector.carried_names(w, op.results)
    w.assign(depth, carried, [w.ref(v) for v in op.operands[3:]])
    sums = chunk_sums(w, op, carried, depth)
    own = [sums[k][0] if k in sums else var for k, var in enumerate(carried)]
    for arg, var in zip(body.args[1:], own, strict=True):
        w.names[arg] = var
    parts = []
    for k, kind in enumerate(reduction_kinds(op)):
        update = body.ops[-1].operands[k].owner
        if is_vector(op.results[k]):
            through = body.ops[-1].operands[k] is body.args[1 + k]
            part = vector.vector_reduction(w, op, None if through else update, carried[k], depth)
            if part is not None:
                parts.append((carried[k], part))
        elif isinstance(update, Op) and update.parent is body:
            w.reduction_updates[update] = (own[k], kind)
    copies = private_copies(w, op, depth)
    if (sums or parts) and not copies and not in_parallel(op):
        copies = {None: ""}   # chunked, with no arrays to copy (vector sums: a chunk's row)
    lb, ub, step = (w.ref(v) for v in op.operands[:3])
    iv = w.name(body.args[0])
    inner = depth + 1
    if copies:
        inner = chunked_loop(w, copies, lb, ub, step, iv, depth, sums, carried)
    elif carried and in_parallel(op):
        # numba runs a prange inside parallel code serially; as a range, its carried values
        # are plain serial updates, which numba's parfor reduction analysis never sees (it
        # fails on a value carried through an inner loop: serial_inside)
        w.emit(depth, f"for {iv} in {serial_range(lb, ub, step)}:")
    elif step == "1":
        w.emit(depth, f"for {iv} in prange({lb}, {ub}):")
    else:   # numba's prange takes unit steps only: run over iteration numbers
        number = w.fresh(f"{iv}_number")
        w.emit(depth, f"for {number} in prange(_trips({lb}, {ub}, {step})):")
        w.emit(depth + 1, f"{iv} = {lb} + {number} * {step}")
    home = vector.enter_home(w, inner)
    if copies:
        home["copies"] = copies
    outside = hoisting.own_views(w, [body], inner)
    w.region_body(body, inner, own)
    hoisting.restore(w, outside)
    vector.leave_home(w, home)
    if sums:
        chunk = copies[None]
        for local, part, _ in sums.values():
            w.emit(inner - 1, f"{part}[{chunk}] = {local}")
    add_sums(w, carried, sums, depth)
    fence(w, depth)
    for var, part in parts:
        vector.reduce_rows(w, var, part, depth)
    add_copies(w, copies, depth)


def fence(w: Writer, depth: int) -> None:
    """After a parallel loop: nothing numba's parfor pass moves across (intrinsics.py,
    parallel_fence), so the statements after the loop see what it wrote."""
    w.emit(depth, "parallel_fence()")


def private_copies(w: Writer, op: Op, depth: int) -> dict[Value, str]:
    """{array: its per-thread copies}, allocated (zeroed) before a loop in the "private
    copies" form; {} for any other loop."""
    if op.attrs.get("race_free") != "private copies":
        return {}
    arrays: list[Value] = []
    for o in walk(op.regions[0]):
        if o.attrs.get("private") and o.operands[1] not in arrays:
            arrays.append(o.operands[1])
    copies = {}
    for arr in arrays:
        rows = w.fresh(f"{w.ref(arr)}_rows")
        w.emit(depth, f"{rows} = np.zeros((_nthreads,) + {w.ref(arr)}.shape, "
                      f"{NP_TYPES[arr.type.dtype.name]})")
        copies[arr] = rows
    return copies


def uses_chunks(fn, width: int) -> bool:
    """Whether a function has a loop in the "private copies" form or outlined chunks:
    its code then takes the most threads numba may run, `_nthreads`
    (numba.config.NUMBA_NUM_THREADS, the number of chunks: a run-time value, as numba's
    get_num_threads in compiled code keeps it from the disk cache)."""
    return any(o.attrs.get("race_free") == "private copies" or outlined_chunks(o, width)
               or chunked_sums(o, width) for o in walk(fn.body))


def chunked_sums(op: Op, width: int) -> bool:
    """Whether a parallel loop runs in chunks for its reductions (chunk_sums)."""
    return (op.name == "par.parallel_for" and not in_parallel(op)
            and any(not is_vector(r) for r in op.results))


def serial_range(lb: str, ub: str, step: str) -> str:
    return f"range({lb}, {ub})" if step == "1" else f"range({lb}, {ub}, {step})"


def outlined_chunks(op: Op, width: int) -> bool:
    """Whether a parallel loop runs as chunks of a function of its own, each returning its
    partial sums if any (module docstring): one outside other parallel code, at width 1,
    whose carried values, if any, are float sums (each iteration adds one value:
    sum_update) and whose body is plain (no nested loops, no tape position moved)."""
    kinds = reduction_kinds(op)
    return (op.name == "par.parallel_for" and width == 1
            and all(k == "add" for k in kinds) and not in_parallel(op)
            and op.attrs.get("race_free") != "private copies"
            and all(sum_update(op, k) for k in range(len(kinds)))
            and plain_body(op, ("tape.push", "tape.pop")))


def outlined_chunks_loop(w: Writer, op: Op, depth: int) -> None:
    """A loop in outlined chunks: a prange over `_nthreads` chunks of consecutive
    iterations (as chunked_loop), each running its chunk from zero sums in an outlined
    function and storing its partial sums in its element of an array per sum; after the
    loop, each sum += its partials in chunk order."""
    from .writer import literal
    carried = vector.carried_names(w, op.results)
    w.assign(depth, carried, [w.ref(v) for v in op.operands[3:]])
    parts = [w.fresh(f"{var}_parts") for var in carried]
    for var, r in zip(parts, op.results, strict=True):
        w.emit(depth, f"{var} = np.empty(_nthreads, {NP_TYPES[r.type.name]})")
    lb, ub, step = (w.ref(v) for v in op.operands[:3])
    trips, chunk, first, end = (w.fresh(h) for h in ("trips", "chunk", "first", "end"))
    w.emit(depth, f"{trips} = _trips({lb}, {ub}, {step})")
    w.emit(depth, f"for {chunk} in prange(_nthreads):")
    scale = "" if step == "1" else f" * {step}"
    for var, number in zip((first, end), chunk_range(chunk, trips), strict=True):
        w.emit(depth + 1, f"{var} = {lb} + {number}{scale}")
    partial = [w.fresh(f"{var}_part") for var in carried]
    bound_body(w, op)
    zeros = [literal(0.0, r.type) for r in op.results]
    w.outline_loop(op, depth + 1, partial, (first, end, zeros))
    for var, part in zip(parts, partial, strict=True):
        w.emit(depth + 1, f"{var}[{chunk}] = {part}")
    if carried:
        t = w.fresh("t")
        w.emit(depth, f"for {t} in range(_nthreads):")
        for var, part in zip(carried, parts, strict=True):
            w.emit(depth + 1, f"{var} += {part}[{t}]")
    fence(w, depth)


def chunk_sums(w: Writer, op: Op, carried: list[str],
               depth: int) -> dict[int, tuple[str, str, str]]:
    """{k: (the chunk's own value, the array of the chunks' values, the reduction kind)} for
    a parallel loop's scalar reductions (sums, products, min and max; float or integer; at
    any width), when the loop runs in chunks for them: one outside other parallel code.
    Each chunk runs its iterations in order from the operator's identity (min and max: from
    the value before the loop), and the chunks' values are combined with it after the loop
    in chunk order (add_sums). numba's own prange reduction adds its threads' partial sums
    in an order the threading layer's scheduling picks (tbb's work stealing), so the same
    call could round differently from run to run and between calls made at once from
    several Python threads; chunks give the same value on every run and layer for a given
    NUMBA_NUM_THREADS. And numba's parfor pass cannot analyse every reduction it is given:
    one whose value was carried through an inner loop as a maximum or minimum there
    (`best = max(best, a[i, j])` per row, written as a conditional expression, then
    `tot *= best`) stops its compiler ("unexpected cycle in lookup()"); in chunks it is a
    serial update. The arrays are allocated here; {} for a loop inside parallel code
    (written as a serial range)."""
    if in_parallel(op):
        return {}
    sums = {}
    for k, kind in enumerate(reduction_kinds(op)):
        if is_vector(op.results[k]):
            continue
        local, part = w.fresh(f"{carried[k]}_own"), w.fresh(f"{carried[k]}_parts")
        w.emit(depth, f"{part} = np.empty(_nthreads, {NP_TYPES[op.results[k].type.name]})")
        sums[k] = (local, part, kind)
    return sums


def chunk_start(kind: str, part: str, carried: str) -> str:
    """Where a chunk's value of a reduction starts: the identity of a sum or product, the
    value before the loop for min and max (each chunk may start there: they are
    idempotent)."""
    return {"add": f"{part}.dtype.type(0)", "mul": f"{part}.dtype.type(1)"}.get(kind, carried)


def add_sums(w: Writer, carried: list[str], sums: dict[int, tuple[str, str, str]],
             depth: int) -> None:
    """Each chunked reduction combined with its chunks' values, in chunk order
    (chunk_sums)."""
    if not sums:
        return
    t = w.fresh("t")
    w.emit(depth, f"for {t} in range(_nthreads):")
    for k, (_, part, kind) in sums.items():
        var = carried[k]
        if kind in ("add", "mul"):
            w.emit(depth + 1, f"{var} {'+' if kind == 'add' else '*'}= {part}[{t}]")
        else:
            w.emit(depth + 1, f"{var} = {kind}({var}, {part}[{t}])")


def chunked_loop(w: Writer, copies: dict, lb: str, ub: str, step: str, iv: str,
                 depth: int, sums: dict[int, tuple[str, str, str]] | None = None,
                 carried: list[str] | None = None) -> int:
    """The loop header of the "private copies" form (and of chunked sums: chunk_sums): a
    prange over as many chunks of consecutive iterations as copies, each running its chunk
    in order, its own sums starting from zero; returns the depth of the body. Chunk c, not
    the thread that runs it, picks the copy: the sums are the same whichever thread runs
    which chunk (and on every threading layer)."""
    trips, chunk, number = w.fresh("trips"), w.fresh("chunk"), w.fresh(f"{iv}_number")
    w.emit(depth, f"{trips} = _trips({lb}, {ub}, {step})")
    w.emit(depth, f"for {chunk} in prange(_nthreads):")
    for k, (local, part, kind) in (sums or {}).items():
        w.emit(depth + 1, f"{local} = {chunk_start(kind, part, (carried or [])[k])}")
    w.emit(depth + 1, f"for {number} in range({', '.join(chunk_range(chunk, trips))}):")
    w.emit(depth + 2, f"{iv} = {lb} + {number} * {step}")
    copies[None] = chunk
    return depth + 2


def chunk_range(chunk: str, trips: str) -> tuple[str, str]:
    """The first and past-the-last iteration numbers of chunk `chunk` of `_nthreads`
    chunks of consecutive iterations out of `trips`: they depend on NUMBA_NUM_THREADS only,
    not on how many threads run nor which runs which chunk."""
    return f"{chunk} * {trips} // _nthreads", f"({chunk} + 1) * {trips} // _nthreads"


def bound_body(w: Writer, op: Op) -> None:
    """The lower bounds of the integers in a parallel loop's body, its variable bounded as a
    range()'s (lower_bounds bounds those of scf.for only; the outlined chunk is one): its
    indices proven non-negative are unsigned there, which LLVM needs to vectorize."""
    name, op.name = op.name, "scf.for"
    try:
        low = lower_bounds(w.fn)
    finally:
        op.name = name
    w.lower.update({v: b for v, b in low.items() if v not in w.lower})


def private_accumulate(w: Writer, op: Op, depth: int) -> None:
    """array[index] += value into the running chunk's copy (private_copies)."""
    home = next(h for h in reversed(w.homes) if "copies" in h)
    rows = home["copies"][op.operands[1]]
    index = ", ".join([home["copies"][None]] + [w.ref(v) for v in op.operands[2:]])
    w.emit(depth, f"{rows}[{index}] += {w.ref(op.operands[0])}")


def add_copies(w: Writer, copies: dict, depth: int) -> None:
    """Each array += its copies, in chunk order, in parallel over its first axis."""
    for arr, rows in copies.items():
        if arr is None:
            continue
        name = w.ref(arr)
        axes = [w.fresh("k") for _ in range(arr.type.ndim)]
        t = w.fresh("t")
        w.emit(depth, f"for {axes[0]} in prange({name}.shape[0]):")
        for k, axis in enumerate(axes[1:], 1):
            w.emit(depth + k, f"for {axis} in range({name}.shape[{k}]):")
        inner = depth + len(axes)
        index = ", ".join(axes)
        w.emit(inner, f"for {t} in range(_nthreads):")
        w.emit(inner + 1, f"{name}[{index}] += {rows}[{t}, {index}]")
        fence(w, depth)


def reduction_update(w: Writer, op: Op, depth: int) -> None:
    """s = s OP e, in the form numba's parfor pass recognizes as a reduction."""
    var, kind = w.reduction_updates[op]
    w.names[op.results[0]] = var
    acc = op.operands[0] if w.names.get(op.operands[0]) == var else op.operands[1]
    other = w.ref(op.operands[1] if acc is op.operands[0] else op.operands[0])
    if op.name == "arith.sub":
        w.emit(depth, f"{var} -= {other}")
    elif kind == "add":
        w.emit(depth, f"{var} += {other}")
    elif kind == "mul":
        w.emit(depth, f"{var} *= {other}")
    else:
        w.emit(depth, f"{var} = {kind}({var}, {other})")


@rule("par.join")
def par_join(w: Writer, op, depth):
    reserve_for_tasks(w, op, depth)
    buffers = []
    for r in op.results:
        if is_vector(r):   # tasks write their vectors' lanes straight into the results
            buffers.append(vector.stored(w, r))
            continue
        buf = w.fresh(f"{r.name or 'task'}_out")
        w.emit(depth, f"{buf} = np.empty(1, {NP_TYPES[r.type.name]})")
        buffers.append(buf)
    task = w.fresh("task")
    w.emit(depth, f"for {task} in prange({len(op.regions)}):")
    home = vector.enter_home(w, depth + 1)
    outside = hoisting.own_views(w, op.regions, depth + 1)
    start = 0
    for k, (region, n) in enumerate(zip(op.regions, join_arities(op), strict=True)):
        w.emit(depth + 1, f"{'if' if k == 0 else 'elif'} {task} == {k}:")
        mark = len(w.lines)
        w.block(without_terminator(region), depth + 2)
        for buf, v in zip(buffers[start:start + n], region.ops[-1].operands,
                          strict=True):
            if buf in w.vector_names:
                vector.assign_lanes(w, depth + 2, [(buf, w.ref(v))])
            else:
                w.emit(depth + 2, f"{buf}[0] = {w.ref(v)}")
        if len(w.lines) == mark:
            w.emit(depth + 2, "pass")
        start += n
    hoisting.restore(w, outside)
    vector.leave_home(w, home)
    fence(w, depth)
    for r, buf in zip(op.results, buffers, strict=True):
        if not is_vector(r):
            w.emit(depth, f"{w.name(r)} = {buf}[0]")
