"""`june demo`, `june ui`, and the evaluation runs behind `june eval run`.

Evaluations started here are ordinary runs of the workspace's code location `june` (see
june_pipelines/deploy/cli_runs.py): they show on the evaluation job's page and the timeline of
`june ui`, and the UI can re-execute them. They execute in this process, with progress bars and a
result table on the terminal.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import click


def run_evaluation(
    model: str, benchmark: str, completions: dict[str, Any], problems: dict[str, Any], ks: list[int]
) -> dict[str, Any]:
    """Run the `evaluation` job for one model|benchmark partition, then refresh the leaderboard,
    on the project's Dagster instance. Returns the pass@k summary (with `run_id`)."""
    import dagster as dg

    from june_pipelines.assets.benchmarks import MODELS
    from june_pipelines.cli.deploy import prepare_instance
    from june_pipelines.deploy.cli_runs import execute_job_run
    from june_pipelines.evals.store import EvalStore
    from june_pipelines.registry import get_model

    get_model(model)  # unknown models fail here, with the list of known ones
    prepare_instance()
    # The terminal shows progress bars and warnings; the full event log is in the UI.
    loggers = {"console": {"config": {"log_level": "WARNING"}}}
    run_config = {
        "loggers": loggers,
        "ops": {
            "problems": {"config": problems},
            "completions": {"config": completions},
            "pass_at_k": {"config": {"ks": ks}},
        },
    }
    partition = dg.MultiPartitionKey({"model": model, "benchmark": benchmark})
    with dg.DagsterInstance.get() as instance:
        if not instance.has_dynamic_partition(MODELS, model):
            instance.add_dynamic_partitions(MODELS, [model])
        run = execute_job_run(instance, "evaluation", run_config, partition_key=partition)
        if run.status != dg.DagsterRunStatus.SUCCESS:
            raise click.ClickException(f"evaluation run {run.run_id} failed; see `june ui` for its logs")
        failed_checks = _failed_checks(instance, run.run_id)
        if failed_checks:
            click.echo(f"warning: asset checks failed: {', '.join(failed_checks)}", err=True)
        board = execute_job_run(instance, "leaderboard_refresh", {"loggers": loggers})
        if board.status != dg.DagsterRunStatus.SUCCESS:
            click.echo(f"warning: leaderboard refresh run {board.run_id} failed; see `june ui`", err=True)
    summary = EvalStore(model, benchmark).latest_summary()
    summary["run_id"] = run.run_id
    return summary


def _failed_checks(instance: Any, run_id: str) -> list[str]:
    import dagster as dg

    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    return [e.check_name for e in evaluations if not e.passed]


def _print_summary(summary: dict[str, Any]) -> None:
    from june_pipelines.evals.store import EvalStore
    from june_pipelines.paths import leaderboard_path

    ks = [k for k in summary if k.split("@")[0] in ("pass", "base_pass") and k.split("@")[-1].isdigit()]
    click.echo("")
    click.echo(f"{'model':<12} {'benchmark':<13} {'tasks':>5} {'samples':>7}  " + "  ".join(f"{k:>26}" for k in ks))
    cells = [f"{summary[k]:.4f} [{summary[k + '_ci_low']:.4f}, {summary[k + '_ci_high']:.4f}]" for k in ks]
    click.echo(
        f"{summary['model']:<12} {summary['benchmark']:<13} {summary['tasks']:>5} {summary['samples']:>7}  "
        + "  ".join(f"{c:>26}" for c in cells)
    )
    click.echo("(each score with its 95% interval over tasks)")
    store = EvalStore(summary["model"], summary["benchmark"])
    click.echo("")
    click.echo(f"per-sample results: {store.root}")
    click.echo(f"leaderboard:        {leaderboard_path()}")
    click.echo(f"Dagster run:        {summary['run_id']} (in `june ui`: /runs/{summary['run_id']},")
    click.echo("                    or Catalog -> pass_at_k -> Partitions)")
    click.echo(json.dumps({k: summary[k] for k in ("model", "benchmark", *ks)}))


@click.command("demo")
@click.option("--limit", type=int, default=None, help="Only the first N HumanEval tasks (default: all 164).")
def demo(limit: int | None) -> None:
    """The main job on the embedded default: HumanEval pass@1 (greedy, n=1) of the bundled SmolLM2
    model, run through the Dagster evaluation assets, then a result table and where results are."""
    from june_pipelines.assets.benchmarks import DEFAULT_MAX_TOKENS  # the UI's launch form default too

    completions = {"n": 1, "temperature": 0.0, "max_tokens": DEFAULT_MAX_TOKENS}
    summary = run_evaluation("smollm2", "humaneval", completions, {"limit": limit}, [1])
    _print_summary(summary)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@click.command("ui")
@click.option("--port", default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0 to serve other machines too.")
def ui(port: int, host: str) -> None:
    """The Dagster UI on the project's instance: a code server, the webserver and the daemon (which
    runs launched runs, schedules and sensors), as in the deployed layout, until Ctrl-C."""
    from june_pipelines.cli.deploy import prepare_instance
    from june_pipelines.deploy.instance import describe_storage
    from june_pipelines.deploy.services import Layout, ServiceError, serve_until_interrupted, sigterm_as_interrupt
    from june_pipelines.paths import june_home

    home = Path(prepare_instance())  # also exports JUNE_HOME: every service sees the same results folder
    click.echo(f"JUNE_HOME   {june_home()} (results)", err=True)
    click.echo(f"instance    {describe_storage(os.environ, home)} (runs, events, schedules)", err=True)
    click.echo("starting the code server, the daemon and the webserver ...", err=True)
    layout = Layout(home, host=host, port=port, code_server_port=free_port())
    try:
        with sigterm_as_interrupt(), layout:
            click.echo(f"\nJune's Dagster UI: {layout.url}")
            if host == "127.0.0.1":
                click.echo(f"from another machine: ssh -L {port}:127.0.0.1:{port} THIS_HOST"
                           " (or `june ui --host 0.0.0.0`)")
            click.echo("Ctrl-C stops it.")
            serve_until_interrupted(layout)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
