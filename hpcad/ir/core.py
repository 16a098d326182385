"""The IR's data structures: SSA values, ops with nested regions, blocks, functions, modules.

A region is a single block with arguments (structured control flow only: loops and branches
are ops with regions, never jumps). `Builder` appends ops at an insertion point."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .types import Type


class Value:
    """An SSA value: the result of an op or an argument of a block."""
    __slots__ = ("type", "name", "owner")

    def __init__(self, type: Type, name: str | None = None, owner: Any = None):
        self.type = type
        self.name = name
        self.owner = owner  # Op (result) or Block (argument)

    def __repr__(self) -> str:
        return f"%{self.name or '?'}:{self.type}"


Loc = tuple[str, int]  # (file, line)


class Block:
    """A straight-line list of ops with block arguments; the body of a region."""
    __slots__ = ("args", "ops", "parent")

    def __init__(self, args: list[Value] | None = None):
        self.args: list[Value] = []
        self.ops: list[Op] = []
        self.parent: Op | None = None
        for a in args or []:
            self.add_arg(a)

    def add_arg(self, v: Value) -> Value:
        v.owner = self
        self.args.append(v)
        return v

    @property
    def terminator(self) -> Op | None:
        return self.ops[-1] if self.ops else None


class Op:
    """An operation: name `dialect.op`, operands, results, attributes, regions, location."""
    __slots__ = ("name", "operands", "results", "attrs", "regions", "loc", "parent")

    def __init__(self, name: str, operands: Iterable[Value] = (),
                 result_types: Sequence[Type] = (), attrs: Mapping[str, Any] | None = None,
                 regions: Iterable[Block] = (), loc: Loc | None = None,
                 result_names: Sequence[str | None] | None = None):
        self.name = name
        self.operands: list[Value] = list(operands)
        names = list(result_names or [None] * len(result_types))
        self.results: list[Value] = [Value(t, n, self)
                                     for t, n in zip(result_types, names, strict=True)]
        self.attrs: dict[str, Any] = dict(attrs or {})
        self.regions: list[Block] = []
        self.loc = loc
        self.parent: Block | None = None
        for r in regions:
            self.add_region(r)

    def add_region(self, block: Block) -> Block:
        block.parent = self
        self.regions.append(block)
        return block

    @property
    def result(self) -> Value:
        assert len(self.results) == 1, self.name
        return self.results[0]

    @property
    def dialect(self) -> str:
        return self.name.split(".", 1)[0]

    def __repr__(self) -> str:
        return f"<Op {self.name}>"


@dataclass
class Function:
    name: str
    body: Block
    result_types: list[Type]
    arg_names: list[str] = field(default_factory=list)  # Python names, for messages
    loc: Loc | None = None
    plan: list[Any] = field(default_factory=list)  # reverse mode: what is saved or recomputed
    run_args: Any = None   # checkpointed reverse mode: its run-time arguments (checkpoint/plan.py)
    # array arguments whose shape is another argument's: a derivative's shadow -> its primal
    # (every caller checks it: api.py `_check_shadow`, frontend/nested.py); analyses that
    # read it (passes/index_ranges.py) only miss facts where a rewrite drops it
    alike: dict[Value, Value] = field(default_factory=dict)

    @property
    def args(self) -> list[Value]:
        return self.body.args


@dataclass
class Module:
    functions: dict[str, Function] = field(default_factory=dict)
    entry: str | None = None
    # callee name -> its custom rules (hpcad/custom.py)
    rules: dict[str, Any] = field(default_factory=dict)
    # kernels whose derivatives this module inlines (frontend/nested.py): it is stale when
    # their rules change (Kernel.forget)
    derived: list[Any] = field(default_factory=list)

    def add(self, fn: Function) -> Function:
        self.functions[fn.name] = fn
        if self.entry is None:
            self.entry = fn.name
        return fn

    @property
    def main(self) -> Function:
        assert self.entry is not None, "a module's entry is set by its first add()"
        return self.functions[self.entry]


def walk(block: Block) -> Iterator[Op]:
    """All ops in a block and its nested regions, pre-order."""
    for op in block.ops:
        yield op
        for r in op.regions:
            yield from walk(r)


def uses(block: Block) -> dict[Value, int]:
    """Number of uses of each value inside the block (nested regions included)."""
    count: dict[Value, int] = {}
    for op in walk(block):
        for v in op.operands:
            count[v] = count.get(v, 0) + 1
    return count


def replace_uses(block: Block, replace: dict[Value, Value]) -> None:
    """Make the ops of block (nested regions included) use replace[v] wherever they use v."""
    if not replace:
        return
    for op in walk(block):
        op.operands = [replace.get(v, v) for v in op.operands]


def defining_block(v: Value) -> Block | None:
    owner = v.owner
    if isinstance(owner, Block):
        return owner
    if isinstance(owner, Op):
        return owner.parent
    return None


class Builder:
    """Appends ops to a block; `at(block)` moves the insertion point."""

    def __init__(self, block: Block | None = None, loc: Loc | None = None):
        self.block = block
        self.loc = loc
        self.index: int | None = None  # insert before this position; None = append

    def insert(self, op: Op) -> Op:
        assert self.block is not None, "Builder.insert before at(block)"
        op.parent = self.block
        if op.loc is None:
            op.loc = self.loc
        if self.index is None:
            self.block.ops.append(op)
        else:
            self.block.ops.insert(self.index, op)
            self.index += 1
        return op

    def op(self, name: str, operands: Iterable[Value] = (), result_types: Sequence[Type] = (),
           attrs: Mapping[str, Any] | None = None, regions: Iterable[Block] = (),
           name_hint: str | None = None) -> Op:
        names = [name_hint] * len(result_types) if name_hint else None
        return self.insert(Op(name, operands, result_types, attrs, regions, self.loc, names))

    def op1(self, name: str, operands: Iterable[Value], result_type: Type,
            attrs: Mapping[str, Any] | None = None, name_hint: str | None = None) -> Value:
        return self.op(name, operands, [result_type], attrs, name_hint=name_hint).result
