"""Benchmark: the eight halo-exchange variants of hpcad/kernels/halo_variants.py (as
halobench compares them) on a 2-D Cartesian decomposition under mpiexec at 2 and 4 ranks,
numba backend: per variant the median primal and gradient time (d loss / d u and d alpha)
and gradient / primal. Each rank keeps a block of the same size (weak scaling)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RANKS = (2, 4)
# name -> (cells per rank along each axis, time steps, repeats)
SIZES = {"halo 256^2/rank x50": (256, 50, 7)}

_RANK_SCRIPT = """
import json, time
import numpy as np
from mpi4py import MPI
import hpcad as ad
from hpcad.kernels.halo_variants import VARIANTS
comm = MPI.COMM_WORLD
cells, steps, repeats = {cells!r}, {steps!r}, {repeats!r}
cart = comm.Create_cart(MPI.Compute_dims(comm.size, 2))
x = np.linspace(0.0, 1.0, cells + 2)
u0 = np.sin(3.0 * x + cart.rank)[:, None] * np.cos(2.0 * x)[None, :] + 0.5

def timed(fn):
    fn()
    out = []
    for _ in range(repeats):
        cart.Barrier()
        t = time.perf_counter()
        fn()
        cart.Barrier()
        out.append(time.perf_counter() - t)
    return float(np.median(out))

rows = {{}}
for name, kernel in VARIANTS.items():
    kernel.backend = "numba"
    grad = ad.grad(kernel, argnums=(0, 1), backend="numba")
    primal_s = timed(lambda: kernel(u0.copy(), 0.1, steps, cart))
    grad_s = timed(lambda: grad(u0.copy(), 0.1, steps, cart))
    rows[name] = {{"primal_s": primal_s, "grad_s": grad_s, "grad_over_primal": grad_s / primal_s}}
if comm.rank == 0:
    print(json.dumps(rows))
"""


def _mpiexec() -> str:
    found = Path(sys.executable).parent / "mpiexec"
    return str(found) if found.exists() else str(shutil.which("mpiexec"))


def run(size) -> dict:
    cells, steps, repeats = size
    script = _RANK_SCRIPT.format(cells=cells, steps=steps, repeats=repeats)
    row: dict = {"size": list(size), "cores": os.cpu_count(), "ranks": {}}
    for ranks in RANKS:
        out = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, "-c", script],
                             capture_output=True, text=True, timeout=1800, cwd=ROOT,
                             env=dict(os.environ, NUMBA_NUM_THREADS="1"))
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        row["ranks"][ranks] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


HEADER = ("case", "ranks", "variant", "primal ms", "grad ms", "grad/primal")


def halo_lines(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        for ranks, variants in r["ranks"].items():
            for name, x in variants.items():
                cells = (r["name"], str(ranks), name, f"{1e3 * x['primal_s']:.2f}",
                         f"{1e3 * x['grad_s']:.2f}", f"{x['grad_over_primal']:.2f}")
                lines.append("| " + " | ".join(cells) + " |")
    return lines
