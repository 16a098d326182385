"""Python kernel source -> IR, specialized on argument types.

A LoweringContext holds the state of one kernel body being lowered; each statement kind
is lowered by its rule in STATEMENTS (below), each expression kind by its rule in
EXPRESSIONS (expressions.py). Variables become SSA values; loops and branches become `scf`
ops whose iter_args/results carry the variables they reassign; `break`/`continue` become
flags that guard the rest of the body; tail `return`s become the function's results. Calls
to other kernels become `func.call` ops on callee functions lowered for the actual argument
types (inlined later)."""
from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
from contextlib import contextmanager

import numpy as np

from ..errors import KernelTypeError, UnsupportedConstruct
from ..ir.core import Block, Builder, Function, Module, Op, Value
from ..ir.types import ArrayType, ScalarType, f32, f64, i1, i64, promote
from . import expressions, parallel, syntax
from .expressions import EXPRESSIONS, Static


class LoopContext:
    """The names of a loop's `break` and `continue` flags (None: the body has none)."""

    def __init__(self, depth: int, has_break: bool, has_continue: bool):
        self.brk = f".brk{depth}" if has_break else None
        self.cont = f".cont{depth}" if has_continue else None


class KernelSource:
    """A kernel's parsed source with the offsets that map AST lines back to the file."""

    def __init__(self, py_func):
        self.py_func = py_func
        try:
            lines, start = inspect.getsourcelines(py_func)
        except (OSError, TypeError) as e:
            raise UnsupportedConstruct(f"cannot read the source of kernel "
                                       f"'{py_func.__name__}': {e}") from None
        tree = ast.parse(textwrap.dedent("".join(lines)))
        self.fdef = tree.body[0]
        if not isinstance(self.fdef, ast.FunctionDef):
            raise UnsupportedConstruct(f"kernel '{py_func.__name__}' must be a plain `def`")
        self.file = inspect.getsourcefile(py_func) or "<unknown>"
        self.line_offset = start - 1
        self.fdef.decorator_list = []
        self.globals = dict(py_func.__globals__)
        closure = inspect.getclosurevars(py_func)
        self.globals.update(closure.nonlocals)
        self.arg_names = [a.arg for a in self.fdef.args.args]


