"""`june eval compare A_RESULTS.jsonl B_RESULTS.jsonl`: is B's pass@1 really different from A's?"""

from __future__ import annotations

import json
from pathlib import Path

import click

from june_pipelines.cli.errors import BadInput
from june_pipelines.evals.compare import DATASETS, PLUS_DATASETS, default_metric

FLIPS_SHOWN = 10


def _score(value: float) -> str:
    return "pass" if value == 1.0 else "fail" if value == 0.0 else f"{value:.2f}"


@click.command("compare")
@click.argument("a_results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("b_results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", type=click.Choice(DATASETS), default=None,
              help="Benchmark of both files; checks every task id (default: any).")
@click.option("--metric", type=click.Choice(["plus", "base"]), default=None,
              help="HumanEval+/MBPP+ verdict to compare (default: plus).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap and of sampled sign flips.")
@click.option("--resamples", type=click.IntRange(min=100), default=None, help="Bootstrap resamples (default: 10000).")
def compare_command(
    a_results: Path, b_results: Path, dataset: str | None, metric: str | None, seed: int, resamples: int | None
) -> None:
    """Paired comparison of two results files of `june eval score` over the tasks they share:
    wins/losses/ties on per-task pass@1, the difference B - A with a 95% interval (paired
    bootstrap over tasks) and a two-sided p-value (sign-flip test; exact McNemar for pass/fail).
    JSON on the last line."""
    from june_pipelines.evals.compare import ResultsError, compare_runs, read_results

    if metric is not None and dataset is not None and dataset not in PLUS_DATASETS:
        raise click.UsageError(f"--metric applies to {' and '.join(PLUS_DATASETS)} only, not {dataset}")
    chosen = metric or default_metric(dataset)
    try:
        a = read_results(a_results, metric=chosen, dataset=dataset)  # type: ignore[arg-type]  # a Metric
        b = read_results(b_results, metric=a.metric, dataset=dataset)
        comparison = compare_runs(a, b, resamples=resamples, seed=seed)
    except ResultsError as exc:
        raise BadInput(str(exc)) from None
    result = comparison.stats
    low, high = result.ci95
    lines = [
        f"A: {a_results}",
        f"B: {b_results}",
        f"metric: {comparison.metric}; {result.tasks} shared tasks"
        + (f" ({comparison.a_only} only in A, {comparison.b_only} only in B, left out)"
           if comparison.a_only or comparison.b_only else ""),
        "",
        f"{'tasks':>6} {'pass@1 A':>9} {'pass@1 B':>9} {'B - A':>8} {'95% interval':>19} {'p':>8} {'W/L/T':>11}",
        f"{result.tasks:>6} {result.a:>9.4f} {result.b:>9.4f} {result.delta:>+8.4f} "
        f"{f'[{low:+.4f}, {high:+.4f}]':>19} {result.p_value:>8.4f} "
        f"{f'{result.wins}/{result.losses}/{result.ties}':>11}",
        "",
        f"W/L/T: tasks where B scored higher/lower/the same; interval: paired bootstrap over tasks "
        f"({result.resamples} resamples, seed {result.seed}); p: {result.p_value_method}",
    ]
    if comparison.flips:
        shown = comparison.flips[:FLIPS_SHOWN]
        more = len(comparison.flips) - len(shown)
        lines.append(f"flipped ({len(comparison.flips)}" + (f", first {FLIPS_SHOWN}" if more else "") + "):")
        lines += [f"  {f.task_id}: {_score(f.a)} -> {_score(f.b)}" for f in shown]
    else:
        lines.append("no task changed")
    click.echo("\n".join(lines))
    click.echo(json.dumps({**comparison.as_dict(), "a_file": str(a_results), "b_file": str(b_results)}))
