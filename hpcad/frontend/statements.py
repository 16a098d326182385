"""Statement rules: one function per kind of Python statement a kernel may contain, each
called as rule(ctx, statement) with the LoweringContext (context.py) and collected in
STATEMENTS. Assignments bind names or store into arrays; `if` merges the branches'
variables; `for`/`while` become `scf` loops carrying the variables they reassign, `break`
and `continue` flags guarding the rest of the body; a `prange` loop is parallel.py's."""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from ..ir.core import Op, Value
from ..ir.types import ArrayType, ScalarType, i1, i64
from . import arrays, expressions, parallel, syntax, words

if TYPE_CHECKING:
    from .context import LoweringContext


def stmt_pass(ctx: LoweringContext, s):
    pass


def stmt_expr(ctx: LoweringContext, s):
    if isinstance(s.value, ast.Constant) and isinstance(s.value.value, str):
        return  # docstring
    if not isinstance(s.value, ast.Call) and type(s.value) in expressions.EXPRESSIONS:
        ctx.unsupported(s, "an expression statement without effect",
                        "assign its value or drop it")
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
        if arrays.is_array(cur):     # in place, as NumPy's a += b
            target = arrays.as_expr(ctx, cur, s)
            if not isinstance(target, arrays.Sliced):
                target = arrays.whole(ctx, cur)
            arrays.fill(ctx, target, expressions.binop(ctx, s.op, cur, ctx.expr(s.value), s),
                        s)
            return
        assign(ctx, s.target, expressions.binop(ctx, s.op, cur, ctx.expr(s.value), s))
    elif isinstance(s.target, ast.Subscript) and is_slicing(ctx, s.target):
        arr = array_of(ctx, s.target)
        target = arrays.subscript(ctx, arr, s.target, allow_newaxis=False)
        arrays.fill(ctx, target, expressions.binop(ctx, s.op, target, ctx.expr(s.value), s), s)
    elif isinstance(s.target, ast.Subscript) and mask_of(ctx, s.target) is not None:
        arrays.store_masked(ctx, array_of(ctx, s.target), mask_of(ctx, s.target),
                            ctx.expr(s.value), s,
                            lambda c, cur, v: expressions.binop(c, s.op, cur, v, s))
    elif isinstance(s.target, ast.Subscript):
        arr, idx = expressions.subscript_parts(ctx, s.target)
        cur = ctx.builder.op1("mem.load", [arr] + idx, arr.type.dtype, name_hint=None)
        new = expressions.binop(ctx, s.op, cur, ctx.expr(s.value), s)
        store(ctx, arr, idx, new, s)
    else:
        ctx.unsupported(s, "this augmented-assignment target")


def is_slicing(ctx: LoweringContext, node) -> bool:
    """Whether a subscript target selects more than one element."""
    base = ctx.expr(node.value)
    return expressions.is_view(ctx, node, base)


def mask_of(ctx: LoweringContext, node):
    """The boolean array of a[mask] (NumPy boolean indexing), else None."""
    if isinstance(node.slice, (ast.Tuple, ast.Slice)):
        return None
    mask = ctx.expr(node.slice)
    if arrays.is_array(mask) and arrays.as_expr(ctx, mask, node).dtype.is_bool:
        return mask
    return None


def array_of(ctx: LoweringContext, node) -> Value:
    arr = ctx.expr(node.value)
    if not isinstance(arr, Value) or not isinstance(arr.type, ArrayType):
        ctx.unsupported(node, "assigning into something that is not an array")
    return arr


def assign(ctx: LoweringContext, target, value) -> None:
    if isinstance(target, ast.Name):
        value = arrays.bind(ctx, value, target)
        if isinstance(value, Value) and value.name is None and isinstance(value.owner, Op):
            value.name = target.id
        if not isinstance(value, (Value, tuple)):
            ctx.unsupported(target, f"assigning {words.value(getattr(value, 'obj', value))} to a "
                                    f"variable", "use the value directly where it is needed")
        ctx.env[target.id] = value
    elif isinstance(target, ast.Tuple):
        for starred in (t for t in target.elts if isinstance(t, ast.Starred)):
            ctx.unsupported(starred, *words.target(starred))
        if not isinstance(value, tuple) or len(value) != len(target.elts):
            ctx.unsupported(target, "unpacking a value that is not a tuple of the same "
                            "length")
        for t, v in zip(target.elts, value, strict=True):
            assign(ctx, t, v)
    elif isinstance(target, ast.Subscript) and is_slicing(ctx, target):
        arrays.store_into(ctx, array_of(ctx, target), target, value, target)
    elif isinstance(target, ast.Subscript) and mask_of(ctx, target) is not None:
        arrays.store_masked(ctx, array_of(ctx, target), mask_of(ctx, target), value, target)
    elif isinstance(target, ast.Subscript):
        arr, idx = expressions.subscript_parts(ctx, target)
        store(ctx, arr, idx, value, target)
    else:
        ctx.unsupported(target, *words.target(target))


def store(ctx: LoweringContext, arr, idx, value, node):
    if not isinstance(value, Value) or not isinstance(value.type, ScalarType):
        ctx.unsupported(node, "storing an array into one array element",
                        "select several elements with a slice, e.g. a[i, :] = row")
    ctx.builder.op("mem.store", [ctx.coerce(value, arr.type.dtype)] + [arr] + idx)


def stmt_assert(ctx: LoweringContext, s):
    """`assert cond[, "message"]`: checked when the kernel runs (also in the primal part of
    its derivatives), a KernelAssertionError at the statement's file:line if it fails."""
    what = f"`assert {ast.unparse(s.test)}` failed"
    if s.msg is not None:
        if not (isinstance(s.msg, ast.Constant) and isinstance(s.msg.value, str)):
            ctx.unsupported(s, "an assert message that is not a string literal",
                            'write the message as a constant string: assert x > 0, "x > 0"')
        what += f": {s.msg.value}"
    ctx.runtime_check(ctx.condition(s.test), what, s)


def stmt_if(ctx: LoweringContext, s):
    ctx.if_stmts(ctx.condition(s.test), s.body, s.orelse, s)


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
    loop = ctx.loop_context(has_break, syntax.exits_loop(s.body, ast.Continue))
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
    loop = ctx.loop_context(syntax.exits_loop(s.body, ast.Break),
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
    ast.Assert: stmt_assert,
    ast.If: stmt_if,
    ast.For: stmt_for,
    ast.While: stmt_while,
    ast.Break: stmt_break,
    ast.Continue: stmt_continue,
}
