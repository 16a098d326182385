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

from .words import DEF_HINT

if TYPE_CHECKING:
    from .context import LoweringContext

READS = ".reads"   # the keyword annotate_reads gives a call of a local function


@dataclass(frozen=True, eq=False)
class LocalFunction:
    """A function defined in kernel code: its name, parameters (in order), the values of
    its defaults (by parameter) and the expression it returns."""
    name: str
    params: tuple[str, ...]
    defaults: dict
    body: ast.expr


def annotate_reads(fdef: ast.FunctionDef) -> frozenset[str]:
    """Give every call of a local function in a kernel's source (`f(x)`, f bound only to
    lambdas and local defs) a keyword READS: a tuple of the names the function reads from the
    kernel's variables when it is called, through the local functions it calls too. The
    syntactic analyses (syntax.py, which values a loop carries, what a parallel loop reads)
    see those reads where the call is, as they see a read written there; the lowering skips
    the keyword. Returns the names bound to local functions (no other binding of them is
    allowed: `assign`)."""
    bodies: dict[str, list[tuple[set, ast.expr]]] = {}
    other: set[str] = set()
    defining = {id(node.targets[0]) for node in ast.walk(fdef)
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda)}
    for node in ast.walk(fdef):
        if isinstance(node, ast.FunctionDef) and node is not fdef:
            ret = [r.value for r in node.body if isinstance(r, ast.Return) and r.value]
            bodies.setdefault(node.name, []).extend(
                ({a.arg for a in node.args.args}, e) for e in ret)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda) and \
                len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            lam = node.value
            bodies.setdefault(node.targets[0].id, []).append(
                ({a.arg for a in lam.args.args}, lam.body))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and \
                id(node) not in defining:
            other.add(node.id)
        elif isinstance(node, (ast.For, ast.comprehension)):
            other.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
    names = set(bodies) - other
    free = {f: {n.id for params, body in bodies[f] for n in ast.walk(body)
                if isinstance(n, ast.Name) and n.id not in params} for f in names}
    changed = True
    while changed:   # through the local functions each calls (recursion included)
        changed = False
        for f in names:
            more = set().union(*(free[g] for g in free[f] & names)) - free[f]
            if more:
                free[f] |= more
                changed = True
    for node in ast.walk(fdef):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in names:
            reads = ast.Tuple([ast.Name(n, ast.Load()) for n in sorted(free[node.func.id])],
                              ast.Load())
            node.keywords.append(ast.keyword(READS, ast.copy_location(reads, node)))
            ast.fix_missing_locations(node)
    return frozenset(names)


def _signature(ctx: LoweringContext, args: ast.arguments, node) -> tuple[tuple, dict]:
    """The parameters of a local function and its defaults' values (evaluated now)."""
    if args.vararg or args.kwarg or args.posonlyargs or args.kwonlyargs:
        ctx.unsupported(node, "a function defined in a kernel with *args, **kwargs, "
                              "positional-only or keyword-only parameters", DEF_HINT)
    params = tuple(a.arg for a in args.args)
    with_defaults = params[len(params) - len(args.defaults):]
    defaults = {p: ctx.expr(d) for p, d in zip(with_defaults, args.defaults, strict=True)}
    return params, defaults


def expr_lambda(ctx: LoweringContext, node: ast.Lambda):
    """`lambda x, c=1.0: ...`: a local function (a Static, as other functions are)."""
    from .expressions import Static
    if _frames:
        ctx.unsupported(node, "a lambda inside a function defined in a kernel", DEF_HINT)
    params, defaults = _signature(ctx, node.args, node)
    return Static(LocalFunction("<lambda>", params, defaults, node.body))


def stmt_def(ctx: LoweringContext, s: ast.FunctionDef) -> None:
    """`def f(x): return e` inside a kernel binds f to a local function."""
    from .expressions import Static
    body = s.body[1:] if (s.body and isinstance(s.body[0], ast.Expr)
                          and isinstance(s.body[0].value, ast.Constant)
                          and isinstance(s.body[0].value.value, str)) else s.body
    if s.decorator_list:
        ctx.unsupported(s, "a decorated function defined inside a kernel", DEF_HINT)
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        ctx.unsupported(s, "a function defined inside a kernel whose body is more than "
                           "one `return` of an expression", DEF_HINT)
    params, defaults = _signature(ctx, s.args, s)
    check_binding(ctx, s.name, s)
    ctx.env[s.name] = Static(LocalFunction(s.name, params, defaults, body[0].value))


def check_binding(ctx: LoweringContext, name: str, node) -> None:
    """A local function is bound only to a name that nothing else binds in the kernel
    (annotate_reads knows its calls by that name)."""
    if name not in ctx.src.local_functions:
        ctx.unsupported(node, f"binding a function defined in the kernel to '{name}', "
                              f"which the kernel binds to other values too (or a copy of "
                              f"its name)",
                        "give the function a name of its own and call it by that name")


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
    if not (isinstance(node.func, ast.Lambda) or isinstance(node.func, ast.Name)
            and node.func.id in ctx.src.local_functions):
        ctx.unsupported(node, f"calling the local function `{fn.name}` through "
                              f"`{ast.unparse(node.func)}`",
                        "call it by the name its definition binds")
    bound = {p: ctx.expr(a) for p, a in zip(fn.params, node.args, strict=False)}
    keywords = [k for k in node.keywords if k.arg != READS]
    for k in keywords:
        if k.arg not in fn.params or k.arg in bound:
            ctx.unsupported(node, f"calling `{fn.name}` with the keyword {k.arg}= "
                                  f"(unknown or given twice)")
        bound[k.arg] = ctx.expr(k.value)
    for p in fn.params:
        if p not in bound:
            if p not in fn.defaults:
                ctx.unsupported(node, f"calling `{fn.name}` without its argument '{p}'")
            bound[p] = fn.defaults[p]
    if any(isinstance(getattr(v, "obj", None), LocalFunction) for v in bound.values()):
        ctx.unsupported(node, f"passing a local function to `{fn.name}`",
                        "call the function in its expression by its own name")
    touched = set(bound) | {p for f, _ in _frames for p in f.params}
    before = {p: ctx.env.get(p, _UNBOUND) for p in touched}
    for _, hid in reversed(_frames):       # the kernel's own values of the names
        _rebind(ctx, hid)
    saved = {p: ctx.env.get(p, _UNBOUND) for p in fn.params}
    ctx.env.update(bound)
    _frames.append((fn, saved))
    try:
        out = ctx.expr(fn.body)
        if isinstance(getattr(out, "obj", None), LocalFunction):
            ctx.unsupported(node, f"a local function `{fn.name}` returning a function",
                            "call the function it returns where it is defined")
        return out
    finally:
        _frames.pop()
        _rebind(ctx, before)


def _rebind(ctx: LoweringContext, values: dict) -> None:
    for p, v in values.items():
        if v is _UNBOUND:
            ctx.env.pop(p, None)
        else:
            ctx.env[p] = v
