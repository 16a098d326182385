"""MPI faults on some ranks of a job (mpi_fault_programs.py) end the whole job within 30 s,
with a non-zero exit and a message naming the problem, at 2 and 3 ranks; none hangs."""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent
PROGRAMS = Path(__file__).parent / "mpi_fault_programs.py"
RING_SENDRECV = next(n for n, line in enumerate(PROGRAMS.read_text().splitlines(), 1)
                     if "comm.Sendrecv(x," in line)
TRUNCATED = f"mpi_fault_programs.py:{RING_SENDRECV}: MPI_Sendrecv failed on rank 1: " \
            f"Message truncated"

# fault, backend, what the output must say
FAULTS = [
    ("user_exception", "interp", ["user code failed on rank 1", "MPI_Abort"]),
    ("kernel_exception", "interp", ["IndexOutOfBounds", "while running kernel 'picked'",
                                    "MPI_Abort"]),
    ("budget_one_rank", "interp", ["memory budget of 40 bytes is below", "MPI_Abort"]),
    ("different_budgets", "interp", ["PlanMismatch", "a memory budget of 1000000 bytes",
                                     "a memory budget of 300 bytes"]),
    ("different_kernels", "interp", ["PlanMismatch", "kernel 'cubes'", "kernel 'ring'"]),
    ("truncated", "interp", [TRUNCATED, "MPI_Abort"]),
    ("truncated", "numba", [TRUNCATED, "MPI_Abort"]),
    ("doctor_read_only", "interp", ["rank 0 cannot write a file in the cache directory"]),
]


def _mpiexec() -> str:
    found = Path(sys.executable).parent / "mpiexec"
    return str(found) if found.exists() else shutil.which("mpiexec")


def _run_for_at_most(seconds: int, cmd: list, env: dict) -> subprocess.CompletedProcess:
    """cmd's result; a job still running after `seconds` is killed whole (mpiexec and its
    ranks, which would otherwise spin in MPI waits) and fails the test."""
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=ROOT, env=env, start_new_session=True)
    try:
        stdout, stderr = job.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        stdout, stderr = job.communicate()
        pytest.fail(f"the job hung for {seconds} s: {stdout[-2000:]}{stderr[-2000:]}")
    return subprocess.CompletedProcess(cmd, job.returncode, stdout, stderr)


@pytest.mark.parametrize("ranks", [2, pytest.param(3, marks=pytest.mark.slow)])
@pytest.mark.parametrize("fault, backend, said", FAULTS,
                         ids=[f"{f}-{b}" for f, b, _ in FAULTS])
def test_fault_ends_the_job_with_a_message(fault, backend, said, ranks, tmp_path):
    env = dict(os.environ, NUMBA_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("HPCAD_MEMORY_BUDGET", None)
    env.pop("HPCAD_MPI_ABORT", None)
    if fault == "doctor_read_only":
        env["HPCAD_CACHE_DIR"] = str(tmp_path)
    out = _run_for_at_most(30, [_mpiexec(), "-n", str(ranks), sys.executable, str(PROGRAMS),
                                fault, backend], env)
    assert out.returncode != 0, out.stdout[-3000:] + out.stderr[-3000:]
    # doctor reports its problems on stdout, everything else on stderr
    text = out.stdout if fault == "doctor_read_only" else out.stderr
    for words in said:
        assert words in text, (words, out.stdout[-3000:], out.stderr[-3000:])
    assert "no fault surfaced" not in out.stdout
