"""The marker table: which Python callables are parallel constructs. It is read from the
declarative files in markers/*.toml (one per framework) plus any directory listed in
HPCAD_MARKERS_PATH, so supporting a framework means adding a file, not changing the engine.
A marker file is data: it may name callables of the trusted frameworks only (TRUSTED), and
naming one imports nothing (a kernel's framework is imported by the kernel's module); any
other callable is made a construct from Python code (register_marker)."""
from __future__ import annotations

import inspect
import os
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import HpcadError

CONSTRUCTS = ("parallel_for", "join", "spawn", "sync", "par_map", "par_sum")
# the keyword arguments the frontend gives a meaning to, per construct (frontend/parallel.py)
OPTIONS = {"parallel_for": ("allow_races",)}

# the modules whose callables a marker file may name
TRUSTED = ("mpi4py", "numba_mpi", "numba", "hpcad")

# the keys of a marker file: top-level (type) and, per kind of entry, (type, required)
_TOP = {"framework": str, "comm_type": str}
_ENTRY = {"call": (str, True), "op": (str, True), "name": (str, True), "args": (list, False),
          "rename": (dict, False), "results": (list, False)}
_SECTIONS = {
    "marker": {"call": (str, True), "construct": (str, True), "options": (list, False)},
    "method": {k: _ENTRY[k] for k in ("name", "op", "args", "rename", "results")},
    "request_method": {k: _ENTRY[k] for k in ("name", "op", "args", "rename", "results")},
    "attribute": {k: _ENTRY[k] for k in ("name", "op")},
    "function": {k: _ENTRY[k] for k in ("call", "op", "args", "rename", "results")},
}
_TYPE_NAMES = {str: "a string", list: "a list of strings", dict: "a table of strings"}


@dataclass(frozen=True)
class Marker:
    call: str            # import path of the callable, e.g. "numba.prange"
    construct: str       # one of CONSTRUCTS
    options: tuple       # keyword arguments the construct accepts
    source: str          # the marker file (or the register_marker call), for messages


def marker_dirs() -> list[Path]:
    dirs = [Path(__file__).resolve().parents[2] / "markers",
            Path(sys.prefix) / "share" / "hpcad" / "markers"]
    extra = os.environ.get("HPCAD_MARKERS_PATH", "")
    dirs += [Path(p) for p in extra.split(os.pathsep) if p]
    return [d for d in dirs if d.is_dir()]


