"""Replication types: for each value and buffer of a function, whether it is the same on
every rank of a communicator (replicated), each rank's share of a sum over the ranks
(partial), or neither (per-rank). Input: a function's IR and the arguments the user declares
replicated (`params=`); output: a `ReplicationTypes`. A returned replicated value is one
global output (ad/reverse.py seeds it once in all, api.py's forward Jacobian does not sum it
over ranks); any other returned value is each rank's part of a sum. An adjoint's kind is the
dual of its value's (`Replication.adjoint`, as JAX's sharding AD): a replicated value's
adjoint is partial until a reduction sums it (the adjoint of the collective that replicated
it, or params='s one deferred allreduce: ad/params.py).

Replicated are: constants; arguments declared replicated; the values of integer and
boolean arguments and the shapes of array arguments that the call found the same on every
rank (`uniform`: api.py); what an MPI call declares it
makes the same everywhere (ir/dialects.py MPI_REPLICATES: `mpi.size` and a scalar
allreduce's result, the receive buffers of Allreduce, Allgather, Bcast and Allgatherv, the
latter where what its blocks leave alone was replicated too and its counts and
displacements are replicated); values loaded,
at a replicated index, from an array whose contents are replicated at that point (after
such a collective receive into it, or while it holds zeros), or, at constant indices inside
its bounds, from a slice such a receive filled (`comm.Bcast(theta[0:2], root=0)`, then
`theta[0]`; until anything else writes the array); and arithmetic on replicated values.
Flow-sensitively, an array's contents stop being replicated when anything else writes it,
or when it is written under control flow that differs between ranks (a branch on
a per-rank condition, a loop with per-rank bounds). A collective's receive buffer has the
same size on every rank (MPI's matching counts), so its shape is replicated too. Partial
is what a rank contributes to a sum that a call declares (ir/dialects.py MPI_SUMS, when its
op is sum and the contribution is not replicated). Anything else is per-rank."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import partial

from ..errors import DifferentiationError, where
from ..ir.clone import clone_block
from ..ir.core import Block, Builder, Function, Op, Value, walk
from ..ir.dialects import MPI_OPERANDS, MPI_REPLICATES, MPI_SUMS, VIEWS
from ..ir.effects import writes
from ..ir.types import ArrayType, OpaqueType, ScalarType, i1
from .aliases import variable_classes

REPLICATED_ANYWHERE = "constant"   # the same on every rank of every communicator


class Kind(Enum):
    REPLICATED = "replicated"
    PARTIAL = "partial"
    PER_RANK = "per-rank"


@dataclass(frozen=True)
class Replication:
    """A value's (or a buffer's contents') replication type over communicator `comm`
    (None: over every communicator, for constants; for per-rank values)."""
    kind: Kind
    comm: Value | None = None

    @property
    def one_global_output(self) -> bool:
        """Returned, it is one output for all ranks (seeded once in all), not a rank's part
        of a sum (a constant has no derivative: it counts as a part)."""
        return self.kind is Kind.REPLICATED and self.comm is not None

    def adjoint(self) -> Replication:
        """The kind of this value's adjoint: the cotangent of a replicated value is each
        rank's share of a sum (partial), a share's is replicated, a per-rank value's is
        per-rank."""
        dual = {Kind.REPLICATED: Kind.PARTIAL, Kind.PARTIAL: Kind.REPLICATED}
        return Replication(dual.get(self.kind, Kind.PER_RANK), self.comm)

    def describe(self, name_of=lambda v: v.name or "comm") -> str:
        if self.kind is Kind.PER_RANK:
            return "per-rank"
        over = "every communicator" if self.comm is None else name_of(self.comm)
        return f"{self.kind.value} over {over}"


PER_RANK = Replication(Kind.PER_RANK)


@dataclass
class ReplicationTypes:
    """The replication types of fn's values and buffers."""
    fn: Function
    values: dict[Value, Replication]   # scalar values (an array value: its shape)
    buffers: dict[Op, dict[Value, Replication]]   # after op: the arrays it writes or sums
    arguments: list[Replication]   # on entry (an array: its contents)
    results: list[Replication]     # on return (an array: its contents)
    communicator: Value | None     # the kernel's: its first communicator argument, else world
    # per-rank returned scalars made, by arithmetic, of values each replicated over one of
    # several communicators not known to hold the same processes (result position -> the
    # communicators): how often such a value counts in the global loss is unknown
    mixed: dict[int, tuple[Value, ...]] = field(default_factory=dict)
    # loops (scf.for with bounds the same on every rank) that these types take to run at
    # least once: a result is replicated only after one of their iterations, so the
    # derivative asserts that they run (assert_loops_run)
    assumed: tuple[Op, ...] = ()
    # the `if`s whose condition is the same on every rank
    uniform_ifs: tuple[Op, ...] = ()
    # one of them where the branch that runs decides whether a result counts once or is
    # summed over the ranks (one derivative serves both: refuse_mixed refuses it)
    decided_by: Op | None = None

    def of(self, v: Value) -> Replication:
        return self.values.get(v, PER_RANK)


