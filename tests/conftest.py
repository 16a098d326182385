"""tests/mpi runs only under mpiexec (tests/test_mpi_launch.py starts it with --with-mpi);
a plain `pytest` run does not collect it, rather than reporting it skipped. The MPI runs a
session selects start in the background as soon as collection ends, beside the serial tests.

Tests listed in tests/slow_tests.txt (measured: tests/tiers.py) are marked slow as they are
collected, before `-m` selects.

Tests marked `gradbench` run GradBench's validators from a checkout in
$HPCAD_GRADBENCH_DIR: without one they are deselected, saying so in one line, unless the
marker expression asks for them (`-m gradbench`), when they fail saying how to get one.

Under pytest-xdist (`pytest -n 2`, as CI runs) the controller, which runs no test, starts
the MPI runs once the first worker has collected, and the worker that runs a test_mpi_suite
reads its result from a file (tests/test_mpi_launch.py)."""
import os
import re
import shutil
import sys
import tempfile

import pytest

from tests.tiers import listed

collect_ignore = [] if "--with-mpi" in sys.argv else ["mpi"]
GRADBENCH_DIR = "HPCAD_GRADBENCH_DIR"
MEASURED_SLOW = listed()


def pytest_itemcollected(item):
    """A test the fast tier leaves to the full tier by measurement (tests/tiers.py)."""
    if item.nodeid in MEASURED_SLOW:
        item.add_marker(pytest.mark.slow)


@pytest.hookimpl(trylast=True)   # after -m / -k have deselected
def pytest_collection_modifyitems(config, items):
    deselect_gradbench(config, items)
    drop_subset_runs(config, items)
    scale_time_limits(config, items)
    if config.option.collectonly or "--with-mpi" in sys.argv \
            or hasattr(config, "workerinput"):     # an xdist worker: the controller starts
        return
    ids = [item.callspec.params["run_id"] for item in items
           if getattr(item, "originalname", "") == "test_mpi_suite"]
    if ids:
        from tests.test_mpi_launch import LAUNCHER
        LAUNCHER.start(ids)


def drop_subset_runs(config, items) -> None:
    """The MPI run of the fast tier at 2 ranks ("2-fast") runs a part of the full run at 2
    ranks ("2"): where a session selects both, only the full one runs."""
    runs = {item.callspec.params["run_id"]: item for item in items
            if getattr(item, "originalname", "") == "test_mpi_suite"}
    if "2" in runs and "2-fast" in runs:
        config.hook.pytest_deselected(items=[runs["2-fast"]])
        items.remove(runs["2-fast"])


def scale_time_limits(config, items) -> None:
    """Every test's time limit (its timeout mark, else pyproject's) times
    $HPCAD_TEST_TIME_SCALE: tests/test_mpi_launch.py runs tests/mpi beside the serial tests,
    sharing the cores, so their compiles take longer; a hang still fails, later."""
    scale = float(os.environ.get("HPCAD_TEST_TIME_SCALE", "1"))
    if scale == 1:
        return
    default = float(config.getini("timeout") or 0)
    for item in items:
        marker = item.get_closest_marker("timeout")
        limit = marker.args[0] if marker is not None and marker.args else default
        kwargs = dict(marker.kwargs) if marker is not None else {}   # (method="thread")
        if limit:
            item.add_marker(pytest.mark.timeout(limit * scale, **kwargs), append=False)


def deselect_gradbench(config, items) -> None:
    if os.environ.get(GRADBENCH_DIR) or "gradbench" in (config.option.markexpr or ""):
        return
    wanted = [item for item in items if item.get_closest_marker("gradbench") is None]
    dropped = len(items) - len(wanted)
    if dropped:
        config.hook.pytest_deselected(items=[i for i in items if i not in wanted])
        items[:] = wanted
        config.gradbench_deselected = dropped


def pytest_terminal_summary(terminalreporter, config):
    dropped = getattr(config, "gradbench_deselected", 0)
    if dropped:
        terminalreporter.write_line(
            f"gradbench: {dropped} test(s) of GradBench's validators deselected: set "
            f"{GRADBENCH_DIR} to a GradBench checkout to run them")


def pytest_sessionfinish(session):
    launch = sys.modules.get("tests.test_mpi_launch")
    if launch is not None:
        launch.LAUNCHER.stop()
    folder = getattr(session.config, "hpcad_mpi_results", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


MPI_SUITE = re.compile(r"tests/test_mpi_launch\.py::test_mpi_suite\[(.+)\]")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist's controller: the folder where it writes the MPI runs' results, for every
    worker."""
    config = node.config
    if not hasattr(config, "hpcad_mpi_results"):
        config.hpcad_mpi_results = tempfile.mkdtemp(prefix="hpcad-mpi-runs-")
    from tests.test_mpi_launch import RESULTS
    node.workerinput[RESULTS] = config.hpcad_mpi_results


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """xdist's controller: start the MPI runs the workers selected (after -m, -k and
    drop_subset_runs), as soon as the first worker has collected."""
    runs = [m[1] for m in map(MPI_SUITE.fullmatch, ids) if m]
    if runs:
        from pathlib import Path

        from tests.test_mpi_launch import LAUNCHER
        LAUNCHER.start(runs, Path(node.config.hpcad_mpi_results))
