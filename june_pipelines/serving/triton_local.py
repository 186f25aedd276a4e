"""Run the CPU `tritonserver` that ships in the `nvidia-pytriton` wheel (tests, development).

The wheel holds the server binary, its shared libraries (`nvidia_pytriton.libs`), the python backend
and one python-backend stub per Python minor version. Triton looks for the stub inside the backend
directory, so a private backend directory is assembled with the stub matching this interpreter.
The stub embeds libpython: it must match the interpreter the packages were installed for (Debian's
3.11.2 works; a pyenv 3.11.7 build failed). The stub finds site-packages through the `python3`
first on PATH, so this interpreter's bin directory is put first.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class LocalTritonError(RuntimeError):
    pass


@dataclass(frozen=True)
class PytritonDist:
    server: Path
    libs: Path
    python_backend: Path
    stub: Path


def find_pytriton() -> PytritonDist:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise LocalTritonError("nvidia-pytriton is not installed (pip install 'june-pipelines[triton-test]')")
    root = Path(next(iter(spec.submodule_search_locations)))
    dist = root / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = PytritonDist(
        server=dist / "bin" / "tritonserver",
        libs=root.parent / "nvidia_pytriton.libs",
        python_backend=dist / "backends" / "python",
        stub=dist / "python_backend_stubs" / version / "triton_python_backend_stub",
    )
    for path in (found.server, found.python_backend, found.stub):
        if not path.exists():
            raise LocalTritonError(f"pytriton install is incomplete: {path} is missing")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalTritonServer:
    """A tritonserver process on loopback ports with explicit model control."""

    repository: Path
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    load_models: tuple[str, ...] = ()
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    _workdir: tempfile.TemporaryDirectory | None = None

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def command(self, backend_dir: Path) -> list[str]:
        dist = find_pytriton()
        cmd = [
            str(dist.server),
            f"--model-repository={self.repository}",
            f"--backend-directory={backend_dir}",
            "--model-control-mode=explicit",
            "--http-address=127.0.0.1",
            f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={self.grpc_port}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={self.metrics_port}",
            "--allow-metrics=false",
            "--strict-readiness=true",
            "--exit-timeout-secs=5",
        ]
        cmd += [f"--load-model={m}" for m in self.load_models]
        return cmd

    def start(self, timeout_s: float = 60.0) -> LocalTritonServer:
        import httpx

        dist = find_pytriton()
        self._workdir = tempfile.TemporaryDirectory(prefix="june-triton-")
        backends = Path(self._workdir.name) / "backends"
        python_dir = backends / "python"
        python_dir.mkdir(parents=True)
        for item in dist.python_backend.iterdir():
            os.symlink(item, python_dir / item.name)
        shutil.copy2(dist.stub, python_dir / "triton_python_backend_stub")
        env = os.environ.copy()
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(dist.libs), env.get("LD_LIBRARY_PATH")]))
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        log_path = self.log_path or Path(self._workdir.name) / "tritonserver.log"
        self.log_path = log_path
        log = open(log_path, "wb")
        self.process = subprocess.Popen(
            self.command(backends), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalTritonError(f"tritonserver exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                # Live (not ready): with models failing to load, readiness can stay false.
                if httpx.get(f"http://{self.http_url}/v2/health/live", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise LocalTritonError(f"tritonserver did not come up in {timeout_s} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(line for line in text[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> LocalTritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
