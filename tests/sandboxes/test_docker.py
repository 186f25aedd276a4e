"""Docker backend specifics: container settings, labels, leftovers of crashed runs, replacement of
broken containers, the `auto` resource and `june sandbox cleanup`."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest
from click.testing import CliRunner
from docker_support import ensure_image, require_docker
from sandbox_helpers import HOSTILE_LIMITS, canonical_program

from june_pipelines.sandboxes.base import Limits, Program, Status

pytestmark = pytest.mark.docker


@pytest.fixture(autouse=True)
def _docker_engine() -> None:
    require_docker()


@pytest.fixture(scope="module")
def client() -> Any:
    ensure_image()
    from june_pipelines.sandboxes.image import docker_client

    c = docker_client()
    yield c
    c.close()


def _run_containers(client: Any, run_id: str) -> list[Any]:
    return client.containers.list(all=True, filters={"label": f"june.sandbox.run={run_id}"})


def test_containers_are_locked_down_and_removed_on_close(client: Any) -> None:
    from june_pipelines.sandboxes.docker import DockerSandbox

    backend = DockerSandbox(workers=2, memory_mb=256, pids_limit=32, cpus=0.5)
    with backend:
        (verdict,) = backend.run([canonical_program()], Limits())
        assert verdict.passed
        containers = _run_containers(client, backend.run_id)
        assert len(containers) == 2
        host = containers[0].attrs["HostConfig"]
        config = containers[0].attrs["Config"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["PidsLimit"] == 32
        assert host["Memory"] == (256 + 128) * 2**20
        assert host["NanoCpus"] == 500_000_000
        assert host["Binds"] in (None, [])
        assert "/tmp" in host["Tmpfs"]
        assert config["User"].split(":")[0] not in ("", "0", "root")
        assert not [e for e in config["Env"] if e.startswith("JUNE_TEST_FAKE_SECRET")]
        assert config["Labels"]["june.sandbox"] == "1"
        info = backend.info()
        assert info.backend == "docker"
        assert info.details["image"] == "june-sandbox:py311"
        assert info.details["image_id"].startswith("sha256:")
    assert _run_containers(client, backend.run_id) == []


def test_leftovers_of_a_crashed_run_are_removed_at_start(client: Any) -> None:
    from june_pipelines.sandboxes.docker import DockerSandbox, _owner_labels

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    labels = _owner_labels("crashed0")
    labels["june.sandbox.pid"] = str(dead.pid)
    leftover = client.containers.create("june-sandbox:py311", command=["sleep", "60"], labels=labels,
                                        network_mode="none", name=f"june-sandbox-crashed-{dead.pid}")
    with DockerSandbox(workers=1) as backend:
        backend.start()
        assert leftover.name in backend.removed_leftovers
    assert _run_containers(client, "crashed0") == []


def test_cleanup_command_removes_orphans_only(client: Any) -> None:
    from june_pipelines.cli.sandbox import sandbox_group
    from june_pipelines.sandboxes.docker import DockerSandbox, _owner_labels

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    labels = _owner_labels("crashed1")
    labels["june.sandbox.pid"] = str(dead.pid)
    client.containers.create("june-sandbox:py311", command=["sleep", "60"], labels=labels, network_mode="none")
    with DockerSandbox(workers=1) as live:
        live.run([canonical_program()], Limits())
        result = CliRunner().invoke(sandbox_group, ["cleanup"])
        assert result.exit_code == 0, result.output
        assert _run_containers(client, "crashed1") == []
        assert len(_run_containers(client, live.run_id)) == 1  # a live run's container stays
        (verdict,) = live.run([canonical_program()], Limits())
        assert verdict.passed


def test_unresponsive_container_is_replaced(client: Any) -> None:
    from june_pipelines.sandboxes.docker import DockerSandbox

    with DockerSandbox(workers=1) as backend:
        backend.watchdog_grace_s = 1.0
        backend.start()
        (container,) = _run_containers(client, backend.run_id)
        container.pause()
        start = time.monotonic()
        (verdict,) = backend.run([canonical_program()], Limits(timeout_s=1.0))
        assert verdict.status is Status.ERROR and "did not answer" in verdict.detail
        assert time.monotonic() - start < 10
        after = backend.run([canonical_program()] * 3, Limits())
        assert all(v.passed for v in after), after
        assert backend.restarts == 1
        assert [c.id for c in _run_containers(client, backend.run_id)] != [container.id]


def test_oom_killed_program_gets_a_verdict_and_the_pool_survives(client: Any) -> None:
    """Per-program memory above the container's: the cgroup OOM killer, not RLIMIT_AS, stops it."""
    from june_pipelines.sandboxes.docker import DockerSandbox

    bomb = Program("oom", "blocks = []\nwhile True:\n    blocks.append(bytearray(32 * 2**20))\n", "pass\n")
    with DockerSandbox(workers=1, memory_mb=128) as backend:
        verdicts = backend.run([bomb, canonical_program(), canonical_program()], Limits(timeout_s=5, memory_mb=4096))
    assert not verdicts[0].passed, verdicts[0]
    assert verdicts[1].passed and verdicts[2].passed, verdicts


def test_auto_resource_picks_docker_when_the_image_exists(client: Any) -> None:
    from june_pipelines.sandboxes.resources import AutoSandboxResource

    resource = AutoSandboxResource(workers=1)
    with resource.open() as backend:
        (verdict,) = backend.run([canonical_program()], resource.limits())
        info = backend.info()
    assert verdict.passed
    assert info.backend == "docker"
    assert info.details["selected_by"].startswith("auto: docker engine answered")


def test_auto_resource_falls_back_to_process_without_the_image() -> None:
    from june_pipelines.sandboxes.resources import AutoSandboxResource

    resource = AutoSandboxResource(workers=1, image="june-sandbox:does-not-exist")
    with resource.open() as backend:
        (verdict,) = backend.run([canonical_program()], HOSTILE_LIMITS)
        info = backend.info()
    assert verdict.passed
    assert info.backend == "process"
    assert "not found" in info.details["selected_by"]


def test_failed_start_leaves_no_containers(client: Any) -> None:
    import docker.errors

    from june_pipelines.sandboxes.docker import DockerSandbox
    from june_pipelines.sandboxes.pool import WorkerBroken

    backend = DockerSandbox(workers=2, python="/nonexistent/python3")
    with pytest.raises((WorkerBroken, docker.errors.APIError)):  # the engine refuses to start the command
        backend.start()
    backend.close()
    assert _run_containers(client, backend.run_id) == []
