"""Tests run under mpiexec (tests/test_mpi_launch.py). Every case runs on the interpreter;
the slow tier compiles with numba the cases each file lists (at least one kernel per family
of calls), since each compiled derivative costs seconds on a cold cache;
HPCAD_ALL_MPI=1 compiles every case."""
import os

import pytest

ALL_NUMBA = os.environ.get("HPCAD_ALL_MPI", "") not in ("", "0")
BACKENDS = ["interp", pytest.param("numba", marks=pytest.mark.slow)]


def case_backends(cases, on_numba) -> list:
    """(case, backend) parameters: every case on the interpreter; on numba (slow tier) the
    cases in on_numba, or all of them under HPCAD_ALL_MPI=1."""
    out = [pytest.param(c, "interp", id=f"{c}-interp") for c in cases]
    out += [pytest.param(c, "numba", marks=pytest.mark.slow, id=f"{c}-numba")
            for c in cases if ALL_NUMBA or c in on_numba]
    return out


def interp_unless_all() -> list:
    """The backends of a test whose subject does not depend on the backend (an analysis, an
    error path): the interpreter, and numba too under HPCAD_ALL_MPI=1."""
    return BACKENDS if ALL_NUMBA else ["interp"]
