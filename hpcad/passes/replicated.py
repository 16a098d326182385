"""Which values are replicated: the same on every rank of a communicator. Input: a function's
IR; output: per value, the communicator it is replicated over (REPLICATED_ANYWHERE for
constants), or none for a per-rank value. A returned replicated value is one global output
(ad/reverse.py seeds it once in all, api.py's forward Jacobian does not sum it over ranks).

Replicated are: constants; what an MPI call declares it makes the same everywhere
(ir/dialects.py MPI_REPLICATES: `mpi.size` and a scalar allreduce's result, the receive
buffers of Allreduce, Allgather, Bcast and Allgatherv, the latter where what its blocks leave
alone was replicated too); values loaded, at a replicated index, from an
array whose contents are replicated at that point (after such a collective receive into it,
or while it holds zeros); and
arithmetic on replicated values. Flow-sensitively, an array's contents stop being
replicated when anything else writes it, or when it is written under control flow that
differs between ranks (a branch on a per-rank condition, a loop with per-rank bounds). A
collective's receive buffer has the same size on every rank (MPI's matching counts), so its
shape is replicated too. Anything else, arguments included, is per-rank."""
from __future__ import annotations

from ..ir.core import Block, Function, Op, Value, walk
from ..ir.dialects import MPI_OPERANDS, MPI_REPLICATES
from ..ir.effects import writes
from ..ir.types import ArrayType
from .aliases import variable_classes

REPLICATED_ANYWHERE = "constant"   # the same on every rank of every communicator
_VIEWS = ("mem.view", "mem.reshape", "mem.bitcast", "vec.lane")


def meet(*kinds):
    """Replicated over one communicator if each kind is (constants go with any)."""
    comms = set(kinds) - {REPLICATED_ANYWHERE}
    if None in comms or len(comms) > 1:
        return None
    return comms.pop() if comms else REPLICATED_ANYWHERE


def replicated_values(fn: Function) -> dict[Value, object]:
    """{value: communicator value or REPLICATED_ANYWHERE} for every replicated scalar value
    of fn (array values: their shape is replicated); per-rank values are absent."""
    walker = _Replicated(fn)
    walker.block(fn.body, {}, uniform=True)
    return {v: k for v, k in walker.kind.items() if k is not None}


def replicated_results(fn: Function) -> list:
    """Per returned value, the communicator it is replicated over, else None (per-rank;
    a returned constant, which has no derivative, counts as per-rank)."""
    kind = replicated_values(fn)
    ret = fn.body.ops[-1]
    return [k if k != REPLICATED_ANYWHERE else None
            for k in (kind.get(v) for v in ret.operands)]


def _collective_buffer(op: Op) -> Value | None:
    """The buffer op receives the same values into on every rank, if it is such a collective."""
    kind = op.name.split(".", 1)[1] if op.dialect == "mpi" else None
    role = MPI_REPLICATES.get(kind)
    if role is None or role == "result":
        return None
    return op.operands[MPI_OPERANDS[kind].index(role)]


def _has_gaps(op: Op) -> bool:
    """Whether op's blocks (a v-form's displacements) may leave part of its buffer alone."""
    return any(name.endswith("displs") for name in MPI_OPERANDS[op.name.split(".", 1)[1]])


