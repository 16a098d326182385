"""Textual IR printer. One generic form for every op, which `parser.py` reads back:

    %r = dialect.op %a, %b {attr = 1} : f64 { ^(%i: i64): ... }

Names come from the kernel's variables; clashes get `.1`, `.2` suffixes (never valid in
Python, so they cannot collide with a kernel name). An analysis may add `// comments` (the
parser skips them): `notes(item, name)` gives the text for the function (a line before
it) or for an op (the end of its line), `name` printing a value."""
from __future__ import annotations

import math
from collections.abc import Callable

from .core import Block, Function, Module, Op, Value


def format_attr(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot print attribute {v!r}")


class _Namer:
    def __init__(self) -> None:
        self.names: dict[Value, str] = {}
        self.taken: set[str] = set()
        self.counter = 0

    def __call__(self, v: Value) -> str:
        name = self.names.get(v)
        if name is None:
            if v.name:
                base, name, k = v.name, v.name, 0
                while name in self.taken:
                    k += 1
                    name = f"{base}.{k}"
            else:
                while str(self.counter) in self.taken:
                    self.counter += 1
                name = str(self.counter)
            self.taken.add(name)
            self.names[v] = name
        return "%" + name


Notes = Callable[[object, Callable[[Value], str]], "str | None"]


class Printer:
    def __init__(self, locs: bool = False, notes: Notes | None = None):
        self.locs = locs
        self.notes = notes
        self.name = _Namer()
        self.lines: list[str] = []

    def function(self, fn: Function) -> None:
        args = ", ".join(f"{self.name(a)}: {a.type}" for a in fn.args)
        rets = ", ".join(str(t) for t in fn.result_types)
        start = len(self.lines)
        self.lines.append(f"func @{fn.name}({args}) -> ({rets}) {{")
        self.block_ops(fn.body, 1)
        self.lines.append("}")
        header = self.notes(fn, self.name) if self.notes else None   # (names as in the body)
        if header:
            self.lines.insert(start, f"// {header}")

    def note(self, op: Op) -> str:
        text = self.notes(op, self.name) if self.notes else None
        return f"  // {text}" if text else ""

    def block_ops(self, block: Block, depth: int) -> None:
        for op in block.ops:
            self.op(op, depth)

    def op(self, op: Op, depth: int) -> None:
        pad = "  " * depth
        text = ""
        if op.results:
            text += ", ".join(self.name(r) for r in op.results) + " = "
        text += op.name
        if op.operands:
            text += " " + ", ".join(self.name(v) for v in op.operands)
        if op.attrs:
            text += " {" + ", ".join(f"{k} = {format_attr(v)}" for k, v in op.attrs.items()) + "}"
        if op.results:
            text += " : " + ", ".join(str(r.type) for r in op.results)
        if self.locs and op.loc:
            text += f' loc("{op.loc[0]}":{op.loc[1]})'
        if not op.regions:
            self.lines.append(pad + text + self.note(op))
            return
        for k, region in enumerate(op.regions):
            opener = pad + text + " {" if k == 0 else self.lines.pop() + " {"
            self.lines.append(opener)
            if region.args:
                args = ", ".join(f"{self.name(a)}: {a.type}" for a in region.args)
                self.lines.append(pad + f"^({args}):")
            self.block_ops(region, depth + 1)
            self.lines.append(pad + "}")


def print_function(fn: Function, locs: bool = False, notes: Notes | None = None) -> str:
    p = Printer(locs, notes)
    p.function(fn)
    return "\n".join(p.lines) + "\n"


def print_module(mod: Module, locs: bool = False) -> str:
    order = [mod.main.name] + [n for n in mod.functions if n != mod.entry]
    return "\n".join(print_function(mod.functions[n], locs) for n in order)
