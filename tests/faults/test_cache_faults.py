"""The compile cache under faults, for one user: a read-only, full, uncreatable or
world-writable cache directory, a damaged or foreign entry, a link at a lock's name and a lock
holder that never lets go. Each time the gradient is right (equal to the interpreter's), hpcad
says once what it did instead (a CacheWarning), and no temporary file is left behind."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hpcad import doctor
from tests.backend import cache_victim

VICTIM = Path(cache_victim.__file__).resolve()


@pytest.fixture(scope="module")
def expected():
    """The gradient on the interpreter, which no cache is involved in."""
    return cache_victim.gradient("interp")


def run(cache: Path, *prelude: str, prefix: list[str] = (), **env) -> dict:
    """The victim process on this cache; prelude: Python run before it (monkeypatches);
    prefix: a command that runs it."""
    code = "\n".join([*prelude, (f"import runpy; runpy.run_path({str(VICTIM)!r}, "
                                 f"run_name='__main__')")])
    out = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, HPCAD_CACHE_DIR=str(cache), **env))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["stderr"] = out.stderr
    return result


def cache_warnings(result: dict) -> list[str]:
    return [w for w in result["warnings"] if w.startswith("CacheWarning")]


def right(result: dict, expected) -> bool:
    return np.allclose(result["grad"], expected, rtol=1e-12, atol=0)


def victim_files(cache: Path, pattern: str = "*") -> list[Path]:
    """The files of the victim's own entry (not of the helpers every derivative calls,
    `helper_*` entries of backend/numba/helpers.py, which the same cache holds)."""
    return [p for p in cache.glob(pattern) if not p.name.startswith("helper_")
            and p.name != ".key"]


def debris(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture
def filled(tmp_path) -> Path:
    """A cache holding the victim's entry."""
    cache = tmp_path / "cache"
    assert run(cache)["compiled"] == 1
    return cache


def test_a_new_cache_is_private_and_loads_what_it_wrote(filled, expected):
    assert filled.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o077 == 0 for p in filled.iterdir())
    second = run(filled)
    assert second["compiled"] == 0 and second["loaded"] == 1
    assert right(second, expected) and not cache_warnings(second)