def meet(*kinds, world: Value | None = None):
    """Replicated over one communicator if each kind is (constants go with any). A value
    replicated over `world` (MPI.COMM_WORLD, numba-mpi's communicator) is the same on every
    process, so on the ranks of any other communicator too: with one, it goes with that."""
    comms = set(kinds) - {REPLICATED_ANYWHERE}
    if world is not None and len(comms - {world}) == 1:
        comms.discard(world)
    if None in comms or len(comms) > 1:
        return None
    return comms.pop() if comms else REPLICATED_ANYWHERE


def replication_types(fn: Function, params: Iterable[int] = (),
                      uniform: Iterable[int] = ()) -> ReplicationTypes:
    """The replication types of fn, whose arguments at positions `params` are the same on
    every rank of the kernel's communicator (where fn has none, of every communicator), and
    those at positions `uniform` have the same value (a scalar) or shape (an array, whose
    contents may differ) on every rank, or hold the kernel communicator's processes (a
    communicator) (api.py compares them at each call).

    A loop whose bounds are the same on every rank runs the same number of times on every
    rank, maybe none: what it leaves is, in general, what its iterations leave or what came
    in. Where that makes a result per-rank, but the result is replicated after any run of
    the loop (an argument overwritten by a collective in a time loop, `comm.Bcast(p)` in
    `for t in range(nsteps)`), the types take such loops to run at least once and list
    them in `assumed`: the derivative checks at run time that they do (assert_loops_run),
    so that a result the user sees the same on every rank counts once."""
    params, uniform = tuple(params), tuple(uniform)
    types = _replication_types(fn, params, uniform, assume=frozenset())
    if all(once for once in _counted(types)[0]):
        return types
    hopeful = _replication_types(fn, params, uniform, assume=None)
    if _counted(hopeful) == _counted(types):
        return _branches(fn, params, uniform, types, frozenset())
    needed = hopeful.assumed   # the fewest loops (one at a time) that count so
    for loop in hopeful.assumed:
        fewer = frozenset(needed) - {loop}
        if _counted(_replication_types(fn, params, uniform, fewer)) == _counted(hopeful):
            needed = tuple(lp for lp in needed if lp is not loop)
    return _branches(fn, params, uniform,
                     _replication_types(fn, params, uniform, assume=frozenset(needed)),
                     frozenset(needed))


def _counted(t: ReplicationTypes) -> tuple:
    """How the results count in the global loss."""
    return tuple(r.one_global_output for r in t.results), t.mixed


def _branches(fn: Function, params: tuple[int, ...], uniform: tuple[int, ...],
              types: ReplicationTypes, assume: frozenset[Op]) -> ReplicationTypes:
    """types, with `decided_by` the first `if` on a condition the same on every rank where
    taking one of its branches (every time it runs) counts a result otherwise than the types
    do, which join both branches: a collective under `if sync:` makes the result the same on
    every rank when sync is true, and the join takes it as each rank's part. One derivative
    serves both outcomes, so the call is refused rather than counted either way."""
    for op in types.uniform_ifs:
        for k in range(len(op.regions)):
            forced = _replication_types(fn, params, uniform, assume, force={op: k})
            if _counted(forced) != _counted(types):
                return replace(types, decided_by=op)
    return types