@lru_cache(maxsize=1)
def marker_files() -> tuple[tuple[Path, dict], ...]:
    """(file, its table) for every marker file, each checked against the format
    (markers/README.md); an HpcadError naming the file and key otherwise."""
    out = []
    for directory in marker_dirs():
        for file in sorted(directory.glob("*.toml")):
            try:
                data = tomllib.loads(file.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise HpcadError(f"marker file {file} is not valid TOML ({e}); fix it, or "
                                 f"remove its directory from HPCAD_MARKERS_PATH") from None
            _check_file(file, data)
            out.append((file, data))
    return tuple(out)


def _bad(file: Path, where: str, what: str) -> HpcadError:
    return HpcadError(f"marker file {file}, {where}: {what} (the format is in "
                      f"markers/README.md)")


def _check_file(file: Path, data: dict) -> None:
    for key, value in data.items():
        if key in _SECTIONS:
            if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
                raise _bad(file, f"key `{key}`", f"write each entry as a [[{key}]] table")
            for k, entry in enumerate(value, 1):
                _check_entry(file, f"[[{key}]] entry {k}", _SECTIONS[key], entry)
        elif key in _TOP:
            if not isinstance(value, _TOP[key]):
                raise _bad(file, f"key `{key}`", f"expected {_TYPE_NAMES[_TOP[key]]}")
        else:
            raise _bad(file, f"key `{key}`", f"unknown key; known: "
                       f"{', '.join(list(_TOP) + list(_SECTIONS))}")


def _check_entry(file: Path, where: str, schema: dict, entry: dict) -> None:
    for key, (_, required) in schema.items():
        if required and key not in entry:
            raise _bad(file, where, f"key `{key}` is missing")
    for key, value in entry.items():
        if key not in schema:
            raise _bad(file, f"{where}, key `{key}`", f"unknown key; known: {', '.join(schema)}")
        kind = schema[key][0]
        items = value.values() if isinstance(value, dict) else value
        if not isinstance(value, kind) or (kind is not str and
                                           not all(isinstance(x, str) for x in items)):
            raise _bad(file, f"{where}, key `{key}`", f"expected {_TYPE_NAMES[kind]}, got "
                       f"{value!r}")
    if "construct" in entry and entry["construct"] not in CONSTRUCTS:
        raise _bad(file, f"{where}, key `construct`", f"{entry['construct']!r} is not one of "
                   f"{', '.join(CONSTRUCTS)}")
    unknown = set(entry.get("options", ())) - set(OPTIONS.get(entry.get("construct"), ()))
    if unknown:
        raise _bad(file, f"{where}, key `options`", _unknown_options(entry["construct"], unknown))
    call = entry.get("call")
    if call is not None and call.split(".")[0] not in TRUSTED:
        hint = (f"make another callable a construct from Python: hpcad.register_marker(fn, "
                f"\"{entry['construct']}\")" if "construct" in entry else
                "MPI calls come from mpi4py and numba_mpi only")
        raise _bad(file, f"{where}, key `call`", f"{call!r} is not in a module a marker file "
                   f"may name ({', '.join(TRUSTED)}): a marker file is data and imports no "
                   f"code; {hint}")


def _unknown_options(construct: str, unknown: set) -> str:
    known = OPTIONS.get(construct, ())
    return (f"{construct} takes no keyword {', '.join(sorted(unknown))}; it takes "
            + (", ".join(known) if known else "none"))


def _key(obj):
    """Identity of a callable; a classmethod (e.g. MPI.Request.Waitall) is a new bound
    object at every attribute access, so it is known by its class and name."""
    owner = getattr(obj, "__self__", None)
    if owner is not None and isinstance(owner, type):
        return (id(owner), getattr(obj, "__name__", ""))
    return id(obj)


def _resolve(path: str):
    """The object an import path names, or None while its module is not imported: only
    modules already in sys.modules are looked in (a kernel can only call what its module
    imported), so a marker file never imports anything."""
    parts = path.split(".")
    for k in range(len(parts) - 1, 0, -1):
        obj = sys.modules.get(".".join(parts[:k]))
        if obj is None:
            continue
        try:
            for attr in parts[k:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


_registered: dict = {}    # _key(callable) -> (callable, Marker), from register_marker


def register_marker(fn, construct: str, options=()) -> None:
    """Make the Python callable `fn` the parallel construct `construct` (one of CONSTRUCTS;
    markers/README.md says what each means) in kernels, accepting the keyword arguments in
    `options`: a framework outside those marker files may name (TRUSTED)."""
    if not callable(fn):
        raise HpcadError(f"register_marker: {fn!r} is not callable; pass the function "
                         f"itself, e.g. hpcad.register_marker(mylib.pfor, \"parallel_for\")")
    if construct not in CONSTRUCTS:
        raise HpcadError(f"register_marker: construct {construct!r} is not one of "
                         f"{', '.join(CONSTRUCTS)}")
    options = (options,) if isinstance(options, str) else tuple(options)
    if not all(isinstance(o, str) for o in options):
        raise HpcadError(f"register_marker: options must be keyword names, got {options!r}")
    unknown = set(options) - set(OPTIONS.get(construct, ()))
    if unknown:
        raise HpcadError(f"register_marker: {_unknown_options(construct, unknown)}")
    caller = sys._getframe(1)
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    _registered[_key(fn)] = (fn, Marker(name, construct, options, f"register_marker at "
                                        f"{caller.f_code.co_filename}:{caller.f_lineno}"))


def marker_table() -> dict:
    """_key(callable) -> (callable, marker) for every marker whose module is imported, and
    every registered one."""
    table = {}
    for file, data in marker_files():
        for entry in data.get("marker", []):
            obj = _resolve(entry["call"])
            if obj is not None:
                table[_key(obj)] = (obj, Marker(entry["call"], entry["construct"],
                                                tuple(entry.get("options", ())), str(file)))
    table.update(_registered)
    return table


def numba_python_function(obj):
    """The Python function of a `numba.njit` function (a numba dispatcher), else None: a
    kernel calling one inlines that function as it inlines another kernel, and a kernel made
    from one (`hpcad.kernel(f)`) is made from it; hpcad compiles and differentiates the
    Python code, never numba's machine code. Nothing is imported: a dispatcher exists only
    where numba is. A function a marker file names, or one of an MPI framework's (numba_mpi's
    functions are numba.njit functions), is not one: the frontend lowers it as that."""
    module = sys.modules.get("numba.core.dispatcher")
    if module is None or not isinstance(obj, module.Dispatcher):
        return None
    if marker_of(obj) is not None or mpi_function(obj) is not None or \
            mpi_framework_of(obj) is not None:
        return None
    fn = getattr(obj, "py_func", None)
    return fn if inspect.isfunction(fn) else None


class InlinedFunction:
    """A Python function a kernel calls that is not a kernel, as the call rules of kernels
    take it: inlined from its source, with no derivative rules of its own. A `numba.njit`
    function's (`declared`: the argument types of the signatures it was compiled for
    eagerly, `@numba.njit("f8(f8)")`, as (kind, dtype name, ndim) per argument, numba
    converting other arguments to them; empty where it takes any), a plain function of the
    user's code (`user_function`) or one of hpcad's library (frontend/library.py)."""
    __hpcad_kernel__ = True
    is_custom = False

    def __init__(self, py_func, declared: tuple = ()):
        self.py_func = py_func
        self.declared = declared
        self.__name__ = py_func.__name__


def numba_declared_types(dispatcher) -> tuple:
    """The argument types of a numba dispatcher's eager signatures (InlinedFunction.declared):
    per signature, per argument ("array", dtype name, ndim) or ("scalar", name, 0)."""
    if getattr(dispatcher, "_can_compile", True):
        return ()
    out = []
    for sig in getattr(dispatcher, "signatures", ()):
        out.append(tuple(("array", str(t.dtype), t.ndim) if hasattr(t, "ndim")
                         and hasattr(t, "dtype") else ("scalar", str(t), 0) for t in sig))
    return tuple(out)


def user_function(obj) -> bool:
    """Whether obj is a plain Python function of the user's code, which a kernel inlines as
    it inlines another kernel: a `def` (not a lambda, whose source is part of a line) whose
    source file lies outside the Python installation's libraries, its installed packages and
    hpcad. A library's function is not inlined: its source is not the user's to change."""
    if not inspect.isfunction(obj) or obj.__name__ == "<lambda>":
        return False
    try:
        file = inspect.getsourcefile(obj)
    except TypeError:
        return False
    if file is None:
        return False
    path = os.path.realpath(file)
    return not any(path.startswith(root + os.sep) for root in _library_roots())


@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))   # hpcad
    return tuple(sorted(roots))


