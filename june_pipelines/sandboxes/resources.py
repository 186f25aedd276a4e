"""Dagster resources for code execution: one abstract resource, one concrete class per backend."""

from __future__ import annotations

from abc import abstractmethod

import dagster as dg

from june_pipelines.sandboxes.base import Limits, SandboxBackend


class SandboxResource(dg.ConfigurableResource):
    """Where untrusted programs run. `open()` returns a started backend; close it when done."""

    timeout_s: float = 3.0
    memory_mb: int = 4096  # EvalPlus's default cap: some MBPP+ reference outputs need over 1 GiB
    max_output_bytes: int = 64 * 1024
    max_processes: int = 16
    max_file_mb: int = 16
    workers: int = 0  # 0 = one per CPU core

    def limits(self) -> Limits:
        return Limits(
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
            max_output_bytes=self.max_output_bytes,
            max_processes=self.max_processes,
            max_file_mb=self.max_file_mb,
        )

    @abstractmethod
    def open(self) -> SandboxBackend: ...


class ProcessSandboxResource(SandboxResource):
    """Fork-server on the host with rlimits, private temp dirs and `unshare -n` where allowed."""

    isolation: str = "auto"  # or force "netns+mntns+pidns" | "netns" | "none"

    def open(self) -> SandboxBackend:
        from june_pipelines.sandboxes.process import ProcessSandbox

        return ProcessSandbox(workers=self.workers or None, isolation=self.isolation)


class DockerSandboxResource(SandboxResource):
    """A warm pool of locked-down containers (no network, read-only root, no capabilities)."""

    image: str = "june-sandbox:py311"
    pids_limit: int = 64
    cpus: float = 1.0

    def open(self) -> SandboxBackend:
        from june_pipelines.sandboxes.docker import DockerSandbox

        return DockerSandbox(
            workers=self.workers or None,
            image=self.image,
            memory_mb=self.memory_mb,
            pids_limit=self.pids_limit,
            cpus=self.cpus,
        )


SANDBOX_KINDS = ("auto", "process", "docker")


def sandbox_resource_for(kind: str) -> SandboxResource:
    """The resource for a sandbox kind: auto (Docker when the engine and image are there, else
    process), process or docker."""
    if kind == "auto":
        return AutoSandboxResource()
    if kind == "process":
        return ProcessSandboxResource()
    if kind == "docker":
        return DockerSandboxResource()
    raise ValueError(f"sandbox {kind!r}: expected one of {', '.join(SANDBOX_KINDS)}")


def docker_available(image: str) -> tuple[bool, str]:
    """Whether the engine answers and has `image`; the reason when it does not."""
    try:
        import docker.errors

        from june_pipelines.sandboxes.image import docker_client

        client = docker_client(timeout=5)
    except Exception as exc:  # no SDK, no DOCKER_HOST socket, ...
        return False, f"docker engine not reachable: {type(exc).__name__}"
    try:
        client.ping()
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False, f"image {image} not found (run: june sandbox build-image)"
    except Exception as exc:
        return False, f"docker engine not reachable: {type(exc).__name__}"
    finally:
        client.close()
    return True, f"docker engine answered and {image} exists"


class AutoSandboxResource(DockerSandboxResource):
    """Docker when the engine answers and the image exists, else the process backend.

    The chosen backend's `info().details["selected_by"]` says which and why.
    """

    def open(self) -> SandboxBackend:
        ok, reason = docker_available(self.image)
        if ok:
            backend = super().open()
        else:
            from june_pipelines.sandboxes.process import ProcessSandbox

            backend = ProcessSandbox(workers=self.workers or None)
        backend.selected_by = f"auto: {reason}"  # type: ignore[attr-defined]
        return backend
