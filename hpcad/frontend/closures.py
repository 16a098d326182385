"""Functions defined in kernel code: `f = lambda x: ...`, or a `def` whose body returns one
expression (after a docstring), as numba compiles them where they do not escape. A call
evaluates the function's expression where it is called, its parameters bound to the
arguments and every other name read from the enclosing kernel's variables at that moment, as
a Python closure reads them (late binding); defaults are evaluated at the definition, as
Python evaluates them. Nothing is compiled for the function itself: its expression becomes
part of the caller's code, so it differentiates and parallelizes with it."""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import LoweringContext

_DEF_HINT = ("define it at module level (a `def` of your code is inlined where a kernel "
             "calls it)")


@dataclass(frozen=True, eq=False)
class LocalFunction:
    """A function defined in kernel code: its name, parameters (in order), the values of
    its defaults (by parameter) and the expression it returns."""
    name: str
    params: tuple[str, ...]
    defaults: dict
    body: ast.expr


def _signature(ctx: LoweringContext, args: ast.arguments, node) -> tuple[tuple, dict]:
    """The parameters of a local function and its defaults' values (evaluated now)."""
    if args.vararg or args.kwarg or args.posonlyargs or args.kwonlyargs:
        ctx.unsupported(node, "a function defined in a kernel with *args, **kwargs, "
                              "positional-only or keyword-only parameters", _DEF_HINT)
    params = tuple(a.arg for a in args.args)
    with_defaults = params[len(params) - len(args.defaults):]
    defaults = {p: ctx.expr(d) for p, d in zip(with_defaults, args.defaults, strict=True)}
    return params, defaults


def expr_lambda(ctx: LoweringContext, node: ast.Lambda):
    """`lambda x, c=1.0: ...`: a local function (a Static, as other functions are)."""
    from .expressions import Static
    if _frames:
        ctx.unsupported(node, "a lambda inside a function defined in a kernel", _DEF_HINT)
    params, defaults = _signature(ctx, node.args, node)
    return Static(LocalFunction("<lambda>", params, defaults, node.body))


def stmt_def(ctx: LoweringContext, s: ast.FunctionDef) -> None:
    """`def f(x): return e` inside a kernel binds f to a local function."""
    from .expressions import Static
    body = s.body[1:] if (s.body and isinstance(s.body[0], ast.Expr)
                          and isinstance(s.body[0].value, ast.Constant)
                          and isinstance(s.body[0].value.value, str)) else s.body
    if s.decorator_list:
        ctx.unsupported(s, "a decorated function defined inside a kernel", _DEF_HINT)
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        ctx.unsupported(s, "a function defined inside a kernel whose body is more than "
                           "one `return` of an expression", _DEF_HINT)
    params, defaults = _signature(ctx, s.args, s)
    ctx.env[s.name] = Static(LocalFunction(s.name, params, defaults, body[0].value))


# the calls of local functions being expanded, outermost first: each function and the
# values its parameters hid (absent: a name unbound before)
_frames: list[tuple[LocalFunction, dict]] = []
_UNBOUND = object()


def call_local(ctx: LoweringContext, fn: LocalFunction, node: ast.Call):
    """A call of a local function: its expression evaluated with the arguments bound and its
    other names read from the kernel's variables (not from the parameters of a local
    function whose expression makes the call: Python's scopes are lexical)."""
    if any(f is fn for f, _ in _frames):
        ctx.unsupported(node, f"a recursive call of `{fn.name}`", "write it as a loop")
    if any(isinstance(a, ast.Starred) for a in node.args) or \
            any(k.arg is None for k in node.keywords):
        ctx.unsupported(node, f"calling `{fn.name}` with *args or **kwargs")
    if len(node.args) > len(fn.params):
        ctx.unsupported(node, f"calling `{fn.name}` with {len(node.args)} arguments (it "
                              f"takes {len(fn.params)})")
    bound = {p: ctx.expr(a) for p, a in zip(fn.params, node.args, strict=False)}
    for k in node.keywords:
        if k.arg not in fn.params or k.arg in bound:
            ctx.unsupported(node, f"calling `{fn.name}` with the keyword {k.arg}= "
                                  f"(unknown or given twice)")
        bound[k.arg] = ctx.expr(k.value)
    for p in fn.params:
        if p not in bound:
            if p not in fn.defaults:
                ctx.unsupported(node, f"calling `{fn.name}` without its argument '{p}'")
            bound[p] = fn.defaults[p]
    touched = set(bound) | {p for f, _ in _frames for p in f.params}
    before = {p: ctx.env.get(p, _UNBOUND) for p in touched}
    for _, hid in reversed(_frames):       # the kernel's own values of the names
        _rebind(ctx, hid)
    saved = {p: ctx.env.get(p, _UNBOUND) for p in fn.params}
    ctx.env.update(bound)
    _frames.append((fn, saved))
    try:
        return ctx.expr(fn.body)
    finally:
        _frames.pop()
        _rebind(ctx, before)


def _rebind(ctx: LoweringContext, values: dict) -> None:
    for p, v in values.items():
        if v is _UNBOUND:
            ctx.env.pop(p, None)
        else:
            ctx.env[p] = v
