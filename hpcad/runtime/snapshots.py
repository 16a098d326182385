"""Snapshots on disk: the buffers of `mem.alloc {arena, disk}` are mapped files, for memory
budgets below one copy of a time loop's state (multistage checkpointing, RAM then disk).

Each buffer is a file in HPCAD_SNAPSHOT_DIR (default: the system temporary directory),
unlinked as soon as it is mapped: nothing is left behind when the process ends, however it
ends. Saving a snapshot is a copy into the mapping; the operating system writes the pages
back to the file and drops them from memory when it needs the room, so the snapshots do
not hold process memory the way an array does (they are page cache, which the kernel
reclaims). Each rank of an MPI job has files of its own.

A file's blocks are allocated (posix_fallocate) before it is mapped: a full file system is
an HpcadError then, not a SIGBUS when a page of a sparse file is first written. Planning
takes each process's share of the free space: the free bytes divided among the processes
that put snapshots on the same file system (the ranks of the communicator on the same host
and device, else the node's rank count that the MPI launcher or SLURM sets)."""
from __future__ import annotations

import errno
import mmap
import os
import shutil
import socket
import tempfile

import numpy as np
from numpy.typing import DTypeLike

from ..errors import HpcadError


def snapshot_dir() -> str:
    """Where snapshot files go: HPCAD_SNAPSHOT_DIR, else the temporary directory."""
    return os.environ.get("HPCAD_SNAPSHOT_DIR", "").strip() or tempfile.gettempdir()


# the processes of this job on this node, as launchers set it: Open MPI, MPICH/Hydra and
# Intel MPI, SLURM (srun --ntasks-per-node); the first one set counts
LOCAL_SIZE_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                        "SLURM_NTASKS_PER_NODE")
# errors of a file system that cannot allocate a file's blocks ahead: write zeros instead
_NO_FALLOCATE = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)
_ZEROS = 1 << 20
# blocks a process keeps aside from its share: each of its files rounds up to whole blocks
SLACK_BLOCKS = 16


def free_bytes() -> int:
    """Free bytes in the snapshot directory (0 when it is not a directory), for all
    processes that share it: see `share`."""
    where = snapshot_dir()
    if not os.path.isdir(where):
        return 0
    try:
        return shutil.disk_usage(where).free
    except OSError:
        return 0


def local_processes() -> int:
    """How many processes of this job run on this node (1 outside a launcher)."""
    for name in LOCAL_SIZE_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def file_system() -> tuple[str, int]:
    """(host, device) of the snapshot directory: processes with equal ones share its space."""
    try:
        device = os.stat(snapshot_dir()).st_dev
    except OSError:
        device = -1
    return socket.gethostname(), device


def share(free: int, sharing: int = 1) -> int:
    """This process's part of `free` bytes that `sharing` processes (at least the node's
    processes, local_processes) may fill at once, less SLACK_BLOCKS blocks."""
    try:
        block = os.statvfs(snapshot_dir()).f_frsize or 4096
    except OSError:
        block = 4096
    return max(free // max(sharing, local_processes(), 1) - SLACK_BLOCKS * block, 0)


def buffer(size: int, element: DTypeLike) -> np.ndarray:
    """A 1-D array of `size` elements of dtype `element`, backed by a new, already
    unlinked file."""
    dtype = np.dtype(element)
    where = snapshot_dir()
    nbytes = max(int(size), 1) * dtype.itemsize
    try:
        fd, path = tempfile.mkstemp(prefix="hpcad-snapshots-", dir=where)
    except OSError as e:
        raise HpcadError(f"cannot create a snapshot file in {where} ({e}); set "
                         f"HPCAD_SNAPSHOT_DIR to a writable directory with room") from None
    try:
        os.unlink(path)
        _allocate(fd, nbytes)
        mapped = mmap.mmap(fd, nbytes)
    except OSError as e:
        room = "no room" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "an error"
        raise HpcadError(f"cannot allocate {nbytes} bytes of snapshots in {where}: {room} "
                         f"({e.strerror}; {free_bytes()} bytes free); set HPCAD_SNAPSHOT_DIR "
                         f"to a directory with room, or give a larger memory budget") from None
    finally:
        os.close(fd)
    return np.frombuffer(mapped, dtype, int(size))


def _allocate(fd: int, nbytes: int) -> None:
    """Give the file its blocks now (ENOSPC here, not SIGBUS on a page written later)."""
    try:
        os.posix_fallocate(fd, 0, nbytes)
        return
    except OSError as e:
        if e.errno not in _NO_FALLOCATE:
            raise
    zeros, done = bytes(min(nbytes, _ZEROS)), 0
    while done < nbytes:     # a full file system raises ENOSPC (after a short write)
        done += os.pwrite(fd, zeros[:nbytes - done], done)


def file_backed(array: np.ndarray) -> bool:
    """Whether array's memory is a mapped file (a buffer from `buffer`)."""
    a: object = array
    while a is not None:
        if isinstance(a, mmap.mmap):
            return True
        a = getattr(a, "base", None) if isinstance(a, np.ndarray) else getattr(a, "obj", None)
    return False
