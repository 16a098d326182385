"""A construct numba refuses to compile is an hpcad error at the kernel's file:line (the line
marked `# refused here`), with numba's reason and a hint, not numba's report on the
generated source."""
import inspect

import pytest

import hpcad as ad
import hpcad.backend.numba as numba_backend


def _line(fn, mark: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(k for k, line in enumerate(lines) if mark in line)


@ad.kernel(backend="numba")
def huge_constant(x):
    y = x + 1.0
    return y * 10**30  # refused here


def test_numba_refusal_names_the_kernel_line_and_the_reason():
    with pytest.raises(ad.UnsupportedConstruct) as info:
        huge_constant(1.0)
    msg = str(info.value)
    assert msg.startswith(f"{__file__}:{_line(huge_constant.py_func, '# refused here')}: "), msg
    assert "Int value is too large" in msg and "backend='interp'" in msg, msg
    assert "<unknown location>" not in msg


def test_numba_refusal_of_a_line_without_a_location_names_the_kernel_definition(monkeypatch):
    monkeypatch.setattr(numba_backend, "source_loc", lambda fn, name, line: None)
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ad.grad(huge_constant, backend="numba")(2.0)
    msg = str(info.value)
    assert msg.startswith(f"{__file__}:{_line(huge_constant.py_func, 'def huge_constant')}: "), msg
    assert "kernel 'huge_constant'" in msg, msg


def _tiny(x):
    return x * 3.0 + 1.0


def test_a_failure_inside_numbas_compiler_is_an_hpcad_error_that_says_so(monkeypatch,
                                                                         tmp_path):
    """An exception numba does not word for users (an assertion inside one of its passes,
    as its parfor pass raised on lane code before codegen.scf_if's fix) comes as an hpcad
    error at the kernel's def that says whose defect it is and what runs the kernel."""
    from numba.core import typed_passes

    def broken(self, state):
        raise AssertionError("unexpected cycle in lookup()")

    monkeypatch.setenv("HPCAD_CACHE_DIR", str(tmp_path))     # compiled afresh
    monkeypatch.setattr(typed_passes.NopythonTypeInference, "run_pass", broken)
    with pytest.raises(ad.HpcadError) as info:
        ad.kernel(_tiny, backend="numba")(2.0)
    msg = str(info.value)
    assert msg.startswith(f"{__file__}:{_line(_tiny, 'def _tiny')}: "), msg
    assert "numba failed inside its compiler" in msg and "unexpected cycle" in msg, msg
    assert "backend='interp'" in msg and "not of your kernel" in msg, msg


def test_an_hpcad_error_raised_while_numba_compiles_keeps_its_words(monkeypatch, tmp_path):
    """hpcad's own refusals raised during the compile (the MPI ABI check, say) are not
    reported as numba's internal failures."""
    from numba.core import typed_passes

    def refusing(self, state):
        raise ad.HpcadError("this MPI library uses another ABI: use backend='interp'")

    monkeypatch.setenv("HPCAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(typed_passes.NopythonTypeInference, "run_pass", refusing)
    with pytest.raises(ad.HpcadError, match="^this MPI library uses another ABI") as info:
        ad.kernel(_tiny, backend="numba")(3.0)
    assert "numba failed inside its compiler" not in str(info.value)
