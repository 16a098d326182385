"""`hpcad doctor` names the MPI library, the mpiexec and the threading layers that start,
measures the cache directory, tells its filesystem, and finds out under mpiexec whether the
ranks share the cache; a layer that cannot start is reported with numba's reason."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hpcad import doctor

MPIEXEC = Path(sys.executable).parent / "mpiexec"


def _doctor(cache: Path, *launch: str) -> subprocess.CompletedProcess:
    cmd = [*launch, sys.executable, "-m", "hpcad.cli", "doctor"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, HPCAD_CACHE_DIR=str(cache)))


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    (cache / "kernel_a.py").write_bytes(b"x" * 1_000_000)
    (cache / "kernel_b.py").write_bytes(b"x" * 200_000)
    (cache / "__pycache__").mkdir()
    (cache / "__pycache__" / "kernel_a.nbc").write_bytes(b"x" * 300_000)
    return cache, _doctor(cache)


def test_names_the_mpi_library_and_mpiexec(serial):
    from mpi4py import MPI
    _, out = serial
    assert out.returncode == 0, out.stdout + out.stderr
    library = " ".join(MPI.Get_library_version().split("\n")[0].split())
    assert re.search(rf"^  library\s+{re.escape(library)}$", out.stdout, re.M), out.stdout
    assert re.search(rf"^  mpiexec\s+{re.escape(str(MPIEXEC))} \(", out.stdout, re.M)


def test_names_the_threading_layers_that_start(serial):
    _, out = serial
    for layer in ("tbb", "omp", "workqueue"):   # the parallel tests run on all three
        assert re.search(rf"^  {layer}\s+ok$", out.stdout, re.M), out.stdout


def test_measures_the_cache_and_names_its_filesystem(serial):
    cache, out = serial
    assert f"{cache.resolve()} (HPCAD_CACHE_DIR)" in out.stdout
    assert "1.5 MB in 3 files, 2 compiled functions" in out.stdout
    if shutil.which("findmnt"):
        fstype = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(cache)],
                                capture_output=True, text=True).stdout.split()[0]
        assert re.search(rf"^  filesystem\s+{re.escape(fstype)} on ", out.stdout, re.M)


def test_a_layer_that_cannot_start_is_reported_with_the_reason():
    ok, detail = doctor.try_layer("no_such_layer")
    assert not ok and "no_such_layer" in detail


def test_ranks_that_share_the_cache(tmp_path):
    out = _doctor(tmp_path, str(MPIEXEC), "-n", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "shared by ranks  yes: all 2 ranks on 1 node(s) see rank 0's files" in out.stdout
    assert out.stdout.count("hpcad doctor") == 1     # rank 0 prints
    assert not list(tmp_path.glob(".doctor-*"))      # the token file is gone


@pytest.mark.slow
def test_ranks_with_different_caches_are_a_problem(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    cmd = [str(MPIEXEC), "-n", "1", "-env", "HPCAD_CACHE_DIR", str(a), sys.executable, "-m",
           "hpcad.cli", "doctor", ":", "-n", "1", "-env", "HPCAD_CACHE_DIR", str(b),
           sys.executable, "-m", "hpcad.cli", "doctor"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "no: 1 of 2 ranks do not see rank 0's files" in out.stdout
    assert "ranks 1 (" in out.stdout and f"{b.resolve()}) do not see" in out.stdout


def test_a_cache_directory_that_cannot_be_made_is_a_problem():
    out = _doctor(Path("/proc/no_such_dir/cache"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the compile cache directory cannot be made" in out.stdout
