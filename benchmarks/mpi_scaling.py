"""Benchmark: weak scaling of the distributed 1-D heat (hpcad/kernels/mpi_stencils.py, which
examples/heat_mpi.py runs) and its gradient under mpiexec: each rank keeps the same share of
the domain, so ideal times stay flat. Weak-scaling efficiency = t(1 rank) / t(R ranks); the
gradient's is compared with the primal's (target: >= 0.9 of it) and gradient/primal is
reported per rank count. The primal
is hpcad's compiled kernel (what numba + numba-mpi code would run)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"heat_mpi 2e5/rank x50": (200_000, 50), "heat_mpi 5e6/rank x10": (5_000_000, 10)}

_RANK_SCRIPT = """
import json, sys, time
import numpy as np
from mpi4py import MPI
import hpcad as ad
from hpcad.kernels.mpi_stencils import heat_local
comm = MPI.COMM_WORLD
n, steps = {per_rank!r}, {steps!r}
u0 = np.sin(np.linspace(0.0, 3.0, n + 2) + comm.rank) + 0.1
rev = ad.autodiff(heat_local, activity=(ad.Duplicated, ad.Active, ad.Const, ad.Const))
du = np.zeros_like(u0)

def timed(fn, repeats=5):
    fn()
    out = []
    for _ in range(repeats):
        comm.Barrier()
        t = time.perf_counter()
        fn()
        comm.Barrier()
        out.append(time.perf_counter() - t)
    return float(np.median(out))

primal = timed(lambda: heat_local(u0.copy(), 0.2, steps, comm))
grad = timed(lambda: rev(u0.copy(), du, 0.2, steps, comm))
if comm.rank == 0:
    print(json.dumps({{"primal_s": primal, "grad_s": grad}}))
"""


def rank_counts() -> list[int]:
    cores = os.cpu_count() or 1
    return [r for r in (1, 2, 4, 8, 16) if r <= cores]


def run(size) -> dict:
    per_rank, steps = size
    mpiexec = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
    script = _RANK_SCRIPT.format(per_rank=per_rank,
                                 steps=steps)
    row = {"ranks": {}}
    for ranks in rank_counts():
        out = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, "-c", script],
                             capture_output=True, text=True, timeout=900, cwd=ROOT,
                             env=dict(os.environ, NUMBA_NUM_THREADS="1"))
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        row["ranks"][ranks] = json.loads(out.stdout.strip().splitlines()[-1])
    base = row["ranks"][1]
    for x in row["ranks"].values():
        x["grad_over_primal"] = x["grad_s"] / x["primal_s"]
        x["primal_efficiency"] = base["primal_s"] / x["primal_s"]
        x["grad_efficiency"] = base["grad_s"] / x["grad_s"]
    return row
