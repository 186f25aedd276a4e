"""The code-location image, built without a registry (as the sandbox image is).

Two layers, so a source change rebuilds only the small one:

1. `june-runtime:<hash>`: a Debian bookworm root filesystem from `debootstrap` (Debian's python3.11,
   the interpreter June's venv uses) with June's dependencies in a relocatable uv venv at
   /opt/june/venv, installed from uv's cache (`--offline`), imported with `docker import`. The hash
   covers uv.lock, the extras and this recipe; an existing image is reused.
2. `june-code:<hash>` (also tagged `june-code:latest`): the runtime plus June's source at
   /opt/june/src (on the venv's path through a .pth file), built with `docker build` from the local
   runtime image, so nothing is pulled. The hash covers the source.

The image runs every part of the deployment: the code server, webserver, daemon, each run
(DockerRunLauncher), the bot gateways. Hosts that can pull use deploy/Dockerfile instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from june_pipelines.paths import PROJECT_ROOT

CODE_REPOSITORY = "june-code"
RUNTIME_REPOSITORY = "june-runtime"
# What a deployment runs: the embedded model, sandboxes, PostgreSQL/Docker/Kubernetes integration,
# voice and the bot gateways, the Triton and OpenAI-compatible clients. Not the test-only extras.
EXTRAS = ("llama", "docker", "deploy", "voice", "bots", "triton")
DEBIAN_PACKAGES = ("python3", "libgomp1", "ca-certificates", "tini")
RECIPE_VERSION = "2"  # bump when the runtime recipe below changes
VENV = "/opt/june/venv"
SOURCE = "/opt/june/src"
SITE_PACKAGES = f"{VENV}/lib/python3.11/site-packages"
# The files of the project the code image needs (a checkout's layout, so PROJECT_ROOT finds
# dagster.yaml and workspace.yaml there).
SOURCE_PATHS = ("june_pipelines", "pyproject.toml", "uv.lock", "dagster.yaml", "workspace.yaml", "README.md")
_PRUNE = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt",
          "var/lib/apt/lists", "var/log")

Log = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """The image could not be built (one line: which step and why)."""


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def runtime_tag(root: Path = PROJECT_ROOT) -> str:
    parts = [(root / "uv.lock").read_bytes(), ",".join(EXTRAS).encode(), ",".join(DEBIAN_PACKAGES).encode(),
             RECIPE_VERSION.encode()]
    return f"{RUNTIME_REPOSITORY}:{_digest(parts)}"


def _source_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for name in SOURCE_PATHS:
        path = root / name
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        elif path.is_file():
            files.append(path)
    return files


def code_tag(root: Path = PROJECT_ROOT) -> str:
    files = _source_files(root)
    parts = [runtime_tag(root).encode()]
    for path in files:
        parts += [str(path.relative_to(root)).encode(), path.read_bytes()]
    return f"{CODE_REPOSITORY}:{_digest(parts)}"


def image_exists(tag: str) -> bool:
    result = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    return result.returncode == 0


def _run(command: list[str], what: str, log: Log, **kwargs: object) -> subprocess.CompletedProcess[str]:
    log(f"$ {' '.join(command[:6])}{' ...' if len(command) > 6 else ''}")
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ImageBuildError(f"{what} failed (exit {result.returncode}): {tail[0]}")
    return result


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def build_runtime(tag: str, root: Path = PROJECT_ROOT, log: Log = print, mirror: str | None = None) -> str:
    """debootstrap + June's dependencies from uv's cache, imported as `tag`. Needs root."""
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (apt-get install -y debootstrap)")
    with tempfile.TemporaryDirectory(prefix="june-runtime-") as tmp:
        rootfs = Path(tmp) / "root"
        packages = ",".join(DEBIAN_PACKAGES)
        command = ["debootstrap", "--variant=minbase", f"--include={packages}", "bookworm", str(rootfs)]
        _run(command + ([mirror] if mirror else []), "debootstrap", log)
        for rel in _PRUNE:
            shutil.rmtree(rootfs / rel, ignore_errors=True)
            (rootfs / rel).mkdir(parents=True, exist_ok=True)
        requirements = Path(tmp) / "requirements.txt"
        extras = [arg for extra in EXTRAS for arg in ("--extra", extra)]
        _run([*_uv(), "export", "--locked", "--no-hashes", "--no-emit-project", "--no-dev", *extras,
              "-o", str(requirements)], "uv export", log, cwd=root)
        venv = rootfs / VENV.lstrip("/")
        # The venv's interpreter is Debian's /usr/bin/python3.11, inside the image as on this host.
        _run([*_uv(), "venv", "--relocatable", "--python", "/usr/bin/python3.11", str(venv)], "uv venv", log)
        # Copies, not hard links into the cache; wait for a uv that is building a wheel we need.
        env = {**os.environ, "UV_LINK_MODE": "copy", "UV_LOCK_TIMEOUT": os.environ.get("UV_LOCK_TIMEOUT", "3600")}
        _run([*_uv(), "pip", "install", "--offline", "--no-deps", "--python", str(venv / "bin" / "python"),
              "-r", str(requirements)], "uv pip install (offline, from uv's cache)", log, env=env)
        site = rootfs / SITE_PACKAGES.lstrip("/")
        (site / "june-source.pth").write_text(SOURCE + "\n")
        archive = Path(tmp) / "rootfs.tar"
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(archive), "."], "tar", log)
        log(f"importing {archive.stat().st_size // 2**20} MiB as {tag}")
        changes = [
            f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            "ENV PYTHONUNBUFFERED=1",
            f"WORKDIR {SOURCE}",
            'ENTRYPOINT ["/usr/bin/tini", "--"]',
            'CMD ["june", "--help"]',
        ]
        command = ["docker", "import"]
        for change in changes:
            command += ["--change", change]
        return _run([*command, str(archive), tag], "docker import", log).stdout.strip()


def build_code(tag: str, runtime: str, root: Path = PROJECT_ROOT, log: Log = print) -> None:
    """The runtime image plus June's source, with `docker build` (the base is local: nothing is pulled)."""
    with tempfile.TemporaryDirectory(prefix="june-code-") as tmp:
        context = Path(tmp)
        for path in _source_files(root):
            target = context / "src" / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        june = context / "june"  # the console script an install would write (the source is on the path)
        entry = "from june_pipelines.cli import main; main(prog_name='june')"
        june.write_text(f'#!/bin/sh\nexec {VENV}/bin/python -c "{entry}" "$@"\n')
        june.chmod(0o755)
        (context / "Dockerfile").write_text(
            f"FROM {runtime}\n"
            f"COPY src {SOURCE}\n"
            f"COPY june {VENV}/bin/june\n"
            f'LABEL org.opencontainers.image.title="june code location" june.runtime="{runtime}"\n'
        )
        repository = tag.split(":", 1)[0]
        _run(["docker", "build", "-q", "-t", tag, "-t", f"{repository}:latest", str(context)], "docker build", log)


def ensure_code_image(root: Path = PROJECT_ROOT, log: Log = print, force: bool = False) -> str:
    """The code image for this source tree: built when missing (the runtime layer only when uv.lock changed)."""
    runtime, code = runtime_tag(root), code_tag(root)
    if force or not image_exists(runtime):
        log(f"building {runtime} (debootstrap + June's dependencies, offline)")
        build_runtime(runtime, root, log)
    else:
        log(f"{runtime} present")
    if force or not image_exists(code):
        log(f"building {code} on {runtime}")
        build_code(code, runtime, root, log)
    else:
        log(f"{code} present")
    return code
