"""Snapshots on disk: the buffers of `mem.alloc {arena, disk}` are mapped files, for memory
budgets below one copy of a time loop's state (multistage checkpointing, RAM then disk).

Each buffer is a file in HPCAD_SNAPSHOT_DIR (default: the system temporary directory),
unlinked as soon as it is mapped: nothing is left behind when the process ends, however it
ends. Saving a snapshot is a copy into the mapping; the operating system writes the pages
back to the file and drops them from memory when it needs the room, so the snapshots do
not hold process memory the way an array does (they are page cache, which the kernel
reclaims). Each rank of an MPI job has files of its own."""
from __future__ import annotations

import mmap
import os
import shutil
import tempfile

import numpy as np

from ..errors import HpcadError


def snapshot_dir() -> str:
    """Where snapshot files go: HPCAD_SNAPSHOT_DIR, else the temporary directory."""
    return os.environ.get("HPCAD_SNAPSHOT_DIR", "").strip() or tempfile.gettempdir()


def free_bytes() -> int:
    """Free bytes in the snapshot directory (0 when it does not exist)."""
    try:
        return shutil.disk_usage(snapshot_dir()).free
    except OSError:
        return 0


def buffer(size: int, dtype) -> np.ndarray:
    """A 1-D array of `size` elements backed by a new, already unlinked file."""
    dtype = np.dtype(dtype)
    where = snapshot_dir()
    nbytes = max(int(size), 1) * dtype.itemsize
    try:
        fd, path = tempfile.mkstemp(prefix="hpcad-snapshots-", dir=where)
    except OSError as e:
        raise HpcadError(f"cannot create a snapshot file in {where} ({e}); set "
                         f"HPCAD_SNAPSHOT_DIR to a writable directory with room") from None
    try:
        os.unlink(path)
        os.ftruncate(fd, nbytes)
        mapped = mmap.mmap(fd, nbytes)
    except OSError as e:
        raise HpcadError(f"cannot map {nbytes} bytes of snapshots in {where} ({e}); set "
                         f"HPCAD_SNAPSHOT_DIR to a directory with room") from None
    finally:
        os.close(fd)
    return np.frombuffer(mapped, dtype, int(size))


def file_backed(a: np.ndarray) -> bool:
    """Whether a's memory is a mapped file (a buffer from `buffer`)."""
    while a is not None:
        if isinstance(a, mmap.mmap):
            return True
        a = getattr(a, "base", None) if isinstance(a, np.ndarray) else getattr(a, "obj", None)
    return False
