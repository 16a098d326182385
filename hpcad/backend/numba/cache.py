"""The on-disk cache of compiled code, private to the user who writes it. An entry is the
generated source of one IR function (keyed by the IR, the hpcad/numba/Python versions, a hash
of this backend's source and HPCAD_BOUNDSCHECK) and numba's index and machine code for it.
Every file is written under a random name and renamed into place (a process killed before
the rename leaves that file, which the next writer of the entry removes); a manifest signed
with the cache's key (HMAC-SHA256) lists the hash of each, and nothing is loaded unless it
matches:
hpcad runs its own copy of the source (never a `.pyc`) and unpickles only verified bytes.
An entry that does not verify is ignored with one warning and recompiled; a cache that is
unsafe, read-only, full or locked too long makes hpcad compile in memory, with a warning;
on a file system that cannot lock files hpcad loads what the cache holds and writes nothing.

Layout of a cache directory (made 0700): `.key` (the HMAC key, 0600), and per entry
NAME_KEY.py, NAME_KEY.manifest, NAME_KEY.lock (held while one process compiles it; the
others wait and load) and numba's NAME_KEY.<function>-<line>.pyXY.nbi / .N.nbc. Nothing is
removed by itself: `hpcad cache clear` (held_entries, remove_entry) removes entries no process
holds."""
from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import hmac
import json
import linecache
import os
import pwd
import re
import stat
import sys
import tempfile
import time
import types
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

from ...errors import HpcadError, HpcadWarning

BOUNDSCHECK = "HPCAD_BOUNDSCHECK"
SHARED = "HPCAD_CACHE_SHARED"
LOCK_TIMEOUT = "HPCAD_LOCK_TIMEOUT"
LOCK_TIMEOUT_DEFAULT_S = 300.0
LOCK_NOTICE_S = 5.0        # a wait this long is announced once on stderr
KEY_FILE = ".key"
KEY_BYTES = 32
NAME_CHARS = 40
UNSAFE_MODE = stat.S_IWGRP | stat.S_IWOTH


class CacheWarning(HpcadWarning):
    """The compile cache could not be used as it is (unsafe, damaged, read-only, full or
    locked): hpcad compiled in memory or recompiled instead; results are right."""


class Untrusted(Exception):
    """A cache file that must not be loaded; the message says which and why."""


_warned: set[str] = set()


def warn(message: str) -> None:
    """Warn once per process about each thing."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, CacheWarning, stacklevel=4)


# why a file cannot be made in a cache directory of yours: no room or inodes, quota,
# read-only, no permission, a name too long
NO_WRITE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
            errno.ENAMETOOLONG)


def cannot_write(root: Path, e: OSError) -> None:
    """One warning per cache and cause (full, quota, read-only) for all its entries."""
    warn(f"hpcad cannot write to the compile cache {root} ({e.strerror}): it compiles in "
         f"memory")


def boundscheck() -> bool:
    """Whether generated code checks every index (HPCAD_BOUNDSCHECK=1): an index out of
    bounds then raises instead of reading or writing outside the array."""
    return os.environ.get(BOUNDSCHECK, "0").strip() not in ("", "0")


def shared() -> bool:
    """HPCAD_CACHE_SHARED=1: read (never write) a cache directory another user owns."""
    return os.environ.get(SHARED, "0").strip() not in ("", "0")


def _codegen_version() -> str:
    """A hash of the backend's source files (the code generator and what it calls)."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


CODEGEN_VERSION = _codegen_version()


def cache_path() -> Path:
    """HPCAD_CACHE_DIR, else $XDG_CACHE_HOME/hpcad, else ~/.cache/hpcad; OSError when none
    is set and the user has no home directory (HOME unset, no passwd entry: a container)."""
    path = os.environ.get("HPCAD_CACHE_DIR")
    if path:
        return Path(path)
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "hpcad"
    try:
        return Path.home() / ".cache" / "hpcad"
    except RuntimeError:
        raise OSError(errno.ENOENT, "HOME is unset and this user has no home directory; "
                                    "set HPCAD_CACHE_DIR") from None


def cache_dir() -> Path:
    """The cache directory, made (0700, private to this user) if missing; OSError if it
    cannot be made."""
    base = cache_path()
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    return base


