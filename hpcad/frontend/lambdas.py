"""`name = lambda x, y: expression` in a kernel's body, called by that name (numba compiles
such lambdas as closures): each call lowers the expression where it is made, the
parameters bound to the call's arguments and every other name read as it is there, as
Python and numba read a lambda's free names when it runs. Refused: a lambda inside a loop
or an `if`, a name bound to one more than once, defaults, `*args` and keyword arguments."""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import LoweringContext


class LocalLambda:
    """A lambda bound to a name of the kernel: its node, lowered at each call."""

    def __init__(self, node: ast.Lambda, name: str):
        self.node, self.name = node, name

    def call(self, ctx: LoweringContext, call: ast.Call):
        from .statements import assign
        params = [a.arg for a in self.node.args.args]
        if call.keywords or any(isinstance(a, ast.Starred) for a in call.args):
            ctx.unsupported(call, f"calling the lambda '{self.name}' with keyword or starred "
                                  f"arguments", "pass its arguments by position")
        if len(call.args) != len(params):
            ctx.unsupported(call, f"calling the lambda '{self.name}' of {len(params)} "
                                  f"parameter(s) with {len(call.args)} argument(s)",
                            "pass one argument per parameter")
        values = [ctx.expr(a) for a in call.args]
        saved = {p: ctx.env[p] for p in params if p in ctx.env}
        for p, v, a in zip(params, values, call.args, strict=True):
            target = ast.copy_location(ast.Name(id=p, ctx=ast.Store()), a)
            assign(ctx, target, v)
        try:
            return ctx.expr(self.node.body)
        finally:
            for p in params:
                if p in saved:
                    ctx.env[p] = saved[p]
                else:
                    ctx.env.pop(p, None)


def bind_lambda(ctx: LoweringContext, s: ast.Assign) -> None:
    """`name = lambda ...` at the top level of the kernel's body: binds name to it."""
    lam = s.value
    assert isinstance(lam, ast.Lambda)
    if len(s.targets) != 1 or not isinstance(s.targets[0], ast.Name):
        ctx.unsupported(s, "a `lambda` bound other than to one name",
                        "write `name = lambda x: ...` and call name(...)")
    name = s.targets[0].id
    fdef = ctx.src.fdef
    if not any(stmt is s for stmt in fdef.body):
        ctx.unsupported(s, "a `lambda` defined inside a loop or an `if`",
                        "define it at the top level of the kernel's body, before the loop")
    a = lam.args
    if a.defaults or a.kw_defaults or a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
        ctx.unsupported(s, "a `lambda` with defaults, *args, keyword-only parameters or "
                           "**kwargs", "give it plain parameters: lambda x, y: ...")
    if any(isinstance(n, ast.Lambda) for n in ast.walk(lam.body)):
        ctx.unsupported(s, "a `lambda` inside a `lambda`", "write the inner one out")
    for node in ast.walk(fdef):
        for t in _assigned_names(node):
            if t.id == name and node is not s:
                ctx.unsupported(node, f"binding '{name}' again after the lambda at line "
                                      f"{s.lineno}", "give the lambda a name of its own")
    from .expressions import Static
    ctx.env[name] = Static(LocalLambda(lam, name))


def _assigned_names(node) -> list[ast.Name]:
    """The names node binds (assignment, augmented assignment, for targets, :=)."""
    targets: list = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.NamedExpr)):
        targets = [node.target]
    return [n for t in targets for n in ast.walk(t)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
