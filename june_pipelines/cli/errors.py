"""How the `june` CLI reports bad input: one line on stderr, exit code 2, nothing run."""

from __future__ import annotations

import click


class BadInput(click.ClickException):
    """Input the command cannot use (a malformed line, an existing output, an impossible option
    combination): printed as one `Error: ...` line, with the usage-error exit code 2."""

    exit_code = 2
