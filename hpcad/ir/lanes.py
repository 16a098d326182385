"""Lanes of batched derivatives (width W > 1: values of type `f64xW`, arrays of them). A
lane op computes or stores vectors; its W lanes never interact. A loop whose body does
nothing but lane ops and scalar work that changes no state but the tape position (pure ops,
loads, tape pops and retreats; each lane starts from the same position) can run once per
lane, `for w: for i: ...`, in place of `for i: for w: ...`: a lane-outer loop. Each lane
then streams over its own contiguous row of an array of vectors laid out lanes first
(W, n), and carries its values in registers, as a width-1 loop does; the scalar work runs
W times. The numba backend writes such loops so
(backend/numba/vector.py) when every loop that streams over arrays of vectors is one;
the loop passes carry vectors across iterations only in loops that may be (passes/carry.py),
where elsewhere a carried vector costs a copy of W lanes per iteration."""
from __future__ import annotations

from .core import Block, Op, Value, walk
from .dialects import MEMORY_ACCESSES, access_index, int_const, is_pure
from .types import ArrayType, ScalarType, lanes

# scalar work per lane op in the lane-outer loops of a function above which they keep
# their lanes inner, where the scalar work runs once for all lanes: lane-outer loops stream
# each direction's memory once but repeat the scalar work per lane, which wins where that
# work is a small share (`python -m benchmarks --cases width` measures both sides)
_SCALAR_SHARE = 0.25


def is_vector(v: Value) -> bool:
    return isinstance(v.type, ScalarType) and v.type.width > 1


def is_lane_array(v: Value) -> bool:
    return isinstance(v.type, ArrayType) and lanes(v.type) > 1


def lane_op(op: Op) -> bool:
    """An op that computes vectors or stores them (no regions, constants or vec ops)."""
    if op.regions or op.name == "arith.const" or op.dialect in ("mpi", "vec"):
        return False
    if any(is_vector(r) for r in op.results):
        return True
    return op.name in ("mem.store", "mem.accumulate") and lanes(op.operands[1].type) > 1


def _scalar_work(op: Op) -> bool:
    """A scalar op a lane-outer loop repeats per lane at a real cost (float arithmetic,
    loads and tape reads; index arithmetic and comparisons are nearly free)."""
    return op.name in ("mem.load", "tape.pop") or (
        op.dialect in ("arith", "math") and any(isinstance(r.type, ScalarType)
                                                and r.type.is_float for r in op.results))


def lane_work(loop: Op) -> tuple[int, int] | None:
    """(lane ops, scalar work) of a loop that may run lane-outer, else None: it holds lane
    ops; everything else in it is nested for/if, pure scalar ops, scalar loads, tape pops
    and retreats (they move the tape position only: each lane starts from the same one)."""
    n_lane = n_scalar = 0
    for op in walk(loop.regions[0]):
        if op.name in ("scf.for", "scf.if", "scf.yield"):
            continue
        if op.dialect == "vec" or op.attrs.get("atomic"):
            return None
        if lane_op(op):
            n_lane += 1
            continue
        if any(is_vector(v) for v in op.operands + op.results):
            return None
        if not (is_pure(op) or op.name in ("mem.load", "tape.pop", "tape.retreat")):
            return None
        n_scalar += _scalar_work(op)
    return (n_lane, n_scalar) if n_lane else None


def lane_outer_loops(body: Block) -> set[Op]:
    """The loops of a function (its body) to run lane-outer: the outermost loops that may,
    if every access to an array of vectors inside a loop is in one of them (the arrays are
    then laid out lanes first, which suits them only) and their scalar work, repeated per
    lane, is small beside their lane work; else none. Functions with parallel loops or MPI
    keep their lanes inner."""
    if any(op.dialect in ("par", "mpi") for op in walk(body)):
        return set()
    loops: dict[Op, tuple[int, int]] = {}

    def visit(block: Block) -> None:
        for op in block.ops:
            work = lane_work(op) if op.name == "scf.for" else None
            if work is not None:
                loops[op] = work
                continue
            for region in op.regions:
                visit(region)
    visit(body)
    inside = {o for loop in loops for o in walk(loop.regions[0])}
    for op in walk(body):
        if op not in inside and any(is_lane_array(v) for v in op.operands) \
                and _streams(op):
            return set()
    if sum(s for _, s in loops.values()) > _SCALAR_SHARE * sum(n for n, _ in loops.values()):
        return set()
    return set(loops)


def _streams(op: Op) -> bool:
    """Whether op runs over the elements of an array: an index of it depends on a value
    that varies with the iterations of a loop around it (a load of one element per time
    step does not), or it touches a whole array inside a loop."""
    varying: set[Value] = set()    # induction variables and carried values of those loops
    in_loop = False
    block = op.parent
    while block is not None and block.parent is not None:
        if block.parent.name in ("scf.for", "scf.while"):
            varying.update(block.args)
            in_loop = True
        block = block.parent.parent
    if not in_loop:
        return False
    if op.name not in MEMORY_ACCESSES:
        return op.name != "mem.shape"
    return any(_depends(v, varying, 8) for v in access_index(op))


def _depends(v: Value, varying: set[Value], depth: int) -> bool:
    if v in varying:
        return True
    if not isinstance(v.owner, Op):
        return False       # a function argument
    if depth == 0:
        return True        # too far to tell: assume it does
    return any(_depends(x, varying, depth - 1) for x in v.owner.operands)


def blocked_lane_loops(body: Block) -> set[Op]:
    """The loops of a function (its body) whose lanes may run outside their iterations in
    blocks: `for i in block: (scalar work of i)`, then `for w: for i in block: (lane ops
    of i, lane w)`, block after block. Each lane then streams its own run of every array
    of vectors in the block, where `for i: for w:` touches W places of memory per
    iteration (one per lane); the scalar work runs once, and the scalar values the lane
    ops read are kept per iteration of the block.

    Legality, for a forward unit-step `scf.for` at any depth of a nest whose body has no
    regions (the innermost loop of a nest), with lane ops that read or write an array of
    vectors: every other op of the body neither reads nor makes a vector or an array of
    vectors (its terminator may carry vectors) and is pure, a scalar memory access or a
    run-time check. Then the scalar ops depend on no lane op and keep their order; a lane
    op reads scalar values only as the values of its own iteration (kept per iteration),
    and memory only in lane w of arrays of vectors, which no scalar op touches; lanes do
    not interact, and each lane runs its ops in their order, its carried vectors carried
    from block to block. Not in functions with parallel loops (the kept values would need
    one copy per thread), with lane views of arrays of vectors (`vec.lane`: a scalar array
    whose memory is a lane's), or whose loops run lane-outer (lane_outer_loops: the
    arrays of vectors are laid out lanes first there)."""
    if any(op.dialect == "par" or op.name == "vec.lane" for op in walk(body)) \
            or lane_outer_loops(body):
        return set()
    return {op for op in walk(body) if op.name == "scf.for" and _blockable(op)}


def _blockable(loop: Op) -> bool:
    if loop.attrs.get("reverse") or int_const(loop.operands[2]) != 1:
        return False
    body = loop.regions[0]
    streams = False
    for op in body.ops[:-1]:
        if op.regions or op.attrs.get("atomic") or op.dialect in ("vec", "tape"):
            return False
        if lane_op(op):
            streams = streams or op.name in MEMORY_ACCESSES
            continue
        if any(is_vector(v) or is_lane_array(v) for v in op.operands + op.results):
            return False
        if not (is_pure(op) or op.name in MEMORY_ACCESSES or op.name == "rt.assert"):
            return False
    return streams
