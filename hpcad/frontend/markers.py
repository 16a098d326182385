"""The marker table: which Python callables are parallel constructs. It is read from the
declarative files in markers/*.toml (one per framework) plus any directory listed in
HPCAD_MARKERS_PATH, so supporting a framework means adding a file, not changing the engine."""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import HpcadError

CONSTRUCTS = ("parallel_for", "join", "spawn", "sync", "par_map", "par_sum")


@dataclass(frozen=True)
class Marker:
    call: str            # import path of the callable, e.g. "numba.prange"
    construct: str       # one of CONSTRUCTS
    options: tuple       # keyword arguments the construct accepts
    source: str          # the marker file, for messages


def marker_dirs() -> list[Path]:
    dirs = [Path(__file__).resolve().parents[2] / "markers",
            Path(sys.prefix) / "share" / "hpcad" / "markers"]
    extra = os.environ.get("HPCAD_MARKERS_PATH", "")
    dirs += [Path(p) for p in extra.split(os.pathsep) if p]
    return [d for d in dirs if d.is_dir()]


def _key(obj):
    """Identity of a callable; a classmethod (e.g. MPI.Request.Waitall) is a new bound
    object at every attribute access, so it is known by its class and name."""
    owner = getattr(obj, "__self__", None)
    if owner is not None and isinstance(owner, type):
        return (id(owner), getattr(obj, "__name__", ""))
    return id(obj)


def _resolve(path: str):
    """The object an import path names, or None if its module is not installed."""
    parts = path.split(".")
    for k in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        try:
            for attr in parts[k:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


@lru_cache(maxsize=1)
def marker_table() -> dict[int, tuple[object, Marker]]:
    """id(callable) -> (callable, marker) for every marker whose module is installed."""
    table = {}
    for directory in marker_dirs():
        for file in sorted(directory.glob("*.toml")):
            try:
                data = tomllib.loads(file.read_text())
            except tomllib.TOMLDecodeError as e:
                raise HpcadError(f"marker file {file}: {e}") from None
            for entry in data.get("marker", []):
                construct = entry.get("construct")
                if construct not in CONSTRUCTS:
                    raise HpcadError(f"marker file {file}: construct {construct!r} for "
                                     f"{entry.get('call')!r} is not one of {CONSTRUCTS}")
                obj = _resolve(entry["call"])
                if obj is not None:
                    table[_key(obj)] = (obj, Marker(entry["call"], construct,
                                                  tuple(entry.get("options", ())), str(file)))
    return table


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


@lru_cache(maxsize=1)
def mpi_table() -> tuple[dict, dict, dict]:
    """(communicator and request methods by name, communicator attributes by name,
    id(function) -> (function, MpiCall)) from every marker file."""
    methods, attributes, functions = {}, {}, {}
    for directory in marker_dirs():
        for file in sorted(directory.glob("*.toml")):
            data = tomllib.loads(file.read_text())
            for entry in data.get("method", []):
                methods[entry["name"]] = _mpi_call(entry, file)
            for entry in data.get("request_method", []):
                methods["request." + entry["name"]] = _mpi_call(entry, file)
            for entry in data.get("attribute", []):
                attributes[entry["name"]] = _mpi_call(entry, file)
            for entry in data.get("function", []):
                obj = _resolve(entry["call"])
                if obj is not None:
                    functions[_key(obj)] = (obj, _mpi_call(entry, file))
    return methods, attributes, functions


def _mpi_call(entry: dict, file: Path) -> MpiCall:
    return MpiCall(entry["op"], tuple(entry.get("args", ())),
                   tuple(entry.get("rename", {}).items()), str(file))


def mpi_function(obj) -> MpiCall | None:
    got = mpi_table()[2].get(_key(obj))
    return got[1] if got is not None else None


@lru_cache(maxsize=1)
def mpi_frameworks() -> dict[str, tuple[str, ...]]:
    """The MPI frameworks the marker files describe (their top-level module, e.g. "mpi4py")
    -> what a kernel may call from each, as spelled in a kernel, for messages."""
    out = {}
    for directory in marker_dirs():
        for file in sorted(directory.glob("*.toml")):
            data = tomllib.loads(file.read_text())
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