def test_a_damaged_index_is_recompiled_once(filled, expected):
    for index in victim_files(filled, "*.nbi"):
        index.write_bytes(index.read_bytes()[:len(index.read_bytes()) // 2])
    damaged = run(filled)
    assert right(damaged, expected) and damaged["compiled"] == 1
    [warning] = cache_warnings(damaged)
    assert "ignores the cache entry" in warning and "differs from what hpcad wrote" in warning
    repaired = run(filled)
    assert repaired["loaded"] == 1 and not cache_warnings(repaired)


@pytest.mark.slow
def test_garbage_at_a_helpers_files_is_never_unpickled(filled, expected):
    """The helpers' entries (tape sizes, allocation), which a derivative compiled afresh
    loads, are verified as a kernel's are."""
    helper = [f for f in filled.glob("helper_*") if f.suffix in (".nbi", ".nbc")]
    assert helper
    for f in helper:
        f.write_bytes(b"\x80\x04garbage")
    for f in victim_files(filled):
        f.unlink()
    result = run(filled)
    assert right(result, expected) and result["compiled"] == 1
    assert "UnpicklingError" not in result["stderr"]
    warnings = cache_warnings(result)
    assert warnings and all("helper_" in w and "differs from what hpcad wrote" in w
                            for w in warnings), warnings
    assert not cache_warnings(run(filled))


@pytest.mark.slow
def test_garbage_at_numba_files_is_never_unpickled(filled, expected):
    for f in [*victim_files(filled, "*.nbi"), *victim_files(filled, "*.nbc")]:
        f.write_bytes(b"\x80\x04garbage")
    result = run(filled)
    assert right(result, expected) and result["compiled"] == 1
    assert "UnpicklingError" not in result["stderr"] and len(cache_warnings(result)) == 1


@pytest.mark.slow
def test_an_entry_signed_with_another_key_is_recompiled(filled, tmp_path, expected):
    other = tmp_path / "other"
    run(other)
    for f in victim_files(filled):
        shutil.copy(f, other / f.name)      # same files, other cache's key
    result = run(other)
    assert right(result, expected) and result["compiled"] == 1
    [warning] = cache_warnings(result)
    assert "is not signed with this cache's key" in warning


@pytest.mark.slow
def test_a_world_writable_cache_is_not_used(tmp_path, expected):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    result = run(cache)
    assert right(result, expected) and result["compiled"] == 1
    [warning] = cache_warnings(result)
    assert "writable by others" in warning and "compiles in memory" in warning
    assert not list(cache.iterdir())


@pytest.mark.slow
def test_a_cache_that_cannot_be_made_compiles_in_memory(expected):
    result = run(Path("/proc/no_such_dir/cache"))
    assert right(result, expected)
    [warning] = cache_warnings(result)
    assert "cannot be made" in warning


def _read_only(cache: Path) -> tuple[list[str], str]:
    """(command prefix, prelude) that run the victim with cache read-only: a read-only bind
    mount in a mount namespace of its own for root, whom permission bits do not stop (or,
    where root may not mount, os.access saying what such a mount would), else chmod."""
    if os.geteuid() != 0:
        cache.chmod(0o500)
        return [], ""
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-m", "sh", "-c",
                (f"mount --bind {cache} {cache} && mount -o remount,ro,bind {cache} && "
                 'exec "$@"'), "sh"], ""
    return [], ("import os\n_access = os.access\n"
                f"os.access = lambda p, m, **k: not (m & os.W_OK and str(p) == {str(cache)!r})"
                " and _access(p, m, **k)")


@pytest.mark.slow
def test_a_read_only_cache_loads_what_it_holds(filled, expected):
    before = sorted(p.name for p in filled.iterdir())
    prefix, prelude = _read_only(filled)
    result = run(filled, prelude, prefix=prefix)
    assert right(result, expected) and result["loaded"] == 1
    [warning] = cache_warnings(result)
    assert "is read-only" in warning
    filled.chmod(0o700)
    assert sorted(p.name for p in filled.iterdir()) == before


@pytest.mark.slow
def test_a_full_cache_compiles_in_memory_and_leaves_no_debris(tmp_path, expected):
    cache = tmp_path / "cache"
    run(cache)
    for f in cache.iterdir():
        if f.name != ".key":
            f.unlink()
    full = ("import errno, os\n"
            "from hpcad.backend.numba import cache\n"
            "def _full(fd, data):\n"
            "    os.write(fd, bytes(data[:len(data) // 2]))\n"
            "    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
            "cache.write_all = _full")
    result = run(cache, full)
    assert right(result, expected) and result["compiled"] == 1
    [warning] = cache_warnings(result)
    assert "cannot write" in warning and "No space left on device" in warning
    assert not debris(cache)
    assert not list(cache.glob("*.manifest"))


@pytest.mark.slow
def test_a_link_at_a_lock_name_is_not_followed(filled, tmp_path, expected):
    precious = tmp_path / "precious.txt"
    precious.write_text("precious")
    [lock] = victim_files(filled, "*.lock")
    lock.unlink()
    lock.symlink_to(precious)
    result = run(filled)
    assert right(result, expected)
    [warning] = cache_warnings(result)
    assert f"the lock {lock} cannot be opened safely" in warning
    assert precious.read_text() == "precious"


@pytest.mark.slow
def test_a_stuck_lock_holder_is_reported_and_bypassed(filled, expected):
    [lock] = victim_files(filled, "*.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import fcntl, os, time\n"
                                f"fd = os.open({str(lock)!r}, os.O_RDWR)\n"
                                "fcntl.flock(fd, fcntl.LOCK_EX)\n"
                                "print('held', flush=True)\n"
                                "time.sleep(120)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        result = run(filled, HPCAD_LOCK_TIMEOUT="7")
        waited = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    assert right(result, expected) and result["compiled"] == 1
    assert 7 <= waited < 60
    assert result["stderr"].count(f"hpcad: waiting for the lock {lock}") == 1
    [warning] = cache_warnings(result)
    assert "compiles it in memory" in warning and "HPCAD_LOCK_TIMEOUT" in warning


def test_a_second_call_does_not_verify_again(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(tmp_path / "cache"))
    from hpcad.backend.numba import cache
    first = cache_victim.gradient("numba")
    monkeypatch.setattr(cache.Entry, "verify", lambda self: pytest.fail("verified again"))
    monkeypatch.setattr(cache.Store, "read", lambda self, name: pytest.fail("read again"))
    assert cache_victim.gradient("numba") == first


def _doctor_problems(cache: Path, monkeypatch) -> list[str]:
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(cache))
    report = doctor.Report()
    doctor.cache_directory(report, None)
    return report.problems


def test_doctor_reports_an_open_cache_and_entries_that_do_not_verify(filled, monkeypatch):
    assert _doctor_problems(filled, monkeypatch) == []
    [index, *_] = victim_files(filled, "*.nbi")
    index.write_bytes(b"garbage")
    [problem] = _doctor_problems(filled, monkeypatch)
    assert "1 entries of the compile cache" in problem and "do not verify" in problem
    assert f"{index.name} differs from what hpcad wrote" in problem
    filled.chmod(0o777)
    assert any("is writable by others (mode 777)" in p
               for p in _doctor_problems(filled, monkeypatch))