class LoweringContext:
    """The state of one kernel body being lowered for one argument signature into a
    `Function` of `module`: the builder and its insertion block, the environment (variable
    -> SSA value), the enclosing loops' exit flags, the pending spawned tasks. Statement and
    expression rules (STATEMENTS here, EXPRESSIONS in expressions.py) take it as `ctx`."""

    def __init__(self, source: KernelSource, arg_types, module: Module, name: str, lowering):
        self.src = source
        self.module = module
        self.program = lowering
        self.builder = Builder()
        self.env: dict[str, Value | tuple] = {}
        self.loops: list[LoopContext] = []
        self.ret_arity: int | None = None
        self.pending_tasks: list = []
        body = Block([Value(t, n) for t, n in zip(arg_types, source.arg_names, strict=True)])
        self.fn = Function(name, body, [], list(source.arg_names), self.loc_of(source.fdef))
        for n, v in zip(source.arg_names, body.args, strict=True):
            self.env[n] = v

    # -- locations and errors ----------------------------------------------------------------
    def loc_of(self, node):
        return (self.src.file, getattr(node, "lineno", 0) + self.src.line_offset)

    def unsupported(self, node, what: str, hint: str = ""):
        file, line = self.loc_of(node)
        raise UnsupportedConstruct(f"{file}:{line}: {what} is not supported in hpcad kernels"
                                   + (f"; {hint}" if hint else ""))

    def type_error(self, node, msg: str):
        file, line = self.loc_of(node)
        raise KernelTypeError(f"{file}:{line}: {msg}")

    @contextmanager
    def at(self, block: Block):
        saved = self.builder.block
        self.builder.block = block
        try:
            yield
        finally:
            self.builder.block = saved

    # -- the function and its statements (STATEMENTS) ----------------------------------------
    def lower(self) -> Function:
        fdef = self.src.fdef
        a = fdef.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
            self.unsupported(fdef, "*args, **kwargs and keyword-only parameters",
                             "use plain positional parameters")
        bad = syntax.misplaced_return(fdef.body)
        if bad is not None:
            self.unsupported(bad, "a `return` before the end of the kernel",
                             "assign the result to a variable and return it at the end")
        self.builder.block = self.fn.body
        self.stmts(fdef.body)
        rets = []
        if self.ret_arity is not None:
            for k in range(self.ret_arity):
                v = self.env.get(f".ret{k}")
                if v is None:
                    self.unsupported(fdef, "a kernel where some paths return a value and some "
                                     "do not", "return a value on every path")
                rets.append(v)
        self.builder.loc = self.loc_of(fdef)
        self.builder.op("func.return", rets)
        self.fn.result_types = [v.type for v in rets]
        return self.fn

    def stmts(self, stmts) -> None:
        for k, s in enumerate(stmts):
            if parallel.is_spawn(self, s):
                self.builder.loc = self.loc_of(s)
                parallel.stmt_spawn(self, s)
                continue
            parallel.flush_tasks(self)
            self.stmt(s)
            rest = stmts[k + 1:]
            if rest and self.loops and syntax.may_exit(s):
                if_stmts(self, not_exited(self, s), rest, [], s)
                return
        parallel.flush_tasks(self)

    def stmt(self, s) -> None:
        self.builder.loc = self.loc_of(s)
        lower = STATEMENTS.get(type(s))
        if lower is None:
            self.unsupported(s, f"the statement `{type(s).__name__}`")
        lower(self, s)

    # -- values: constants, conversions, names (expressions.py: EXPRESSIONS) -----------------
    def expr(self, node, allow_none: bool = False):
        lower = EXPRESSIONS.get(type(node))
        if lower is None:
            self.unsupported(node, f"the expression `{type(node).__name__}`")
        v = lower(self, node)
        if v is None and not allow_none:
            self.unsupported(node, "using the result of a call that returns nothing")
        return v

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

    # -- loops (also parallel.py's) ----------------------------------------------------------
    def loop_context(self, has_break: bool, has_continue: bool) -> LoopContext:
        """The flags of a new innermost loop (see LoopContext)."""
        return LoopContext(len(self.loops), has_break, has_continue)

    def range_bounds(self, call) -> list[Value]:
        """lb, ub, step of range(...)-style arguments, as i64."""
        bounds = [self.coerce_index(self.expr(a), a) for a in call.args]
        if len(bounds) == 1:
            bounds = [self.const(0, i64)] + bounds
        if len(bounds) == 2:
            bounds.append(self.const(1, i64))
        return bounds

    def carried(self, body, exclude=None, extra=()) -> list[str]:
        names = [n for n in _ordered_assigned(body) if n in self.env and n != exclude
                 and isinstance(self.env[n], Value)]
        return list(extra) + names

    def loop_body(self, stmts, loop: LoopContext):
        self.loops.append(loop)
        if loop.cont:
            self.env[loop.cont] = self.const(False, i1)
        try:
            self.stmts(stmts)
        finally:
            self.loops.pop()

    def structured_loop(self, node, names, leading_args, body_fn, make_op, before_fn=None):
        """Lower a loop whose body reassigns `names`: block args carry them, the body yields
        them. If the body changes a variable's type (int -> float), redo with the promoted
        type so that iter_args keep one type."""
        outer = dict(self.env)
        types = [outer[n].type for n in names]
        for _ in range(4):
            blocks, yields = [], None
            lead = leading_args(types)
            if before_fn is not None:
                before = Block([Value(t, _hint(n)) for n, t in zip(names, types, strict=True)])
                self.env = dict(outer)
                self.env.update(zip(names, before.args, strict=True))
                with self.at(before):
                    before_fn(before.args)
                blocks.append(before)
            block = Block(lead + [Value(t, _hint(n)) for n, t in zip(names, types, strict=True)])
            self.env = dict(outer)
            self.env.update(zip(names, block.args[len(lead):], strict=True))
            with self.at(block):
                body_fn(block.args)
            yields = [self.env.get(n) for n in names]
            for n, y in zip(names, yields, strict=True):
                if not isinstance(y, Value):
                    self.unsupported(node, f"variable '{_hint(n)}' becoming undefined in a loop")
            new_types = [unify(self, [y, Value(t)], n, node)
                         for n, y, t in zip(names, yields, types, strict=True)]
            if new_types == types:
                break
            types = new_types
        with self.at(block):
            self.builder.op("scf.yield", [self.coerce(y, t)
                                          for y, t in zip(yields, types, strict=True)])
        blocks.append(block)
        self.env = outer
        inits = [self.coerce(outer[n], t) for n, t in zip(names, types, strict=True)]
        self.builder.loc = self.loc_of(node)   # the loop's own line, not its last statement's
        op = make_op(inits, blocks)
        for n, r in zip(names, op.results, strict=True):
            r.name = _hint(n)
            self.env[n] = r
        return op


