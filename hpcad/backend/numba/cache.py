"""The on-disk cache of compiled code. Generated source is written once per IR hash (plus
hpcad, numba and Python versions, a hash of this backend's own source, so that a changed
code generator never reuses what an older one wrote, and whether indices are checked,
HPCAD_BOUNDSCHECK) as a module in the cache directory;
numba's own cache (`cache=True`) keeps the machine code next to it. A file lock per entry
makes ranks that start together compile once: the first compiles and saves, the others wait
and load."""
from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import sys
from contextlib import contextmanager
from pathlib import Path

BOUNDSCHECK = "HPCAD_BOUNDSCHECK"


def boundscheck() -> bool:
    """Whether generated code checks every index (HPCAD_BOUNDSCHECK=1): an index out of
    bounds then raises instead of reading or writing outside the array."""
    return os.environ.get(BOUNDSCHECK, "0").strip() not in ("", "0")


def _codegen_version() -> str:
    """A hash of the backend's source files (the code generator and what it calls)."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


CODEGEN_VERSION = _codegen_version()


def cache_dir() -> Path:
    path = os.environ.get("HPCAD_CACHE_DIR")
    base = Path(path) if path else Path(os.environ.get("XDG_CACHE_HOME",
                                                       Path.home() / ".cache")) / "hpcad"
    base.mkdir(parents=True, exist_ok=True)
    return base


def entry_key(ir_text: str) -> str:
    import numba

    from ... import __version__
    h = hashlib.sha256()
    checked = f"{BOUNDSCHECK}={int(boundscheck())}"
    for part in (ir_text, __version__, numba.__version__, CODEGEN_VERSION, sys.version, checked):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


@contextmanager
def locked(path: Path):
    with open(str(path) + ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_once(path: Path, text: str) -> None:
    """Write atomically unless an identical file exists (rewriting would make numba's cache,
    which checks the source file's time stamp, stale)."""
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def import_module(path: Path, name: str):
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
