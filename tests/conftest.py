"""tests/mpi runs only under mpiexec (tests/test_mpi_launch.py starts it with --with-mpi);
a plain `pytest` run does not collect it, rather than reporting it skipped. The MPI runs a
session selects start in the background as soon as collection ends, beside the serial tests."""
import sys

import pytest

collect_ignore = [] if "--with-mpi" in sys.argv else ["mpi"]


@pytest.hookimpl(trylast=True)   # after -m / -k have deselected
def pytest_collection_modifyitems(config, items):
    if config.option.collectonly or "--with-mpi" in sys.argv:
        return
    ids = [item.callspec.params["run_id"] for item in items
           if getattr(item, "originalname", "") == "test_mpi_suite"]
    if ids:
        from tests.test_mpi_launch import LAUNCHER
        LAUNCHER.start(ids)


def pytest_sessionfinish(session):
    launch = sys.modules.get("tests.test_mpi_launch")
    if launch is not None:
        launch.LAUNCHER.stop()
