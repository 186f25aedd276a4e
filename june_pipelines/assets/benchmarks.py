"""Evaluation assets: problems -> completions -> executions -> pass_at_k -> leaderboard.

Partitioned by model (dynamic: models are registered at run time) x benchmark. Each asset is a
short recipe over `june_pipelines.evals`; per-sample data goes to Parquet (`evals.store`), and
summaries, previews and plots go to Dagster metadata.
"""


import time
from collections import Counter

import dagster as dg
from pydantic import Field

from june_pipelines.evals.datasets import BENCHMARKS, load_problems
from june_pipelines.evals.generate import GenerationSettings, generate_completions
from june_pipelines.evals.scoring import Sample, canonical_programs, run_samples, summarize
from june_pipelines.evals.store import EvalStore, all_summaries, read_parquet, write_json, write_parquet
from june_pipelines.inference.resources import LLMResource
from june_pipelines.paths import leaderboard_path
from june_pipelines.progress import Progress
from june_pipelines.registry import get_model, load_registry
from june_pipelines.reporting import bar_plot, markdown_table, table_metadata
from june_pipelines.sandboxes.resources import SandboxResource

GROUP = "evaluation"
model_partitions = dg.DynamicPartitionsDefinition(name="models")
eval_partitions = dg.MultiPartitionsDefinition(
    {"model": model_partitions, "benchmark": dg.StaticPartitionsDefinition(list(BENCHMARKS))}
)
EVAL_TAGS = {"june/kind": "evaluation"}


def partition_store(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> EvalStore:
    key = context.partition_key
    assert isinstance(key, dg.MultiPartitionKey)
    return EvalStore(model=key.keys_by_dimension["model"], benchmark=key.keys_by_dimension["benchmark"])


class ProblemsConfig(dg.Config):
    source: str | None = Field(
        default=None,
        description="MBPP only: a local JSONL/Parquet file or a hub dataset id (default: JUNE_MBPP_SOURCE, else the hub).",
    )
    limit: int | None = Field(default=None, description="Evaluate only the first N tasks (smoke runs).")


@dg.asset(partitions_def=eval_partitions, group_name=GROUP, kinds={"python", "parquet"})
def problems(context: dg.AssetExecutionContext, config: ProblemsConfig) -> dg.MaterializeResult:
    """The benchmark's tasks (HumanEval: 164; MBPP: test split 11-510, plus the 3-shot examples)."""
    import pandas as pd

    store = partition_store(context)
    tasks, few_shot = load_problems(store.benchmark, config.source, config.limit)
    path = store.write_problems(tasks, few_shot)
    preview = pd.DataFrame([{"task_id": p.task_id, "entry_point": p.entry_point} for p in tasks])
    return dg.MaterializeResult(
        metadata={
            "tasks": len(tasks),
            "few_shot_examples": len(few_shot),
            "path": dg.MetadataValue.path(str(path)),
            "preview": table_metadata(preview, limit=10),
        }
    )


class CompletionsConfig(dg.Config):
    n: int = Field(default=1, description="Samples per task.")
    temperature: float = Field(default=0.0, description="0 = greedy; use > 0 (e.g. 0.8) for pass@k with k > 1.")
    top_p: float = 0.95
    max_tokens: int = 384
    seed: int = 1234
    prompt_style: str | None = Field(default=None, description="base | chat; default from the model registry.")
    concurrency: int = Field(default=1, description="Requests in flight (1 for the embedded backend).")


@dg.asset(
    partitions_def=eval_partitions,
    group_name=GROUP,
    kinds={"python", "parquet"},
    deps=[problems],
    pool="gpu",
)
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
    )
    context.log.info(f"generating {settings.n} sample(s) for {len(tasks)} tasks with {llm.describe()}")
    started = time.perf_counter()
    with llm.client(store.model) as client:
        records, new = generate_completions(
            client,
            tasks,
            settings,
            store.journal,
            few_shot=few_shot,
            concurrency=config.concurrency,
            progress=Progress(f"completions {store.model}/{store.benchmark}", context.log.info, every=10),
        )
        usage = client.usage.as_dict()
    frame = pd.DataFrame(records)
    path = write_parquet(frame, store.path("completions.parquet"))
    write_json({"n": settings.n, "tasks": len(tasks), **settings.__dict__}, store.path("settings.json"))
    return dg.MaterializeResult(
        metadata={
            "samples": len(frame),
            "new_samples": new,
            "reused_samples": len(frame) - new,
            "tasks": len(tasks),
            "n": settings.n,
            "prompt_style": settings.style,
            "temperature": settings.temperature,
            "backend": dg.MetadataValue.json(llm.describe()),
            "usage": dg.MetadataValue.json(usage),
            "completion_tokens_total": int(frame["completion_tokens"].sum()),
            "wall_s": round(time.perf_counter() - started, 2),
            "path": dg.MetadataValue.path(str(path)),
            "preview": table_metadata(frame[["task_id", "sample_index", "completion", "finish_reason"]]),
        }
    )


