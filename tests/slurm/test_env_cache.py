"""slurm/env.sh keeps the compile cache private: by default in ~/.cache/hpcad, made with
mode 700, and it says before the job starts when HPCAD_CACHE_DIR is a directory others can
write to (hpcad would not use it). Runs without SLURM (the script is only sourced)."""
import os
import subprocess
import sys
from pathlib import Path

ENV_SH = Path(__file__).resolve().parents[2] / "slurm" / "env.sh"


def source_env(home: Path, **env: str) -> subprocess.CompletedProcess:
    job = {"SLURM_SUBMIT_DIR": str(ENV_SH.parents[1]), "SLURM_JOB_ID": "7",
           "SLURM_JOB_NODELIST": "node1", "SLURM_NTASKS": "2", "HPCAD_VENV": sys.prefix,
           "HOME": str(home), "PATH": os.environ["PATH"]}
    return subprocess.run(["bash", "-c", f'source {ENV_SH} && echo "cache=$HPCAD_CACHE_DIR"'],
                          capture_output=True, text=True, timeout=60, env=job | env)


def test_the_default_cache_is_private(tmp_path):
    out = source_env(tmp_path)
    assert out.returncode == 0, out.stderr
    cache = tmp_path / ".cache" / "hpcad"
    assert f"cache={cache}" in out.stdout.splitlines()
    assert cache.stat().st_mode & 0o777 == 0o700
    assert "not yours alone" not in out.stderr


def test_a_cache_others_can_write_to_is_reported(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    out = source_env(tmp_path, HPCAD_CACHE_DIR=str(shared))
    assert out.returncode == 0, out.stderr
    assert f"hpcad: {shared} is not yours alone, so hpcad will compile in memory" in out.stderr
