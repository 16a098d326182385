"""Marker files are data (hpcad/frontend/markers.py): a file on HPCAD_MARKERS_PATH can name
only callables of the trusted frameworks and imports nothing; anything malformed is an
HpcadError naming the file and the key; other callables become constructs from Python code
(hpcad.register_marker)."""
import sys

import numpy as np
import pytest

import hpcad as ad
from hpcad.frontend import markers


@pytest.fixture
def marker_dir(tmp_path, monkeypatch):
    """A directory on HPCAD_MARKERS_PATH, read afresh (the caches are cleared before and
    after the test)."""
    directory = tmp_path / "markers"
    directory.mkdir()
    monkeypatch.setenv("HPCAD_MARKERS_PATH", str(directory))
    caches = (markers.marker_files, markers.mpi_declared, markers.mpi_frameworks)
    for cache in caches:
        cache.cache_clear()
    yield directory
    monkeypatch.delenv("HPCAD_MARKERS_PATH")
    for cache in caches:
        cache.cache_clear()


def test_a_marker_file_cannot_import_a_module(marker_dir, tmp_path, monkeypatch):
    """A marker file naming a module whose import would create a file: the file is not
    created, the module is not imported, and the error names the marker file and key."""
    planted = tmp_path / "planted"
    planted.mkdir()
    witness = tmp_path / "imported"
    (planted / "payload_mod.py").write_text(
        f"open({str(witness)!r}, 'w').write('ran')\ndef pfor(*args):\n    return range(*args)\n")
    monkeypatch.syspath_prepend(str(planted))
    evil = marker_dir / "evil.toml"
    evil.write_text('[[marker]]\ncall = "payload_mod.pfor"\nconstruct = "parallel_for"\n')
    with pytest.raises(ad.HpcadError) as e:
        markers.marker_of(ad.prange)
    assert str(evil) in str(e.value) and "key `call`" in str(e.value)
    assert "hpcad.register_marker" in str(e.value)
    assert not witness.exists() and "payload_mod" not in sys.modules


def test_a_trusted_module_is_not_imported_by_a_marker_file(marker_dir):
    """Naming a callable of a trusted framework looks it up only once the kernel's module
    has imported the framework (a module that is not imported is not imported for it)."""
    assert "numba.cuda.simulator" not in sys.modules
    (marker_dir / "sim.toml").write_text(
        '[[marker]]\ncall = "numba.cuda.simulator.prange"\nconstruct = "parallel_for"\n')
    assert markers.marker_of(ad.prange).construct == "parallel_for"
    assert "numba.cuda.simulator" not in sys.modules


@pytest.mark.parametrize("text, key", [
    ('[[marker]]\ncall = "hpcad.prange"\nconstruct = \n', "not valid TOML"),
    ('[[marker]]\ncall = "hpcad.prange"\n', "key `construct` is missing"),
    ('[[marker]]\ncall = "hpcad.prange"\nconstruct = "scatter_all"\n', "key `construct`"),
    ('[[marker]]\ncall = "hpcad.prange"\nconstruct = "parallel_for"\noptions = "x"\n',
     "key `options`"),
    ('[[marker]]\ncall = "hpcad.join"\nconstruct = "join"\noptions = ["allow_races"]\n',
     "key `options`"),
    ('[[marker]]\ncall = ["hpcad.prange"]\nconstruct = "parallel_for"\n', "key `call`"),
    ('[[marker]]\ncall = "os.system"\nconstruct = "parallel_for"\n', "key `call`"),
    ('[[markers]]\ncall = "hpcad.prange"\nconstruct = "parallel_for"\n', "key `markers`"),
    ('[[function]]\ncall = "subprocess.run"\nop = "send"\n', "[[function]] entry 1, key `call`"),
    ('[[method]]\nname = "Send"\nop = "send"\nrename = { data = 1 }\n', "key `rename`"),
    ('framework = 3\n', "key `framework`"),
])
def test_malformed_marker_files_name_the_file_and_key(marker_dir, text, key):
    bad = marker_dir / "bad.toml"
    bad.write_text(text)
    with pytest.raises(ad.HpcadError) as e:
        markers.marker_of(ad.prange)
    assert str(bad) in str(e.value) and key in str(e.value), str(e.value)


def user_prange(*args):
    """A parallel loop of a framework no marker file names (runs sequentially in Python)."""
    return range(*args)


@ad.kernel
def scaled_squares(x, out, c):
    for i in user_prange(x.shape[0]):
        out[i] = c * x[i] * x[i]
    s = 0.0
    for i in range(out.shape[0]):
        s += out[i]
    return s


@pytest.mark.parametrize("backend", ["numba", "interp"])
def test_a_callable_registered_from_python_is_a_construct(backend):
    """hpcad.register_marker makes a user's callable a parallel_for: the kernel lowers to a
    parallel loop and its gradient is the analytic one (d/dx sum c x^2 = 2 c x)."""
    ad.register_marker(user_prange, "parallel_for")
    assert markers.marker_of(user_prange).construct == "parallel_for"
    assert "test_markers.py" in markers.marker_of(user_prange).source
    x = np.linspace(0.5, 2.0, 7)
    gx, gc = ad.grad(scaled_squares, argnums=(0, 2), backend=backend)(x, np.zeros(7), 1.5)
    np.testing.assert_allclose(gx, 2 * 1.5 * x, rtol=1e-13)
    np.testing.assert_allclose(gc, np.sum(x * x), rtol=1e-13)


def test_register_marker_checks_its_arguments():
    with pytest.raises(ad.HpcadError, match="not one of"):
        ad.register_marker(user_prange, "parallel_while")
    with pytest.raises(ad.HpcadError, match="takes no keyword chunk"):
        ad.register_marker(user_prange, "parallel_for", options=["chunk"])
    with pytest.raises(ad.HpcadError, match="not callable"):
        ad.register_marker("mylib.pfor", "parallel_for")