def _replication_types(fn: Function, params: tuple[int, ...], uniform: tuple[int, ...],
                       assume: frozenset[Op] | None,
                       force: dict[Op, int] | None = None) -> ReplicationTypes:
    """The types, taking the loops in `assume` (None: every loop of uniform bounds) to run
    at least once, and the `if`s in `force` (of conditions the same on every rank) to take
    the branch given."""
    walker = _Replicated(fn, params, uniform, assume, force)
    end = walker.block(fn.body, walker.entry_contents(), uniform=True)
    values = {v: _typed(k) for v, k in walker.kind.items() if k is not None}
    values.update((v, Replication(Kind.PARTIAL, c)) for v, c in walker.partial.items())
    buffers = {op: {a: _typed(k) for a, k in arrays.items()}
               for op, arrays in walker.buffers.items()}
    for op, (arr, comm) in walker.partial_buffers.items():
        buffers.setdefault(op, {})[arr] = Replication(Kind.PARTIAL, comm)
    ret = fn.body.ops[-1]
    results = [_returned(walker.contents_of(end, v) if isinstance(v.type, ArrayType)
                         else walker.kind.get(v), walker.partial.get(v))
               for v in ret.operands]
    arguments = [_typed(walker.contents_of(walker.entry_contents(), a)
                        if isinstance(a.type, ArrayType) else walker.kind.get(a))
                 for a in fn.args]
    mixed = {n: comms for n, v in enumerate(ret.operands)
             if results[n].kind is Kind.PER_RANK and isinstance(v.type, ScalarType)
             and v.type.is_float
             and len(comms := _mixed_comms(walker, v, set())) > 1}
    return ReplicationTypes(fn, values, buffers, arguments, results, walker.comm, mixed,
                            tuple(dict.fromkeys(walker.assumed)),
                            tuple(dict.fromkeys(walker.uniform_ifs)))


def assert_loops_run(fn: Function, types: ReplicationTypes) -> Function:
    """fn, or a copy of it whose loops in types.assumed first assert that they run at least
    once (a KernelAssertionError at the loop's line otherwise): the derivative that counts
    a result as one value for all ranks on that assumption is then never wrong."""
    if not types.assumed:
        return fn
    vmap: dict[Value, Value] = {}
    copy = Function(fn.name, clone_block(fn.body, vmap), list(fn.result_types),
                    list(fn.arg_names), fn.loc)
    copy.alike = {vmap.get(d, d): vmap.get(a, a) for d, a in fn.alike.items()}
    loops = set(types.assumed)
    pairs = list(zip(walk(fn.body), walk(copy.body), strict=True))
    for old, new in pairs:
        if old in loops:
            _assert_runs(new)
    return copy


def _assert_runs(loop: Op) -> None:
    assert loop.parent is not None
    lo, hi, step = loop.operands[:3]
    b = Builder(loop.parent, loop.loc)
    b.index = loop.parent.ops.index(loop)
    def cmp(x: Value, y: Value, pred: str) -> Value:
        return b.op1("arith.cmp", [x, y], i1, {"pred": pred})
    const = step.owner.attrs.get("value") if isinstance(step.owner, Op) and \
        step.owner.name == "arith.const" else None
    up, down = cmp(lo, hi, "lt"), cmp(lo, hi, "gt")
    if const is not None:
        runs = up if const > 0 else down
    else:
        zero = b.op1("arith.const", [], step.type, {"value": 0})
        runs = b.op1("arith.or", [
            b.op1("arith.and", [cmp(step, zero, "gt"), up], i1),
            b.op1("arith.and", [cmp(step, zero, "lt"), down], i1)], i1)
    b.op("rt.assert", [runs], [], {
        "what": "this loop runs no iteration in this call, but the derivative counts the "
                "kernel's result as one value for all ranks (counted once in the global "
                "loss) because this loop makes it the same on every rank (a collective in "
                "it); without an iteration it is each rank's own value. Differentiate "
                "with at least one iteration, or make the value the same on every rank "
                "before the loop too"})


