"""numba's cache of the functions of a generated module, kept in the module's verified cache
entry (cache.py): numba's index and machine code are read only as bytes the entry checked
against its manifest, and written through the entry (random name, rename, manifest)."""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
from contextlib import contextmanager

from numba.core import caching

from .cache import warn


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
        self._filename_base = self.get_filename_base(f"{entry.name}.{py_func.__qualname__}",
                                                     getattr(sys, "abiflags", ""))


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
        try:
            return super().load_overload(sig, target_context)
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            warn(f"hpcad ignores numba's cache of {self._entry.path} ({e}): it recompiles")
            return None

    def save_overload(self, sig, data):
        if self._entry.writable:
            super().save_overload(sig, data)
