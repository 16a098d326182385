"""Ctrl-C during a kernel (README, "When something is off"): compiled (numba nopython) code
does not look at signals, so SIGINT is delivered as KeyboardInterrupt when the kernel
returns, and a second SIGINT changes nothing; SIGTERM ends the process at once; the
interpreter backend stops within a step. Each case runs in a subprocess with a timeout, so
a hang fails the test instead of blocking the suite."""
import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHILD = textwrap.dedent("""
    import signal, sys, time
    import numpy as np
    import hpcad as ad

    # Python's own Ctrl-C handler even where the child was started with SIGINT ignored (a
    # background job of a non-interactive shell, as some CI runners start the tests)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    @ad.kernel(backend=sys.argv[1])
    def chain(x, reps):
        s = 0.0
        for r in range(reps):
            for i in range(x.shape[0]):
                s = s * 0.9999999 + x[i]
        return s

    x = np.ones(1000)
    reps = 4 if sys.argv[1] == "interp" else 20_000
    chain(x, reps)                               # compiled, and timed
    t = time.perf_counter()
    chain(x, reps)
    reps = max(reps, int(reps * float(sys.argv[2]) / (time.perf_counter() - t)))
    print("ready", flush=True)
    t = time.perf_counter()
    try:
        chain(x, reps)
        print("returned", flush=True)
    except KeyboardInterrupt:
        print(f"KeyboardInterrupt after {time.perf_counter() - t:.3f}", flush=True)
        raise
""")


def _interrupt(tmp_path, backend: str, seconds: float, signals) -> tuple:
    """Start a kernel call lasting about `seconds`, send `signals` 0.5 s apart from 0.5 s
    into it; (return code, stdout, stderr, seconds from the first signal to the end)."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), backend, str(seconds)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        start = None
        for sig in signals:
            time.sleep(0.5)
            child.send_signal(sig)
            start = start or time.perf_counter()
        out, err = child.communicate(timeout=90)
    finally:
        child.kill()
    return child.returncode, out, err, time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.parametrize("signals", [[signal.SIGINT], [signal.SIGINT, signal.SIGINT]])
def test_ctrl_c_in_compiled_code_arrives_when_the_kernel_returns(tmp_path, signals):
    rc, out, err, _ = _interrupt(tmp_path, "numba", 6.0, signals)
    assert rc != 0 and "returned" not in out
    assert err.rstrip().endswith("KeyboardInterrupt"), err[-2000:]
    # the kernel ran on past the signals (sent 0.5 s apart from 0.5 s in) to its end, about
    # 6 s (less where the timing run was slowed down)
    ran = float(out.split("KeyboardInterrupt after")[1])
    assert ran > 0.5 * len(signals) + 1.0, out


def test_sigterm_ends_a_compiled_kernel_at_once(tmp_path):
    rc, out, _, after = _interrupt(tmp_path, "numba", 20.0, [signal.SIGTERM])
    assert rc == -signal.SIGTERM and "returned" not in out
    assert after < 10.0


def test_ctrl_c_in_the_interpreter_stops_the_kernel(tmp_path):
    rc, out, err, after = _interrupt(tmp_path, "interp", 30.0, [signal.SIGINT])
    assert rc != 0 and "returned" not in out and "KeyboardInterrupt" in err
    assert after < 15.0