def refuse_mixed(types: ReplicationTypes, positions: Iterable[int]) -> None:
    """A DifferentiationError where a result at `positions` is in `types.mixed`: the
    global loss would count it once per rank, where it may be one value per group of ranks
    of some communicator (a derivative would guess)."""
    ret = types.fn.body.ops[-1]
    if types.decided_by is not None:
        raise DifferentiationError(
            f"{where(types.decided_by.loc)}: whether the returned value is one value for all "
            f"ranks (counted once in the global loss) or each rank's part of a sum depends on "
            f"which branch of this `if` runs: its condition is the same on every rank, and "
            f"the branches leave the result replicated on one side (a collective there) and "
            f"per-rank on the other. One derivative serves both, and hpcad will not guess "
            f"how the result counts. Make the result the same kind on both branches (run the "
            f"collective on both, or after the `if`), or write one kernel per branch")
    for n in positions:
        comms = types.mixed.get(n)
        if comms:
            owner = ret.operands[n].owner
            loc = owner.loc if isinstance(owner, Op) else ret.loc
            names = " and ".join(f"'{c.name or 'comm'}'" for c in comms)
            raise DifferentiationError(
                f"{where(loc)}: the returned value adds up (or multiplies) values that are "
                f"each the same on every rank of a different communicator ({names}), which "
                f"hpcad cannot show to hold the same processes: it cannot tell how often the "
                f"value counts in the global loss (once per rank, or once per group of "
                f"ranks), and will not guess. Return one value reduced over one "
                f"communicator (e.g. {comms[-1].name or 'comm'}.allreduce(share) of each "
                f"rank's share), or a per-rank value the ranks' sum of which is the loss. (A "
                f"gradient call compares its communicator arguments with MPI.Comm.Compare; "
                f"`hpcad plan` and `show-ir` take them as different unless named in --alike)")


def _mixed_comms(walker: _Replicated, v: Value, seen: set) -> tuple[Value, ...]:
    """The communicators that the replicated values scalar arithmetic made v of are
    replicated over, where v is made only of such values (else ())."""
    kind = walker.kind.get(v)
    if kind is not None:
        return () if kind == REPLICATED_ANYWHERE else (kind,)
    owner = v.owner
    if not isinstance(owner, Op) or owner.dialect != "arith" or owner in seen \
            or not owner.operands:
        return ()
    seen.add(owner)
    comms: list[Value] = []
    for operand in owner.operands:
        if walker.kind.get(operand) == REPLICATED_ANYWHERE:
            continue
        got = _mixed_comms(walker, operand, seen)
        if not got:
            return ()
        comms += [c for c in got if c not in comms]
    return tuple(comms)


def comparable_arguments(fn: Function, params: Iterable[int] = ()) -> tuple[int, ...]:
    """Positions of fn's arguments other than `params` whose value (an integer or boolean)
    or shape (an array) a call can compare over the ranks, to pass them as `uniform` where
    they are equal: neither an integer nor a shape has a derivative, so they only steer
    which values are replicated."""
    skip = set(params)
    return tuple(n for n, a in enumerate(fn.args) if n not in skip and (
        isinstance(a.type, ArrayType) or isinstance(a.type, ScalarType) and not a.type.is_float))


def _started(op: Op) -> Op:
    """The op whose receive op completes: a wait's nonblocking call (its receive buffer is
    written at the wait), else op."""
    if op.name == "mpi.wait" and isinstance(op.operands[0].owner, Op):
        return op.operands[0].owner
    return op


def _is_comm(v: Value) -> bool:
    """v is a communicator (`!comm`, or `!cart<ndim>` for a Cartesian one)."""
    return isinstance(v.type, OpaqueType) and (v.type.name == "comm" or
                                               v.type.name.startswith("cart"))


def kernel_communicator(fn: Function) -> Value | None:
    """The communicator a kernel runs on (as api.py's): its first communicator argument,
    else MPI.COMM_WORLD where it calls numba-mpi (`mpi.world`), else none."""
    for a in fn.args:
        if _is_comm(a):
            return a
    return next((op.result for op in walk(fn.body) if op.name == "mpi.world"), None)


def _typed(k) -> Replication:
    if k is None:
        return PER_RANK
    return Replication(Kind.REPLICATED, None if k == REPLICATED_ANYWHERE else k)


def _returned(k, partial) -> Replication:
    """A returned value's type (a returned constant has no derivative: a rank's part)."""
    if partial is not None:
        return Replication(Kind.PARTIAL, partial)
    return PER_RANK if k == REPLICATED_ANYWHERE else _typed(k)


def collective_buffer(op: Op) -> Value | None:
    """The buffer op receives the same values into on every rank, if it is such a collective
    (or the wait completing one)."""
    op = _started(op)
    kind = op.name.split(".", 1)[1] if op.dialect == "mpi" else None
    role = MPI_REPLICATES.get(kind)
    if role is None or role == "result":
        return None
    return op.operands[MPI_OPERANDS[kind].index(role)]