def numba_settings() -> str:
    """numba's settings that change the machine code of a kernel without changing its
    source: the optimisation level (NUMBA_OPT: a run at 0 must not leave unoptimised code
    for later runs at 3 to load) and numba's own bounds-check override (NUMBA_BOUNDSCHECK)."""
    from numba.core import config
    return f"opt={config.OPT};boundscheck={config.BOUNDSCHECK}"


def entry_key(ir_text: str) -> str:
    import numba

    from ... import __version__
    h = hashlib.sha256()
    checked = f"{BOUNDSCHECK}={int(boundscheck())}"
    for part in (ir_text, __version__, numba.__version__, CODEGEN_VERSION, sys.version, checked,
                 numba_settings()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def short_name(name: str) -> str:
    """`name` for a cache file name: as it is up to NAME_CHARS characters, else its start and
    a hash of all of it (distinct names stay distinct), so that an entry's files (numba's
    name them after the entry and the function) stay within the 255 bytes file systems
    allow, for kernels of any name."""
    if len(name) <= NAME_CHARS:
        return name
    return f"{name[:NAME_CHARS - 9]}_{_sha256(name.encode())[:8]}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Store:
    """A cache directory as this process may use it: files owned by `owner` (or root) and
    writable by no one else are trusted; `key` signs manifests (None in another user's
    shared cache, whose manifests are trusted by their owner alone)."""
    root: Path
    writable: bool
    owner: int
    key: bytes | None

    def why_untrusted(self, st: os.stat_result) -> str | None:
        """Why a file with this stat must not be trusted, or None."""
        if st.st_uid not in (self.owner, 0):
            return f"is owned by uid {st.st_uid}, not by {_user(self.owner)}"
        if st.st_mode & UNSAFE_MODE:
            return f"is writable by others (mode {stat.S_IMODE(st.st_mode):o})"
        return None

    def why_unloadable(self, st: os.stat_result) -> str | None:
        """Why a file with this stat must not be read, or None."""
        return "is not a regular file" if not stat.S_ISREG(st.st_mode) else \
            self.why_untrusted(st)

    def read(self, name: str) -> bytes | None:
        """A file's bytes (None if absent), opened without following links; Untrusted if it
        is not a regular file of a trusted owner."""
        try:
            fd = os.open(self.root / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise Untrusted(f"{name} cannot be opened safely ({e.strerror})") from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            why = self.why_unloadable(st)
            if why:
                raise Untrusted(f"{name} {why}")
            return fh.read()

    def write(self, name: str, data: bytes) -> None:
        """Write a file under a random name (O_EXCL, 0600) and rename it into place (which
        replaces whatever is at `name`, links included, without following it)."""
        tmp = _new_file(self.root, name, data)
        try:
            os.replace(tmp, self.root / name)
        except BaseException:
            os.unlink(tmp)
            raise

    def sign(self, name: str, files: dict[str, str]) -> str:
        text = json.dumps([name, files], sort_keys=True).encode()
        return hmac.new(self.key, text, hashlib.sha256).hexdigest()


def _new_file(directory: Path, name: str, data: bytes) -> str:
    """A new file holding data, under a random name (mkstemp: O_EXCL, 0600) in directory;
    removed again if it cannot be written whole."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        write_all(fd, data)
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    return tmp


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


@functools.cache
def _store(root: Path, is_shared: bool, euid: int) -> Store | None:
    """The store at root, or None (with one warning) when it must not or cannot be used."""
    try:
        link = _foreign_link(root, {euid, 0})     # before making anything at its target
        if link is None:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            link = _foreign_link(root, {euid, 0})
        if link is not None and is_shared:     # the user you trust may own the way to it
            link = _foreign_link(root, {euid, 0, os.stat(root).st_uid})
        if link is None:
            st = os.stat(root)
    except OSError as e:
        warn(f"the compile cache directory {root} cannot be made ({e.strerror}): hpcad "
              f"compiles in memory; set HPCAD_CACHE_DIR to a directory you can write")
        return None
    if link is not None:
        warn(f"hpcad does not use the compile cache {root}: the link {link[0]} on its path "
              f"belongs to {_user(link[1])}, who decides where it leads; it compiles in "
              f"memory. Use a path without other users' links")
        return None
    if st.st_mode & UNSAFE_MODE:
        warn(f"hpcad does not use the compile cache {root}: it is writable by others (mode "
              f"{stat.S_IMODE(st.st_mode):o}), who could plant code that runs as you; it "
              f"compiles in memory. Use a private directory (chmod 700 {root}, or unset "
              f"HPCAD_CACHE_DIR for ~/.cache/hpcad)")
        return None
    if st.st_uid != euid:
        if is_shared:
            return Store(root, False, st.st_uid, None)
        warn(f"hpcad does not use the compile cache {root}: it belongs to "
              f"{_user(st.st_uid)}, not to you; it compiles in memory. Set {SHARED}=1 to "
              f"read (never write) a cache of a user you trust, or use your own directory")
        return None
    writable = os.access(root, os.W_OK | os.X_OK)
    try:
        key = _key(Store(root, writable, euid, None))
    except Untrusted as e:
        warn(f"hpcad does not use the compile cache {root}: {e}; it compiles in memory. "
              f"Remove {root / KEY_FILE} (hpcad makes a new one)")
        return None
    except OSError as e:
        cannot_write(root, e)
        return None
    if key is None or not writable:
        warn(f"the compile cache {root} is read-only: hpcad "
              + ("loads what it holds and compiles the rest in memory" if key else
                 "compiles in memory"))
    return Store(root, writable, euid, key) if key else None


def _foreign_link(path: Path, trusted: set[int]) -> tuple[Path, int] | None:
    """The first symbolic link on the way to the absolute `path` (links followed as the
    system does) that belongs to no `trusted` uid, with its owner's uid; None if
    there is none (nor beyond a part that does not exist yet). Whoever owns such a link
    (say one planted in /tmp) picks the directory hpcad would use."""
    here, parts, hops = Path(path.anchor), list(path.parts[1:]), 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            here = here.parent
            continue
        try:
            st = os.lstat(here / part)
        except FileNotFoundError:
            return None
        if not stat.S_ISLNK(st.st_mode):
            here = here / part
            continue
        if st.st_uid not in trusted:
            return here / part, st.st_uid
        hops += 1
        if hops > 40:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
        target = Path(os.readlink(here / part))
        if target.is_absolute():
            here = Path(target.anchor)
        parts[:0] = target.parts[1:] if target.is_absolute() else target.parts
    return None


def _key(store: Store) -> bytes | None:
    """The cache's HMAC key, made (random, 0600, linked into place so that no one reads a
    half-written key) if missing and the cache is writable."""
    key = store.read(KEY_FILE)
    if key is None and store.writable:
        tmp = _new_file(store.root, KEY_FILE, os.urandom(KEY_BYTES))
        try:
            os.link(tmp, store.root / KEY_FILE)
        except FileExistsError:
            pass                        # another process made it first
        finally:
            os.unlink(tmp)
        key = store.read(KEY_FILE)
    if key is None:
        return None
    st = os.stat(store.root / KEY_FILE, follow_symlinks=False)
    if st.st_uid != store.owner or stat.S_IMODE(st.st_mode) & 0o077 or len(key) != KEY_BYTES:
        raise Untrusted(f"{KEY_FILE} is not a private {KEY_BYTES}-byte file of yours")
    return key


def store() -> Store | None:
    """The cache this process uses now (HPCAD_CACHE_DIR, HPCAD_CACHE_SHARED), or None."""
    try:
        path = cache_path()
    except OSError as e:
        warn(f"hpcad has no compile cache directory ({e.strerror}): it compiles in memory")
        return None
    return _store(path.absolute(), shared(), os.geteuid())


def _lock_timeout() -> float:
    """HPCAD_LOCK_TIMEOUT in seconds (`inf`: wait as long as it takes); `nan` and negative
    numbers are refused (a wait that `nan` bounds would never end)."""
    text = os.environ.get(LOCK_TIMEOUT, "").strip()
    try:
        seconds = float(text) if text else LOCK_TIMEOUT_DEFAULT_S
        if not seconds >= 0:
            raise ValueError(text)
        return seconds
    except ValueError:
        raise HpcadError(f"{LOCK_TIMEOUT}={text!r} is not a number of seconds (0 or more): "
                         f"set it to how long to wait for another process or thread compiling "
                         f"the same kernel (default {LOCK_TIMEOUT_DEFAULT_S:.0f}, inf: no "
                         f"limit)") from None


@contextmanager
def _locked(store: Store, name: str):
    """Hold the entry's lock and yield the store to use for it: `store` itself; a read-only
    copy where the file system has no locks (no process writes then, so reading is safe);
    None (after one warning) when the lock cannot be trusted or is held longer than
    HPCAD_LOCK_TIMEOUT."""
    path = store.root / f"{name}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError as e:
        if e.errno in NO_WRITE:
            cannot_write(store.root, e)
        else:                           # a link (O_NOFOLLOW), a folder, ...
            warn(f"the lock {path} cannot be opened safely ({e.strerror}): hpcad compiles "
                  f"this kernel in memory; remove the lock file if it is a link")
        yield None
        return
    try:
        st = os.fstat(fd)
        why = store.why_unloadable(st)
        if why:
            warn(f"the lock {path} {why}: hpcad compiles this kernel in memory")
            yield None
        else:
            held = _acquire(fd, path)
            if held is None:
                yield replace(store, writable=False)
            else:
                yield store if held else None
    finally:
        os.close(fd)        # releases the lock


def _acquire(fd: int, path: Path) -> bool | None:
    """True once the lock is held; False if another process holds it past the timeout;
    None (after one warning) if the file system cannot lock files (Lustre mounted without
    `flock`, some NFS set-ups)."""
    start, timeout, told = time.monotonic(), _lock_timeout(), False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        except OSError as e:
            warn(f"the file system of the compile cache {path.parent} cannot lock files "
                  f"({e.strerror}): hpcad loads the kernels the cache holds and compiles the "
                  f"others in memory, writing nothing there; set HPCAD_CACHE_DIR to a "
                  f"directory on a file system with locks (a local disk, or Lustre mounted "
                  f"with -o flock) to keep new kernels")
            return None
        waited = time.monotonic() - start
        if waited >= timeout:
            warn(f"waited {waited:.0f} s for the lock {path} (another process or thread "
                  f"compiling the same kernel): hpcad compiles it in memory ({LOCK_TIMEOUT} "
                  f"sets the wait)")
            return False
        if not told and waited >= LOCK_NOTICE_S:
            print(f"hpcad: waiting for the lock {path}: another process or thread is "
                  f"compiling the same kernel (at most {LOCK_TIMEOUT}={timeout:.0f} s, then "
                  f"compiling in memory)", file=sys.stderr, flush=True)
            told = True
        time.sleep(0.05)


def verified_files(store: Store, name: str) -> dict[str, bytes] | None:
    """Every file entry `name`'s manifest lists, read and checked against it (None if there
    is no manifest); Untrusted, saying why, if any file or the manifest's signature does not
    match."""
    raw = store.read(f"{name}.manifest")
    if raw is None:
        return None
    try:
        manifest = json.loads(raw)
        files, signature = dict(manifest["files"]), str(manifest["signature"])
    except (ValueError, KeyError, TypeError):
        raise Untrusted("its manifest is damaged") from None
    if store.key is not None and not hmac.compare_digest(signature, store.sign(name, files)):
        raise Untrusted("its manifest is not signed with this cache's key")
    verified = {}
    for file, digest in files.items():
        if os.sep in file or file.startswith("."):
            raise Untrusted(f"its manifest names a file outside the entry ({file})")
        data = store.read(file)
        if data is None:
            raise Untrusted(f"{file} is missing")
        if _sha256(data) != digest:
            raise Untrusted(f"{file} differs from what hpcad wrote")
        verified[file] = data
    return verified


class Entry:
    """One kernel's generated module and numba's files for it, as verified in this process.
    `store` is None when the entry lives in memory only."""

    def __init__(self, store: Store | None, name: str, source: str):
        self.store, self.name, self.source = store, name, source
        self.path = (store.root if store else Path("<in memory>")) / f"{name}.py"
        self.files: dict[str, str] = {}         # file name -> sha256, as in the manifest
        self.verified: dict[str, bytes] = {}    # numba's files, read once and checked
        self.swept = False                      # of a killed writer's temporary files

    @property
    def writable(self) -> bool:
        return self.store is not None and self.store.writable

    def open(self) -> None:
        """Verify the entry on disk, or start it afresh (writing its source)."""
        try:
            found = self.verify()
        except Untrusted as e:
            warn(f"hpcad ignores the cache entry {self.store.root / self.name}.*: {e}; "
                  + ("it recompiles it" if self.writable else "it compiles it in memory"))
            found = False
        if found:
            return
        if not self.writable:
            self.store = None
            return
        self.files, self.verified = {}, {}
        self.write(f"{self.name}.py", self.source.encode())

    def sweep(self) -> None:
        """Remove the temporary files that a process killed while writing this entry left
        (under the entry's lock, which the caller holds, no other process writes them);
        done before this process's first write to it, so loading costs no directory scan."""
        self.swept = True
        for tmp in self.store.root.glob(f".{self.name}.*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass

    def verify(self) -> bool:
        """Whether the entry exists and every file its manifest lists matches it; Untrusted
        (saying why) if anything does not."""
        verified = verified_files(self.store, self.name)
        if verified is None:
            return False
        if verified.get(f"{self.name}.py") != self.source.encode():
            raise Untrusted("its source is not this kernel's")
        self.files = {name: _sha256(data) for name, data in verified.items()}
        self.verified = verified
        return True

    def read(self, name: str) -> bytes | None:
        """A verified file's bytes (None if the manifest does not list it)."""
        return self.verified.get(name)

    def write(self, name: str, data: bytes) -> None:
        """Write a file of the entry and list it in the manifest; a failure (read-only, full)
        leaves the entry in memory, with one warning."""
        if not self.writable:
            return
        if not self.swept:
            self.sweep()
        try:
            self.store.write(name, data)
            files = dict(self.files, **{name: _sha256(data)})
            manifest = {"files": files, "signature": self.store.sign(self.name, files)}
            self.store.write(f"{self.name}.manifest",
                             json.dumps(manifest, sort_keys=True).encode())
        except OSError as e:
            cannot_write(self.store.root, e)
            self.store = None
            return
        self.files = files
        self.verified[name] = data

    def close(self) -> None:
        """Leave the disk alone from now on (the lock is released)."""
        self.store, self.verified = None, {}

    def module(self, module_name: str):
        """The generated module, run from this entry's source (not from the file), with
        numba's cache of each of its functions kept in this entry."""
        module = sys.modules.get(module_name)
        if module is not None:
            return module
        from numba.core.dispatcher import Dispatcher

        from .numba_cache import EntryCache
        filename = str(self.path)
        module = types.ModuleType(module_name)
        module.__file__ = filename
        linecache.cache[filename] = (len(self.source), None, self.source.splitlines(True),
                                     filename)
        code = compile(self.source, filename, "exec")
        sys.modules[module_name] = module
        try:
            exec(code, module.__dict__)  # noqa: S102 (the source hpcad generated, not the file)
        except BaseException:
            del sys.modules[module_name]
            raise
        if self.store is not None:
            for value in vars(module).values():
                if isinstance(value, Dispatcher) and value.py_func.__module__ == module_name:
                    value._cache = EntryCache(value.py_func, self)
        return module


@contextmanager
def entry(name: str, source: str):
    """The cache entry `name` for this source, verified (or written afresh) under its lock;
    in memory when the cache cannot be used. Leaves the disk alone after the block."""
    found = store()
    writing = found is not None and found.writable
    with _locked(found, name) if writing else nullcontext(found) as usable:
        current = Entry(usable, name, source)
        if current.store is not None:
            current.open()
        try:
            yield current
        finally:
            current.close()


def _odd_files(store: Store):
    """(path, why) of each file or link under the store's root that hpcad would not trust
    (links are never hpcad's)."""
    for folder, dirs, files in os.walk(store.root):
        for name in sorted(dirs + files):
            path = Path(folder) / name
            st = path.lstat()
            why = "is a link" if stat.S_ISLNK(st.st_mode) else store.why_untrusted(st)
            if why:
                yield path, why


def _cannot_lock(root: Path) -> str | None:
    """Why the file system of the directory root cannot lock files (as entries' locks do),
    or None; tried on the directory itself, which creates nothing."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None                 # unreadable: other checks say so
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return None
    except OSError as e:
        return e.strerror
    finally:
        os.close(fd)
    return None


def audit(root: Path) -> list[str]:
    """What makes the cache at root unsafe or unused, for `hpcad doctor`: who may write to
    it, files of other users in it, entries that do not verify, and a file system that
    cannot lock files."""
    st = os.stat(root)
    euid, problems = os.geteuid(), []
    why = _cannot_lock(root)
    if why:
        problems.append(f"the file system of the compile cache {root} cannot lock files "
                        f"({why}): hpcad loads what the cache holds but compiles new kernels "
                        f"in memory in every process; put HPCAD_CACHE_DIR on a file system "
                        f"with locks (a local disk, or Lustre mounted with -o flock)")
    if st.st_mode & UNSAFE_MODE:
        problems.append(f"the compile cache {root} is writable by others (mode "
                        f"{stat.S_IMODE(st.st_mode):o}): whoever writes there could run code "
                        f"as its users, so hpcad does not use it; chmod 700 {root}, or use "
                        f"a directory of your own")
    if st.st_uid != euid and not shared():
        problems.append(f"the compile cache {root} belongs to {_user(st.st_uid)}, not to "
                        f"you, so hpcad does not use it: use a directory of your own, or set "
                        f"{SHARED}=1 to read (never write) a cache of a user you trust")
    store = Store(root, False, st.st_uid, None)
    odd = [f"{path.relative_to(root)} {why}" for path, why in _odd_files(store)]
    if odd:
        problems.append(f"{len(odd)} files in the compile cache {root} are not to be trusted ("
                        + "; ".join(odd[:3]) + "): hpcad ignores them; remove them")
    if st.st_uid == euid:
        try:
            store = Store(root, False, euid, _key(store))
        except (Untrusted, OSError) as e:
            problems.append(f"the compile cache {root} cannot be checked: {e}; remove "
                            f"{root / KEY_FILE} (hpcad makes a new one)")
            return problems
    failing = []
    for manifest in sorted(root.glob("*.manifest")):
        try:
            verified_files(store, manifest.stem)
        except Untrusted as e:
            failing.append(f"{manifest.stem}: {e}")
    if failing:
        problems.append(f"{len(failing)} entries of the compile cache {root} do not verify ("
                        + "; ".join(failing[:3]) + "): hpcad ignores and recompiles them; "
                        "remove them")
    return problems


# a file of an entry: NAME_KEY.<anything>, or a writer's temporary .NAME_KEY.<random>.tmp
_ENTRY_FILE = re.compile(r"\.?(?P<name>[^./]+_[0-9a-f]{24})\.")


@dataclass
class Held:
    """An entry as it is on disk: its files, their bytes, the last time one was written."""
    name: str
    files: list[str] = field(default_factory=list)
    size: int = 0
    written: float = 0.0


def held_entries(root: Path) -> tuple[list[Held], int]:
    """The entries whose files are in root, oldest first, and how many other files it holds
    (`.key`, files that are not hpcad's: never removed). Links are no entry's files."""
    found: dict[str, Held] = {}
    others = 0
    for path in root.iterdir():
        match = _ENTRY_FILE.match(path.name)
        st = path.lstat()
        if match is None or not stat.S_ISREG(st.st_mode):
            others += 1
            continue
        held = found.setdefault(match["name"], Held(match["name"]))
        held.files.append(path.name)
        held.size += st.st_size
        held.written = max(held.written, st.st_mtime)
    return sorted(found.values(), key=lambda h: h.written), others


def remove_entry(store: Store, held: Held) -> bool:
    """Remove an entry's files, holding its lock: those listed, and those its manifest names
    now (a writer may have added some since); the manifest first, so that a reader who finds
    the rest half gone sees no entry and compiles afresh. False, removing nothing, when a
    process holds the lock (it compiles or loads the entry now)."""
    lock = store.root / f"{held.name}.lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:
            pass    # no locks on this file system: no process writes there (_acquire)
        names = {*held.files, f"{held.name}.py", f"{held.name}.lock"}
        try:
            manifest = json.loads(store.read(f"{held.name}.manifest") or b"{}")
            names.update(f for f in manifest.get("files", ()) if isinstance(f, str)
                         and (m := _ENTRY_FILE.match(f)) and m["name"] == held.name)
        except (Untrusted, ValueError, AttributeError):
            pass
        for name in [f"{held.name}.manifest", *sorted(names - {f"{held.name}.lock"}),
                     f"{held.name}.lock"]:
            try:
                os.unlink(store.root / name)
            except FileNotFoundError:
                pass
        return True
    finally:
        os.close(fd)