def not_exited(ctx: LoweringContext, node) -> Value:
    loop = ctx.loops[-1]
    flags = [ctx.env[f] for f in (loop.brk, loop.cont) if f and f in ctx.env]
    left = flags[0]
    for f in flags[1:]:
        left = ctx.builder.op1("arith.or", [left, f], i1)
    return ctx.builder.op1("arith.not", [left], i1)


def stmt_pass(ctx: LoweringContext, s):
    pass


def stmt_expr(ctx: LoweringContext, s):
    if isinstance(s.value, ast.Constant) and isinstance(s.value.value, str):
        return  # docstring
    if not isinstance(s.value, ast.Call):
        ctx.unsupported(s, "an expression statement without effect")
    ctx.expr(s.value, allow_none=True)


def stmt_return(ctx: LoweringContext, s):
    if s.value is None:
        vals = ()
    else:
        v = ctx.expr(s.value)
        vals = v if isinstance(v, tuple) else (v,)
    for v in vals:
        if not isinstance(v, Value) or isinstance(v.type, ArrayType):
            ctx.unsupported(s, "returning arrays or non-scalar values",
                            "write results into an output array argument")
    if ctx.ret_arity is not None and ctx.ret_arity != len(vals):
        ctx.unsupported(s, "returning different numbers of values on different paths")
    ctx.ret_arity = len(vals)
    for k, v in enumerate(vals):
        ctx.env[f".ret{k}"] = v


def stmt_assign(ctx: LoweringContext, s):
    value = ctx.expr(s.value)
    for target in s.targets:
        assign(ctx, target, value)


def stmt_annassign(ctx: LoweringContext, s):
    if s.value is None:
        return
    assign(ctx, s.target, ctx.expr(s.value))


def stmt_augassign(ctx: LoweringContext, s):
    if isinstance(s.target, ast.Name):
        cur = ctx.lookup(s.target)
        assign(ctx, s.target, expressions.binop(ctx, s.op, cur, ctx.expr(s.value), s))
    elif isinstance(s.target, ast.Subscript):
        arr, idx = expressions.subscript_parts(ctx, s.target)
        cur = ctx.builder.op1("mem.load", [arr] + idx, arr.type.dtype, name_hint=None)
        new = expressions.binop(ctx, s.op, cur, ctx.expr(s.value), s)
        store(ctx, arr, idx, new, s)
    else:
        ctx.unsupported(s, "this augmented-assignment target")


def assign(ctx: LoweringContext, target, value) -> None:
    if isinstance(target, ast.Name):
        if isinstance(value, Value) and value.name is None and isinstance(value.owner, Op):
            value.name = target.id
        if not isinstance(value, (Value, tuple)):
            ctx.unsupported(target, f"assigning {type(value).__name__} to a variable")
        ctx.env[target.id] = value
    elif isinstance(target, ast.Tuple):
        if not isinstance(value, tuple) or len(value) != len(target.elts):
            ctx.unsupported(target, "unpacking a value that is not a tuple of the same "
                            "length")
        for t, v in zip(target.elts, value, strict=True):
            assign(ctx, t, v)
    elif isinstance(target, ast.Subscript):
        arr, idx = expressions.subscript_parts(ctx, target)
        store(ctx, arr, idx, value, target)
    else:
        ctx.unsupported(target, f"assignment to `{type(target).__name__}`")


def store(ctx: LoweringContext, arr, idx, value, node):
    if not isinstance(value, Value) or not isinstance(value.type, ScalarType):
        ctx.unsupported(node, "storing a non-scalar into an array element")
    ctx.builder.op("mem.store", [ctx.coerce(value, arr.type.dtype)] + [arr] + idx)


def stmt_if(ctx: LoweringContext, s):
    if_stmts(ctx, ctx.condition(s.test), s.body, s.orelse, s)


def if_stmts(ctx: LoweringContext, cond: Value, then_stmts, else_stmts, node) -> None:
    before = dict(ctx.env)
    branches = []
    for stmts in (then_stmts, else_stmts):
        block = Block()
        ctx.env = dict(before)
        with ctx.at(block):
            ctx.stmts(stmts)
        branches.append((block, ctx.env))
    ctx.env = before
    merged = merge_names(before, [e for _, e in branches])
    types = [unify(ctx, [e[n] for _, e in branches], n, node) for n in merged]
    for block, env in branches:
        with ctx.at(block):
            ctx.builder.op("scf.yield", [ctx.coerce(env[n], t)
                                         for n, t in zip(merged, types, strict=True)])
    op = ctx.builder.op("scf.if", [cond], types, regions=[b for b, _ in branches])
    ctx.env = dict(before)
    for n, r in zip(merged, op.results, strict=True):
        r.name = _hint(n)
        ctx.env[n] = r
    for n in list(ctx.env):
        if n not in merged and any(n not in e for _, e in branches):
            del ctx.env[n]


