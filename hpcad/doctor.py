"""`hpcad doctor`: what a user needs to know when something is off. Versions, the MPI
library and the `mpiexec` found, which of numba's threading layers start, the compile cache
(where, how large, on what filesystem) and, under mpiexec, whether every rank sees the files
rank 0 writes there. `diagnose(comm)` gathers a Report; `render` turns it into text."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from .backend.numba import cache

PACKAGES = ("hpcad", "numpy", "numba", "llvmlite", "scipy", "mpi4py", "mpich", "numba-mpi",
            "networkx", "checkpoint_schedules", "tbb")
LAYERS = ("tbb", "omp", "workqueue")
MPI_LAUNCH_VARIABLES = ("PMI_", "PMIX_", "HYDRA_", "HYDI_", "MPI_LOCAL", "OMPI_")
# filesystems whose files every node of a cluster sees; anything else is taken as local
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smb3", "smbfs",
                       "ceph", "fuse.ceph", "glusterfs", "fuse.glusterfs", "panfs", "wekafs",
                       "fuse.sshfs", "afs", "orangefs", "pvfs2", "fuse.juicefs"}


@dataclass
class Report:
    sections: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, section: str, name: str, value: str) -> None:
        self.sections.setdefault(section, []).append((name, value))


def diagnose(comm=None) -> Report:
    """Every check; collective when comm has more than one rank (call it on all ranks).
    Only rank 0's report is complete."""
    report = Report()
    rank = comm.Get_rank() if comm is not None else 0
    if rank == 0:
        versions(report)
        mpi_library(report, comm)
        threading_layers(report)
    cache_directory(report, comm)
    return report


def versions(report: Report) -> None:
    report.add("versions", "python", f"{sys.version.split()[0]} ({sys.executable})")
    for name in PACKAGES:
        try:
            report.add("versions", name, metadata.version(name))
        except metadata.PackageNotFoundError:
            report.add("versions", name, "not installed")


def mpi_library(report: Report, comm) -> None:
    if comm is None:
        report.add("MPI", "mpi4py", "cannot be imported")
        report.problems.append("mpi4py cannot be imported, so MPI kernels cannot run: "
                               "pip install mpi4py mpich")
    else:
        from mpi4py import MPI

        from .backend.numba.mpi import load_library
        from .errors import HpcadError
        report.add("MPI", "library", " ".join(MPI.Get_library_version().split("\n")[0].split()))
        report.add("MPI", "ranks", f"{comm.Get_size()} in this run")
        try:
            load_library()
            report.add("MPI", "compiled MPI calls", "ok (MPICH ABI)")
        except HpcadError as e:
            report.add("MPI", "compiled MPI calls", "unavailable")
            report.problems.append(str(e))
    launcher = Path(sys.executable).parent / "mpiexec"
    launcher = str(launcher) if launcher.exists() else shutil.which("mpiexec")
    if launcher is None:
        report.add("MPI", "mpiexec", "not found")
        report.problems.append("no `mpiexec` next to this Python or on PATH: pip install "
                               "mpich (or load your cluster's MPI module)")
        return
    report.add("MPI", "mpiexec", f"{launcher} ({_launcher_version(launcher)})")


