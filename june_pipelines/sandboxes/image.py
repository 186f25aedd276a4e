"""Builds the sandbox image without a registry: debootstrap a Debian rootfs, then `docker import` it.

The image holds Debian's python3 (3.11 on bookworm) and a non-root `sandbox` user; the fork-server
is not baked in (the host sends it over the container's stdin), so the image never goes stale.
Users who can pull use `deploy/sandbox/Dockerfile` instead; both give the same interface.

Standard library only (the docker CLI does the import), so `scripts/setup-system.sh` can run it
with the system python before June's virtualenv exists:
    python3 june_pipelines/sandboxes/image.py [--tag june-sandbox:py311] [--force]
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


def docker_client(timeout: int = 60):
    """A docker SDK client from the environment (DOCKER_HOST etc.); imported lazily."""
    import docker

    return docker.from_env(timeout=timeout)


def image_exists(tag: str = DEFAULT_IMAGE) -> bool:
    """Whether the engine (DOCKER_HOST honoured) has `tag`."""
    result = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return result.returncode == 0


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
        log(f"importing {archive.stat().st_size // 2**20} MiB as {tag}")
        changes = [
            f"USER {SANDBOX_UID}:{SANDBOX_UID}",
            "WORKDIR /tmp",
            "ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8",
            'CMD ["python3"]',
        ]
        cmd = ["docker", "import"]
        for change in changes:
            cmd += ["--change", change]
        image_id = subprocess.run([*cmd, str(archive), tag], check=True, capture_output=True,
                                  text=True).stdout.strip()
        log(f"built {tag} ({image_id})")
        return image_id


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Build June's sandbox image offline (debootstrap + docker import).")
    parser.add_argument("--tag", default=DEFAULT_IMAGE)
    parser.add_argument("--suite", default="bookworm")
    parser.add_argument("--mirror", default=None)
    parser.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    args = parser.parse_args(argv)
    if not args.force and image_exists(args.tag):
        print(f"{args.tag} exists")
        return 0
    build_image(args.tag, args.suite, args.mirror)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
