"""Where TensorRT-LLM steps run: the version-matched NGC container through Docker, or a local install.

Both runners carry the same behaviour (GPU preflight, the TensorRT-LLM version check, checkpoint,
build, `trtllm-serve`), so the assets and `june engine` call one interface and never branch on the
runner kind. A step is described once as a `Step` (the container spec and the local command line);
each runner checks the TensorRT-LLM version before running it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from june_pipelines.serving import trtllm as T
from june_pipelines.serving.errors import BuildError, ServingInputError
from june_pipelines.serving.versions import check_image, check_version

Log = Callable[[str], None]


@dataclass(frozen=True)
class Step:
    """One TensorRT-LLM step: how it runs in the container and as a local command."""

    name: str
    container: T.ContainerSpec | None  # None for the local runner
    local_command: tuple[str, ...]


@dataclass(frozen=True)
class ServeHandle:
    """A started `trtllm-serve`: where it answers and what to stop."""

    base_url: str  # OpenAI-compatible root, ends in /v1
    owner: str  # container name, or "pid:<n>" for a local process
    startup_s: float


class TrtllmRunner(ABC):
    """The behaviour both runners share; see `DockerRunner` and `LocalRunner`."""

    kind: ClassVar[T.Runner]

    def __init__(self, gpus: int = -1, examples_dir: Path | None = None) -> None:
        self.gpus = gpus
        self.examples_dir = examples_dir

    # ---- checks (nothing heavy) -----------------------------------------------------------------

    @abstractmethod
    def check_inputs(self) -> None:
        """Refuse, before any GPU work, settings this runner cannot use (raises ServingInputError)."""

    def preflight(self) -> T.Preflight:
        return T.preflight(self.kind)

    def require_gpu(self) -> T.Preflight:
        return T.require_gpu(self.kind)

    @abstractmethod
    def trtllm_version(self, step: Step, log: Log) -> str: ...

    # ---- steps ----------------------------------------------------------------------------------

    @abstractmethod
    def checkpoint_step(self, s: T.CheckpointSettings, weights: Path, out: Path) -> Step: ...

    @abstractmethod
    def build_step(self, s: T.BuildSettings, checkpoint: Path, out: Path) -> Step: ...

    @abstractmethod
    def _execute(self, step: Step, log: Log) -> None: ...

    def run(self, step: Step, log: Log) -> None:
        """Check the TensorRT-LLM version where the step will run, then run it, streaming its output."""
        check_version(self.trtllm_version(step, log))
        self._execute(step, log)

    def describe(self, step: Step) -> str:
        """The exact command line (dry runs, runbooks)."""
        return shlex.join(step.local_command)

    @abstractmethod
    def serve(
        self, s: T.ServeSettings, weights: Path, name: str, log_path: Path, timeout_s: float, log: Log
    ) -> ServeHandle: ...

    @abstractmethod
    def stop(self, handle: ServeHandle) -> None:
        """Stop a server `serve` started (a no-op when it is already gone)."""


class DockerRunner(TrtllmRunner):
    """Steps in `image` (Triton's trtllm-python-py3: TensorRT-LLM and its examples/ inside) with a GPU request."""

    kind: ClassVar[T.Runner] = "docker"

    def __init__(self, image: str, serve_image: str, gpus: int = -1, examples_dir: Path | None = None) -> None:
        super().__init__(gpus, examples_dir)
        self.image = image
        self.serve_image = serve_image

    def check_inputs(self) -> None:
        from june_pipelines.serving.errors import VersionError

        try:
            check_image(self.image)
        except VersionError as exc:
            raise ServingInputError(str(exc)) from exc
        if self.examples_dir is not None and not (self.examples_dir / "quantization").is_dir():
            raise ServingInputError(
                f"examples_dir {self.examples_dir} is not a TensorRT-LLM examples/ folder "
                "(leave it unset to use the image's)"
            )

    def checkpoint_step(self, s: T.CheckpointSettings, weights: Path, out: Path) -> Step:
        spec = T.checkpoint_container(s, self.image, weights, out, self.examples_dir, self.gpus)
        return Step("checkpoint", spec, spec.command)

    def build_step(self, s: T.BuildSettings, checkpoint: Path, out: Path) -> Step:
        spec = T.build_container(s, self.image, checkpoint, out, self.gpus)
        return Step("build", spec, spec.command)

    @staticmethod
    def _container(step: Step) -> T.ContainerSpec:
        if step.container is None:
            raise BuildError(f"step {step.name!r} has no container spec")
        return step.container

    def describe(self, step: Step) -> str:
        return shlex.join(self._container(step).docker_cli())

    def trtllm_version(self, step: Step, log: Log) -> str:
        probe = replace(self._container(step), command=tuple(T.version_command()), mounts=())
        return T.run_container(probe, log).strip().splitlines()[-1]

    def _execute(self, step: Step, log: Log) -> None:
        T.run_container(self._container(step), log)

    def serve(
        self, s: T.ServeSettings, weights: Path, name: str, log_path: Path, timeout_s: float, log: Log
    ) -> ServeHandle:
        """Replace any container of this name with a fresh `trtllm-serve`, then wait for /health."""
        import docker

        client = docker.from_env()
        spec = replace(T.serve_container(s, self.serve_image, weights, self.gpus), name=name)
        for old in client.containers.list(all=True, filters={"name": name}):
            old.remove(force=True)
        log(f"$ {shlex.join(spec.docker_cli())}")
        started = time.monotonic()
        container = client.containers.run(**spec.run_kwargs())

        def alive() -> str | None:
            container.reload()
            if container.status in ("created", "running"):
                return None
            return container.logs(tail=30).decode(errors="replace")

        base = _wait_healthy(f"http://127.0.0.1:{s.port}", alive, timeout_s)
        return ServeHandle(f"{base}/v1", name, time.monotonic() - started)

    def stop(self, handle: ServeHandle) -> None:
        import docker

        for container in docker.from_env().containers.list(all=True, filters={"name": handle.owner}):
            container.remove(force=True)


class LocalRunner(TrtllmRunner):
    """Steps with the `tensorrt_llm` installed in this environment; `examples_dir` is required."""

    kind: ClassVar[T.Runner] = "local"

    def __init__(self, gpus: int = -1, examples_dir: Path | None = None) -> None:
        super().__init__(gpus, examples_dir)

    def _examples(self) -> Path:
        if self.examples_dir is None:
            raise ServingInputError(
                "the local runner needs examples_dir: the examples/ folder of the TensorRT-LLM tag matching "
                "the installed version (see docs/GPU_RUNBOOK.md)"
            )
        return self.examples_dir

    def check_inputs(self) -> None:
        if not (self._examples() / "quantization").is_dir():
            raise ServingInputError(f"examples_dir {self.examples_dir} is not a TensorRT-LLM examples/ folder")

    def checkpoint_step(self, s: T.CheckpointSettings, weights: Path, out: Path) -> Step:
        cmd = T.checkpoint_command(s, str(weights), str(out), str(self._examples()), s.calib_dataset or "")
        return Step("checkpoint", None, tuple(cmd))

    def build_step(self, s: T.BuildSettings, checkpoint: Path, out: Path) -> Step:
        return Step("build", None, tuple(T.build_command(s, str(checkpoint), str(out))))

    def trtllm_version(self, step: Step, log: Log) -> str:
        import tensorrt_llm  # preflight checked it is installed

        return str(tensorrt_llm.__version__)

    def _execute(self, step: Step, log: Log) -> None:
        T.run_local(step.local_command, log)

    def serve(
        self, s: T.ServeSettings, weights: Path, name: str, log_path: Path, timeout_s: float, log: Log
    ) -> ServeHandle:
        """Start `trtllm-serve` as a detached process (its output in `log_path`), then wait for /health."""
        cmd = T.serve_command(s, str(weights))
        log(f"$ {shlex.join(cmd)}")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )

        def alive() -> str | None:
            if proc.poll() is None:
                return None
            return log_path.read_text(errors="replace")[-3000:]

        try:
            base = _wait_healthy(f"http://127.0.0.1:{s.port}", alive, timeout_s)
        except BuildError:
            _kill_group(proc.pid)
            raise
        return ServeHandle(f"{base}/v1", f"pid:{proc.pid}", time.monotonic() - started)

    def stop(self, handle: ServeHandle) -> None:
        _kill_group(int(handle.owner.removeprefix("pid:")))


def _kill_group(pid: int) -> None:
    """End a detached server and its children (it leads its own session); gone already is fine."""
    import signal

    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return


def _wait_healthy(base: str, exited: Callable[[], str | None], timeout_s: float, poll_s: float = 1.0) -> str:
    """Poll `<base>/health` until 200; raise with the server's last output if it exits or times out."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tail = exited()
        if tail is not None:
            raise BuildError(f"trtllm-serve exited: {tail}")
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                return base
        except httpx.HTTPError:
            pass
        time.sleep(poll_s)
    raise BuildError(f"trtllm-serve not healthy after {timeout_s} s")
