"""The sbatch scripts in slurm/ run on a real SLURM: the test starts a one-node cluster of its
own (munged as the munge user, slurmctld and slurmd as root, every file in a temporary
directory, free ports), submits both scripts with `sbatch --wait`, checks their exit codes,
output and the inverse problem's PNG, and stops the daemons even when something fails.
It needs root and Debian's `slurm-wlm` + `munge` (.ci/run installs them when it runs as
root); without them it fails under CI=true and is skipped, with a warning, elsewhere."""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "srun")
# the daemons live in sbin, which a non-login PATH (cron, env -i, some CI runners) lacks
os.environ["PATH"] = os.pathsep.join(
    [os.environ.get("PATH", "")] + [d for d in ("/usr/local/sbin", "/usr/sbin", "/sbin")
                                    if d not in os.environ.get("PATH", "").split(os.pathsep)])


def missing_prerequisites() -> list[str]:
    missing = [] if os.geteuid() == 0 else ["root (the test starts munged and slurmd)"]
    missing += [f"`{b}`" for b in BINARIES if shutil.which(b) is None]
    try:
        pwd.getpwnam("munge")
    except KeyError:
        missing.append("the `munge` user")
    return missing


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Cluster:
    """A one-node SLURM cluster whose configuration, state, logs and munge socket live in
    `root`; `submit` runs an sbatch script to its end."""

    def __init__(self, root: Path):
        self.root = root
        self.host = socket.gethostname().split(".")[0]
        self.conf = root / "slurm.conf"
        self.munge = root / "munge"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))

    def start(self) -> None:
        self.root.chmod(0o755)            # munged, as the munge user, must reach its socket
        self.munge.mkdir(mode=0o755)
        munge = pwd.getpwnam("munge")
        key = self.munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        for path in (self.munge, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        subprocess.run(["munged", f"--key-file={key}", f"--socket={self.munge / 'socket'}",
                        f"--pid-file={self.munge / 'munged.pid'}",
                        f"--log-file={self.munge / 'munged.log'}",
                        f"--seed-file={self.munge / 'munged.seed'}"],
                       user=munge.pw_uid, group=munge.pw_gid, extra_groups=[], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        self.conf.write_text(self.config())
        for daemon in ("slurmctld", "slurmd"):
            # the daemons detach; they must not hold pipes of ours open
            subprocess.run([daemon, "-f", str(self.conf)], env=self.env, check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
        self.wait_until_idle()

    def config(self) -> str:
        ctld_port, slurmd_port = free_ports(2)
        cpus = len(os.sched_getaffinity(0))
        r = self.root
        return f"""\
ClusterName=hpcadtest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge / 'socket'}
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'slurmctld.log'}
SlurmdLogFile={r / 'slurmd.log'}
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""

    def wait_until_idle(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True,
                                 text=True, timeout=30)
            if out.stdout.strip() == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"the SLURM node did not come up in {timeout:.0f} s:\n{self.logs()}")

    def submit(self, script: str, ntasks: int, workdir: Path, **env: str) -> tuple[int, str]:
        """Run slurm/<script> to its end from the checkout (the scripts' default HPCAD_ROOT);
        its exit code and output."""
        output = workdir / f"{Path(script).stem}.out"
        cmd = ["sbatch", "--wait", f"--ntasks={ntasks}", f"--chdir={workdir}",
               f"--output={output}", str(ROOT / "slurm" / script)]
        run = subprocess.run(cmd, env=self.env | {"HPCAD_VENV": sys.prefix} | env, cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
        text = output.read_text() if output.exists() else ""
        return run.returncode, f"{text}\n[sbatch] {run.stdout}{run.stderr}"

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}"
                         for p in (self.root / "slurmctld.log", self.root / "slurmd.log",
                                   self.munge / "munged.log") if p.exists())

    def stop(self) -> None:
        for pidfile in (self.root / "slurmd.pid", self.root / "slurmctld.pid",
                        self.munge / "munged.pid"):
            if pidfile.exists():
                terminate(int(pidfile.read_text().split()[0]))
        shutil.rmtree(self.root, ignore_errors=True)


def terminate(pid: int, grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if the process outlives the grace period."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def cluster():
    missing = missing_prerequisites()
    if missing:
        message = (f"SLURM TEST NOT RUN: missing {', '.join(missing)}. As root on Debian/Ubuntu: "
                   f"`apt-get install slurm-wlm munge` (.ci/run does it when run as root).")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        warnings.warn(message, stacklevel=2)
        pytest.skip(message)
    c = Cluster(Path(tempfile.mkdtemp(prefix="hpcad-slurm-")))
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_heat_gradient_job_prints_what_the_example_prints(cluster, tmp_path):
    rc, out = cluster.submit("heat_grad.sbatch", 2, tmp_path)
    assert rc == 0, out + cluster.logs()
    direct = subprocess.run([sys.executable, str(ROOT / "examples" / "heat_mpi.py")],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    expected = [line for line in direct.stdout.splitlines() if not line.startswith("ranks")]
    assert len(expected) == 3 and "ranks                 2" in out, out
    for line in expected:
        assert line in out.splitlines(), out
    assert re.search(r"^launcher: (srun --mpi=pmi2|mpiexec -n 2)", out, re.M), out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_inverse_problem_job_converges_and_writes_its_png(cluster, tmp_path):
    rc, out = cluster.submit("inverse_heat.sbatch", 2, tmp_path, HPCAD_LAUNCHER="mpiexec")
    assert rc == 0, out + cluster.logs()
    assert "launcher: mpiexec -n 2" in out and "ranks 2, cells" in out, out
    error = float(re.search(r"relative error of kappa (\S+)", out).group(1))
    assert error <= 1e-3, out
    job = re.search(r"^job (\d+) on", out, re.M).group(1)
    png = tmp_path / f"inverse_heat-{job}.png"
    assert f"wrote inverse_heat-{job}.png" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
