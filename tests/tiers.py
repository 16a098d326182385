"""The measured half of the test tiers. A test not marked slow in its code that takes
seconds anyway (most often a numba compile) is listed in tests/slow_tests.txt, and
tests/conftest.py marks it slow, so that the fast tier (`pytest -m "not slow"`) stays under
five minutes on two cores. The list is made from a timed run of the fast tier:

    python -m pytest -m "not slow" --junitxml=fast.xml
    python -m tests.tiers fast.xml [more.xml ...] [--seconds 1.0]

adds every test that took `--seconds` or more in those runs. The list only grows (the
listed tests are not in a fast-tier run); remove a line by hand to bring a test back."""
import argparse
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTED = Path(__file__).resolve().parent / "slow_tests.txt"
# never listed: the fast tier's MPI run (tests/test_mpi_launch.py waits for mpiexec's run in
# the background beside the serial tests: its time is the MPI tests', not one test's), and
# one test of each area whose tests all take seconds (a process of its own each)
KEPT = ("tests/test_mpi_launch.py::",
        "tests/backend/test_disk_cache.py::test_second_process_hits_the_cache",
        "tests/faults/test_cache_faults.py::test_a_new_cache_is_private_and_loads_what_it_wrote",
        "tests/faults/test_interrupt.py::test_ctrl_c_in_the_interpreter_stops_the_kernel",
        "tests/faults/test_mpi_faults.py::test_fault_ends_the_job_with_a_message"
        "[kernel_exception-interp-2]",
        "tests/test_inverse_heat.py::test_gradient_agrees_with_finite_differences")
HEADER = ("# Tests the fast tier leaves to the full tier: each took a second or more in a\n"
          "# timed fast-tier run on two cores (written by `python -m tests.tiers`, read by\n"
          "# tests/conftest.py). One pytest node id per line.\n")


def listed(path: Path | None = None) -> set[str]:
    """The node ids in the list at path, by default LISTED (comments and blank lines
    apart)."""
    path = LISTED if path is None else path
    if not path.exists():
        return set()
    lines = (line.strip() for line in path.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def node_id(classname: str, name: str) -> str:
    """A junit test case's pytest node id: classname is the module's dotted path, then any
    test classes (tests.ad.test_linalg.TestX)."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        module = Path(*parts[:cut]).with_suffix(".py")
        if (ROOT / module).exists():
            return "::".join([module.as_posix(), *parts[cut:], name])
    raise ValueError(f"no test file for {classname!r}")


def timed(report: Path) -> dict[str, float]:
    """Seconds per node id in a junit report (setup, call and teardown together)."""
    root = ET.parse(report).getroot()
    return {node_id(case.get("classname", ""), case.get("name", "")):
            float(case.get("time", 0)) for case in root.iter("testcase")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="junit XML of fast-tier runs")
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    times: dict[str, float] = {}
    for report in args.reports:
        times.update(timed(report))
    slow = {n for n, t in times.items() if t >= args.seconds and not n.startswith(KEPT)}
    before = listed()
    LISTED.write_text(HEADER + "".join(f"{n}\n" for n in sorted(before | slow)))
    kept = sum(t for n, t in times.items() if n not in slow)
    print(f"{len(slow - before)} tests added ({len(before | slow)} listed); the fast tier's "
          f"other tests took {kept:.0f} s in these runs")


if __name__ == "__main__":
    main()
