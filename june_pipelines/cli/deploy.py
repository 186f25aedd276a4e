"""`june deploy ...`: June as a team service, in Dagster's production layout (docs/DEPLOY.md).

Each service command writes DAGSTER_HOME/dagster.yaml from the project's dagster.yaml and the
environment (JUNE_POSTGRES_URL, JUNE_RUN_LAUNCHER, ...), then becomes that Dagster process, so the
same commands serve one machine (`june deploy up`) and one container per service
(deploy/docker-compose.yml).
"""

from __future__ import annotations

import os
import sys

import click

from june_pipelines.deploy.services import DEFAULT_CODE_SERVER_PORT, LOG_LEVELS


def prepare_instance() -> str:
    """DAGSTER_HOME with its instance config; the clear one-line error when the environment is wrong."""
    from june_pipelines.db import DatabaseConfigError
    from june_pipelines.deploy.instance import InstanceConfigError, unmanaged_note
    from june_pipelines.paths import INSTANCE_TEMPLATE, ensure_dagster_home, june_home

    os.environ["JUNE_HOME"] = str(june_home())
    try:
        home = ensure_dagster_home()
    except (InstanceConfigError, DatabaseConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    note = unmanaged_note(home, INSTANCE_TEMPLATE)
    if note:
        click.echo(f"note: {note}", err=True)
    return str(home)


def _address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def _exec(command: list[str]) -> None:
    """Become the service (signals from the container runtime reach Dagster directly)."""
    from june_pipelines.progress import BAR_ENV

    os.environ.pop(BAR_ENV, None)  # runs log progress per batch; bars belong to the CLI
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


log_level_option = click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
code_server_option = click.option(
    "--code-server", "code_server", default=f"127.0.0.1:{DEFAULT_CODE_SERVER_PORT}", show_default=True,
    help="HOST:PORT of `june deploy code-server`.",
)


@click.group("deploy")
def deploy_group() -> None:
    """Run June as a team service: code server, webserver and daemon on one PostgreSQL."""


@deploy_group.command("config")
@click.option("--print", "show", is_flag=True, help="Print the instance config instead of where it is.")
def config_command(show: bool) -> None:
    """Write DAGSTER_HOME/dagster.yaml (project dagster.yaml + storage and run launcher from the environment)."""
    from pathlib import Path

    from june_pipelines.deploy.instance import describe_storage

    home = Path(prepare_instance())
    path = home / "dagster.yaml"
    if show:
        click.echo(path.read_text(), nl=False)
        return
    launcher = os.environ.get("JUNE_RUN_LAUNCHER", "default")
    click.echo(f"{path}\nstorage: {describe_storage(os.environ, home)}\nrun launcher: {launcher}")


@deploy_group.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the instance's schema (as `dagster instance migrate`)."""
    from june_pipelines.deploy.services import migrate_instance

    prepare_instance()
    migrate_instance()
    click.echo("instance schema is current")


@deploy_group.command("code-server")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=DEFAULT_CODE_SERVER_PORT, show_default=True)
@click.option("--image", default=None, help="Image runs start from (default: DAGSTER_CURRENT_IMAGE).")
@log_level_option
def code_server_command(host: str, port: int, image: str | None, log_level: str) -> None:
    """Serve the code location `june` over gRPC (`dagster code-server start`)."""
    from june_pipelines.deploy.services import code_server_command as command

    prepare_instance()
    _exec(command(host, port, log_level, image))


@deploy_group.command("webserver")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=3000, show_default=True)
@code_server_option
@log_level_option
def webserver_command(host: str, port: int, code_server: str, log_level: str) -> None:
    """The Dagster UI and GraphQL API, on the code server's location (`dagster-webserver`)."""
    from pathlib import Path

    from june_pipelines.deploy.instance import grpc_workspace
    from june_pipelines.deploy.services import webserver_command as command

    home = Path(prepare_instance())
    grpc_host, grpc_port = _address(code_server)
    _exec(command(grpc_workspace(home, grpc_host, grpc_port), host, port, log_level))


@deploy_group.command("daemon")
@code_server_option
@log_level_option
def daemon_command(code_server: str, log_level: str) -> None:
    """Run queue, schedules and sensors (`dagster-daemon run`); migrates the schema first."""
    from pathlib import Path

    from june_pipelines.deploy.instance import grpc_workspace
    from june_pipelines.deploy.services import daemon_command as command
    from june_pipelines.deploy.services import migrate_instance

    home = Path(prepare_instance())
    grpc_host, grpc_port = _address(code_server)
    migrate_instance()
    _exec(command(grpc_workspace(home, grpc_host, grpc_port), log_level))


@deploy_group.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the UI listens (0.0.0.0: all).")
@click.option("--port", default=3000, show_default=True)
@click.option("--code-server-port", default=DEFAULT_CODE_SERVER_PORT, show_default=True)
@click.option("--log-dir", type=click.Path(file_okay=False), default=None,
              help="Service logs here (default: terminal).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="warning", show_default=True)
def up_command(host: str, port: int, code_server_port: int, log_dir: str | None, log_level: str) -> None:
    """The whole layout on this machine: code server, daemon and webserver as separate processes, until Ctrl-C."""
    from pathlib import Path

    from june_pipelines.deploy.instance import describe_storage
    from june_pipelines.deploy.services import (
        Layout,
        ServiceError,
        migrate_instance,
        serve_until_interrupted,
        sigterm_as_interrupt,
    )

    home = Path(prepare_instance())
    migrate_instance()
    click.echo(f"instance: {describe_storage(os.environ, home)}; run launcher: "
               f"{os.environ.get('JUNE_RUN_LAUNCHER', 'default')}", err=True)
    layout = Layout(home, host=host, port=port, code_server_port=code_server_port, log_level=log_level,
                    log_dir=Path(log_dir) if log_dir else None)
    try:
        with sigterm_as_interrupt(), layout:
            click.echo(f"June's Dagster UI: {layout.url} (Ctrl-C stops the layout)")
            serve_until_interrupted(layout)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@deploy_group.command("build-image")
@click.option("--force", is_flag=True, help="Rebuild both layers even if they exist.")
def build_image_command(force: bool) -> None:
    """Build the code-location image offline (debootstrap + docker import; root); prints its tag."""
    from june_pipelines.deploy.image import ImageBuildError, ensure_code_image

    try:
        tag = ensure_code_image(log=lambda line: click.echo(line, err=True), force=force)
    except ImageBuildError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(tag)
