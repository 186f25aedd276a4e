"""`june sandbox ...`: build the offline sandbox image, remove leftover containers, show the backend."""

from __future__ import annotations

import json

import click

from june_pipelines.sandboxes.image import DEFAULT_IMAGE


@click.group("sandbox")
def sandbox_group() -> None:
    """Code-execution sandboxes (process and Docker backends)."""


@sandbox_group.command("build-image")
@click.option("--tag", default=DEFAULT_IMAGE, show_default=True, help="Image name to create.")
@click.option("--suite", default="bookworm", show_default=True, help="Debian suite for debootstrap.")
@click.option("--mirror", default=None, help="Debian mirror URL (default: debootstrap's).")
@click.option("--force", is_flag=True, help="Rebuild even if the image exists.")
def build_image_cmd(tag: str, suite: str, mirror: str | None, force: bool) -> None:
    """Build the sandbox image offline: debootstrap a rootfs and `docker import` it (needs root)."""
    from june_pipelines.sandboxes.image import build_image, image_exists

    if not force and image_exists(tag):
        click.echo(f"{tag} exists (use --force to rebuild)")
        return
    build_image(tag=tag, suite=suite, mirror=mirror, log=click.echo)


@sandbox_group.command("cleanup")
@click.option("--all", "everything", is_flag=True,
              help="Remove every june sandbox container, also those of live runs.")
def cleanup_cmd(everything: bool) -> None:
    """Remove sandbox containers left behind by crashed runs (label june.sandbox=1)."""
    from june_pipelines.sandboxes.docker import cleanup_containers

    removed = cleanup_containers(only_orphans=not everything)
    for name in removed:
        click.echo(f"removed {name}")
    click.echo(f"{len(removed)} container(s) removed")


@sandbox_group.command("info")
@click.option("--sandbox", "kind", type=click.Choice(["auto", "process", "docker"]), default="auto",
              show_default=True)
def info_cmd(kind: str) -> None:
    """Start the chosen backend, run one program, and print what it runs on (JSON)."""
    from june_pipelines.sandboxes.base import Program
    from june_pipelines.sandboxes.resources import sandbox_resource_for

    resource = sandbox_resource_for(kind)
    with resource.open() as backend:
        verdict = backend.run([Program("probe", "def f():\n    return 1\n", "assert f() == 1\n")],
                              resource.limits())[0]
        info = backend.info()
    click.echo(json.dumps({"backend": info.backend, "probe": verdict.result, **info.details}, indent=2))