def summand(op: Op) -> Value | None:
    """The operand op sums over the ranks (each rank's share), if it is a sum reduction."""
    kind = op.name.split(".", 1)[1] if op.dialect == "mpi" else None
    role = MPI_SUMS.get(kind)
    if role is None or op.attrs.get("op", "sum") != "sum":
        return None
    return op.operands[MPI_OPERANDS[kind].index(role)]


def _has_gaps(op: Op) -> bool:
    """Whether op's blocks (a v-form's displacements) may leave part of its buffer alone."""
    return any(name.endswith("displs") for name in MPI_OPERANDS[op.name.split(".", 1)[1]])


def _layout(op: Op) -> list[Value]:
    """A v-form's counts and displacements (each rank's own: the received layout is the same
    everywhere only where they are)."""
    names = MPI_OPERANDS[op.name.split(".", 1)[1]]
    return [v for name, v in zip(names, op.operands, strict=False)
            if name.endswith(("counts", "displs"))]


class _Replicated:
    """Abstract interpretation of the structured IR. `kind` maps each value to its lattice
    element; `contents` (per alias class of arrays, at the current point) likewise; every
    `mpi.world` stands for one communicator, the first."""

    def __init__(self, fn: Function, params: tuple[int, ...], uniform: tuple[int, ...] = (),
                 assume: frozenset[Op] | None = frozenset(),
                 force: dict[Op, int] | None = None):
        self.assume = assume   # loops of uniform bounds taken to run (None: all of them)
        self.assumed: list[Op] = []      # those whose exit that made better
        self.force = force or {}   # ifs of uniform conditions taken to run one branch
        self.uniform_ifs: list[Op] = []
        self.kind: dict[Value, object] = {}
        self.partial: dict[Value, object] = {}   # scalar shares of a sum -> communicator
        self.buffers: dict[Op, dict[Value, object]] = {}
        self.partial_buffers: dict[Op, tuple[Value, object]] = {}
        self.classes = variable_classes(fn)
        self.fn, self.params = fn, params
        members: dict = {}
        for op in walk(fn.body):
            for v in list(op.operands) + list(op.results):
                if isinstance(v.type, ArrayType):
                    members.setdefault(self.classes.find(v), set()).add(v)
        self.members = members
        self.comm = kernel_communicator(fn)
        self.world = next((op.result for op in walk(fn.body) if op.name == "mpi.world"), None)
        self.meet = partial(meet, world=self.world)
        # communicator arguments at `uniform` hold the kernel communicator's processes
        self.alike = {fn.args[k] for k in uniform if _is_comm(fn.args[k])}
        # collective receive buffers: the same size on every rank
        self.same_size = {b: self.comm_of(op) for op in walk(fn.body)
                          if (b := collective_buffer(op)) is not None}
        self.kind.update(self.same_size)
        declared = REPLICATED_ANYWHERE if self.comm is None else self.comm
        for k in params + uniform:   # (an array's kind is its shape's: contents apart)
            if not _is_comm(fn.args[k]):
                self.kind[fn.args[k]] = declared

    def comm_of(self, op: Op) -> Value:
        """op's communicator (each `mpi.world` is the first)."""
        comm = op.operands[-1]
        owner = comm.owner
        if comm in self.alike:
            return self.comm
        return self.world if isinstance(owner, Op) and owner.name == "mpi.world" else comm

    def entry_contents(self) -> dict:
        """Array contents on entry: a declared argument's are replicated (where its alias
        class holds it alone)."""
        contents: dict = {}
        for k in self.params:
            arr = self.fn.args[k]
            if isinstance(arr.type, ArrayType):
                root = self.classes.find(arr)
                if all(_base(m) is arr for m in self.members.get(root, {arr})):
                    contents[root] = self.kind[arr]
        return contents

    def contents_of(self, contents: dict, arr: Value):
        return contents.get(self.classes.find(arr))

    def of(self, v: Value):
        return self.kind.get(v)

    def block(self, block: Block, contents: dict, uniform: bool) -> dict:
        """Visit the ops of block; returns the array contents at its end."""
        for op in block.ops:
            contents = self.op(op, contents, uniform)
        return contents

    def op(self, op: Op, contents: dict, uniform: bool) -> dict:
        contents = self.transfer(op, contents, uniform)
        if not op.regions:
            self.note(op, contents)
        return contents

    def transfer(self, op: Op, contents: dict, uniform: bool) -> dict:
        handler = getattr(self, "op_" + op.name.replace(".", "_"), None)
        if handler is not None:
            return handler(op, contents, uniform)
        if op.dialect == "mpi" and MPI_REPLICATES.get(op.name[4:]) == "result":
            self.set_results(op, self.comm_of(op))
            return contents
        if op.dialect in ("arith", "math") and not op.regions:
            self.set_results(op, self.meet(*map(self.of, op.operands)))
        elif op.regions:
            contents = self.divergent_regions(op, contents)
            self.set_results(op, None)
        else:
            self.set_results(op, None)
        return self.written(op, contents, uniform)

    def note(self, op: Op, contents: dict) -> None:
        """Record what op leaves in the arrays it writes, and the share of a sum it
        contributes (the last visit of a loop body is the fixpoint's)."""
        written = {a: self.contents_of(contents, a) for a in writes(op)}
        if written:
            self.buffers[op] = written
        share = summand(op)
        if share is None or share in written:   # (in place: the buffer now holds the sum)
            return
        replicated = self.contents_of(contents, share) if isinstance(share.type, ArrayType) \
            else self.of(share)
        if replicated is not None:
            return
        if isinstance(share.type, ArrayType):
            self.partial_buffers[op] = (share, self.comm_of(op))
        else:
            self.partial[share] = self.comm_of(op)

    def set_results(self, op: Op, kind) -> None:
        for r in op.results:
            self.kind[r] = kind

    def written(self, op: Op, contents: dict, uniform: bool) -> dict:
        """Contents after op: a collective's receive buffer holds replicated values; any
        other write leaves its array per-rank."""
        buffer = collective_buffer(op)
        call = _started(op)
        out = dict(contents)
        for arr in writes(op):
            if arr is buffer and uniform:   # (a Bcast's root is the same on every rank)
                scalars = [self.of(v) for v in call.operands[:-1]
                           if not isinstance(v.type, ArrayType)]
                kind = self.meet(self.comm_of(call), *scalars)
                if _has_gaps(call):   # the elements no block covers keep what they held
                    kind = self.meet(kind, contents.get(self.classes.find(arr)),
                                *(contents.get(self.classes.find(v)) for v in _layout(call)))
                out = self.update(out, arr, kind)
            else:
                out = self.drop_views(out, arr)
                out[self.classes.find(arr)] = None
        return out

    def update(self, contents: dict, arr: Value, kind) -> dict:
        """arr now holds values of `kind`: all of its class when arr is the class's only
        array and whole, else the class keeps what it had where that was no better."""
        root = self.classes.find(arr)
        whole = _base(arr) is arr and \
            all(_base(m) is arr for m in self.members.get(root, {arr}))
        out = self.drop_views(contents, arr)
        out[root] = kind if whole else self.meet(contents.get(root), kind, self.of_view(arr))
        if not whole and out[root] is None and kind is not None:
            out[(VIEW, arr)] = kind   # the view's elements hold `kind` (loads: in_view)
        return out

    def drop_views(self, contents: dict, arr: Value) -> dict:
        """contents without the replicated views of arr's class (arr is written)."""
        root = self.classes.find(arr)
        return {key: k for key, k in contents.items()
                if not (isinstance(key, tuple) and self.classes.find(key[1]) is root)}

    def from_views(self, contents: dict, arr: Value, index: list[Value]):
        """The kind of arr[index] where the class's contents are per-rank but a view that a
        collective (or a fill, a copy) made replicated holds that element."""
        root = self.classes.find(arr)
        for key, k in contents.items():
            if isinstance(key, tuple) and self.classes.find(key[1]) is root \
                    and _in_view(key[1], arr, index, self.of_view(key[1]) is not None):
                got = self.meet(k, *map(self.of, index))
                if got is not None:
                    return got
        return None

    def of_view(self, arr: Value):
        """Whether a view selects the same elements on every rank (a whole array does)."""
        kinds = [REPLICATED_ANYWHERE]
        while isinstance(arr.owner, Op) and arr.owner.name in VIEWS:
            kinds += [self.of(v) for v in arr.owner.operands[1:]]
            arr = arr.owner.operands[0]
        return self.meet(*kinds)

    # -- values -------------------------------------------------------------------------
    def op_arith_const(self, op, contents, uniform):
        self.set_results(op, REPLICATED_ANYWHERE)
        return contents


    def op_mem_load(self, op, contents, uniform):
        arr = op.operands[0]
        kind = self.meet(contents.get(self.classes.find(arr)), self.of_view(arr),
                         *map(self.of, op.operands[1:]))
        if kind is None:
            kind = self.from_views(contents, arr, list(op.operands[1:]))
        self.set_results(op, kind)
        return contents

    def op_mem_shape(self, op, contents, uniform):
        self.set_results(op, self.of(op.operands[0]))
        return contents

    def op_mem_alloc(self, op, contents, uniform):
        arr = op.results[0]
        self.kind[arr] = self.same_size.get(arr, self.meet(*map(self.of, op.operands)))
        zeros = op.attrs.get("fill", "zeros") == "zeros"
        out = self.drop_views(contents, arr)
        out[self.classes.find(arr)] = None
        return self.update(out, arr, REPLICATED_ANYWHERE) if zeros and uniform else out

    def op_mem_view(self, op, contents, uniform):
        self.kind[op.results[0]] = self.same_size.get(op.results[0],
                                                      self.meet(*map(self.of, op.operands)))
        return contents

    op_mem_reshape = op_mem_view

    # -- writes -------------------------------------------------------------------------
    def op_mem_store(self, op, contents, uniform):
        value, arr, *index = op.operands
        if not uniform:
            return self.written(op, contents, uniform)
        out = self.drop_views(contents, arr)
        root = self.classes.find(arr)
        out[root] = self.meet(contents.get(root), self.of(value), *map(self.of, index),
                         self.of_view(arr))
        return out

    op_mem_accumulate = op_mem_store

    def op_mem_fill(self, op, contents, uniform):
        value, arr = op.operands
        if not uniform:
            return self.written(op, contents, uniform)
        return self.update(contents, arr, self.of(value))

    def op_mem_copy(self, op, contents, uniform):
        src, dst = op.operands
        if not uniform:
            return self.written(op, contents, uniform)
        return self.update(contents, dst, self.meet(contents.get(self.classes.find(src)),
                                               self.of_view(src)))

    def op_mem_add_into(self, op, contents, uniform):
        src, dst = op.operands
        if not uniform:
            return self.written(op, contents, uniform)
        root = self.classes.find(dst)
        out = self.drop_views(contents, dst)
        out[root] = self.meet(contents.get(root), contents.get(self.classes.find(src)),
                         self.of_view(src), self.of_view(dst))
        return out

    # -- control flow -------------------------------------------------------------------
    def op_scf_if(self, op, contents, uniform):
        inner = uniform and self.of(op.operands[0]) is not None
        regions = op.regions
        if inner:
            self.uniform_ifs.append(op)
            if op in self.force:
                regions = [op.regions[self.force[op]]]
        ends = [self.block(r, contents, inner) for r in regions]
        for k, res in enumerate(op.results):
            yields = [r.ops[-1].operands[k] for r in regions]
            self.kind[res] = self.meet(*map(self.of, yields)) if inner else None
        return _meet_contents(self.world, *ends)

    def op_scf_for(self, op, contents, uniform):
        inner = uniform and self.meet(*map(self.of, op.operands[:3])) is not None
        body = op.regions[0]
        self.kind[body.args[0]] = self.meet(*map(self.of, op.operands[:3])) if inner else None
        carried = [self.of(v) if inner else None for v in op.operands[3:]]
        entry = contents
        while True:   # to a fixpoint: each round can only lose replication
            for a, k in zip(body.args[1:], carried):
                self.kind[a] = k
            end = self.block(body, entry, inner)
            again = [self.meet(k, self.of(y)) for k, y in zip(carried, body.ops[-1].operands)]
            merged = _meet_contents(self.world, entry, end)
            if again == carried and merged == entry:
                break
            carried, entry = again, merged
        if inner and (self.assume is None or op in self.assume):   # run: its end
            ran = [self.of(y) for y in body.ops[-1].operands]
            if ran != carried or end != entry:
                self.assumed.append(op)
                carried, entry = ran, end
        for res, k in zip(op.results, carried):
            self.kind[res] = k
        return entry

    def op_scf_while(self, op, contents, uniform):
        before, after = op.regions
        for inner in (uniform, False):   # per-rank exit condition: per-rank everything
            carried = [self.of(v) if inner else None for v in op.operands]
            entry = contents
            while True:
                for a, k in zip(before.args, carried):
                    self.kind[a] = k
                mid = self.block(before, entry, inner)
                cond = before.ops[-1]
                for a, v in zip(after.args, cond.operands[1:]):
                    self.kind[a] = self.of(v) if inner else None
                end = self.block(after, mid, inner)
                again = [self.meet(k, self.of(y)) for k, y in zip(carried, after.ops[-1].operands)]
                merged = _meet_contents(self.world, entry, end)
                if again == carried and merged == entry:
                    break
                carried, entry = again, merged
            if not inner or self.of(cond.operands[0]) is not None:
                break
        for res, v in zip(op.results, cond.operands[1:]):
            self.kind[res] = self.of(v) if inner else None
        return mid

    def divergent_regions(self, op: Op, contents: dict) -> dict:
        """An op with regions run differently on each rank (parallel loops, calls): what
        they write is per-rank, and so are their results and block arguments."""
        for r in op.regions:
            for a in r.args:
                self.kind[a] = None
            contents = _meet_contents(self.world, contents, self.block(r, contents, False))
        return contents


