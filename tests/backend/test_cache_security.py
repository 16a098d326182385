"""Another user who can write to a compile cache cannot run code as, or change the files of,
the user who compiles through it. The attacker (uid 65534, nobody) plants, with shell commands,
a pickle payload at numba's index and data files, a `.pyc` beside the generated source, a
swapped source, or links at the lock, key and temporary files' names, in a cache that was
world-writable (as a shared cache used to be). The victim (root, who owns the cache) then
computes a gradient: the payload never runs, the linked-to file is unchanged and the gradient
is the interpreter's, both while the directory is still world-writable (hpcad does not use
it) and after its mode is made private again with the attacker's files still inside (hpcad
ignores them). `hpcad doctor` reports both states as problems. Needs root (two uids)."""
import os
import pickle
import py_compile
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from hpcad import doctor
from tests.backend import cache_victim

NOBODY = 65534
VICTIM = Path(cache_victim.__file__).resolve()

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="LOUD SKIP: the two-user cache attacks need root, to run the "
                              "attacker as uid 65534 (nobody); run the tests as root")


class Payload:
    """Unpickling it runs a shell command (as whoever unpickles it)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.fixture(scope="module")
def expected():
    return cache_victim.gradient("interp")


@pytest.fixture
def scene():
    """A world-readable folder (nobody must reach the cache inside it) holding the victim's
    filled cache, made world-writable, and a file of the victim's that must stay intact."""
    base = Path(tempfile.mkdtemp(prefix="hpcad-two-users-"))
    base.chmod(0o755)
    cache = base / "cache"
    victim(cache)
    cache.chmod(0o777)
    precious = base / "precious.txt"
    precious.write_text("precious")
    yield base, cache, precious
    shutil.rmtree(base)


def victim(cache: Path, **env) -> dict:
    import json
    # the hpcad of this checkout (a script's folder, not the working directory, starts
    # sys.path: the installed hpcad would be tested instead)
    path = os.pathsep.join([str(VICTIM.parents[2]), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, str(VICTIM)], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, HPCAD_CACHE_DIR=str(cache),
                                               PYTHONPATH=path, **env))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def attacker(cache: Path, script: str) -> None:
    """Run script as nobody in the cache, after taking over a `__pycache__` in it (by moving
    it aside, which a writable parent allows, and copying what can be read)."""
    takeover = ("if [ -d __pycache__ ] && [ ! -w __pycache__ ]; then mv __pycache__ .old; "
                "mkdir __pycache__; cp .old/* __pycache__/ 2>/dev/null || true; fi\n")
    out = subprocess.run(["sh", "-ec", f"cd {cache}\n{takeover}{script}"], user=NOBODY,
                         group=NOBODY, extra_groups=[], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr


def entry_name(cache: Path) -> str:
    """The kernel's entry (not those of the helpers every generated module calls)."""
    [source] = [p for p in cache.glob("*.py") if not p.name.startswith("helper_")]
    return source.stem


def plant_pickles(base: Path, cache: Path) -> Path:
    marker = base / "pickle-ran"
    payload = base / "payload.pkl"
    payload.write_bytes(pickle.dumps(Payload(f"touch {marker}")))
    payload.chmod(0o644)
    targets = [p.relative_to(cache) for p in [*cache.rglob("*.nbi"), *cache.rglob("*.nbc")]]
    assert targets
    attacker(cache, "".join(f"cp {payload} x.new; mv -f x.new {t}\n" for t in targets))
    return marker


def plant_pyc(base: Path, cache: Path) -> Path:
    marker = base / "pyc-ran"
    evil = base / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    pyc = base / "evil.pyc"
    py_compile.compile(str(evil), cfile=str(pyc),
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    pyc.chmod(0o644)
    tag = sys.implementation.cache_tag
    attacker(cache, f"mkdir -p __pycache__\n"
                    f"cp {pyc} __pycache__/{entry_name(cache)}.{tag}.pyc")
    return marker


def plant_swapped_source(base: Path, cache: Path) -> Path:
    marker = base / "source-ran"
    name = entry_name(cache)
    swapped = base / "swapped.py"
    swapped.write_text(f"import os\nos.system('touch {marker}')\n"
                       + (cache / f"{name}.py").read_text())
    swapped.chmod(0o644)
    attacker(cache, f"cp {swapped} x.new; mv -f x.new {name}.py\n"
                    f"rm -f *.nbi *.nbc __pycache__/*")
    return marker


def plant_links(base: Path, cache: Path, precious: Path) -> Path:
    """Links at every name the victim might open: the lock, the key, the manifest, and the
    temporary names hpcad used to write at (NAME.PID.tmp), for the next few thousand pids."""
    name = entry_name(cache)
    pid = os.getpid()
    attacker(cache, f"rm -rf {name}.* __pycache__\n"
             f"for n in {name}.lock .key {name}.manifest; do ln -sf {precious} $n; done\n"
             f"i={pid}; while [ $i -lt {pid + 3000} ]; do "
             f"ln -s {precious} {name}.$i.tmp; i=$((i+1)); done")
    return base / "no-marker"


PLANTS = {"pickle": plant_pickles, "pyc": plant_pyc, "swapped source": plant_swapped_source}


def _attacked(kind: str, scene) -> tuple[Path, Path, Path, Path]:
    base, cache, precious = scene
    marker = plant_links(base, cache, precious) if kind == "links" else \
        PLANTS[kind](base, cache)
    return base, cache, precious, marker


# the fast tier plants pickles; the other plants run in the slow tier
KINDS = ["pickle", *(pytest.param(kind, marks=pytest.mark.slow)
                     for kind in [*PLANTS, "links"] if kind != "pickle")]


@pytest.mark.parametrize("kind", KINDS)
def test_a_world_writable_cache_is_left_alone(kind, scene, expected):
    _, cache, precious, marker = _attacked(kind, scene)
    for env in ({}, {"HPCAD_CACHE_SHARED": "1"}):
        result = victim(cache, **env)
        assert np.allclose(result["grad"], expected, rtol=1e-12, atol=0)
        assert not marker.exists() and precious.read_text() == "precious"
        assert any("writable by others" in w for w in result["warnings"])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.slow
def test_planted_files_in_a_private_cache_are_ignored(kind, scene, expected):
    _, cache, precious, marker = _attacked(kind, scene)
    cache.chmod(0o700)          # the mode is fixed; the attacker's files are still there
    for _ in range(2):
        result = victim(cache)
        assert np.allclose(result["grad"], expected, rtol=1e-12, atol=0)
        assert not marker.exists() and precious.read_text() == "precious"


def test_doctor_reports_an_open_cache_and_foreign_entries(scene, monkeypatch):
    base, cache, _ = scene
    plant_pickles(base, cache)
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(cache))
    report = doctor.Report()
    doctor.cache_directory(report, None)
    assert any("writable by others" in p for p in report.problems), report.problems
    cache.chmod(0o700)
    report = doctor.Report()
    doctor.cache_directory(report, None)
    text = "\n".join(report.problems)
    assert f"owned by {NOBODY}" in text or f"uid {NOBODY}" in text, text
    assert "do not verify" in text, text


@pytest.mark.slow
def test_a_shared_cache_of_a_trusted_user_is_read_never_written(scene, expected):
    """HPCAD_CACHE_SHARED=1: the victim loads what the cache's owner (here nobody, trusted)
    compiled, and writes nothing there; without it the cache is not used."""
    _, cache, _ = scene
    cache.chmod(0o755)
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(cache)], check=True)
    before = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    shared = victim(cache, HPCAD_CACHE_SHARED="1")
    assert np.allclose(shared["grad"], expected, rtol=1e-12, atol=0)
    assert shared["loaded"] == 1 and not shared["warnings"]
    alone = victim(cache)
    assert alone["compiled"] == 1 and any("not to you" in w for w in alone["warnings"])
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == before


