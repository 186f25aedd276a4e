"""What `june engine` and `june triton` share: option checks and turning errors into exit codes.

Usage errors (bad input, detected before any work) exit with 2 and a one-line `Error:` that names
the option; a step that could not run exits with 1 and one line; neither prints a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import click

from june_pipelines.registry import ModelSpec, RegistryError, get_model
from june_pipelines.serving.errors import ServingError, ServingInputError

_HOST_PORT = re.compile(r"^(?:[a-z]+://)?(?P<host>[A-Za-z0-9_.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$")
PORT = click.IntRange(1, 65535)
POSITIVE = click.IntRange(min=1)


def given(**options: object) -> dict[str, object]:
    """The options set on the command line, as settings overrides (None: not given)."""
    return {k: v for k, v in options.items() if v is not None}


def registered_model(ctx: click.Context, param: click.Parameter, value: str) -> ModelSpec:
    """Click callback: MODEL must be in the registry."""
    try:
        return get_model(value)
    except RegistryError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def host_port(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: `host:port` (an optional scheme is allowed), port 1-65535."""
    if value is None:
        return None
    match = _HOST_PORT.match(value)
    if not match or not 1 <= int(match.group("port")) <= 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", ctx=ctx, param=param)
    return value


def _options_named(ctx: click.Context, message: str) -> str | None:
    """The options whose setting name appears in `message` (e.g. max_input_len -> '--max-input-len')."""
    hints = [
        f"'{p.opts[0]}'"
        for p in ctx.command.params
        if isinstance(p, click.Option) and p.name and re.search(rf"\b{re.escape(p.name)}\b", message)
    ]
    return ", ".join(hints) or None


@contextmanager
def cli_errors(ctx: click.Context | None = None) -> Iterator[None]:
    """Serving input errors -> usage error (exit 2, naming the option); other serving errors -> exit 1."""
    from june_pipelines.inference.base import LLMError
    from june_pipelines.serving.triton_deploy import DeployError
    from june_pipelines.serving.weights import WeightsError

    ctx = ctx or click.get_current_context()
    try:
        yield
    except ServingInputError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param_hint=_options_named(ctx, str(exc))) from None
    except (ServingError, DeployError, WeightsError, LLMError) as exc:
        raise click.ClickException(str(exc)) from None
