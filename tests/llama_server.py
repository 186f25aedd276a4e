"""A real OpenAI-compatible server for tests: llama.cpp's (`llama-cpp-python[server]`) serving the bundled model."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from june_pipelines.registry import get_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """`python -m llama_cpp.server` on 127.0.0.1:`port`; `start()` waits until it answers, `stop()` ends it."""

    def __init__(self, port: int, log_path: Path, api_key: str | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/v1"
        self.api_key = api_key
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120) -> LlamaServer:
        log = self.log_path.open("ab")  # a pipe would fill and block the server
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(get_model("smollm2").gguf_path()),
            "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", "2048", "--chat_format", "chatml",
        ]
        if self.api_key:
            command += ["--api_key", self.api_key]
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/models", headers=headers, timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not become ready in {timeout_s:g} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