def marker_of(obj) -> Marker | None:
    got = marker_table().get(_key(obj))
    return got[1] if got is not None else None


@dataclass(frozen=True)
class MpiCall:
    """An MPI call a marker file declares: the `mpi` op it lowers to and its parameters
    (in the framework's order, `name=default` for optional ones)."""
    op: str
    params: tuple
    rename: tuple      # (framework name, op operand name) pairs
    source: str
    results: tuple = ()   # what the call returns, by name (frontend/mpi.py), if not the op's


@lru_cache(maxsize=1)
def mpi_declared() -> tuple[dict, dict, tuple]:
    """(methods by name, attributes by name, (import path, MpiCall) of functions)."""
    methods, attributes, functions = {}, {}, []
    for file, data in marker_files():
        for entry in data.get("method", []):
            methods[entry["name"]] = _mpi_call(entry, file)
        for entry in data.get("request_method", []):
            methods["request." + entry["name"]] = _mpi_call(entry, file)
        for entry in data.get("attribute", []):
            attributes[entry["name"]] = _mpi_call(entry, file)
        functions += [(entry["call"], _mpi_call(entry, file))
                      for entry in data.get("function", [])]
    return methods, attributes, tuple(functions)


def mpi_table() -> tuple[dict, dict, dict]:
    """(communicator and request methods by name, communicator attributes by name,
    _key(function) -> (function, MpiCall) for the functions whose module is imported)
    from every marker file."""
    methods, attributes, declared = mpi_declared()
    functions = {}
    for path, call in declared:
        obj = _resolve(path)
        if obj is not None:
            functions[_key(obj)] = (obj, call)
    return methods, attributes, functions


def _mpi_call(entry: dict, file: Path) -> MpiCall:
    return MpiCall(entry["op"], tuple(entry.get("args", ())),
                   tuple(entry.get("rename", {}).items()), str(file),
                   tuple(entry.get("results", ())))


def mpi_function(obj) -> MpiCall | None:
    got = mpi_table()[2].get(_key(obj))
    return got[1] if got is not None else None


@lru_cache(maxsize=1)
def mpi_frameworks() -> dict[str, tuple[str, ...]]:
    """The MPI frameworks the marker files describe (their top-level module, e.g. "mpi4py")
    -> what a kernel may call from each, as spelled in a kernel, for messages."""
    out = {}
    for file, data in marker_files():
        spellings = [f"comm.{e['name']}" for e in data.get("method", [])] + \
            [f"comm.{e['name']}" for e in data.get("attribute", [])] + \
            [f"request.{e['name']}" for e in data.get("request_method", [])] + \
            [e["call"].replace("mpi4py.", "") for e in data.get("function", [])]
        if spellings:
            out[data.get("framework", file.stem)] = tuple(spellings)
    return out


def mpi_framework_of(obj) -> str | None:
    """The MPI framework obj belongs to (a function, method, class or object of it)."""
    for o in (obj, getattr(obj, "__self__", None), type(obj)):
        module = getattr(o, "__module__", None)
        if isinstance(module, str) and module.split(".")[0] in mpi_frameworks():
            return module.split(".")[0]
    return None