def _launcher_version(launcher: str) -> str:
    try:
        out = subprocess.run([launcher, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"does not run: {e}"
    lines = [" ".join(line.split()) for line in out.splitlines() if line.strip()]
    if not lines:
        return "prints no version"
    # MPICH's hydra: "HYDRA build details:" and then "Version: 5.0.2"
    return " ".join(lines[:2]) if lines[0].endswith(":") and len(lines) > 1 else lines[0]


def threading_layers(report: Report) -> None:
    """Start each layer in a fresh process (a process can start only one)."""
    with ThreadPoolExecutor(len(LAYERS)) as pool:
        results = dict(zip(LAYERS, pool.map(try_layer, LAYERS)))
    for layer, (ok, detail) in results.items():
        report.add("numba threading layers", layer, "ok" if ok else f"fails: {detail}")
    if not any(ok for ok, _ in results.values()):
        report.problems.append("no numba threading layer starts, so parallel (prange) kernels "
                               "cannot run: pip install tbb, or install an OpenMP runtime")
    asked = os.environ.get("NUMBA_THREADING_LAYER", "default")
    import numba
    report.add("numba threading layers", "selected",
               f"NUMBA_THREADING_LAYER={asked}, NUMBA_NUM_THREADS="
               f"{numba.config.NUMBA_NUM_THREADS}")
    if asked in results and not results[asked][0]:
        report.problems.append(f"NUMBA_THREADING_LAYER={asked} does not start: unset it or "
                               f"pick one that does")


def try_layer(layer: str) -> tuple[bool, str]:
    """Whether numba's threading layer `layer` starts in a fresh process, and why not."""
    code = "from hpcad.backend.numba import threads; print(threads.start())"
    # under mpiexec the child would take the launcher's PMI variables as its own
    env = {k: v for k, v in os.environ.items() if not k.startswith(MPI_LAUNCH_VARIABLES)}
    env["NUMBA_THREADING_LAYER"] = layer
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=120)
    except subprocess.TimeoutExpired:
        return False, "timed out"
    if out.returncode == 0 and out.stdout.split()[-1:] == [layer]:
        return True, ""
    last = [line for line in out.stderr.splitlines() if line.strip()][-1:] or ["no message"]
    return False, last[0][-300:]


def cache_directory(report: Report, comm) -> None:
    try:
        directory = cache.cache_dir().resolve()
    except OSError as e:    # every rank has the same environment, so every rank stops here
        report.problems.append(f"the compile cache directory cannot be made ({e}): set "
                               f"HPCAD_CACHE_DIR to a directory you can write")
        return
    size = comm.Get_size() if comm is not None else 1
    rank = comm.Get_rank() if comm is not None else 0
    if rank == 0:
        origin = "HPCAD_CACHE_DIR" if os.environ.get("HPCAD_CACHE_DIR") else "default"
        report.add("compile cache", "directory", f"{directory} ({origin})")
        files = [p for p in directory.rglob("*") if p.is_file()]
        kernels = len(list(directory.glob("*.py")))
        megabytes = sum(p.stat().st_size for p in files) / 1e6
        report.add("compile cache", "size", f"{megabytes:.1f} MB in {len(files)} files, "
                                            f"{kernels} compiled functions (hpcad removes "
                                            f"none by itself: `hpcad cache clear`)")
        if not os.access(directory, os.W_OK):
            report.problems.append(f"the cache directory {directory} is not writable: set "
                                   f"HPCAD_CACHE_DIR to a directory you can write")
        unsafe = cache.audit(directory)
        report.add("compile cache", "safety", f"{len(unsafe)} problem(s), below" if unsafe
                   else "no one else can write to it; every entry verifies")
        report.problems += unsafe
        fstype, mount = filesystem(directory)
        shared = fstype in NETWORK_FILESYSTEMS
        report.add("compile cache", "filesystem",
                   f"{fstype} on {mount}: " + ("a network filesystem, which ranks on other "
                                               "nodes see" if shared else
                                               "local to this node; ranks on other nodes "
                                               "would compile their own copies"))
    if size > 1:
        _shared_between_ranks(report, comm, directory)


def _shared_between_ranks(report: Report, comm, directory: Path) -> None:
    """Rank 0 writes a token file in its cache directory; every rank looks for it."""
    token = uuid.uuid4().hex if comm.Get_rank() == 0 else None
    token = comm.bcast(token, root=0)
    path = directory / f".doctor-{token}"
    refused = None
    if comm.Get_rank() == 0:
        try:
            path.write_text(token)
        except OSError as e:    # every rank must still reach the bcast
            refused = str(e)
    if comm.bcast(refused, root=0) is not None:
        if comm.Get_rank() == 0:
            report.add("compile cache", "shared by ranks", "unknown: rank 0 cannot write there")
            report.problems.append(f"rank 0 cannot write a file in the cache directory "
                                   f"({refused}): set HPCAD_CACHE_DIR to a directory you can "
                                   f"write")
        return
    try:
        sees = path.read_text() == token
    except OSError:
        sees = False
    seen = comm.gather((socket.gethostname(), str(directory), sees), root=0)
    comm.Barrier()
    if comm.Get_rank() != 0:
        return
    path.unlink()
    hosts = sorted({host for host, _, _ in seen})
    blind = [f"{r} ({host}: {d})" for r, (host, d, ok) in enumerate(seen) if not ok]
    if blind:
        report.add("compile cache", "shared by ranks", f"no: {len(blind)} of {len(seen)} ranks "
                                                       f"do not see rank 0's files")
        report.problems.append(f"ranks {', '.join(blind)} do not see the files rank 0 writes "
                               f"in {directory}: each compiles its own copy; point "
                               f"HPCAD_CACHE_DIR at a directory all nodes share")
    else:
        report.add("compile cache", "shared by ranks",
                   f"yes: all {len(seen)} ranks on {len(hosts)} node(s) see rank 0's files")


def filesystem(path: Path) -> tuple[str, str]:
    """(filesystem type, mount point) of the mount that holds path, from /proc/mounts."""
    best = ("unknown", "/")
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return best
    text, longest = str(path), -1
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        inside = text == mount or text.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > longest:
            best, longest = (parts[2], mount), len(mount)
    return best


def render(report: Report) -> str:
    lines = ["hpcad doctor"]
    for section, rows in report.sections.items():
        lines.append(f"\n{section}")
        width = max(len(name) for name, _ in rows)
        lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    lines.append("\nproblems" if report.problems else "\nno problems found")
    lines += [f"  - {p}" for p in report.problems]
    return "\n".join(lines) + "\n"


def run() -> int:
    """`hpcad doctor`, alone or under mpiexec: rank 0 prints; 1 if it found a problem."""
    try:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
    except ImportError:
        comm = None
    if comm is not None:
        from .mpi_job import watch
        watch()     # a check that fails on one rank ends the job instead of hanging the rest
    report = diagnose(comm)
    if comm is None or comm.Get_rank() == 0:
        sys.stdout.write(render(report))
    return 1 if report.problems else 0