def test_a_cache_reached_through_another_users_link_is_left_alone(tmp_path, monkeypatch):
    """A link that another user planted (in /tmp, say) on the way to HPCAD_CACHE_DIR decides
    which of your directories hpcad writes to: hpcad does not use such a path, however deep
    the link (kernels without fs.protected_symlinks follow it)."""
    from hpcad.backend.numba import cache
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    planted = tmp_path / "planted"
    planted.symlink_to(mine)
    os.lchown(planted, NOBODY, NOBODY)
    own = tmp_path / "own"
    own.symlink_to(planted)                 # my link to theirs: theirs still decides
    monkeypatch.delenv(cache.SHARED, raising=False)
    for path in (planted, own, planted / "sub"):
        monkeypatch.setenv("HPCAD_CACHE_DIR", str(path))
        with pytest.warns(cache.CacheWarning, match=f"the link {planted} .*uid {NOBODY}"):
            assert cache.store() is None
    assert not any(mine.iterdir())
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(tmp_path / "link-of-mine"))
    (tmp_path / "link-of-mine").symlink_to(mine)
    assert cache.store() is not None        # links of your own (or root's) are followed


def test_a_shared_cache_may_be_reached_through_its_owners_link(tmp_path, monkeypatch):
    """With HPCAD_CACHE_SHARED=1 the user whose cache you read may also own the link to it
    (a site-wide cache's usual path); a third user's link is still refused."""
    from hpcad.backend.numba import cache
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, NOBODY, NOBODY)
    site = tmp_path / "site-cache"
    site.symlink_to(theirs)
    os.lchown(site, NOBODY, NOBODY)
    monkeypatch.setenv(cache.SHARED, "1")
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(site))
    found = cache.store()
    assert found is not None and found.owner == NOBODY and not found.writable
    third = tmp_path / "third"
    third.symlink_to(site)
    os.lchown(third, 12345, 12345)
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(third))
    with pytest.warns(cache.CacheWarning, match=f"the link {third} .*uid 12345"):
        assert cache.store() is None
