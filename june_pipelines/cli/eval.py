"""`june eval ...`: evaluations from the command line.

`june eval run` executes the same Dagster job the UI shows, against the project's instance, as a run
of the workspace's code location (june_pipelines/cli/runs.py), so it appears in `june ui` afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import click

from june_pipelines.cli.errors import BadInput
from june_pipelines.cli.runs import _print_summary, run_evaluation
from june_pipelines.evals.datasets import BENCHMARKS


def _parse_ks(value: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in value.split(",") if k.strip()})
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not ks or ks[0] < 1:
        raise click.BadParameter("k values must be positive integers")
    return ks


def _ks_option(_ctx: click.Context, _param: click.Parameter, value: str) -> list[int]:
    return _parse_ks(value)


def _positive_seconds(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a positive number of seconds, got {value}")
    return value


@click.group("eval")
def eval_group() -> None:
    """Evaluate models (pass@k) and score sample files."""


@eval_group.command("score")
@click.argument("samples", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--dataset", type=click.Choice(BENCHMARKS), required=True, help="Benchmark the samples answer.")
@click.option("--source", default=None,
              help="The benchmark's data: a local file or hub id (MBPP, HumanEval+, MBPP+; default: "
                   "JUNE_MBPP_SOURCE / JUNE_HUMANEVALPLUS_SOURCE / JUNE_MBPPPLUS_SOURCE, else the hub).")
@click.option("--mbpp-source", default=None, hidden=True, help="Old name of --source for MBPP.")
@click.option(
    "--sandbox",
    "sandbox_kind",
    type=click.Choice(["auto", "process", "docker"]),
    default=None,
    help="Where programs run (default: JUNE_SANDBOX, else auto).",
)
@click.option("--k", "ks", default="1,10,100", show_default=True, callback=_ks_option,
              help="Comma-separated k values (k <= n only).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file (default: SAMPLES_results.jsonl).")
@click.option("--overwrite", is_flag=True, help="Replace an existing results file.")
@click.option("--timeout", type=float, default=None, callback=_positive_seconds,
              help="Seconds per program for humaneval/mbpp, instead of each task's limit calibrated from its "
                   "canonical solution.")
def score_command(
    samples: Path, dataset: str, source: str | None, mbpp_source: str | None, sandbox_kind: str | None, ks: list[int],
    out: Path | None, overwrite: bool, timeout: float | None,
) -> None:
    """Score a samples file: one JSON object per line with `task_id` and `completion` (what follows the
    prompt), or for humanevalplus/mbppplus EvalPlus's `solution` (the whole program). Writes one result
    per sample, in input order, with `passed` and `result` (plus `base_status`/`plus_status` for the
    EvalPlus benchmarks), and prints pass@k as JSON on the last line ({"base": ..., "plus": ...} for
    the EvalPlus benchmarks)."""
    from june_pipelines.evals.datasets import PLUS_BENCHMARKS, DatasetError, load_problems
    from june_pipelines.evals.passk import reportable_ks
    from june_pipelines.evals.scoring import ScoringError, index_samples

    # Everything is checked before a sandbox starts: options, the samples, the output path.
    k_values = ks
    plus = dataset in PLUS_BENCHMARKS
    if timeout is not None and plus:
        raise BadInput("--timeout applies to humaneval and mbpp; EvalPlus tasks have per-input limits")
    out = out or samples.with_name(samples.name + "_results.jsonl")
    _check_output(out, overwrite, samples)
    records = _read_jsonl(samples)
    from june_pipelines.evals.settings import EvalSettings

    try:
        problems, _ = load_problems(dataset, EvalSettings.from_env().source_for(dataset, source or mbpp_source))
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    by_id = {p.task_id: p for p in problems}
    try:
        indexed = index_samples(records, by_id)
    except ScoringError as exc:
        raise BadInput(f"{samples}: {exc}") from None
    if not indexed:
        raise BadInput(f"{samples} holds no samples")
    per_task: dict[str, int] = {}
    for sample in indexed:
        per_task[sample.task_id] = per_task.get(sample.task_id, 0) + 1
    usable = reportable_ks(k_values, per_task.values())
    if not usable:
        raise BadInput(f"no requested k ({','.join(map(str, ks))}) is reportable: the fewest samples for a task is "
                               f"{min(per_task.values())}, and pass@k needs k <= n")
    with _OutputLock(out):
        results, backend_name = _score(indexed, by_id, sandbox_kind, timeout, dataset)
        _write_results(out, records, results)
    _print_score_summary(indexed, results, usable, plus, backend_name, out)


class _OutputLock:
    """`OUT.lock`, created exclusively: a second run writing the same results file stops at once."""

    def __init__(self, out: Path) -> None:
        self.path = out.with_name(out.name + ".lock")

    def __enter__(self) -> _OutputLock:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            raise click.ClickException(f"another `june eval score` is writing {self.path.with_suffix('')} "
                                       f"(remove {self.path} if it is not running)") from None
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _check_output(out: Path, overwrite: bool, samples: Path) -> None:
    if out.resolve() == samples.resolve():
        raise BadInput("--out must not be the samples file")
    if not out.parent.is_dir():
        raise BadInput(f"--out {out}: directory {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise BadInput(f"--out {out}: directory {out.parent} is not writable")
    if out.exists() and not overwrite:
        raise BadInput(f"{out} exists: pass --overwrite to replace it, or --out another file")


def _score(indexed: list[Any], by_id: dict[str, Any], sandbox_kind: str | None, timeout: float | None,
           dataset: str) -> tuple[list[Any], str]:
    from june_pipelines.evals import references
    from june_pipelines.evals.scoring import score
    from june_pipelines.progress import Progress
    from june_pipelines.resources import sandbox_resource_from_env
    from june_pipelines.sandboxes.resources import sandbox_resource_for

    resource = sandbox_resource_for(sandbox_kind) if sandbox_kind else sandbox_resource_from_env()
    with resource.open() as backend:
        limits = resource.limits()
        backend.start()
        backend_name = backend.info().backend
        refs = None
        if timeout is None:
            tasks = sorted({s.task_id for s in indexed})
            needed = [by_id[t] for t in tasks]
            refs, computed = references.load_or_compute(needed, backend, limits, backend_name,
                                                        Progress(f"references {dataset}"))
            if computed:
                click.echo(f"reference outputs and time limits for {len(needed)} tasks computed and cached", err=True)
        else:
            limits = dataclasses.replace(limits, timeout_s=timeout)
        results = score(indexed, by_id, backend, limits, refs, Progress("scoring").counter(len(indexed)))
    return results, backend_name


def _write_results(out: Path, records: list[dict[str, Any]], results: list[Any]) -> None:
    """All lines at once, through a temporary file renamed into place: never a half-written file."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w") as handle:
            for record, result in zip(records, results, strict=True):
                handle.write(json.dumps({**record, **result.as_record()}) + "\n")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _print_score_summary(indexed: list[Any], results: list[Any], ks: list[int], plus: bool, backend: str,
                         out: Path) -> None:
    from june_pipelines.evals.scoring import summarize

    def pass_at(outcomes: list[bool]) -> dict[str, float]:
        overall, _, _ = summarize(zip((s.task_id for s in indexed), outcomes, strict=True), ks)
        return {f"pass@{k}": v for k, v in overall.items()}

    click.echo(f"{len(results)} samples scored with the {backend} sandbox; results in {out}", err=True)
    if plus:
        base = pass_at([r.base_status == "pass" for r in results])
        plus_scores = pass_at([r.passed for r in results])
        click.echo(json.dumps({"base": base, "plus": plus_scores}))
    else:
        click.echo(json.dumps(pass_at([r.passed for r in results])))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line a JSON object; a clear error naming the line otherwise (nothing is run yet)."""
    records = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadInput(f"{path}:{number}: not valid UTF-8") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                message = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                raise BadInput(f"{path}:{number}: not JSON ({message})") from None
            if not isinstance(record, dict):
                raise BadInput(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
    return records


def partition_args(first: str, second: str | None) -> tuple[str, str]:
    """(model, benchmark) from `MODEL BENCHMARK`, `BENCHMARK MODEL`, or one partition key typed
    either way (`humaneval|smollm2`, as the UI shows it, or `smollm2|humaneval`)."""
    if second is None:
        if "|" not in first:
            raise BadInput(f"expected MODEL BENCHMARK or a partition key like humaneval|smollm2, got {first!r}")
        first, _, second = first.partition("|")
    if first in BENCHMARKS and second not in BENCHMARKS:
        first, second = second, first
    if second not in BENCHMARKS:
        raise BadInput(f"no benchmark in {first!r} {second!r}: expected one of {', '.join(BENCHMARKS)}")
    return first, second


@eval_group.command("run")
@click.argument("model")
@click.argument("benchmark", required=False)
@click.option("--n", type=click.IntRange(min=1), default=1, show_default=True, help="Samples per task.")
@click.option("--temperature", type=click.FloatRange(min=0.0, max=2.0), default=0.0, show_default=True,
              help="0 = greedy.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N tasks.")
@click.option("--prompt-style", type=click.Choice(["base", "chat"]), default=None, help="Default: from the registry.")
@click.option("--k", "ks", default="1,10,100", show_default=True, callback=_ks_option)
@click.option("--source", default=None, help="MBPP, HumanEval+ or MBPP+ data: a local file or hub id.")
def run_command(
    model: str, benchmark: str | None, n: int, temperature: float, max_tokens: int, limit: int | None,
    prompt_style: str | None, ks: list[int], source: str | None,
) -> None:
    """Evaluate MODEL (an id from the model registry) on BENCHMARK through the Dagster job. The
    partition can also be given as one key, either way round: `humaneval|smollm2`."""
    model, benchmark = partition_args(model, benchmark)
    k_values = ks
    completions = {"n": n, "temperature": temperature, "max_tokens": max_tokens, "prompt_style": prompt_style}
    summary = run_evaluation(model, benchmark, completions, {"limit": limit, "source": source}, k_values)
    _print_summary(summary)


@eval_group.command("baseline")
@click.argument("model")
@click.argument("benchmark", required=False)
def baseline_command(model: str, benchmark: str | None) -> None:
    """Record the partition's latest run as the baseline its regression gate (`pass_at_k_regression`)
    compares later runs with."""
    from june_pipelines.evals.store import EvalStore, MissingResultError

    model, benchmark = partition_args(model, benchmark)
    store = EvalStore(model, benchmark)
    try:
        summary = store.latest_summary()
        run, pointer = store.latest()
    except MissingResultError as exc:
        raise BadInput(str(exc)) from None
    store.set_baseline(run, str(pointer["sandbox"]))
    click.echo(f"baseline for {benchmark}|{model}: run {run.key} ({pointer['sandbox']} sandbox), "
               f"pass@1 {summary.get('pass@1', 0.0):.4f}")
    click.echo(json.dumps({"model": model, "benchmark": benchmark, "run_key": run.key,
                           "pass@1": summary.get("pass@1")}))


@eval_group.command("references")
@click.argument("benchmark", type=click.Choice(BENCHMARKS))
@click.option("--source", default=None, help="The benchmark's data (see `june eval score --help`).")
@click.option("--sandbox", "sandbox_kind", type=click.Choice(["auto", "process", "docker"]), default=None,
              help="Where programs run (default: JUNE_SANDBOX, else auto).")
def references_command(benchmark: str, source: str | None, sandbox_kind: str | None) -> None:
    """Compute (or reuse) a benchmark's reference outputs and time limits on this machine, then score
    every canonical solution as a sample with them: the harness checking itself. JSON on the last line."""
    from june_pipelines.evals import references
    from june_pipelines.evals.datasets import DatasetError, load_problems
    from june_pipelines.evals.settings import EvalSettings
    from june_pipelines.progress import Progress
    from june_pipelines.resources import sandbox_resource_from_env
    from june_pipelines.sandboxes.resources import sandbox_resource_for

    try:
        problems, _ = load_problems(benchmark, EvalSettings.from_env().source_for(benchmark, source))
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    resource = sandbox_resource_for(sandbox_kind) if sandbox_kind else sandbox_resource_from_env()
    started = time.monotonic()
    with resource.open() as backend:
        backend.start()
        name = backend.info().backend
        refs, computed = references.load_or_compute(problems, backend, resource.limits(), name,
                                                    Progress(f"references {benchmark}"))
        made = time.monotonic() - started
        check = references.self_check(problems, backend, resource.limits(), refs, name)
    for failure in check.failed:
        click.echo(f"canonical solution failed: {failure}", err=True)
    for known in check.known:
        click.echo(f"canonical solution fails by the data's design: {known}", err=True)
    click.echo(f"{benchmark}: {check.passed}/{check.tasks} canonical solutions pass as samples ({name} sandbox); "
               f"references {'computed' if computed else 'reused'} in {made:.1f} s", err=True)
    click.echo(json.dumps({"benchmark": benchmark, "sandbox": name, "tasks": check.tasks, "passed": check.passed,
                           "failed": check.failed, "known_broken": check.known, "references_computed": computed,
                           "seconds": round(time.monotonic() - started, 1)}))
    if check.failed:
        raise click.exceptions.Exit(1)


from june_pipelines.cli.compare import compare_command  # noqa: E402  # registered last: its own module

eval_group.add_command(compare_command)
