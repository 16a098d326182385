"""Activity analysis. A float value is *active* if it is varied (depends on an active input)
and useful (influences an active output); only active values get derivative code. Arrays are
tracked by alias class (SSA array values that may name the same buffer: loop-carried and
branch-merged arrays are unioned); a class needs a shadow if it is varied and useful, or if
it holds a shadowed argument. The MPI calls whose messages may match one another's (one
kind of collective; all point-to-point calls) carry derivatives together: ranks that reach
different ones of them through branches still post the same derivative messages.

It also refuses derivatives that would flow through a float's bits: integers read from float
memory through a bit cast (`a.view(np.int32)`), combined (shifts, masks) and turned back into
floats have no derivative; such code needs a custom rule (ad/custom.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DifferentiationError, where
from ..ir.activity import ACTIVE, CONST, DUP, SHADOW
from ..ir.core import Function, Op, Value, walk
from ..ir.dialects import MPI_MATCHES, MPI_OPERANDS
from ..ir.effects import writes
from ..ir.types import ArrayType, ScalarType
from .aliases import UnionFind, variable_classes


def _floatish(v: Value) -> bool:
    t = v.type
    return isinstance(t, ScalarType) and t.is_float


def _float_array(v: Value) -> bool:
    """A returned float array: its cotangent seeds its shadow (ad/reverse.py)."""
    return isinstance(v.type, ArrayType) and v.type.dtype.is_float


@dataclass
class Activity:
    fn: Function
    varied: set = field(default_factory=set)
    useful: set = field(default_factory=set)
    classes: UnionFind = field(default_factory=UnionFind)
    shadowed_classes: set = field(default_factory=set)

    def active(self, v: Value) -> bool:
        return _floatish(v) and self.key(v) in self.varied and self.key(v) in self.useful

    def key(self, v: Value):
        return self.classes.find(v)

    def shadowed(self, arr: Value) -> bool:
        return self.classes.find(arr) in self.shadowed_classes


def analyze(fn: Function, arg_activity: list[str], ret_active: bool) -> Activity:
    act = Activity(fn, classes=variable_classes(fn))
    ops = list(walk(fn.body))
    key = act.classes.find
    constant = {key(a) for a, kind in zip(fn.args, arg_activity) if kind == CONST}
    groups = _matching_groups(ops, lambda v: key(v) in constant)

    for a, kind in zip(fn.args, arg_activity):
        if kind == ACTIVE or (kind == DUP and isinstance(a.type, ArrayType)):
            act.varied.add(key(a))
    _fixpoint(ops, act, key, forward=True, groups=groups)

    if ret_active:
        ret = fn.body.ops[-1]
        act.useful.update(key(v) for v in ret.operands if _floatish(v) or _float_array(v))
    for a, kind in zip(fn.args, arg_activity):
        if kind == DUP and isinstance(a.type, ArrayType):
            act.useful.add(key(a))
    _fixpoint(ops, act, key, forward=False, groups=groups)

    for a, kind in zip(fn.args, arg_activity):
        if isinstance(a.type, ArrayType) and kind in (DUP, SHADOW):
            act.shadowed_classes.add(key(a))
    for op in ops:
        for r in op.results:
            if isinstance(r.type, ArrayType) and key(r) in act.varied and key(r) in act.useful \
                    and r.type.dtype.is_float:
                act.shadowed_classes.add(key(r))
    _shadow_groups(fn, arg_activity, groups, act)
    for a, kind, name in zip(fn.args, arg_activity, fn.arg_names or [a.name for a in fn.args]):
        k = key(a)
        if isinstance(a.type, ArrayType) and kind == CONST and k in act.varied \
                and k in act.useful and a.type.dtype.is_float:
            raise DifferentiationError(
                f"argument '{name}' is marked constant, but the kernel stores values that "
                f"depend on active inputs into it and reads them back; mark it Duplicated "
                f"(give it a shadow array)")
    _check_bit_flow(ops, act)
    return act


_BIT_OPS = ("arith.shl", "arith.shr", "arith.bitand", "arith.bitor", "arith.bitxor")


def _is_int(v: Value) -> bool:
    return isinstance(v.type, (ScalarType, ArrayType)) and \
        (v.type.dtype if isinstance(v.type, ArrayType) else v.type).is_int


def _check_bit_flow(ops: list[Op], act: Activity) -> None:
    """Integers carrying the bits of varied floats (read through a bit cast of float memory,
    then through integer ops and integer arrays) must not become floats that matter to the
    result again: a DifferentiationError at the op where they would."""
    key = act.key
    origin: dict = {}   # tainted integer (class) -> location of the bit cast it came from
    changed = True
    while changed:
        changed = False
        for op in ops:
            src = None
            if op.name == "mem.load" and _is_int(op.results[0]):
                arr = op.operands[0]
                if key(arr) in act.varied:
                    src = arr.owner.loc if isinstance(arr.owner, Op) else op.loc
                else:
                    src = origin.get(key(arr))
            elif op.name == "mem.store" and _is_int(op.operands[0]):
                src = origin.get(key(op.operands[0]))
                if src is not None and key(op.operands[1]) not in origin:
                    origin[key(op.operands[1])] = src
                    changed = True
                continue
            elif op.dialect == "arith" and op.results and _is_int(op.results[0]):
                src = next((origin[key(v)] for v in op.operands if key(v) in origin), None)
            if src is not None and op.results and key(op.results[0]) not in origin:
                origin[key(op.results[0])] = src
                changed = True
    for op in ops:
        if op.name == "arith.cast" and key(op.operands[0]) in origin \
                and key(op.results[0]) in act.useful and not _is_int(op.results[0]):
            _bit_flow_error(op, origin[key(op.operands[0])], ops, act, origin)
        if op.name in ("mem.store", "mem.accumulate") and _is_int(op.operands[0]):
            arr = op.operands[1]
            float_memory = key(arr) in act.useful and (
                key(arr) in act.varied or key(op.operands[0]) in origin)
            if float_memory or act.shadowed(arr):
                _bit_flow_error(op, origin.get(key(op.operands[0]), op.loc), ops, act, origin)


def _bit_flow_error(op: Op, source, ops, act, origin) -> None:
    lines = sorted({o.loc[1] for o in ops if o.name in _BIT_OPS and o.loc
                    and any(act.key(v) in origin for v in o.operands)})
    via = f", integer bit operations at line{'s' if len(lines) > 1 else ''} " \
          f"{', '.join(map(str, lines))}" if lines else ""
    raise DifferentiationError(
        f"{where(op.loc)}: a derivative would flow through the bits of a float (bit cast at "
        f"{where(source)}{via}, back to float here); integer bit operations have no "
        f"derivative. Put this computation in its own kernel and give it a rule with "
        f"@ad.custom_vjp (reverse mode) or @ad.custom_jvp (forward mode)")


# operands of calls whose derivative rules (ad/rules/mpi.py) send zeros in place of a
# constant argument's derivative, posting their messages all the same
_ZEROS_FOR_CONSTANT = {("mpi.sendrecv", "sendbuf")}


def _matching_groups(ops: list[Op], constant) -> list[list[tuple[Value, Op, str]]]:
    """The derivative-carrying operands of the MPI calls whose messages may match one
    another's (ir/dialects.py MPI_MATCHES), one group per kind of call: float buffers, and a
    scalar allreduce's float result. Ranks that take different branches reach different calls
    of a kind (`Reduce(MPI.IN_PLACE, r)` on the root, `Reduce(x, None)` elsewhere): each
    rank's rule posts a derivative message where its call's operands carry derivatives, so
    all of a group's operands carry them or none does (extra messages of zeros, never one
    that only some ranks post). A constant argument whose call's rule sends zeros in its
    place (_ZEROS_FOR_CONSTANT) decides nothing: it is left out."""
    groups: dict[str, list[tuple[Value, Op, str]]] = {}
    for op in ops:
        if op.dialect != "mpi":
            continue
        kind = op.name[4:]
        names = MPI_OPERANDS.get(kind, ())
        members = [(v, op, n) for n, v in zip(names, op.operands)
                   if n.endswith("buf") and _carries(v)
                   and not (constant(v) and (op.name, n) in _ZEROS_FOR_CONSTANT)]
        if "sendobj" in names:   # a lower-case reduction: its result carries the derivative
            members += [(r, op, "result") for r in op.results if _carries(r)]
        groups.setdefault(MPI_MATCHES.get(kind, kind), []).extend(members)
    return [g for g in groups.values() if len(g) > 1]


def _spread(groups: list[list[tuple[Value, Op, str]]], marks: set, key) -> bool:
    """Mark every operand of a group where one is marked; whether any mark was added."""
    changed = False
    for group in groups:
        if any(key(v) in marks for v, _, _ in group):
            new = {key(v) for v, _, _ in group} - marks
            marks |= new
            changed = changed or bool(new)
    return changed


def _shadow_groups(fn: Function, arg_activity: list[str], groups, act: Activity) -> None:
    """A group with a shadowed buffer shadows all of its buffers; a constant argument's
    cannot be: an error that says which calls and what to do."""
    consts = {act.key(a): (a, n) for a, kind, n in zip(
        fn.args, arg_activity, fn.arg_names or [a.name for a in fn.args]) if kind == CONST}
    for group in groups:
        arrays = [m for m in group if isinstance(m[0].type, ArrayType)]
        shadowed = next((op for v, op, _ in arrays if act.shadowed(v)), None)
        if shadowed is None:
            continue
        for v, op, _ in arrays:
            if act.key(v) in consts:
                raise DifferentiationError(
                    f"{where(op.loc)}: argument '{consts[act.key(v)][1]}' is a buffer of "
                    f"this {op.name[4:]}, and the buffer of the {shadowed.name[4:]} at "
                    f"{where(shadowed.loc)} carries derivatives; ranks that reach different "
                    f"ones of these calls must post the same derivative messages, so every "
                    f"buffer of them needs a shadow: mark '{consts[act.key(v)][1]}' "
                    f"Duplicated")
            act.shadowed_classes.add(act.key(v))


def _fixpoint(ops: list[Op], act: Activity, key, forward: bool, groups=()) -> None:
    marks = act.varied if forward else act.useful
    changed = True
    while changed:
        changed = _spread(groups, marks, key)
        for op in ops:
            for src, dst in _edges(op):
                if forward:
                    if key(src) in marks and key(dst) not in marks and _carries(dst):
                        marks.add(key(dst))
                        changed = True
                elif key(dst) in marks and key(src) not in marks and _carries(src):
                    marks.add(key(src))
                    changed = True


def _carries(v: Value) -> bool:
    t = v.type
    if isinstance(t, ArrayType):
        return t.dtype.is_float
    return isinstance(t, ScalarType) and t.is_float


def _edges(op: Op):
    """Derivative-carrying dataflow edges (src -> dst) of one op. Loop-carried and branch
    results flow through the alias classes, so control ops contribute no edges."""
    name = op.name
    if name in ("mem.store", "mem.accumulate", "mem.fill"):
        yield op.operands[0], op.operands[1]
    elif name == "mem.load":
        yield op.operands[0], op.results[0]
    elif name == "arith.select":
        yield op.operands[1], op.results[0]
        yield op.operands[2], op.results[0]
    elif op.dialect == "mpi" and {"sendbuf", "recvbuf"} <= set(MPI_OPERANDS.get(name[4:], ())):
        # every rank runs this same program: what a rank sends, another receives (also a
        # nonblocking collective's, received at its wait)
        names = MPI_OPERANDS[name[4:]]
        yield op.operands[names.index("sendbuf")], op.operands[names.index("recvbuf")]
    elif op.dialect == "mpi" and "sendobj" in MPI_OPERANDS.get(name[4:], ()):
        yield op.operands[MPI_OPERANDS[name[4:]].index("sendobj")], op.results[0]
    elif name in ("mem.add_into", "mem.copy"):
        yield op.operands[0], op.operands[1]
    elif op.dialect == "linalg":   # products: both operands reach the result
        yield op.operands[0], op.operands[2]
        yield op.operands[1], op.operands[2]
    elif name == "func.call":
        # a kernel with custom rules (ad/custom.py): any input may reach any result and any
        # array it writes
        outs = list(op.results) + writes(op)
        for v in op.operands:
            for out in outs:
                yield v, out
    elif op.dialect in ("arith", "math") and op.results:
        for v in op.operands:
            yield v, op.results[0]