def merge_names(before, envs) -> list[str]:
    """Names that differ between a branch and the state before, defined on every branch."""
    names = []
    for e in envs:
        for n, v in e.items():
            if n not in names and (before.get(n) is not v) and all(n in x for x in envs):
                names.append(n)
    return [n for n in names if isinstance(envs[0][n], Value)]


def unify(ctx: LoweringContext, values, name, node):
    types = {v.type for v in values if isinstance(v, Value)}
    if len(types) == 1:
        return types.pop()
    if all(isinstance(t, ScalarType) for t in types):
        out = types.pop()
        for t in types:
            out = promote(out, t) if out != t else out
        return out
    ctx.type_error(node, f"variable '{_hint(name)}' holds values of incompatible types "
                         f"{', '.join(sorted(str(t) for t in types))} on different paths")


def stmt_for(ctx: LoweringContext, s):
    if s.orelse:
        ctx.unsupported(s, "`for ... else`")
    it = s.iter
    marker = parallel.marker_call(ctx, it)
    if marker is not None and marker.construct == "parallel_for":
        parallel.parallel_for(ctx, s, marker)
        return
    if not (isinstance(it, ast.Call) and ctx.static_value(it.func) is range):
        ctx.unsupported(s, "a `for` loop over anything but range()",
                        "loop over indices: for i in range(len(a))")
    if not isinstance(s.target, ast.Name):
        ctx.unsupported(s, "a loop target that is not a plain name")
    if it.keywords or not 1 <= len(it.args) <= 3:
        ctx.unsupported(s, "range() with keywords or more than 3 arguments")
    bounds = ctx.range_bounds(it)
    has_break = syntax.exits_loop(s.body, ast.Break)
    loop = LoopContext(len(ctx.loops), has_break,
                       syntax.exits_loop(s.body, ast.Continue))
    if has_break:
        for_with_break(ctx, s, bounds, loop)
        return
    names = ctx.carried(s.body, exclude=s.target.id)

    def body(block_args):
        ctx.env[s.target.id] = block_args[0]
        ctx.loop_body(s.body, loop)

    ctx.structured_loop(s, names, lambda types: [Value(i64, s.target.id)],
                        body, lambda inits, blocks: ctx.builder.op(
                            "scf.for", bounds + inits, [v.type for v in inits],
                            regions=blocks))
    ctx.env.pop(s.target.id, None)


def stmt_while(ctx: LoweringContext, s):
    if s.orelse:
        ctx.unsupported(s, "`while ... else`")
    loop = LoopContext(len(ctx.loops), syntax.exits_loop(s.body, ast.Break),
                       syntax.exits_loop(s.body, ast.Continue))
    extra = []
    if loop.brk:
        ctx.env[loop.brk] = ctx.const(False, i1)
        extra = [loop.brk]
    names = ctx.carried(s.body, extra=extra)
    while_loop(ctx, s, names, lambda: ctx.condition(s.test), loop, s.body)
    if loop.brk:
        ctx.env.pop(loop.brk, None)


def while_loop(ctx: LoweringContext, node, names, test_fn, loop, body_stmts, prologue=None,
               epilogue=None):
    def before(args):
        cond = guarded_test(ctx, test_fn, loop)
        ctx.builder.op("scf.condition", [cond] + list(args))

    def body(args):
        if prologue:
            prologue()
        ctx.loop_body(body_stmts, loop)
        if epilogue:
            epilogue()

    ctx.structured_loop(node, names, lambda types: [], body,
                        lambda inits, blocks: ctx.builder.op(
                            "scf.while", inits, [v.type for v in inits], regions=blocks),
                        before_fn=before)


def guarded_test(ctx: LoweringContext, test_fn, loop) -> Value:
    """The loop test, evaluated only while the loop has not executed `break`."""
    if not loop.brk:
        return test_fn()
    not_broken = ctx.builder.op1("arith.not", [ctx.env[loop.brk]], i1)
    return expressions.short_circuit(ctx, not_broken, test_fn, is_and=True)


