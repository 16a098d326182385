"""numba's cache of the functions of a generated module, kept in the module's verified cache
entry (cache.py): numba's index and machine code are read only as bytes the entry checked
against its manifest, and written through the entry (random name, rename, manifest).

Loading machine code needs less of numba than compiling: the runtime (NRT) and the symbols
the code calls. numba's own load first refreshes its whole target context, which imports
every lowering registry (and, for BLAS, scipy.linalg): most of a warm start. hpcad starts
the runtime only, and links code whose outside symbols LLVM already knows; code calling
anything else (a symbol a registry registers on import) gets numba's full refresh first,
as does every compilation (numba's compiler refreshes the context itself). An unknown
symbol is never linked as is: LLVM would bind it to address 0."""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
from contextlib import contextmanager

import llvmlite.binding as ll
from numba.core import caching
from numba.core.runtime import rtsys

from .cache import short_name, warn


def unknown_symbols(libdata) -> list[str] | None:
    """The names that numba's serialized machine code (`libdata`: name, 'object', (object
    code, its module's bitcode)) takes from outside itself and LLVM cannot resolve now
    (LLVM's intrinsics aside); None if libdata is not in that form."""
    try:
        _name, kind, (_code, bitcode) = libdata
    except (TypeError, ValueError):
        return None
    if kind != "object" or not isinstance(bitcode, bytes):
        return None
    module = ll.parse_bitcode(bitcode)
    return [g.name for g in (*module.functions, *module.global_variables)
            if g.is_declaration and not g.name.startswith("llvm.")
            and not ll.address_of_symbol(g.name)]


class _Locator(caching._CacheLocator):
    """numba's files of a generated function lie in its entry's directory; the source stamp
    is the hash of the source hpcad runs."""

    def __init__(self, py_func, entry):
        self._py_file = str(entry.path)
        self._lineno = py_func.__code__.co_firstlineno
        self._stamp = hashlib.sha256(entry.source.encode()).digest()
        self._cache_path = str(entry.path.parent)

    def ensure_cache_path(self):
        pass

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return self._stamp

    def get_disambiguator(self):
        return str(self._lineno)


class _Impl(caching.CompileResultCacheImpl):
    def __init__(self, py_func, entry):
        # not numba's __init__, which would try its own locators (or NUMBA_CACHE_LOCATOR_CLASSES)
        self._lineno = py_func.__code__.co_firstlineno
        self._locator = _Locator(py_func, entry)
        self._filename_base = self.get_filename_base(
            f"{entry.name}.{short_name(py_func.__qualname__)}", getattr(sys, "abiflags", ""))

    def rebuild(self, target_context, payload):
        """numba's compile result from its cached payload, linked once LLVM knows every
        symbol its code calls: after numba's full refresh where the runtime alone is not
        enough (the module docstring)."""
        if unknown_symbols(payload[0]) != []:
            target_context.refresh()
        return super().rebuild(target_context, payload)


class _VerifiedFiles(caching.IndexDataCacheFile):
    """numba's index and data files, read only as bytes the entry verified and written
    through the entry (random name, rename, manifest)."""

    def __init__(self, entry, filename_base: str, source_stamp: bytes):
        super().__init__(str(entry.path.parent), filename_base, source_stamp)
        self._entry = entry

    def _load_index(self):
        raw = self._entry.read(self._index_name)
        if raw is None:
            return {}
        stream = io.BytesIO(raw)
        if pickle.load(stream) != self._version:
            return {}
        stamp, overloads = pickle.loads(stream.read())
        return overloads if stamp == self._source_stamp else {}

    def _load_data(self, name):
        raw = self._entry.read(name)
        if raw is None:
            raise FileNotFoundError(name)     # numba's load() takes this as a miss
        return pickle.loads(raw)

    @contextmanager
    def _open_for_write(self, filepath):
        buffer = io.BytesIO()
        yield buffer
        self._entry.write(os.path.basename(filepath), buffer.getvalue())


class EntryCache(caching.FunctionCache):
    """numba's cache of one generated function, kept in (and verified with) its entry."""

    def __init__(self, py_func, entry):
        self._name = repr(py_func)
        self._py_func = py_func
        self._impl = _Impl(py_func, entry)
        self._cache_path = str(entry.path.parent)
        self._cache_file = _VerifiedFiles(entry, self._impl.filename_base,
                                          self._impl.locator.get_source_stamp())
        self._entry = entry
        self.enable()

    def load_overload(self, sig, target_context):
        """numba's load_overload, starting the runtime instead of refreshing the whole
        target context (the module docstring; _Impl.rebuild refreshes it where needed)."""
        rtsys.initialize(target_context)
        try:
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            warn(f"hpcad ignores numba's cache of {self._entry.path} ({e}): it recompiles")
            return None

    def save_overload(self, sig, data):
        if self._entry.writable:
            super().save_overload(sig, data)


class HelperCache(caching.NullCache):
    """numba's cache of one of the functions every generated module calls (helpers.py),
    kept in a verified cache entry of its own, named after the function and keyed by the
    text of its module and of this backend (cache.entry_key): a fresh process loads it for
    each signature compiled before on this machine. Each load and each save opens the
    entry for that moment only (its lock, verification and manifest as for a kernel's
    entry): numba loads or compiles a helper while it types a kernel, with the kernel's
    own entry held, and the helper's lock is never held while waiting for another."""

    def __init__(self, py_func, module_file: str):
        self._py_func, self._module_file = py_func, module_file
        self._entry_name: tuple[str, str] | None = None

    @property
    def cache_path(self):
        from .cache import cache_path
        try:
            return str(cache_path())
        except OSError:             # no home directory: nothing is cached
            return None

    def _named(self) -> tuple[str, str]:
        """(the entry's name, its source: the helpers' module)."""
        if self._entry_name is None:
            from pathlib import Path

            from .cache import entry_key
            text = Path(self._module_file).read_text()
            self._entry_name = (f"helper_{self._py_func.__name__}_{entry_key(text)}", text)
        return self._entry_name

    def load_overload(self, sig, target_context):
        from .cache import entry
        with entry(*self._named()) as found:
            if found.store is None or not found.verified:
                return None
            return EntryCache(self._py_func, found).load_overload(sig, target_context)

    def save_overload(self, sig, data):
        from .cache import entry
        with entry(*self._named()) as found:
            if found.writable:
                EntryCache(self._py_func, found).save_overload(sig, data)
