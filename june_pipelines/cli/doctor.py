"""`june doctor`: check what June needs on this host and say what to do about each miss."""

from __future__ import annotations

import json

import click

from june_pipelines.doctor import FEATURES, Report


def _table(report: Report) -> str:
    width = max(len(c.name) for c in report.checks)
    lines = []
    for check in report.checks:
        mark = "ok" if check.ok else ("FAIL" if check.required else "warn")
        lines.append(f"{mark:<4}  {check.name:<{width}}  {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    failed = [c.name for c in report.checks if c.required and not c.ok]
    optional = sum(1 for c in report.checks if not c.required and not c.ok)
    if failed:
        lines.append(f"\nNot ready: {len(failed)} required check(s) failed ({', '.join(failed)}).")
    else:
        lines.append("\nReady: every check the configured features need passed"
                     + (f" ({optional} not needed here)." if optional else "."))
    return "\n".join(lines)


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the last line) instead of the table.")
@click.option("--feature", "features", multiple=True, type=click.Choice(FEATURES),
              help="Also require what this feature needs, configured or not (repeatable).")
def doctor(as_json: bool, features: tuple[str, ...]) -> None:
    """Check the Python environment, sandboxes, bundled models, GPU, endpoints, Dagster and bot tokens.

    Exit code 0 when every check that the configured features need passed, 1 otherwise.
    Features are read from the environment (docs/OPERATIONS.md lists which checks each one needs).
    """
    from june_pipelines.doctor import run_checks

    report = run_checks(features)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        click.echo(_table(report))
    raise SystemExit(0 if report.ok else 1)