def for_with_break(ctx: LoweringContext, s, bounds, loop):
    """`for` with `break`: a while loop over an explicit induction variable."""
    lb, ub, step = bounds
    iv_name = f".iv{len(ctx.loops)}"
    ctx.env[iv_name] = lb
    ctx.env[loop.brk] = ctx.const(False, i1)
    names = ctx.carried(s.body, exclude=s.target.id, extra=[iv_name, loop.brk])

    def in_range():
        iv = ctx.env[iv_name]
        up = ctx.builder.op1("arith.cmp", [iv, ub], i1, {"pred": "lt"})
        down = ctx.builder.op1("arith.cmp", [iv, ub], i1, {"pred": "gt"})
        zero = ctx.const(0, i64)
        positive = ctx.builder.op1("arith.cmp", [step, zero], i1, {"pred": "gt"})
        return ctx.builder.op1("arith.select", [positive, up, down], i1)

    def bind_target():
        ctx.env[s.target.id] = ctx.env[iv_name]

    def advance():
        ctx.env[iv_name] = ctx.builder.op1("arith.add", [ctx.env[iv_name], step], i64)

    while_loop(ctx, s, names, in_range, loop, s.body, bind_target, advance)
    for n in (iv_name, loop.brk, s.target.id):
        ctx.env.pop(n, None)


def stmt_break(ctx: LoweringContext, s):
    loop = ctx.loops[-1] if ctx.loops else None
    if loop is None or loop.brk is None:
        ctx.unsupported(s, "`break` outside a loop")
    ctx.env[loop.brk] = ctx.const(True, i1)


def stmt_continue(ctx: LoweringContext, s):
    loop = ctx.loops[-1] if ctx.loops else None
    if loop is None or loop.cont is None:
        ctx.unsupported(s, "`continue` outside a loop")
    ctx.env[loop.cont] = ctx.const(True, i1)


# statement kind -> its rule (LoweringContext.stmt)
STATEMENTS = {
    ast.Pass: stmt_pass,
    ast.Expr: stmt_expr,
    ast.Return: stmt_return,
    ast.Assign: stmt_assign,
    ast.AnnAssign: stmt_annassign,
    ast.AugAssign: stmt_augassign,
    ast.If: stmt_if,
    ast.For: stmt_for,
    ast.While: stmt_while,
    ast.Break: stmt_break,
    ast.Continue: stmt_continue,
}


def _hint(name: str) -> str:
    return name.lstrip(".")


def _ordered_assigned(stmts) -> list[str]:
    seen = []
    for node in syntax.walk_stmts(stmts):
        n = None
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            n = node.id
        if n and n not in seen:
            seen.append(n)
    return seen


class ProgramLowering:
    """Lowers an entry kernel and, on demand, every kernel it calls, into one module."""

    def __init__(self):
        self.module = Module()
        self.done: dict[tuple, str] = {}
        self.active: list[object] = []

    @staticmethod
    def def_loc(py_func) -> tuple[str, int]:
        """Where kernel `py_func` is defined: its file and the line of its `def`."""
        code = py_func.__code__
        return code.co_filename, code.co_firstlineno

    def function_for(self, py_func, arg_types, node_loc=None) -> Function:
        key = (py_func, tuple(arg_types))
        name = self.done.get(key)
        if name is not None:
            return self.module.functions[name]
        if py_func in self.active:
            raise UnsupportedConstruct(f"{node_loc[0]}:{node_loc[1]}: recursive kernel call to "
                                       f"'{py_func.__name__}' is not supported in hpcad kernels")
        base = py_func.__name__
        name, k = base, 0
        while name in self.module.functions:
            k += 1
            name = f"{base}.{k}"
        self.active.append(py_func)
        try:
            src = KernelSource(py_func)
            if len(src.arg_names) != len(arg_types):
                raise UnsupportedConstruct(f"{node_loc[0]}:{node_loc[1]}: '{base}' takes "
                                           f"{len(src.arg_names)} arguments, "
                                           f"{len(arg_types)} given")
            fn = LoweringContext(src, arg_types, self.module, name, self).lower()
        finally:
            self.active.pop()
        self.module.add(fn)
        self.done[key] = name
        return fn


def lower_kernel(py_func, arg_types) -> Module:
    """The module of `py_func` specialized on `arg_types`; its entry is the kernel itself."""
    prog = ProgramLowering()
    entry = prog.function_for(py_func, arg_types, ("<call>", 0))
    prog.module.entry = entry.name
    return prog.module
