"""Expression lowering: names, constants, arithmetic with NumPy/numba type promotion,
comparisons, short-circuit `and`/`or`, indexing, attributes and calls (intrinsics from
`intrinsics.py`, array allocation, other kernels). Mixed into `FunctionLowering`."""
from __future__ import annotations

import ast
import builtins
import inspect
import math

import numpy as np

from ..ir.core import Block, Value
from ..ir.types import ArrayType, ScalarType, SCALARS, f32, f64, i1, i64, promote, \
    scalar_from_dtype
from . import intrinsics as intr
from .markers import marker_of, mpi_framework_of, mpi_function
from .syntax import has_side_effect_free_shape

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div",
           ast.FloorDiv: "floordiv", ast.Mod: "mod", ast.Pow: "pow"}
_BITOPS = {ast.LShift: "shl", ast.RShift: "shr", ast.BitAnd: "bitand", ast.BitOr: "bitor",
           ast.BitXor: "bitxor"}
_CMPOPS = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt",
           ast.GtE: "ge"}


class Static:
    """A compile-time Python object met in kernel code (a module, a function, a kernel)."""

    def __init__(self, obj):
        self.obj = obj


class ExpressionLowering:
    # -- helpers -----------------------------------------------------------------------------
    def const(self, value, t: ScalarType) -> Value:
        if t.is_float:
            value = float(value)
        elif t.is_bool:
            value = bool(value)
        else:
            value = int(value)
        return self.builder.op1("arith.const", [], t, {"value": value})

    def coerce(self, v: Value, t) -> Value:
        if v.type == t:
            return v
        if isinstance(v.type, ScalarType) and isinstance(t, ScalarType):
            if t.is_bool:
                zero = self.const(0, v.type)
                return self.builder.op1("arith.cmp", [v, zero], i1, {"pred": "ne"})
            return self.builder.op1("arith.cast", [v], t)
        raise AssertionError(f"cannot coerce {v.type} to {t}")

    def coerce_index(self, v, node) -> Value:
        if not isinstance(v, Value) or not isinstance(v.type, ScalarType) or v.type.is_float:
            self.type_error(node, "indices and range() bounds must be integers, got "
                                  f"{getattr(v, 'type', type(v).__name__)}")
        return self.coerce(v, i64)

    def scalar(self, v, node) -> Value:
        if isinstance(v, Static) and isinstance(v.obj, (int, float, bool)):
            v = self.python_const(v.obj)
        if not isinstance(v, Value) or not isinstance(v.type, ScalarType):
            what = "an array" if isinstance(getattr(v, "type", None), ArrayType) else \
                type(getattr(v, "obj", v)).__name__
            self.unsupported(node, f"using {what} where a scalar is expected",
                             "whole-array expressions are not supported; write a loop")
        return v

    def python_const(self, obj) -> Value:
        if isinstance(obj, (bool, np.bool_)):
            return self.const(bool(obj), i1)
        if isinstance(obj, (int, np.integer)):
            return self.const(int(obj), i64)
        if isinstance(obj, np.float32):
            return self.const(float(obj), f32)
        return self.const(float(obj), f64)

    def condition(self, node) -> Value:
        return self.truth(self.expr(node), node)

    def truth(self, v, node) -> Value:
        v = self.scalar(v, node)
        return v if v.type == i1 else self.coerce(v, i1)

    def static_value(self, node):
        if isinstance(node, ast.Name) and node.id not in self.env:
            return self.global_object(node)
        if isinstance(node, ast.Attribute):
            base = self.static_value(node.value)
            if base is not None and not isinstance(base, Value):
                return getattr(base, node.attr, None)
        return None

    def global_object(self, node):
        name = node.id
        if name in self.src.globals:
            return self.src.globals[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        return None

    def lookup(self, node: ast.Name):
        v = self.env.get(node.id)
        if v is None:
            obj = self.global_object(node)
            if obj is None:
                self.unsupported(node, f"using '{node.id}' where it may be undefined",
                                 "assign it before the loop or branch that sets it")
            return self.wrap_static(obj, node)
        return v

    def wrap_static(self, obj, node):
        if isinstance(obj, (bool, int, float, np.number, np.bool_)):
            return self.python_const(obj)
        return Static(obj)

    # -- expressions -------------------------------------------------------------------------
    def expr(self, node, allow_none: bool = False):
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            self.unsupported(node, f"the expression `{type(node).__name__}`")
        v = method(node)
        if v is None and not allow_none:
            self.unsupported(node, "using the result of a call that returns nothing")
        return v

    def expr_Constant(self, node):
        if isinstance(node.value, (bool, int, float)):
            return self.python_const(node.value)
        self.unsupported(node, f"the constant {node.value!r}")

    def expr_Name(self, node):
        return self.lookup(node)

    def expr_Tuple(self, node):
        return tuple(self.expr(e) for e in node.elts)

    def expr_BinOp(self, node):
        return self.binop(node.op, self.expr(node.left), self.expr(node.right), node)

    def binop(self, op, a, b, node) -> Value:
        if type(op) in _BITOPS:
            return self.bitop(_BITOPS[type(op)], a, b, node)
        kind = _BINOPS.get(type(op))
        if kind is None:
            self.unsupported(node, f"the operator `{type(op).__name__}`")
        a, b = self.scalar(a, node), self.scalar(b, node)
        t = promote(a.type, b.type)
        if kind == "div" and not t.is_float:
            t = f64
        if kind == "pow" and b.type.is_float and not t.is_float:
            t = f64
        return self.builder.op1(f"arith.{kind}", [self.coerce(a, t), self.coerce(b, t)], t)

    def bitop(self, kind, a, b, node) -> Value:
        """Integer shifts and bitwise logic (`&`, `|` of two bools are logical and/or)."""
        a, b = self.scalar(a, node), self.scalar(b, node)
        if a.type.is_bool and b.type.is_bool and kind in ("bitand", "bitor"):
            return self.builder.op1("arith.and" if kind == "bitand" else "arith.or", [a, b], i1)
        if a.type.is_float or b.type.is_float:
            self.type_error(node, f"bit operations need integers, got {a.type} and {b.type}; "
                                  f"reinterpret float bits with an array view, "
                                  f"e.g. a.view(np.int32)")
        t = promote(a.type, b.type)
        return self.builder.op1(f"arith.{kind}", [self.coerce(a, t), self.coerce(b, t)], t)

    def expr_UnaryOp(self, node):
        v = self.scalar(self.expr(node.operand), node)
        if isinstance(node.op, ast.Not):
            return self.builder.op1("arith.not", [self.truth(v, node)], i1)
        if isinstance(node.op, ast.UAdd):
            return v
        if isinstance(node.op, ast.USub):
            if v.type.is_bool:
                v = self.coerce(v, i64)
            return self.builder.op1("arith.neg", [v], v.type)
        self.unsupported(node, f"the operator `{type(node.op).__name__}`")

    def expr_Compare(self, node):
        left = self.scalar(self.expr(node.left), node)
        result = None
        for op, right_node in zip(node.ops, node.comparators):
            right = self.scalar(self.expr(right_node), node)
            pred = _CMPOPS.get(type(op))
            if pred is None:
                self.unsupported(node, f"the comparison `{type(op).__name__}`")
            t = promote(left.type, right.type) if left.type != right.type else left.type
            c = self.builder.op1("arith.cmp", [self.coerce(left, t), self.coerce(right, t)],
                                 i1, {"pred": pred})
            result = c if result is None else self.builder.op1("arith.and", [result, c], i1)
            left = right
        return result

    def expr_BoolOp(self, node):
        is_and = isinstance(node.op, ast.And)
        left = self.condition(node.values[0])
        for right_node in node.values[1:]:
            left = self.short_circuit(left, lambda n=right_node: self.condition(n), is_and,
                                      eager=has_side_effect_free_shape(right_node))
        return left

    def short_circuit(self, left: Value, right_fn, is_and: bool, eager: bool = False) -> Value:
        """`left and right()` / `left or right()`, evaluating right() only when needed
        unless it is free of effects and cannot fail (then one arith op is cheaper)."""
        if eager:
            return self.builder.op1("arith.and" if is_and else "arith.or", [left, right_fn()], i1)
        taken, skipped = Block(), Block()
        with self.at(taken):
            self.builder.op("scf.yield", [right_fn()])
        with self.at(skipped):
            self.builder.op("scf.yield", [self.const(not is_and, i1)])
        regions = [taken, skipped] if is_and else [skipped, taken]
        return self.builder.op("scf.if", [left], [i1], regions=regions).result

    def expr_IfExp(self, node):
        cond = self.condition(node.test)
        blocks, vals = [], []
        for branch in (node.body, node.orelse):
            b = Block()
            with self.at(b):
                vals.append(self.scalar(self.expr(branch), branch))
            blocks.append(b)
        t = vals[0].type if vals[0].type == vals[1].type else promote(vals[0].type, vals[1].type)
        for b, v in zip(blocks, vals):
            with self.at(b):
                self.builder.op("scf.yield", [self.coerce(v, t)])
        return self.builder.op("scf.if", [cond], [t], regions=blocks).result

    def expr_Subscript(self, node):
        base = self.expr(node.value)
        if isinstance(base, tuple):
            k = self.static_int(node.slice)
            if k is None:
                self.unsupported(node, "indexing a tuple with a non-constant index")
            return base[k]
        if self.is_view(node, base):
            return self.view(node, base)
        arr, idx = self.subscript_parts(node, base)
        return self.builder.op1("mem.load", [arr] + idx, arr.type.dtype)

    @staticmethod
    def _index_nodes(node):
        return node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]

    def is_view(self, node, base) -> bool:
        nodes = self._index_nodes(node)
        return isinstance(base, Value) and isinstance(base.type, ArrayType) and (
            any(isinstance(i, ast.Slice) for i in nodes) or len(nodes) < base.type.ndim)

    def view(self, node, arr: Value) -> Value:
        """a[lo:hi], a[i, :], a[:, j], a[i]: a view (NumPy basic slicing, unit steps)."""
        nodes = list(self._index_nodes(node))
        if len(nodes) > arr.type.ndim:
            self.unsupported(node, f"indexing a {arr.type.ndim}-D array with {len(nodes)} "
                                   f"indices")
        nodes += [ast.Slice(None, None, None)] * (arr.type.ndim - len(nodes))
        dims, operands, full = [], [arr], []
        for axis, n in enumerate(nodes):
            if isinstance(n, ast.Slice):
                if n.step is not None and self.static_int(n.step) != 1:
                    self.unsupported(node, "a slice with a step", "use unit-step slices")
                lo = self.const(0, i64) if n.lower is None else self.coerce_index(
                    self.expr(n.lower), n.lower)
                hi = self.builder.op1("mem.shape", [arr], i64, {"axis": axis}) \
                    if n.upper is None else self.coerce_index(self.expr(n.upper), n.upper)
                dims.append("s")
                operands += [lo, hi]
                full.append(n.lower is None and n.upper is None)
            else:
                dims.append("i")
                operands.append(self.coerce_index(self.expr(n), n))
        kept = full
        if not kept:
            self.unsupported(node, "a view without any slice")
        first_slice = dims.index("s")
        contiguous = arr.type.layout == "C" and all(d == "s" for d in dims[first_slice:]) \
            and all(kept[1:])
        t = ArrayType(arr.type.dtype, len(kept), "C" if contiguous else "A")
        return self.builder.op1("mem.view", operands, t, {"dims": "".join(dims)})

    def static_int(self, node):
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            k = self.static_int(node.operand)
            return None if k is None else -k
        return None

    def subscript_parts(self, node, base=None):
        arr = self.expr(node.value) if base is None else base
        if not isinstance(arr, Value) or not isinstance(arr.type, ArrayType):
            self.unsupported(node, "indexing something that is not an array")
        index_nodes = self._index_nodes(node)
        if any(isinstance(i, ast.Slice) for i in index_nodes):
            self.unsupported(node, "assigning to a slice", "assign elements in a loop")
        if len(index_nodes) != arr.type.ndim:
            self.unsupported(node, f"indexing a {arr.type.ndim}-D array with "
                                   f"{len(index_nodes)} indices",
                             "give one index per dimension, e.g. a[i, j]")
        return arr, [self.coerce_index(self.expr(i), i) for i in index_nodes]

    def expr_Attribute(self, node):
        base = self.expr(node.value) if not (isinstance(node.value, ast.Name)
                                             and node.value.id not in self.env) \
            else self.lookup(node.value)
        if isinstance(base, Static):
            if not hasattr(base.obj, node.attr):
                self.unsupported(node, f"the attribute `{node.attr}`")
            return self.wrap_static(getattr(base.obj, node.attr), node)
        if self.is_comm(base):
            return self.comm_attribute(base, node.attr, node)
        if isinstance(base, Value) and isinstance(base.type, ArrayType):
            if node.attr == "shape":
                return tuple(self.builder.op1("mem.shape", [base], i64, {"axis": k})
                             for k in range(base.type.ndim))
            if node.attr == "ndim":
                return self.const(base.type.ndim, i64)
            if node.attr == "size":
                size = self.builder.op1("mem.shape", [base], i64, {"axis": 0})
                for k in range(1, base.type.ndim):
                    ext = self.builder.op1("mem.shape", [base], i64, {"axis": k})
                    size = self.builder.op1("arith.mul", [size, ext], i64)
                return size
        self.unsupported(node, f"the attribute `{node.attr}`")

    # -- calls -------------------------------------------------------------------------------
    def expr_Call(self, node):
        if isinstance(node.func, ast.Attribute):
            base = self.expr(node.func.value) if not (isinstance(node.func.value, ast.Name)
                                                      and node.func.value.id not in self.env) \
                else self.lookup(node.func.value)
            if self.is_comm(base):
                return self.comm_method(base, node.func.attr, node)
            if self.is_request(base):
                return self.request_method(base, node.func.attr, node)
            if isinstance(base, Value) and isinstance(base.type, ArrayType) \
                    and node.func.attr == "view":
                return self.bitcast(base, node)
        fn = self.expr(node.func)
        if not isinstance(fn, Static):
            self.unsupported(node, "calling something that is not a function")
        obj = fn.obj
        if getattr(obj, "__hpcad_kernel__", False):
            return self.call_kernel(obj, node)
        marker = marker_of(obj)
        if marker is not None:
            return self.call_marker(marker, node)
        mpi_call = mpi_function(obj)
        if mpi_call is not None:
            return self.lower_mpi(mpi_call, self.world(), node)
        if mpi_framework_of(obj) is not None:
            comm = getattr(obj, "__self__", None)
            self.unsupported_mpi(node, hint=" on a communicator that is not a kernel argument; "
                                 "pass the communicator to the kernel"
                                 if getattr(comm, "Get_rank", None) is not None else "")
        if node.keywords and obj not in intr.ALLOC and obj not in intr.ALLOC_LIKE:
            self.unsupported(node, "keyword arguments in this call")
        handler = self.intrinsic_handler(obj)
        if handler is None:
            name = getattr(obj, "__name__", repr(obj))
            hint = ("decorate it with @hpcad.kernel so hpcad can inline it"
                    if callable(obj) and hasattr(obj, "__code__") else
                    "see the supported-construct list in the README")
            self.unsupported(node, f"calling `{name}`", hint)
        return handler(obj, node)

    def intrinsic_handler(self, obj):
        try:
            if obj in intr.UNARY_MATH:
                return self.call_unary_math
            if obj in intr.INT_ROUNDING:
                return self.call_int_rounding
            if obj in intr.ABS:
                return self.call_abs
            if obj in intr.MIN or obj in intr.MAX:
                return self.call_minmax
            if obj in intr.POW:
                return self.call_pow
            if obj in intr.ATAN2:
                return self.call_atan2
            if obj in intr.ALLOC or obj in intr.ALLOC_LIKE:
                return self.call_alloc
            if obj in intr.CASTS:
                return self.call_cast
            if obj is builtins.len:
                return self.call_len
        except TypeError:  # unhashable object
            return None
        return None

    def args_of(self, node, n=None):
        if n is not None and len(node.args) != n:
            self.unsupported(node, f"this call with {len(node.args)} arguments (expects {n})")
        return [self.scalar(self.expr(a), a) for a in node.args]

    def float_of(self, v: Value) -> Value:
        return v if v.type.is_float else self.coerce(v, f64)

    def call_unary_math(self, obj, node):
        (x,) = self.args_of(node, 1)
        x = self.float_of(x)
        return self.builder.op1(f"math.{intr.UNARY_MATH[obj]}", [x], x.type)

    def call_int_rounding(self, obj, node):
        (x,) = self.args_of(node, 1)
        if not x.type.is_float:
            return self.coerce(x, i64)
        r = self.builder.op1(f"math.{intr.INT_ROUNDING[obj]}", [x], x.type)
        return self.coerce(r, i64)

    def call_abs(self, obj, node):
        (x,) = self.args_of(node, 1)
        return self.builder.op1("math.abs", [x], x.type)

    def call_minmax(self, obj, node):
        vals = self.args_of(node)
        if len(vals) < 2:
            self.unsupported(node, "min()/max() of fewer than two scalars")
        kind = "min" if obj in intr.MIN else "max"
        acc = vals[0]
        for v in vals[1:]:
            t = promote(acc.type, v.type) if acc.type != v.type else acc.type
            acc = self.builder.op1(f"arith.{kind}", [self.coerce(acc, t), self.coerce(v, t)], t)
        return acc

    def call_pow(self, obj, node):
        x, y = self.args_of(node, 2)
        if obj is math.pow:
            x, y = self.float_of(x), self.float_of(y)
        return self.binop(ast.Pow(), x, y, node)

    def call_atan2(self, obj, node):
        y, x = self.args_of(node, 2)
        t = promote(self.float_of(y).type, self.float_of(x).type)
        return self.builder.op1("math.atan2", [self.coerce(y, t), self.coerce(x, t)], t)

    def call_cast(self, obj, node):
        (x,) = self.args_of(node, 1)
        return self.coerce(x, SCALARS[intr.CASTS[obj]])

    def call_len(self, obj, node):
        if len(node.args) != 1:
            self.unsupported(node, "len() with more than one argument")
        arr = self.expr(node.args[0])
        if isinstance(arr, tuple):
            return self.const(len(arr), i64)
        if not isinstance(arr, Value) or not isinstance(arr.type, ArrayType):
            self.unsupported(node, "len() of something that is not an array")
        return self.builder.op1("mem.shape", [arr], i64, {"axis": 0})

    def call_alloc(self, obj, node):
        like = obj in intr.ALLOC_LIKE
        fill = (intr.ALLOC_LIKE if like else intr.ALLOC)[obj]
        if not node.args:
            self.unsupported(node, "an allocation without a shape")
        first = self.expr(node.args[0])
        dtype_node = node.args[1] if len(node.args) > 1 else None
        for kw in node.keywords:
            if kw.arg != "dtype":
                self.unsupported(node, f"the keyword `{kw.arg}=` in an allocation")
            dtype_node = kw.value
        if like:
            if not isinstance(first, Value) or not isinstance(first.type, ArrayType):
                self.unsupported(node, f"{obj.__name__} of something that is not an array")
            dims = [self.builder.op1("mem.shape", [first], i64, {"axis": k})
                    for k in range(first.type.ndim)]
            dtype = first.type.dtype
        else:
            dims = list(first) if isinstance(first, tuple) else [first]
            dims = [self.coerce_index(self.scalar(d, node), node) for d in dims]
            dtype = f64
        if dtype_node is not None:
            dtype = self.dtype_of(dtype_node)
        t = ArrayType(dtype, len(dims), "C")
        arr = self.builder.op1("mem.alloc", dims, t, {"fill": "empty" if fill == "ones" else fill})
        if fill == "ones":
            self.fill(arr, dims, self.const(1, dtype))
        return arr

    def dtype_of(self, node):
        obj = self.static_value(node)
        if obj is None:
            self.unsupported(node, "a dtype that is not a NumPy type or float/int/bool")
        try:
            return scalar_from_dtype(obj)
        except (TypeError, ValueError):
            self.unsupported(node, f"the dtype {obj!r}")

    def fill(self, arr, dims, value):
        """Nested loops storing `value` into every element of a fresh array."""
        zero, one = self.const(0, i64), self.const(1, i64)
        ivs = []
        outer = self.builder.block
        for d in dims:
            body = Block([Value(i64, f"i{len(ivs)}")])
            self.builder.op("scf.for", [zero, d, one], [], regions=[body])
            self.builder.block = body
            ivs.append(body.args[0])
        self.builder.op("mem.store", [value, arr] + ivs)
        block = self.builder.block
        while block is not outer:
            self.builder.block = block
            self.builder.op("scf.yield", [])
            block = block.parent.parent
        self.builder.block = outer

    def bitcast(self, arr: Value, node) -> Value:
        """a.view(np.int32): the same memory read as another dtype of the same width."""
        if len(node.args) != 1 or node.keywords:
            self.unsupported(node, "view() without exactly one dtype argument")
        dtype = self.dtype_of(node.args[0])
        if dtype.bits != arr.type.dtype.bits or dtype.is_bool or arr.type.dtype.is_bool:
            self.unsupported(node, f"viewing a {arr.type.dtype} array as {dtype}",
                             "view as a dtype of the same width (float32 <-> int32, "
                             "float64 <-> int64)")
        t = ArrayType(dtype, arr.type.ndim, arr.type.layout)
        return self.builder.op1("mem.bitcast", [arr], t)

    def call_kernel(self, kernel, node):
        args = self.kernel_arguments(kernel.py_func, node)
        callee = self.program.function_for(kernel.py_func, [a.type for a in args],
                                           self.loc_of(node))
        attrs = {"callee": callee.name}
        if getattr(kernel, "is_custom", False):   # AD uses its rules, not its body (ad/custom.py)
            attrs["custom"] = callee.name
            self.program.module.rules[callee.name] = kernel
        op = self.builder.op("func.call", args, list(callee.result_types), attrs)
        if not op.results:
            return None
        return op.results[0] if len(op.results) == 1 else tuple(op.results)

    def kernel_arguments(self, py_func, node) -> list[Value]:
        """The callee's arguments in parameter order, bound as Python binds a call:
        positional, then keywords, then the parameters' defaults."""
        if any(isinstance(a, ast.Starred) for a in node.args) or \
                any(kw.arg is None for kw in node.keywords):
            self.unsupported(node, "*args or **kwargs in a call to a kernel",
                             "pass the arguments by position or by name")
        given = [(a, self.expr(a)) for a in node.args]
        named = {kw.arg: (kw.value, self.expr(kw.value)) for kw in node.keywords}
        signature = inspect.signature(py_func)
        try:
            bound = signature.bind(*given, **named)
        except TypeError as e:
            file, line = self.program.def_loc(py_func)
            self.type_error(node, f"call of kernel '{py_func.__name__}{signature}' (defined at "
                                  f"{file}:{line}): {e}")
        args = []
        for name, param in signature.parameters.items():
            arg_node, v = bound.arguments[name] if name in bound.arguments else \
                (node, self.wrap_static(param.default, node))
            if not isinstance(v, Value):
                self.unsupported(arg_node, f"passing {type(getattr(v, 'obj', v)).__name__} "
                                           f"as argument '{name}' of kernel "
                                           f"'{py_func.__name__}'",
                                 "kernel arguments are numbers and arrays")
            args.append(v)
        return args
