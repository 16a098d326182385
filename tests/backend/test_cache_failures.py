"""The compile cache under the failures of a shared cluster: file systems without locks,
processes killed while they write an entry, links of other users on the way to the cache,
no home directory. hpcad keeps computing right answers (from the cache where it can be
trusted, else compiling in memory, with one CacheWarning) and never crashes or waits
forever. Each test works on cache entries directly (no numba compile), in a fresh
directory."""
import errno
import os

import pytest

from hpcad.backend.numba import cache
from hpcad.backend.numba.cache import CacheWarning

SOURCE = "def f(x):\n    return x + 1\n"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(root))
    monkeypatch.delenv(cache.SHARED, raising=False)
    return root


def test_a_file_system_without_locks_reads_the_cache_and_writes_nothing(cache_dir,
                                                                       monkeypatch):
    with cache.entry("kept_1", SOURCE) as found:
        assert found.writable
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
    monkeypatch.setattr(cache.fcntl, "flock", no_locks)
    with pytest.warns(CacheWarning, match="cannot lock files"):
        with cache.entry("kept_1", SOURCE) as found:
            assert not found.writable and found.read("kept_1.py") == SOURCE.encode()
    with cache.entry("new_2", SOURCE) as found:
        assert found.store is None          # compiled in memory
    assert not (cache_dir / "new_2.py").exists() and not (cache_dir / "new_2.manifest").exists()


def test_no_home_directory_compiles_in_memory(monkeypatch):
    for name in ("HPCAD_CACHE_DIR", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    def no_user(uid):
        raise KeyError(uid)
    monkeypatch.setattr("pwd.getpwuid", no_user)     # a uid with no passwd entry
    with pytest.warns(CacheWarning, match="HOME is unset.*set HPCAD_CACHE_DIR"):
        with cache.entry("homeless_1", SOURCE) as found:
            assert found.store is None


def test_a_writer_killed_mid_write_leaves_no_garbage_for_long(cache_dir):
    """A process killed between writing a file under its temporary name and renaming it
    (SIGKILL, the end of a batch job's time) leaves that file; the next process that
    writes the entry, under its lock, removes it, and leaves other entries' alone."""
    with cache.entry("other_1", SOURCE):
        pass
    left = cache_dir / ".killed_1.killed_1.f-1.py311.1.nbc.a1b2c3.tmp"
    other = cache_dir / ".other_1.py.d4e5f6.tmp"
    left.write_bytes(b"half of numba's machine code")
    other.write_bytes(b"")
    with cache.entry("killed_1", SOURCE) as found:
        assert found.writable and found.read("killed_1.py") == SOURCE.encode()
    assert not left.exists() and other.exists()
    # killed while adding machine code to an entry that exists: swept at the next addition
    left.write_bytes(b"half of numba's machine code")
    with cache.entry("killed_1", SOURCE) as found:
        assert found.verified and left.exists()     # a load scans nothing
        found.write("killed_1.f-1.py311.nbi", b"an index")
    assert not left.exists()


def test_a_full_cache_warns_once_for_all_its_entries(cache_dir, monkeypatch):
    """No inodes left (the lock files cannot be made) is the same one warning as no room
    left for an entry's files, not a warning per kernel about links."""
    with cache.entry("first_1", SOURCE):
        pass
    real_open = os.open
    def full(path, flags, *mode):
        if str(path).endswith(".lock") or str(path).endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, flags, *mode)
    monkeypatch.setattr(cache.os, "open", full)
    with pytest.warns(CacheWarning) as caught:
        for name in ("full_1", "full_2", "full_3"):
            with cache.entry(name, SOURCE) as found:
                assert found.store is None
    assert [str(w.message) for w in caught] == [
        f"hpcad cannot write to the compile cache {cache_dir} (No space left on device): it "
        f"compiles in memory"]


@pytest.mark.parametrize("value", ["nan", "-1", "soon"])
def test_a_lock_timeout_that_bounds_no_wait_is_refused(cache_dir, monkeypatch, value):
    """HPCAD_LOCK_TIMEOUT=nan would wait forever behind a stuck lock holder (no wait is ever
    >= nan): refused like a word, before any wait."""
    from hpcad.errors import HpcadError
    monkeypatch.setenv("HPCAD_LOCK_TIMEOUT", value)
    with pytest.raises(HpcadError, match=f"HPCAD_LOCK_TIMEOUT='{value}' is not a number of "
                                         f"seconds \\(0 or more\\)"):
        with cache.entry("timed_1", SOURCE):
            pass


def test_cache_file_names_stay_short_and_distinct():
    names = ["k" * 200 + "_rev", "k" * 200 + "_rev_loop0", "k" * 200 + "_rev_loop1", "f_rev"]
    short = [cache.short_name(n) for n in names]
    assert len(set(short)) == len(names) and short[-1] == "f_rev"
    assert all(len(s) <= cache.NAME_CHARS for s in short)


@pytest.mark.slow
def test_a_kernel_with_a_long_name_is_cached(cache_dir, tmp_path, monkeypatch):
    """A kernel named with 150 characters: numba's files of its derivative's entry (named
    after the entry and each function) were longer than 255 bytes, so it was compiled again
    in every process, with a warning (File name too long)."""
    import importlib
    import sys
    import warnings

    import numpy as np

    import hpcad as ad
    from hpcad.backend.numba import STATS
    name = "sum_of_squares_" + "with_a_very_long_descriptive_name_" * 4
    (tmp_path / "long_named.py").write_text(
        f"import hpcad as ad\n\n\n@ad.kernel\ndef {name}(u, a):\n    s = 0.0\n"
        f"    for i in range(u.shape[0]):\n        s += a * u[i] * u[i]\n    return s\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("long_named")
    try:
        compiled = STATS["compiled"]
        with warnings.catch_warnings():
            warnings.simplefilter("error", CacheWarning)
            g = ad.grad(getattr(module, name), argnums=0)(np.arange(3.0), 2.0)
        assert list(g) == [0.0, 4.0, 8.0] and STATS["compiled"] == compiled + 1
        assert max(len(p.name) for p in cache_dir.iterdir()) < 200
        assert list(cache_dir.glob("*.nbc"))    # numba's machine code is in the cache
    finally:
        sys.modules.pop("long_named", None)


def test_doctor_reports_a_file_system_without_locks(cache_dir, monkeypatch):
    with cache.entry("kept_1", SOURCE):
        pass
    assert not [p for p in cache.audit(cache_dir) if "lock" in p]
    def no_locks(fd, operation):
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
    monkeypatch.setattr(cache.fcntl, "flock", no_locks)
    [problem] = cache.audit(cache_dir)
    assert problem.startswith(f"the file system of the compile cache {cache_dir} cannot lock "
                              f"files (Function not implemented)")
