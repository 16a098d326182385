"""hpcad.progress draws a bar only on rank 0 and only when stderr is a terminal; compiling a
kernel's derivative goes through it."""
import io

import numpy as np
import pytest

import hpcad as ad
from hpcad.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def stderr(monkeypatch):
    def install(stream):
        monkeypatch.setattr("sys.stderr", stream)
        return stream
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    return install


def _count_to_three():
    with progress(3, "counting") as p:
        for _ in range(3):
            p.advance()


def test_silent_when_stderr_is_not_a_terminal(stderr):
    stream = stderr(io.StringIO())
    _count_to_three()
    assert stream.getvalue() == ""


def test_a_bar_on_a_terminal(stderr):
    stream = stderr(Terminal())
    _count_to_three()
    assert "counting:" in stream.getvalue() and "/3" in stream.getvalue()


def test_silent_on_other_ranks(stderr, monkeypatch):
    stream = stderr(Terminal())
    monkeypatch.setenv("PMI_RANK", "1")
    _count_to_three()
    assert stream.getvalue() == ""


def test_compiling_a_derivative_shows_progress(stderr):
    stream = stderr(Terminal())

    @ad.kernel
    def sum_of_squares(x):
        s = 0.0
        for i in range(x.shape[0]):
            s += x[i] * x[i]
        return s

    g = ad.grad(sum_of_squares)(np.arange(3.0))
    np.testing.assert_array_equal(g, [0.0, 2.0, 4.0])
    assert "hpcad: compiling sum_of_squares.rev" in stream.getvalue()
