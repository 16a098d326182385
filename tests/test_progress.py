"""hpcad.progress draws a bar only on rank 0 and only when stderr is a terminal; compiling a
kernel's derivative goes through it."""
import io

import numpy as np
import pytest

import hpcad as ad
from hpcad.kernels.stencils import heat_misfit
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


class Recorder:
    """Stands in for tqdm: records each bar's description, total and positions."""
    bars = []

    def __init__(self, total, desc, **_):
        self.total, self.desc, self.n, self.seen, self.closed = total, desc, 0, [], False
        Recorder.bars.append(self)

    def update(self, k):
        self.n += k
        self.seen.append(self.n)

    def close(self):
        self.closed = True


@pytest.mark.parametrize("backend", ["interp", "numba"])
@pytest.mark.parametrize("schedule", ["segments", "revolve"])
def test_checkpointed_reverse_sweep_reports_progress(stderr, monkeypatch, backend, schedule):
    monkeypatch.setattr("tqdm.tqdm", Recorder)
    Recorder.bars = []
    args = (np.sin(np.linspace(0.0, 3.0, 40)), np.zeros(40), 0.3, 12)
    k = ad.checkpoint(heat_misfit, snapshots=3, schedule=schedule)
    g = ad.grad(k, backend=backend)
    stderr(io.StringIO())              # not a terminal: no bar
    silent = g(*args)
    assert Recorder.bars == []
    stderr(Terminal())
    shown = g(*args)
    np.testing.assert_array_equal(shown, silent)
    sweeps = [b for b in Recorder.bars if b.desc == "hpcad: reverse sweep of heat_misfit"]
    assert len(sweeps) == 1
    bar = sweeps[0]
    assert bar.closed and bar.n == bar.total and bar.seen == sorted(bar.seen)
    # segments: one report per segment; revolve: one per action of the reverse sweep
    assert bar.total == 3 if schedule == "segments" else bar.total > 12
