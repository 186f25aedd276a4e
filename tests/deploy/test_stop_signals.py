"""`june ui` and `june deploy up` stop their services on Ctrl-C and on SIGTERM, also when started in
the background of a script (which hands them SIGINT ignored): nothing is left running."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

# A stand-in for the Layout: blocks in `sigterm_as_interrupt` until interrupted, then says so.
SERVICE = """
import time
from june_pipelines.deploy.services import sigterm_as_interrupt
try:
    with sigterm_as_interrupt():
        print("ready", flush=True)
        while True:
            time.sleep(0.1)
except KeyboardInterrupt:
    print("stopped", flush=True)
"""


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` in a non-interactive shell does


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stop_signals_reach_a_service_started_in_the_background(sig: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True,
                            preexec_fn=_ignore_sigint)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert out.strip() == "stopped" and proc.returncode == 0