class _Replicated:
    """Abstract interpretation of the structured IR. `kind` maps each value to its lattice
    element; `contents` (per alias class of arrays, at the current point) likewise."""

    def __init__(self, fn: Function):
        self.kind: dict[Value, object] = {}
        self.classes = variable_classes(fn)
        members: dict = {}
        for op in walk(fn.body):
            for v in list(op.operands) + list(op.results):
                if isinstance(v.type, ArrayType):
                    members.setdefault(self.classes.find(v), set()).add(v)
        self.members = members
        # collective receive buffers: the same size on every rank
        self.same_size = {b: op.operands[-1] for op in walk(fn.body)
                          if (b := _collective_buffer(op)) is not None}
        self.kind.update(self.same_size)

    def of(self, v: Value):
        return self.kind.get(v)

    def block(self, block: Block, contents: dict, uniform: bool) -> dict:
        """Visit the ops of block; returns the array contents at its end."""
        for op in block.ops:
            contents = self.op(op, contents, uniform)
        return contents

    def op(self, op: Op, contents: dict, uniform: bool) -> dict:
        handler = getattr(self, "op_" + op.name.replace(".", "_"), None)
        if handler is not None:
            return handler(op, contents, uniform)
        if op.dialect == "mpi" and MPI_REPLICATES.get(op.name[4:]) == "result":
            self.set_results(op, op.operands[-1])
            return contents
        if op.dialect in ("arith", "math") and not op.regions:
            self.set_results(op, meet(*map(self.of, op.operands)))
        elif op.regions:
            contents = self.divergent_regions(op, contents)
            self.set_results(op, None)
        else:
            self.set_results(op, None)
        return self.written(op, contents, uniform)

    def set_results(self, op: Op, kind) -> None:
        for r in op.results:
            self.kind[r] = kind

    def written(self, op: Op, contents: dict, uniform: bool) -> dict:
        """Contents after op: a collective's receive buffer holds replicated values; any
        other write leaves its array per-rank."""
        buffer = _collective_buffer(op)
        out = dict(contents)
        for arr in writes(op):
            if arr is buffer and uniform:   # (a Bcast's root is the same on every rank)
                scalars = [self.of(v) for v in op.operands[:-1]
                           if not isinstance(v.type, ArrayType)]
                kind = meet(op.operands[-1], *scalars)
                if _has_gaps(op):   # the elements no block covers keep what they held
                    kind = meet(kind, contents.get(self.classes.find(arr)))
                out = self.update(out, arr, kind)
            else:
                out[self.classes.find(arr)] = None
        return out

    def update(self, contents: dict, arr: Value, kind) -> dict:
        """arr now holds values of `kind`: all of its class when arr is the class's only
        array and whole, else the class keeps what it had where that was no better."""
        root = self.classes.find(arr)
        whole = _base(arr) is arr and \
            all(_base(m) is arr for m in self.members.get(root, {arr}))
        out = dict(contents)
        out[root] = kind if whole else meet(contents.get(root), kind, self.of_view(arr))
        return out

    def of_view(self, arr: Value):
        """Whether a view selects the same elements on every rank (a whole array does)."""
        kinds = [REPLICATED_ANYWHERE]
        while isinstance(arr.owner, Op) and arr.owner.name in _VIEWS:
            kinds += [self.of(v) for v in arr.owner.operands[1:]]
            arr = arr.owner.operands[0]
        return meet(*kinds)

    # -- values -------------------------------------------------------------------------
    def op_arith_const(self, op, contents, uniform):
        self.set_results(op, REPLICATED_ANYWHERE)
        return contents


    def op_mem_load(self, op, contents, uniform):
        arr = op.operands[0]
        self.set_results(op, meet(contents.get(self.classes.find(arr)), self.of_view(arr),
                                  *map(self.of, op.operands[1:])))
        return contents

    def op_mem_shape(self, op, contents, uniform):
        self.set_results(op, self.of(op.operands[0]))
        return contents

    def op_mem_alloc(self, op, contents, uniform):
        arr = op.results[0]
        self.kind[arr] = self.same_size.get(arr, meet(*map(self.of, op.operands)))
        zeros = op.attrs.get("fill", "zeros") == "zeros"
        out = dict(contents)
        out[self.classes.find(arr)] = None
        return self.update(out, arr, REPLICATED_ANYWHERE) if zeros and uniform else out

    def op_mem_view(self, op, contents, uniform):
        self.kind[op.results[0]] = self.same_size.get(op.results[0],
                                                      meet(*map(self.of, op.operands)))
        return contents

    op_mem_reshape = op_mem_view

    # -- writes -------------------------------------------------------------------------
    def op_mem_store(self, op, contents, uniform):
        value, arr, *index = op.operands
        if not uniform:
            return self.written(op, contents, uniform)
        out = dict(contents)
        root = self.classes.find(arr)
        out[root] = meet(contents.get(root), self.of(value), *map(self.of, index),
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
        return self.update(contents, dst, meet(contents.get(self.classes.find(src)),
                                               self.of_view(src)))

    def op_mem_add_into(self, op, contents, uniform):
        src, dst = op.operands
        if not uniform:
            return self.written(op, contents, uniform)
        root = self.classes.find(dst)
        out = dict(contents)
        out[root] = meet(contents.get(root), contents.get(self.classes.find(src)),
                         self.of_view(src), self.of_view(dst))
        return out

    # -- control flow -------------------------------------------------------------------
    def op_scf_if(self, op, contents, uniform):
        inner = uniform and self.of(op.operands[0]) is not None
        ends = [self.block(r, contents, inner) for r in op.regions]
        for k, res in enumerate(op.results):
            yields = [r.ops[-1].operands[k] for r in op.regions]
            self.kind[res] = meet(*map(self.of, yields)) if inner else None
        return _meet_contents(*ends)

    def op_scf_for(self, op, contents, uniform):
        inner = uniform and meet(*map(self.of, op.operands[:3])) is not None
        body = op.regions[0]
        self.kind[body.args[0]] = meet(*map(self.of, op.operands[:3])) if inner else None
        carried = [self.of(v) if inner else None for v in op.operands[3:]]
        entry = contents
        while True:   # to a fixpoint: each round can only lose replication
            for a, k in zip(body.args[1:], carried):
                self.kind[a] = k
            end = self.block(body, entry, inner)
            again = [meet(k, self.of(y)) for k, y in zip(carried, body.ops[-1].operands)]
            merged = _meet_contents(entry, end)
            if again == carried and merged == entry:
                break
            carried, entry = again, merged
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
                again = [meet(k, self.of(y)) for k, y in zip(carried, after.ops[-1].operands)]
                merged = _meet_contents(entry, end)
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
            contents = _meet_contents(contents, self.block(r, contents, False))
        return contents


def _base(arr: Value) -> Value:
    """The array a view (or reinterpretation) of arr is part of."""
    while isinstance(arr.owner, Op) and arr.owner.name in _VIEWS:
        arr = arr.owner.operands[0]
    return arr


def _meet_contents(*states: dict) -> dict:
    """The contents on joining paths (per-rank, absent, where any path has them per-rank)."""
    keys = set().union(*states)
    got = {k: meet(*(s.get(k) for s in states)) for k in keys}
    return {k: v for k, v in got.items() if v is not None}
