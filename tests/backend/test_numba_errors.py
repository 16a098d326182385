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