@dg.asset_check(asset=completions, description="Every task has exactly the configured number of samples.")
def completions_sample_counts(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    import pandas as pd

    store = partition_store(context)
    frame = read_parquet(store.path("completions.parquet"), "completions")
    settings = pd.read_json(store.path("settings.json"), typ="series")
    per_task = frame.groupby("task_id").size()
    wrong = per_task[per_task != int(settings["n"])]
    missing = int(settings["tasks"]) - len(per_task)
    return dg.AssetCheckResult(
        passed=wrong.empty and missing == 0,
        metadata={"expected_n": int(settings["n"]), "tasks_with_wrong_count": len(wrong), "tasks_missing": missing},
    )


@dg.asset(partitions_def=eval_partitions, group_name=GROUP, kinds={"python", "parquet"}, deps=[completions])
def executions(context: dg.AssetExecutionContext, sandbox: SandboxResource) -> dg.MaterializeResult:
    """Every sample run through the sandbox: verdict (passed / failed / timed out / error), error text, duration."""
    import pandas as pd

    store = partition_store(context)
    tasks, _ = store.read_problems()
    frame = read_parquet(store.path("completions.parquet"), "completions")
    samples = [Sample(r.task_id, r.completion, int(r.sample_index)) for r in frame.itertuples()]
    started = time.perf_counter()
    with sandbox.open() as backend:
        progress = Progress(f"executions {store.model}/{store.benchmark}", context.log.info, every=50)
        finished = 0

        def on_verdict(_: object) -> None:
            nonlocal finished
            finished += 1
            progress(finished, len(samples))

        verdicts = run_samples(samples, {p.task_id: p for p in tasks}, backend, sandbox.limits(), on_verdict)
        info = backend.info()
    wall = time.perf_counter() - started
    results = pd.DataFrame(
        {
            "task_id": [s.task_id for s in samples],
            "sample_index": [s.sample_index for s in samples],
            "status": [v.status.value for v in verdicts],
            "passed": [v.passed for v in verdicts],
            "result": [v.result for v in verdicts],
            "duration_s": [round(v.duration_s, 4) for v in verdicts],
        }
    )
    path = write_parquet(results, store.path("executions.parquet"))
    statuses = Counter(results["status"])
    return dg.MaterializeResult(
        metadata={
            "programs": len(results),
            "passed": int(results["passed"].sum()),
            **{f"status_{k.replace(' ', '_')}": v for k, v in statuses.items()},
            "sandbox": dg.MetadataValue.json({"backend": info.backend, **info.details}),
            "programs_per_s": round(len(results) / max(wall, 1e-9), 1),
            "path": dg.MetadataValue.path(str(path)),
            "failures_preview": table_metadata(results[~results["passed"]][["task_id", "sample_index", "result"]]),
        }
    )


@dg.asset_check(
    asset=executions,
    description="The harness checks itself: every canonical solution of the evaluated tasks passes in this sandbox.",
)
def canonical_solutions_pass(
    context: dg.AssetCheckExecutionContext, sandbox: SandboxResource
) -> dg.AssetCheckResult:
    store = partition_store(context)
    tasks, _ = store.read_problems()
    with sandbox.open() as backend:
        verdicts = backend.run(canonical_programs(tasks), sandbox.limits())
    failed = [v for v in verdicts if not v.passed]
    return dg.AssetCheckResult(
        passed=not failed,
        metadata={
            "canonical_programs": len(verdicts),
            "failed": len(failed),
            "failed_tasks": dg.MetadataValue.json([f"{v.program_id}: {v.result}" for v in failed[:20]]),
        },
    )


class PassAtKConfig(dg.Config):
    ks: list[int] = Field(default=[1, 10, 100], description="k values; only those with k <= n for every task are reported.")


@dg.asset(partitions_def=eval_partitions, group_name=GROUP, kinds={"python", "parquet"}, deps=[executions])
def pass_at_k(context: dg.AssetExecutionContext, config: PassAtKConfig) -> dg.MaterializeResult:
    """Unbiased pass@k per task and overall."""
    import pandas as pd

    store = partition_store(context)
    results = read_parquet(store.path("executions.parquet"), "executions")
    outcomes = zip(results["task_id"], results["passed"].astype(bool), strict=True)
    overall, per_task, counts = summarize(outcomes, config.ks)
    table = pd.DataFrame(
        [
            {"task_id": task, "n": counts[task][0], "c": counts[task][1], **{f"pass@{k}": v for k, v in ks.items()}}
            for task, ks in per_task.items()
        ]
    )
    write_parquet(table, store.path("pass_at_k_per_task.parquet"))
    summary = {
        "model": store.model,
        "benchmark": store.benchmark,
        "tasks": len(per_task),
        "samples": len(results),
        **{f"pass@{k}": round(v, 4) for k, v in overall.items()},
    }
    write_json(summary, store.path("pass_at_k.json"))
    summary_frame = pd.DataFrame([summary])
    return dg.MaterializeResult(
        metadata={
            **{f"pass@{k}": dg.MetadataValue.float(v) for k, v in overall.items()},
            "tasks": len(per_task),
            "samples": len(results),
            "summary": dg.MetadataValue.md(markdown_table(summary_frame)),
            "per_task_preview": table_metadata(table),
            "path": dg.MetadataValue.path(str(store.path("pass_at_k_per_task.parquet"))),
        }
    )


@dg.asset_check(asset=pass_at_k, description="Every pass@k value lies in [0, 1] and k never exceeds n.")
def pass_at_k_valid(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    store = partition_store(context)
    table = read_parquet(store.path("pass_at_k_per_task.parquet"), "pass_at_k")
    columns = [c for c in table.columns if c.startswith("pass@")]
    values = table[columns].to_numpy().ravel() if columns else []
    in_range = bool(((values >= 0) & (values <= 1)).all()) if len(values) else True
    k_ok = all(int(c.removeprefix("pass@")) <= int(table["n"].min()) for c in columns)
    return dg.AssetCheckResult(passed=in_range and k_ok, metadata={"columns": ", ".join(columns) or "none"})


@dg.asset(
    group_name=GROUP,
    kinds={"python", "parquet"},
    deps=[pass_at_k],
    automation_condition=dg.AutomationCondition.eager(),
)
def leaderboard(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """One table across models and benchmarks, from every pass@k summary on disk."""
    import pandas as pd

    frame = pd.DataFrame(all_summaries())
    if frame.empty:
        raise dg.Failure("no pass@k results yet: materialize pass_at_k for at least one partition")
    ks = sorted((c for c in frame.columns if c.startswith("pass@")), key=lambda c: int(c[5:]))
    frame = frame[["model", "benchmark", "tasks", "samples", *ks]].sort_values(["benchmark", "model"])
    path = write_parquet(frame, leaderboard_path())
    plot = bar_plot(frame, ["model", "benchmark"], ks, "pass@k by model and benchmark", path.with_suffix(".png"))
    context.log.info("\n" + markdown_table(frame))
    return dg.MaterializeResult(
        metadata={
            "leaderboard": dg.MetadataValue.md(markdown_table(frame)),
            "plot": dg.MetadataValue.md(plot),
            "rows": len(frame),
            "path": dg.MetadataValue.path(str(path)),
        }
    )


evaluation_job = dg.define_asset_job(
    "evaluation",
    selection=dg.AssetSelection.assets(problems, completions, executions, pass_at_k),
    tags=EVAL_TAGS,
    description="Evaluate one model on one benchmark (a model|benchmark partition).",
)
leaderboard_job = dg.define_asset_job("leaderboard_refresh", selection=dg.AssetSelection.assets(leaderboard))


@dg.schedule(job=evaluation_job, cron_schedule="0 2 * * *", default_status=dg.DefaultScheduleStatus.STOPPED)
def nightly_evaluation(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    """Every registered model on every benchmark, nightly (off until switched on in the UI)."""
    models = context.instance.get_dynamic_partitions(model_partitions.name)
    date = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [
        dg.RunRequest(
            run_key=f"{date}:{model}|{benchmark}",
            partition_key=dg.MultiPartitionKey({"model": model, "benchmark": benchmark}),
        )
        for model in models
        for benchmark in BENCHMARKS
    ]


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def register_models(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Adds every model in the registry as a `model` partition, so it can be evaluated from the UI."""
    known = set(context.instance.get_dynamic_partitions(model_partitions.name))
    new = sorted(set(load_registry()) - known)
    if not new:
        return dg.SkipReason("every registered model is already a partition")
    return dg.SensorResult(dynamic_partitions_requests=[model_partitions.build_add_request(new)])


defs = dg.Definitions(
    assets=[problems, completions, executions, pass_at_k, leaderboard],
    asset_checks=[completions_sample_counts, canonical_solutions_pass, pass_at_k_valid],
    jobs=[evaluation_job, leaderboard_job],
    schedules=[nightly_evaluation],
    sensors=[register_models],
)
