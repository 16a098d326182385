"""tests/tiers.py: junit test cases become pytest node ids, and a timed run adds its slow
tests to the list (never those it keeps fast)."""
import pytest

from tests import tiers

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.ad.test_linalg" name="test_a[x-numba]" time="2.5"/>
<testcase classname="tests.ad.test_linalg" name="test_b" time="0.2"/>
<testcase classname="tests.test_mpi_launch" name="test_mpi_suite[2-fast]" time="80.0"/>
</testsuite></testsuites>
"""


def test_a_test_case_becomes_its_node_id():
    assert tiers.node_id("tests.ad.test_linalg", "test_a[x-numba]") == \
        "tests/ad/test_linalg.py::test_a[x-numba]"
    assert tiers.node_id("tests.ad.test_linalg.TestRows", "test_c") == \
        "tests/ad/test_linalg.py::TestRows::test_c"
    with pytest.raises(ValueError):
        tiers.node_id("tests.no_such_module", "test_d")


def test_a_timed_run_adds_its_slow_tests_and_keeps_the_list(tmp_path, monkeypatch):
    listed = tmp_path / "slow_tests.txt"
    listed.write_text("# a comment\ntests/api/test_params.py::test_old\n")
    monkeypatch.setattr(tiers, "LISTED", listed)
    report = tmp_path / "fast.xml"
    report.write_text(JUNIT)
    tiers.main([str(report), "--seconds", "1.0"])
    assert tiers.listed(listed) == {"tests/api/test_params.py::test_old",
                                    "tests/ad/test_linalg.py::test_a[x-numba]"}
