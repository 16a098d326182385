"""benchmarks/plots.py draws what the rows say: one bar per ratio and case, one efficiency
line per case, kind (primal, gradient) and scaling axis (threads, ranks)."""

import numpy as np

from benchmarks import plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_ratio_bars_have_the_rows_values(tmp_path):
    rows = [{"name": "a", "grad_over_primal": 3.0, "jvp_over_primal": 2.0,
             "grad_over_handwritten": 1.1},
            {"name": "b", "grad_over_primal": 5.0, "jvp_over_primal": 1.5}]
    fig = plots.ratios(rows, tmp_path / "ratios.png")
    widths = [p.get_width() for p in fig.axes[0].patches]
    # bars are drawn ratio by ratio, case by case; b has no hand-written adjoint
    np.testing.assert_array_equal(widths, [3.0, 5.0, 2.0, 1.5, 1.1, np.nan])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    assert (tmp_path / "ratios.png").read_bytes()[:8] == PNG


def test_scaling_lines_are_the_efficiencies(tmp_path):
    def counts(*effs):   # JSON turns the thread and rank counts into strings
        return {str(2 ** k): {"primal_efficiency": p, "grad_efficiency": g}
                for k, (p, g) in enumerate(effs)}
    threads = [{"name": "heat", "threads": counts((1.0, 1.0), (0.8, 0.9))}]
    ranks = [{"name": "heat_mpi", "ranks": counts((1.0, 1.0), (0.7, 0.75), (0.6, 0.5))}]
    fig = plots.scaling(threads, ranks, tmp_path / "scaling.png")
    left, right = fig.axes
    assert [list(line.get_ydata()) for line in left.get_lines()[:2]] == [[1.0, 0.9], [1.0, 0.8]]
    assert list(right.get_lines()[0].get_xdata()) == [1, 2, 4]
    assert list(right.get_lines()[1].get_ydata()) == [1.0, 0.7, 0.6]
    assert (tmp_path / "scaling.png").read_bytes()[:8] == PNG


def test_only_the_panels_with_data(tmp_path):
    threads = [{"name": "heat", "threads": {1: {"primal_efficiency": 1.0,
                                                "grad_efficiency": 1.0}}}]
    assert len(plots.scaling(threads, [], tmp_path / "s.png").axes) == 1
    assert plots.scaling([], [], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
