"""Builds the sandbox image without a registry: debootstrap a Debian rootfs, then `docker import` it.

The image holds Debian's python3 (3.11 on bookworm) and a non-root `sandbox` user; the fork-server
is not baked in (the host sends it over the container's stdin), so the image never goes stale.
Users who can pull use `docker/sandbox/Dockerfile` instead; both give the same interface.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

DEFAULT_IMAGE = "june-sandbox:py311"
SANDBOX_UID = 1000

# Paths a program never needs; removing them shrinks the image by about a half.
_PRUNE = (
    "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/i18n",
    "var/cache/apt", "var/lib/apt/lists", "var/log",
)


def docker_client(timeout: int = 60):  # type: ignore[no-untyped-def]
    """A docker SDK client from the environment (DOCKER_HOST etc.); imported lazily."""
    import docker

    return docker.from_env(timeout=timeout)


def image_exists(tag: str = DEFAULT_IMAGE) -> bool:
    import docker.errors

    try:
        docker_client(timeout=10).images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _add_user(root: Path) -> None:
    passwd = root / "etc/passwd"
    if "sandbox:" not in passwd.read_text():
        with passwd.open("a") as f:
            f.write(f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:june sandbox:/tmp:/usr/sbin/nologin\n")
        with (root / "etc/group").open("a") as f:
            f.write(f"sandbox:x:{SANDBOX_UID}:\n")
        shadow = root / "etc/shadow"
        if shadow.exists():
            with shadow.open("a") as f:
                f.write("sandbox:!:19000:0:99999:7:::\n")


def build_image(
    tag: str = DEFAULT_IMAGE,
    suite: str = "bookworm",
    mirror: str | None = None,
    log: Callable[[str], None] = print,
) -> str:
    """Build and import the image; return its id. Needs root (debootstrap) and a reachable Debian mirror."""
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install -y debootstrap)")
    with tempfile.TemporaryDirectory(prefix="june-sandbox-rootfs-") as tmp:
        root = Path(tmp) / "root"
        cmd = ["debootstrap", "--variant=minbase", "--include=python3", suite, str(root)]
        if mirror:
            cmd.append(mirror)
        log(f"$ {' '.join(cmd)}")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        _add_user(root)
        for rel in _PRUNE:
            shutil.rmtree(root / rel, ignore_errors=True)
            (root / rel).mkdir(parents=True, exist_ok=True)
        archive = Path(tmp) / "rootfs.tar"
        log(f"$ tar -C {root} -cf {archive} .")
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(archive), "."], check=True)
        repository, _, version = tag.partition(":")
        log(f"importing {archive.stat().st_size // 2**20} MiB as {tag}")
        client = docker_client(timeout=600)
        client.api.import_image_from_file(
            str(archive),
            repository=repository,
            tag=version or "latest",
            changes=[
                f"USER {SANDBOX_UID}:{SANDBOX_UID}",
                "WORKDIR /tmp",
                "ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8",
                'CMD ["python3"]',
            ],
        )
        image = client.images.get(tag)
        log(f"built {tag} ({image.id})")
        return str(image.id)


def dockerfile_path() -> Path:
    """The Dockerfile for users who can pull python:3.11-slim (docker/sandbox/Dockerfile)."""
    return Path(__file__).resolve().parents[2] / "docker" / "sandbox" / "Dockerfile"

