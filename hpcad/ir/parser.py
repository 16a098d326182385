"""Textual IR parser: reads what `printer.py` writes, back into a `Module`.

Value names become the values' name hints, so print(parse(print(m))) == print(m)."""
from __future__ import annotations

import re
from typing import NoReturn

from ..errors import IRParseError
from .core import Block, Function, Loc, Module, Op, Value
from .types import Type, parse_type

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+|//[^\n]*)
  | (?P<value>%[\w.]+)
  | (?P<symbol>@[\w.]+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+)|-inf)
  | (?P<word>[A-Za-z_][\w.]*(?:\[[^\]]*\])?|![\w.]+)
  | (?P<arrow>->)
  | (?P<punct>[(){}\[\],:=^])
""", re.VERBOSE)


Token = tuple[str, str, int]   # (kind, text, line)
AttrValue = str | int | float | bool


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.lastgroup is None:
            raise IRParseError(f"line {line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind != "ws":
            tokens.append((kind, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    tokens.append(("eof", "", line))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.pos = 0
        self.scope: dict[str, Value] = {}

    # -- token helpers -------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token:
        return self.tokens[min(self.pos + k, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def error(self, msg: str) -> NoReturn:
        raise IRParseError(f"line {self.peek()[2]}: {msg} (at {self.peek()[1]!r})")

    def expect(self, text: str) -> Token:
        tok = self.next()
        if tok[1] != text:
            self.pos -= 1
            self.error(f"expected {text!r}")
        return tok

    def accept(self, text: str) -> bool:
        if self.peek()[1] == text:
            self.pos += 1
            return True
        return False

    # -- grammar -------------------------------------------------------------------------
    def module(self) -> Module:
        mod = Module()
        while self.peek()[0] != "eof":
            mod.add(self.function())
        return mod

    def function(self) -> Function:
        self.expect("func")
        kind, name, _ = self.next()
        if kind != "symbol":
            self.error("expected @name")
        self.scope = {}
        body = Block(self.arg_list())
        self.expect("->")
        self.expect("(")
        rets = []
        while not self.accept(")"):
            rets.append(self.type())
            self.accept(",")
        self.expect("{")
        self.ops_until_close(body)
        return Function(name[1:], body, rets, [a.name or "" for a in body.args])

    def arg_list(self) -> list[Value]:
        self.expect("(")
        args = []
        while not self.accept(")"):
            kind, name, _ = self.next()
            if kind != "value":
                self.error("expected %name")
            self.expect(":")
            v = Value(self.type(), name[1:])
            self.define(name, v)
            args.append(v)
            self.accept(",")
        return args

    def define(self, name: str, v: Value) -> None:
        if name in self.scope:
            self.error(f"{name} defined twice")
        self.scope[name] = v

    def type(self) -> Type:
        kind, text, _ = self.next()
        try:
            return parse_type(text)
        except ValueError as e:
            self.pos -= 1
            self.error(str(e))

    def ops_until_close(self, block: Block) -> None:
        while not self.accept("}"):
            op = self.op()
            op.parent = block
            block.ops.append(op)

    def op(self) -> Op:
        result_names = self.result_names()
        kind, name, line = self.next()
        if kind != "word" or "." not in name:
            self.pos -= 1
            self.error("expected an op name")
        operands = self.operands()
        attrs = self.attrs()
        types = self.result_types()
        if len(types) != len(result_names):
            self.error(f"{name}: {len(result_names)} results but {len(types)} types")
        loc = self.loc()
        op = Op(name, operands, types, attrs, loc=loc, result_names=[n[1:] for n in result_names])
        while self.accept("{"):
            op.add_region(self.region())
        for n, r in zip(result_names, op.results, strict=True):
            self.define(n, r)
        return op

    def result_names(self) -> list[str]:
        """`%a, %b =` before an op: its results' names (none when the op has no results)."""
        names: list[str] = []
        if self.peek()[0] != "value":
            return names
        while True:
            names.append(self.next()[1])
            if not self.accept(","):
                break
        self.expect("=")
        return names

    def operands(self) -> list[Value]:
        operands: list[Value] = []
        if self.peek()[0] != "value":
            return operands
        while True:
            vname = self.next()[1]
            if vname not in self.scope:
                self.pos -= 1
                self.error(f"use of undefined value {vname}")
            operands.append(self.scope[vname])
            if not self.accept(","):
                break
        return operands

    def attrs(self) -> dict[str, AttrValue]:
        attrs: dict[str, AttrValue] = {}
        if self.peek()[1] == "{" and self.peek(1)[0] == "word" and self.peek(2)[1] == "=":
            self.next()
            while not self.accept("}"):
                key = self.next()[1]
                self.expect("=")
                attrs[key] = self.attr_value()
                self.accept(",")
        return attrs

    def result_types(self) -> list[Type]:
        types: list[Type] = []
        if self.accept(":"):
            types.append(self.type())
            while self.accept(","):
                types.append(self.type())
        return types

    def loc(self) -> Loc | None:
        if self.peek()[1] != "loc":
            return None
        self.next()
        self.expect("(")
        file = self.string(self.next()[1])
        self.expect(":")
        loc = (file, int(self.next()[1]))
        self.expect(")")
        return loc

    def region(self) -> Block:
        block = Block()
        if self.accept("^"):
            for a in self.arg_list():
                block.add_arg(a)
            self.expect(":")
        self.ops_until_close(block)
        return block

    @staticmethod
    def string(text: str) -> str:
        return re.sub(r"\\(.)", r"\1", text[1:-1])

    def attr_value(self) -> AttrValue:
        kind, text, _ = self.next()
        if kind == "string":
            return self.string(text)
        if kind == "number":
            if text == "-inf":
                return float("-inf")
            return float(text) if any(c in text for c in ".eE") else int(text)
        if text in ("true", "false"):
            return text == "true"
        if text in ("inf", "nan"):
            return float(text)
        self.pos -= 1
        self.error("expected an attribute value")


def parse_module(text: str) -> Module:
    return _Parser(text).module()


def parse_function(text: str) -> Function:
    return parse_module(text).main
