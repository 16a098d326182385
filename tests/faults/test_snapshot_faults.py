"""Snapshot files (runtime/snapshots.py) on a full or shared file system: a file's blocks are
allocated before it is mapped, so no room is an HpcadError naming the directory and the size
instead of a SIGBUS when a page is first written, and planning takes only this process's
share of the free space (divided among the ranks on the same host and device, or the node's
processes that the launcher counts). A tiny file system is a 1 MiB tmpfs, mounted by the
tests that run as root; the others fake the file system's answers."""
import ast
import collections
import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hpcad.checkpoint.budget import agree
from hpcad.errors import HpcadError
from hpcad.runtime import snapshots as disk

ROOT = Path(__file__).parent.parent.parent
TMPFS_BYTES = 1 << 20
MB = 10**6
Usage = collections.namedtuple("Usage", "total used free")   # as shutil.disk_usage's


def _no_room(*args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _unsupported(*args):
    raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))


def test_no_room_for_a_snapshot_file_is_an_hpcad_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCAD_SNAPSHOT_DIR", str(tmp_path))
    monkeypatch.setattr(disk.os, "posix_fallocate", _no_room)
    with pytest.raises(HpcadError, match=f"cannot allocate 8000 bytes of snapshots in "
                                         f"{tmp_path}: no room.*HPCAD_SNAPSHOT_DIR"):
        disk.buffer(1000, np.float64)
    assert os.listdir(tmp_path) == []


def test_without_fallocate_the_file_gets_zeros_written(tmp_path, monkeypatch):
    """A file system that cannot allocate ahead (EOPNOTSUPP) gets every block written."""
    monkeypatch.setenv("HPCAD_SNAPSHOT_DIR", str(tmp_path))
    monkeypatch.setattr(disk.os, "posix_fallocate", _unsupported)
    written = []
    real_pwrite = os.pwrite
    monkeypatch.setattr(disk.os, "pwrite",
                        lambda fd, data, at: written.append((at, len(data)))
                        or real_pwrite(fd, data, at))
    size = 3 * (1 << 20) // 8 + 5          # three chunks of zeros and a short one
    a = disk.buffer(size, np.float64)
    assert sorted(written) == [(0, 1 << 20), (1 << 20, 1 << 20), (2 << 20, 1 << 20),
                               (3 << 20, 40)]
    assert disk.file_backed(a) and a.shape == (size,) and not a.any()
    a[:] = 1.5
    assert a.sum() == 1.5 * size


@pytest.fixture
def slack(tmp_path, monkeypatch):
    """Snapshots in tmp_path, outside any launcher; the bytes a share keeps aside."""
    monkeypatch.setenv("HPCAD_SNAPSHOT_DIR", str(tmp_path))
    for name in disk.LOCAL_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return disk.SLACK_BLOCKS * os.statvfs(tmp_path).f_frsize


def test_free_space_is_shared_by_the_nodes_processes(monkeypatch, slack):
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda path: Usage(10**9, 0, 12 * MB))
    assert disk.share(disk.free_bytes()) == 12 * MB - slack
    monkeypatch.setenv("MPI_LOCALNRANKS", "3")
    assert disk.share(disk.free_bytes()) == 4 * MB - slack
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4")      # the first one set counts
    assert disk.share(disk.free_bytes()) == 3 * MB - slack


class _Ranks:
    """A communicator whose other ranks report the given (free bytes, file system)."""

    def __init__(self, others):
        self.others = others

    def allgather(self, mine):
        return [mine] + [(*mine[:3], free, where, *mine[5:]) for free, where in self.others]


def test_ranks_on_one_file_system_share_its_free_space(slack):
    here, elsewhere = disk.file_system(), ("another-node", 7)
    tapes = (1000, 1000)
    # two more ranks on this host and device, one on another node with more room
    got = agree(_Ranks([(12 * MB, here), (12 * MB, here), (5 * MB, elsewhere)]), tapes, None,
                10**6, False, 12 * MB)
    assert got[-1] == 4 * MB - slack
    got = agree(_Ranks([(3 * MB, elsewhere)]), tapes, None, 10**6, False, 12 * MB)
    assert got[-1] == 3 * MB - slack                         # alone here: the other has less


# -- a real 1 MiB file system (root: mount a tmpfs) ------------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs at tmp_path/small (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("this test needs root: it mounts a 1 MiB tmpfs to fill a file system")
    where = tmp_path / "small"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(where)],
                   check=True, capture_output=True)
    yield where
    subprocess.run(["umount", str(where)], check=True)


FILL = """
import errno, os, sys
import numpy as np
from hpcad.runtime import snapshots as disk
if sys.argv[1] == "no-fallocate":
    def unsupported(*args):
        raise OSError(errno.EOPNOTSUPP, "not supported")
    disk.os.posix_fallocate = unsupported
a = disk.buffer(2 * {tmpfs} // 8, np.float64)    # twice the file system
a[:] = 1.0
print("written", a.sum())
"""


@pytest.mark.parametrize("how", ["fallocate", "no-fallocate"])
def test_snapshots_larger_than_the_file_system_raise_instead_of_sigbus(small_fs, how):
    """Mapped sparse files died of SIGBUS at the first page with no block behind it."""
    out = subprocess.run([sys.executable, "-c", FILL.format(tmpfs=TMPFS_BYTES), how],
                         capture_output=True, text=True, timeout=30, cwd=ROOT,
                         env=dict(os.environ, HPCAD_SNAPSHOT_DIR=str(small_fs)))
    assert out.returncode != -signal.SIGBUS, "died of SIGBUS"
    assert out.returncode == 1, (out.returncode, out.stderr[-2000:])
    assert (f"HpcadError: cannot allocate {2 * TMPFS_BYTES} bytes of snapshots in {small_fs}: "
            f"no room") in out.stderr, out.stderr[-2000:]
    assert os.listdir(small_fs) == []


SHARE = """
import numpy as np
from mpi4py import MPI
from hpcad.runtime import snapshots as disk
from hpcad.checkpoint.budget import agree
comm = MPI.COMM_WORLD
room = agree(comm, (1, 1), None, 1 << 30, False, disk.free_bytes())[-1]
try:
    a = disk.buffer(room // 8, np.float64)     # as large as the plan allows, on every rank
    a[:] = 1.0
except Exception as e:
    print(comm.rank, "failed:", e, flush=True)
    comm.Abort(1)
everyone = comm.gather((room, bool(a.sum() == room // 8)))
if comm.rank == 0:
    print(everyone)
"""


def _mpiexec() -> str:
    found = Path(sys.executable).parent / "mpiexec"
    return str(found) if found.exists() else "mpiexec"


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_sharing_a_snapshot_file_system_fit_in_it(small_fs, ranks):
    """Every rank of one node fills the share the plan gives it: all fit (each used to plan
    with the whole free space, and the last to write died of SIGBUS)."""
    env = {k: v for k, v in os.environ.items() if k not in disk.LOCAL_SIZE_VARIABLES}
    out = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, "-c",
                          textwrap.dedent(SHARE)], capture_output=True, text=True,
                         timeout=30, cwd=ROOT, env=dict(env, HPCAD_SNAPSHOT_DIR=str(small_fs)))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    everyone = ast.literal_eval(out.stdout.strip())
    assert len(everyone) == ranks and all(filled for _, filled in everyone), everyone
    rooms = {room for room, _ in everyone}
    assert len(rooms) == 1 and 0 < rooms.pop() * ranks <= TMPFS_BYTES, everyone
