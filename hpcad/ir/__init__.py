"""hpcad's typed IR: types, values and ops with regions, dialect registry, printer, parser,
verifier."""
from .core import Block, Builder, Function, Module, Op, Value, walk
from .parser import parse_function, parse_module
from .printer import print_function, print_module
from .types import ArrayType, ScalarType, f32, f64, i1, i32, i64, parse_type
from .verifier import verify_function, verify_module

__all__ = ["Block", "Builder", "Function", "Module", "Op", "Value", "walk", "print_function",
           "print_module", "parse_function", "parse_module", "ArrayType", "ScalarType", "f32",
           "f64", "i1", "i32", "i64", "parse_type", "verify_function", "verify_module"]