VIEW = "view"   # contents key (VIEW, view): the kind of the view's elements
_INF = float("inf")


def _in_view(view: Value, arr: Value, index: list[Value], same_bounds: bool) -> bool:
    """Whether arr[index] is the same element of `view` on every rank: a load through the
    view itself (in bounds, or it fails), or a load of the array it slices (`theta[0:2]`,
    `theta[0, :]`) at constant indices inside the slice's bounds, which interval arithmetic
    bounds with every extent of arr above the load's index on its axis (else the load
    fails), where each slice starts at the same index on every rank (one constant, or
    `same_bounds`: the view's bounds are replicated)."""
    if arr is view:
        return True
    op = view.owner
    if not isinstance(op, Op) or op.name != "mem.view" or op.operands[0] is not arr:
        return False
    consts = [_const(v) for v in index]
    extents = {axis: (c + 1 if c is not None and c >= 0 else 0, _INF)
               for axis, c in enumerate(consts)}
    bounds = iter(op.operands[1:])
    for axis, dim in enumerate(op.attrs["dims"]):
        if dim == "i":
            at = next(bounds)
            if at is not index[axis] and (consts[axis] is None or _const(at) != consts[axis]):
                return False
        elif dim == "s":
            lo, hi = next(bounds), next(bounds)
            c, start = consts[axis], _interval(lo, arr, extents)
            if c is None or start[1] > c or _interval(hi, arr, extents)[0] <= c \
                    or start[0] != start[1] and not same_bounds:   # (c - lo: the same?)
                return False
        else:   # a strided slice: not followed
            return False
    return True


