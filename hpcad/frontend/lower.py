"""Python kernel source -> IR, specialized on argument types: a kernel's source
(KernelSource), and the lowering of an entry kernel and every kernel it calls into one
module (ProgramLowering), each body by a LoweringContext (context.py) whose rules are the
tables STATEMENTS (statements.py) and EXPRESSIONS (expressions.py). Calls to other kernels
become `func.call` ops on callee functions lowered for the actual argument types (inlined
later)."""
from __future__ import annotations

import ast
import inspect
import textwrap
import types

import numpy as np

from ..errors import UnsupportedConstruct
from ..ir.core import Function, Module
from . import closures
from .context import LoweringContext
from .markers import numba_python_function


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
        self.local_functions = closures.annotate_reads(self.fdef)
        self.globals = dict(py_func.__globals__)
        closure = inspect.getclosurevars(py_func)
        self.globals.update(closure.nonlocals)
        params = self.fdef.args   # in the order inspect.signature binds them (kernel.py)
        self.arg_names = [a.arg for a in params.posonlyargs + params.args + params.kwonlyargs]


class ProgramLowering:
    """Lowers an entry kernel and, on demand, every kernel it calls, into one module."""

    def __init__(self, parallel: bool = False):
        self.parallel = parallel    # @kernel(parallel=True): array statements as parallel loops
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
        if py_func in self.active:
            raise UnsupportedConstruct(f"{node_loc[0]}:{node_loc[1]}: recursive kernel call to "
                                       f"'{py_func.__name__}' is not supported in hpcad kernels")
        name = self.done.get(key)
        if name is not None:
            return self.module.functions[name]
        base = py_func.__name__
        name, k = base, 0
        while name in self.module.functions or name in self.done.values():
            k += 1
            name = f"{base}.{k}"
        self.active.append(py_func)
        self.done[key] = name   # taken now: a callee of the same name lowered meanwhile
        try:
            src = KernelSource(py_func)
            if len(src.arg_names) != len(arg_types):
                raise UnsupportedConstruct(f"{node_loc[0]}:{node_loc[1]}: '{base}' takes "
                                           f"{len(src.arg_names)} arguments, "
                                           f"{len(arg_types)} given")
            ctx = LoweringContext(src, arg_types, self.module, name, self)
            fn = ctx.lower()
            if ctx.retyped is not None:   # an early return's type, known now (context.py)
                fn = LoweringContext(src, arg_types, self.module, name, self).lower(
                    ctx.retyped)
        except BaseException:
            del self.done[key]
            raise
        finally:
            self.active.pop()
        self.module.add(fn)
        return fn


def lower_kernel(py_func, arg_types, parallel: bool = False) -> Module:
    """The module of `py_func` specialized on `arg_types`; its entry is the kernel itself.
    parallel: array expressions and reductions become parallel loops (numba's parfors)."""
    prog = ProgramLowering(parallel)
    entry = prog.function_for(py_func, arg_types, ("<call>", 0))
    prog.module.entry = entry.name
    return prog.module


_NUMBER = (bool, int, float, complex, np.number)
_MISSING = object()
GlobalReads = tuple[tuple[dict, str, object], ...]


def global_numbers(py_func, seen: set | None = None) -> GlobalReads:
    """The numbers a kernel reads from module globals (`ALPHA`, `cfg.ALPHA`), its callee
    kernels' included, as (namespace, name, value now): lowering freezes them, so a
    lowering made before one changed differs from one made after (globals_changed)."""
    seen = set() if seen is None else seen
    if py_func in seen:
        return ()
    seen.add(py_func)
    names = py_func.__code__.co_names
    out: list[tuple[dict, str, object]] = []
    for name in names:
        v = py_func.__globals__.get(name, _MISSING)
        if isinstance(v, _NUMBER):
            out.append((py_func.__globals__, name, v))
        elif isinstance(v, types.ModuleType):
            space = vars(v)   # (not getattr: no module __getattr__ runs)
            out.extend((space, a, space[a]) for a in names
                       if isinstance(space.get(a), _NUMBER))
        elif getattr(v, "__hpcad_kernel__", False) and hasattr(v, "py_func"):
            out.extend(global_numbers(v.py_func, seen))
        elif numba_python_function(v) is not None:
            out.extend(global_numbers(numba_python_function(v), seen))
    return tuple(out)


def globals_changed(reads: GlobalReads) -> bool:
    """Whether a number global_numbers recorded has another value now."""
    for namespace, name, value in reads:
        now = namespace.get(name, _MISSING)
        if now is not value and not (type(now) is type(value) and now == value):
            return True
    return False
