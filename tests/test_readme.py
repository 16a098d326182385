"""The README's quick-start snippets run as written (from a file, as a user would paste
them), and its commands name real files."""
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def _run_snippets(tmp_path, count):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)[:count]
    script = tmp_path / "readme_snippet.py"
    script.write_text("\n".join(blocks))
    return runpy.run_path(str(script))


def _run_through(tmp_path, marker: str):
    """The snippets up to the first that contains `marker`, run as one script."""
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    return _run_snippets(tmp_path, next(i for i, b in enumerate(blocks) if marker in b) + 1)


def test_quickstart_snippet_runs(tmp_path):
    ns = _run_snippets(tmp_path, 1)
    assert ns["du0"].shape == ns["u0"].shape and np.all(np.isfinite(ns["du0"]))
    assert np.isfinite(ns["dalpha"])


def test_autodiff_snippet_agrees_with_grad(tmp_path):
    ns = _run_snippets(tmp_path, 2)
    import hpcad as ad
    du0, dalpha = ad.grad(ns["heat"], argnums=(0, 1))(ns["u0"], 0.25, 20)
    np.testing.assert_allclose(ns["du"], du0, rtol=1e-12)
    assert abs(ns["dalpha"] - dalpha) <= 1e-12 * abs(dalpha)


def test_array_result_snippet_matches_finite_differences(tmp_path):
    ns = _run_snippets(tmp_path, 3)
    step, u0 = ns["step"].py_func, ns["u0"]
    assert ns["new"].shape == (u0.size - 2,)
    h = 1e-6
    fd = (np.sum(step(u0, 0.25 + h)) - np.sum(step(u0, 0.25 - h))) / (2 * h)
    assert abs(ns["dalpha"] - fd) <= 1e-6 * abs(fd)
    np.testing.assert_allclose(ns["dnew"], step(np.ones_like(u0), 0.0), rtol=1e-12)


def test_nested_snippet_gives_the_analytic_gradient(tmp_path):
    # the inner ascent moves only y, so d f(x, y_n) / dx = (2 x0, -2 x1) exactly
    ns = _run_through(tmp_path, "def ascend")
    x = ns["x"]
    np.testing.assert_allclose(ns["dx"], [2.0 * x[0], -2.0 * x[1]], rtol=1e-12)
    np.testing.assert_array_equal(ns["y"], [1.0, 2.0])   # not modified


def test_readme_commands_refer_to_existing_files():
    for path in re.findall(r"examples/\w+\.py", README):
        assert (ROOT / path).exists(), path


@pytest.mark.slow
def test_custom_rule_snippet_gives_the_rule_derivative(tmp_path):
    ns = _run_through(tmp_path, "def soft_sign")
    import hpcad as ad
    for x in (0.7, -1.3):
        assert abs(ad.grad(ns["soft_sign"])(x) - 1.0 / (1.0 + abs(x)) ** 2) <= 1e-12


@pytest.mark.slow
def test_width_snippet_equals_separate_calls(tmp_path):
    ns = _run_through(tmp_path, "du4")
    import hpcad as ad
    df = ad.autodiff(ns["heat"], activity=(ad.Duplicated, ad.Active, ad.Const))
    for w, seed in enumerate(np.arange(1.0, 5.0)):
        du = np.zeros_like(ns["u0"])
        _, dalpha = df(ns["u0"].copy(), du, 0.25, 20, seed=seed)
        np.testing.assert_allclose(ns["du4"][w], du, rtol=1e-12)
        assert abs(ns["dalpha4"][w] - dalpha) <= 1e-12 * abs(dalpha)