def _const(v: Value):
    op = v.owner
    if isinstance(op, Op) and op.name == "arith.const" and isinstance(op.attrs.get("value"), int):
        return op.attrs["value"]
    return None


def _interval(v: Value, arr: Value, extents: dict) -> tuple[float, float]:
    """Bounds of the integer v, made of constants, arr's extents (in `extents`), min, max,
    add and sub; anything else is unbounded."""
    op = v.owner
    if not isinstance(op, Op):
        return (-_INF, _INF)
    if op.name == "arith.const" and isinstance(op.attrs.get("value"), int):
        return (op.attrs["value"], op.attrs["value"])
    if op.name == "mem.shape" and op.operands[0] is arr:
        return extents.get(op.attrs.get("axis"), (0, _INF))
    if op.name in ("arith.min", "arith.max", "arith.add", "arith.sub") and len(op.operands) == 2:
        (a, b), (c, d) = (_interval(x, arr, extents) for x in op.operands)
        if op.name == "arith.min":
            return (min(a, c), min(b, d))
        if op.name == "arith.max":
            return (max(a, c), max(b, d))
        got = (a + c, b + d) if op.name == "arith.add" else (a - d, b - c)
        return (-_INF, _INF) if got[0] != got[0] or got[1] != got[1] else got   # (nan)
    return (-_INF, _INF)


def _base(arr: Value) -> Value:
    """The array a view (or reinterpretation) of arr is part of."""
    while isinstance(arr.owner, Op) and arr.owner.name in VIEWS:
        arr = arr.owner.operands[0]
    return arr


def _meet_contents(world: Value | None, *states: dict) -> dict:
    """The contents on joining paths (per-rank, absent, where any path has them per-rank)."""
    keys = set().union(*states)
    got = {k: meet(*(s.get(k) for s in states), world=world) for k in keys}
    return {k: v for k, v in got.items() if v is not None}

