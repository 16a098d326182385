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


def test_readme_commands_refer_to_existing_files():
    for path in re.findall(r"examples/\w+\.py", README):
        assert (ROOT / path).exists(), path


@pytest.mark.slow
def test_custom_rule_snippet_gives_the_rule_derivative(tmp_path):
    ns = _run_snippets(tmp_path, 4)
    import hpcad as ad
    for x in (0.7, -1.3):
        assert abs(ad.grad(ns["soft_sign"])(x) - 1.0 / (1.0 + abs(x)) ** 2) <= 1e-12


@pytest.mark.slow
def test_width_snippet_equals_separate_calls(tmp_path):
    ns = _run_snippets(tmp_path, 5)
    import hpcad as ad
    df = ad.autodiff(ns["heat"], activity=(ad.Duplicated, ad.Active, ad.Const))
    for w, seed in enumerate(np.arange(1.0, 5.0)):
        du = np.zeros_like(ns["u0"])
        _, dalpha = df(ns["u0"].copy(), du, 0.25, 20, seed=seed)
        np.testing.assert_allclose(ns["du4"][w], du, rtol=1e-12)
        assert abs(ns["dalpha4"][w] - dalpha) <= 1e-12 * abs(dalpha)
