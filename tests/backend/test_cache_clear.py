"""`hpcad cache` and `hpcad cache clear`: the compile cache never removes entries by itself
(on a cluster they count against the home quota), so its owner clears it. Clearing removes
whole entries that no process holds (a process compiling or loading one holds its lock),
leaves files that are not hpcad's alone, and a kernel compiled afterwards is compiled afresh
and gives the same answer."""
import fcntl
import os
import subprocess
import sys
import time

import pytest

from hpcad.backend.numba import cache
from hpcad.cli import main

SOURCE = "def f(x):\n    return x + 1\n"
KEYS = ["0" * 24, "1" * 24, "2" * 24]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(root))
    monkeypatch.delenv(cache.SHARED, raising=False)
    return root


def make_entries(root, names):
    """Entries as a compile leaves them: source, manifest, lock, numba's files, a writer's
    temporary file."""
    for name in names:
        with cache.entry(name, SOURCE) as found:
            found.write(f"{name}.f-1.py311.nbi", b"index")
            found.write(f"{name}.f-1.py311.1.nbc", b"machine code")
        (root / f".{name}.py.abc123.tmp").write_bytes(b"a killed writer's")


def entry_files(root, name):
    return sorted(p.name for p in root.iterdir() if name in p.name)


def test_clear_removes_every_entry_and_leaves_other_files(cache_dir, capsys):
    names = [f"kern_{k}" for k in KEYS]
    make_entries(cache_dir, names)
    (cache_dir / "notes.txt").write_text("mine")
    (cache_dir / f"link_{KEYS[0]}.py").symlink_to(cache_dir / "notes.txt")
    assert main(["cache"]) == 0
    assert f"{cache_dir}: 3 entries" in capsys.readouterr().out
    assert all(len(entry_files(cache_dir, n)) == 6 for n in names)
    assert main(["cache", "clear"]) == 0
    out = capsys.readouterr().out
    assert "removed 3 entries" in out and "3 other files" in out
    assert sorted(p.name for p in cache_dir.iterdir()) == \
        [".key", f"link_{KEYS[0]}.py", "notes.txt"]
    with cache.entry(names[0], SOURCE) as found:    # written afresh, not half-found
        assert found.writable and found.read(f"{names[0]}.f-1.py311.nbi") is None


def test_an_entry_a_process_holds_is_kept(cache_dir, capsys):
    names = [f"kern_{k}" for k in KEYS[:2]]
    make_entries(cache_dir, names)
    fd = os.open(cache_dir / f"{names[0]}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert main(["cache", "clear"]) == 0
    finally:
        os.close(fd)
    assert "removed 1 entries" in capsys.readouterr().out
    assert len(entry_files(cache_dir, names[0])) == 6
    assert entry_files(cache_dir, names[1]) == []
    with cache.entry(names[0], SOURCE) as found:    # still whole: it verifies
        assert found.read(f"{names[0]}.f-1.py311.1.nbc") == b"machine code"


def test_older_than_removes_only_entries_written_before(cache_dir, capsys):
    old, new = f"old_{KEYS[0]}", f"new_{KEYS[1]}"
    make_entries(cache_dir, [old, new])
    then = time.time() - 40 * 86400
    for name in entry_files(cache_dir, old):
        os.utime(cache_dir / name, (then, then))
    assert main(["cache", "clear", "--older-than", "30"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 entries" in out and "1 written in the last 30 days" in out
    assert entry_files(cache_dir, old) == [] and len(entry_files(cache_dir, new)) == 6


def test_a_cache_that_is_not_yours_is_not_cleared(tmp_path, monkeypatch, capsys):
    """Someone else's cache read with HPCAD_CACHE_SHARED=1 (as root: a directory of another
    uid), or one this user cannot write: refused, nothing removed."""
    root = tmp_path / "theirs"
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(root))
    monkeypatch.delenv(cache.SHARED, raising=False)
    make_entries(root, [f"kern_{KEYS[0]}"])
    if os.geteuid() == 0:
        for path in [root, *root.iterdir()]:
            os.chown(path, 65534, 65534)
        monkeypatch.setenv(cache.SHARED, "1")
    else:
        root.chmod(0o500)
    try:
        assert main(["cache", "clear"]) == 2
    finally:
        root.chmod(0o700)
    assert "only its owner clears it" in capsys.readouterr().err
    assert len(entry_files(root, f"kern_{KEYS[0]}")) == 6


@pytest.mark.slow
def test_a_kernel_compiled_after_a_clear_is_compiled_again_and_agrees(cache_dir, tmp_path):
    """Through numba: compile, clear, and a fresh process compiles and gives the same
    gradient (none of numba's files was left behind to be loaded half)."""
    script = ("import numpy as np, hpcad as ad\n"
              "@ad.kernel\n"
              "def f(x):\n"
              "    s = 0.0\n"
              "    for i in range(x.shape[0]):\n"
              "        s += x[i] * x[i] * x[i]\n"
              "    return s\n"
              "g = ad.grad(f)(np.linspace(0.0, 1.0, 5))\n"
              "print(g.tolist())\n")
    (tmp_path / "user.py").write_text(script)
    env = dict(os.environ, HPCAD_CACHE_DIR=str(cache_dir))
    run = [sys.executable, str(tmp_path / "user.py")]
    first = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    held, _ = cache.held_entries(cache_dir)
    assert held
    assert main(["cache", "clear"]) == 0
    assert cache.held_entries(cache_dir)[0] == []
    again = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert again.stdout == first.stdout
    assert "[0.0, 0.1875, 0.75, 1.6875, 3.0]" in again.stdout    # 3 x^2
    assert len(cache.held_entries(cache_dir)[0]) == len(held)
