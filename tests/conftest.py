"""tests/mpi runs only under mpiexec (tests/test_mpi_launch.py starts it with --with-mpi);
a plain `pytest` run does not collect it, rather than reporting it skipped.

Tests marked `gradbench` run GradBench's validators from a checkout in
$HPCAD_GRADBENCH_DIR: without one they are deselected, saying so in one line, unless the
marker expression asks for them (`-m gradbench`), when they fail saying how to get one."""
import os
import sys

collect_ignore = [] if "--with-mpi" in sys.argv else ["mpi"]
GRADBENCH_DIR = "HPCAD_GRADBENCH_DIR"


def pytest_collection_modifyitems(config, items):
    if os.environ.get(GRADBENCH_DIR) or "gradbench" in (config.option.markexpr or ""):
        return
    wanted = [item for item in items if item.get_closest_marker("gradbench") is None]
    dropped = len(items) - len(wanted)
    if dropped:
        config.hook.pytest_deselected(items=[i for i in items if i not in wanted])
        items[:] = wanted
        config._gradbench_deselected = dropped


def pytest_terminal_summary(terminalreporter, config):
    dropped = getattr(config, "_gradbench_deselected", 0)
    if dropped:
        terminalreporter.write_line(
            f"gradbench: {dropped} test(s) of GradBench's validators deselected: set "
            f"{GRADBENCH_DIR} to a GradBench checkout to run them")
