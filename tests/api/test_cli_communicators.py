"""`hpcad plan` and `show-ir` see types, not communicators: a gradient call compares its
communicator arguments (MPI.Comm.Compare) and takes two that hold the same processes as
one, which the command line cannot see. Before, `hpcad plan` printed a result made from
two such communicators as per-rank, each rank seeding it, while the call seeded it once:
a plan that differed from what ran. Now they are different unless named in --alike, where
the plan is the call's; a result that needs the comparison is refused, saying so."""
from pathlib import Path

import numpy as np
from mpi4py import MPI

import hpcad as ad
from hpcad.cli import main
from tests.mpi import mpi_kernels as mk

TARGET = f"{Path(mk.__file__)}:two_communicators"
SIG = "float64[::1], !comm, !cart1"


def _replication_lines(plan: str) -> list[str]:
    return [line for line in plan.splitlines() if line.startswith(("replication",
                                                                   "adjoint reductions"))]


def test_plan_names_communicators_that_hold_the_same_processes(capsys):
    comm = MPI.COMM_WORLD
    cart = comm.Create_cart([comm.size], periods=[True])
    assert main(["plan", TARGET, "--sig", SIG, "--alike", "cart"]) == 0
    plan = capsys.readouterr().out
    assert "result 0 replicated over comm (one global output" in plan
    api = ad.plan(mk.two_communicators, np.ones(3), comm, cart)
    assert _replication_lines(api) == _replication_lines(plan)
    assert main(["show-ir", TARGET, "--sig", SIG, "--grad", "--alike", "cart"]) == 0
    assert "results replicated over %comm" in capsys.readouterr().out


def test_plan_without_alike_refuses_saying_why(capsys):
    assert main(["plan", TARGET, "--sig", SIG]) == 2
    err = capsys.readouterr().err
    assert "different communicator ('comm' and 'cart')" in err
    assert "`hpcad plan` and `show-ir` take them as different unless named in --alike" in err


def test_alike_names_communicator_arguments_only(capsys):
    assert main(["plan", TARGET, "--sig", SIG, "--alike", "x"]) == 2
    assert "--alike names x, which are not communicator arguments of the kernel " \
           "(it has: comm, cart)" in capsys.readouterr().err
