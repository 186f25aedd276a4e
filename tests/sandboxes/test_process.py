"""Process backend specifics: what isolation it detected, clean shutdown, the env-chosen resource."""

from __future__ import annotations

import os

import pytest
from sandbox_helpers import HOSTILE_LIMITS, canonical_program, sandbox_processes

from june_pipelines.sandboxes.base import Program, SandboxBackend
from june_pipelines.sandboxes.process import ProcessSandbox, detect_isolation


def test_network_namespace_when_the_kernel_allows_it(process_pool: SandboxBackend) -> None:
    level, _ = detect_isolation()
    if level == "none":
        pytest.skip("unshare is not allowed here (no user namespaces for this user)")
    # Only a loopback interface exists, and it is down.
    (verdict,) = process_pool.run([Program("ifaces", "import socket\nNAMES = [n for _, n in socket.if_nameindex()]\n",
                                           "assert NAMES == ['lo'], NAMES\n")], HOSTILE_LIMITS)
    assert verdict.passed, verdict
    assert process_pool.info().details["network"].startswith("none")


def test_private_pid_namespace_hides_host_processes(process_pool: SandboxBackend) -> None:
    if "pidns" not in detect_isolation()[0]:
        pytest.skip("no PID namespace on this machine")
    program = Program("pids", "import os\nPIDS = [p for p in os.listdir('/proc') if p.isdigit()]\n",
                      "assert len(PIDS) <= 3, PIDS\nassert os.getppid() == 1\n")
    (verdict,) = process_pool.run([program], HOSTILE_LIMITS)
    assert verdict.passed, verdict


@pytest.mark.skipif(os.geteuid() != 0, reason="children keep the user's uid when not started as root")
def test_children_run_as_an_unprivileged_uid(process_pool: SandboxBackend) -> None:
    """The solution runs as a throwaway uid; the test code (the judge) as another one, neither root."""
    (verdict,) = process_pool.run([Program("uid", "import os\nUIDS = (os.getuid(), os.geteuid())\n",
                                           "import os\nassert UIDS[0] >= 61000 and UIDS[1] == UIDS[0]\n"
                                           "assert os.getuid() not in (0, UIDS[0]) and os.geteuid() == os.getuid()\n")],
                                  HOSTILE_LIMITS)
    assert verdict.passed, verdict


def test_close_leaves_no_processes() -> None:
    daemon = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
        "time.sleep(30)\n"
    )
    backend = ProcessSandbox(workers=2)
    with backend:
        verdicts = backend.run([Program("d", daemon, "pass\n")] * 2 + [canonical_program()],
                               HOSTILE_LIMITS)
        assert [v.result for v in verdicts[:2]] == ["timed out", "timed out"]
        assert verdicts[2].passed
        channels = [c for c in backend._channels if c is not None]
    assert all(c.proc.poll() is not None for c in channels)  # type: ignore[attr-defined]
    if os.geteuid() == 0:
        assert sandbox_processes() == []


def test_sandbox_resource_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from june_pipelines.resources import sandbox_resource_from_env
    from june_pipelines.sandboxes.resources import (
        AutoSandboxResource,
        DockerSandboxResource,
        ProcessSandboxResource,
    )

    monkeypatch.delenv("JUNE_SANDBOX", raising=False)
    assert type(sandbox_resource_from_env()) is AutoSandboxResource
    for value, cls in (("auto", AutoSandboxResource), ("process", ProcessSandboxResource),
                       ("docker", DockerSandboxResource)):
        monkeypatch.setenv("JUNE_SANDBOX", value)
        assert type(sandbox_resource_from_env()) is cls
    monkeypatch.setenv("JUNE_SANDBOX", "vm")
    with pytest.raises(ValueError):
        sandbox_resource_from_env()


def test_process_resource_opens_a_working_backend() -> None:
    from june_pipelines.sandboxes.resources import ProcessSandboxResource

    resource = ProcessSandboxResource(workers=1, timeout_s=2.0)
    assert resource.limits().timeout_s == 2.0
    with resource.open() as backend:
        (verdict,) = backend.run([canonical_program()], resource.limits())
    assert verdict.passed


def test_failed_start_is_reported() -> None:
    from june_pipelines.sandboxes.pool import WorkerBroken

    backend = ProcessSandbox(workers=2, python="/nonexistent/python3")
    with pytest.raises(WorkerBroken, match="did not start"):
        backend.start()
    backend.close()


@pytest.mark.parametrize("level", ["netns", "none"])
def test_weaker_isolation_levels_still_judge_and_contain(level: str) -> None:
    """The fallbacks used where namespaces are not allowed: verdicts, timeouts and clean-up hold."""
    if level == "netns" and detect_isolation()[0] == "none":
        pytest.skip("unshare is not allowed here")
    daemon = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\nX = 1\n"
    with ProcessSandbox(workers=2, isolation=level) as backend:
        verdicts = backend.run([
            canonical_program(),
            Program("loop", "while True:\n    pass\n", "pass\n"),
            Program("exit", "import os\nos._exit(0)\n", "pass\n"),
            Program("daemon", daemon, "assert X == 1\n"),
            Program("env", "import os\nE = dict(os.environ)\n", "assert 'JUNE_TEST_FAKE_SECRET' not in E\n"),
        ], HOSTILE_LIMITS)
        assert backend.info().details["isolation"] == level
        assert [v.result for v in verdicts[:3]] == ["passed", "timed out",
                                                    "failed: exited with code 0 before the tests finished"]
        assert verdicts[3].passed and verdicts[4].passed, verdicts
        if os.geteuid() == 0:
            assert sandbox_processes() == []
