"""Dagster resources for code execution: one abstract resource, one concrete class per backend."""

from __future__ import annotations

from abc import abstractmethod

import dagster as dg

from june_pipelines.sandboxes.base import Limits, SandboxBackend


class SandboxResource(dg.ConfigurableResource):
    """Where untrusted programs run. `open()` returns a started backend; close it when done."""

    timeout_s: float = 3.0
    memory_mb: int = 1024
    max_output_bytes: int = 64 * 1024
    workers: int = 0  # 0 = one per CPU core

    def limits(self) -> Limits:
        return Limits(timeout_s=self.timeout_s, memory_mb=self.memory_mb, max_output_bytes=self.max_output_bytes)

    @abstractmethod
    def open(self) -> SandboxBackend: ...


class ProcessSandboxResource(SandboxResource):
    """Fork-server on the host with rlimits, private temp dirs and `unshare -n` where allowed."""

    def open(self) -> SandboxBackend:
        from june_pipelines.sandboxes.process import ProcessSandbox

        return ProcessSandbox(workers=self.workers or None)
