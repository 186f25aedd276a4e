"""What keeps results current without anyone watching: the leaderboard sensor and the smoke schedule.

The leaderboard is refreshed by its automation condition (`leaderboard_after_pass_at_k` on the
asset): after any pass@k partition is newly materialized, once no pass@k run is in progress. Dagster
evaluates automation conditions only in an automation-condition sensor, so this module defines one,
running by default, for the leaderboard alone. That covers runs launched from the UI and by the
nightly schedule; the CLI materializes the leaderboard itself (no daemon need be running), and the
sensor then sees nothing new to do.

`deployment_smoke_test` (off by default) evaluates the bundled model on two HumanEval tasks: switch it
on to check that a deployment launches, queues, runs and records an evaluation end to end
(JUNE_SMOKE_CRON, default every 30 minutes).
"""

from __future__ import annotations

import os

import dagster as dg

from june_pipelines.assets.benchmarks import evaluation_job

SMOKE_CRON_ENV = "JUNE_SMOKE_CRON"
SMOKE_MODEL = "smollm2"
SMOKE_BENCHMARK = "humaneval"
SMOKE_RUN_CONFIG = {
    "ops": {
        "problems": {"config": {"limit": 2}},
        "completions": {"config": {"n": 1, "temperature": 0.0, "max_tokens": 48}},
        "pass_at_k": {"config": {"ks": [1]}},
    }
}

leaderboard_sensor = dg.AutomationConditionSensorDefinition(
    "leaderboard_automation",
    target=dg.AssetSelection.assets("leaderboard"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description="Refreshes the leaderboard after new pass@k results (its automation condition).",
)


@dg.schedule(
    job=evaluation_job,
    cron_schedule=os.environ.get(SMOKE_CRON_ENV) or "*/30 * * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    name="deployment_smoke_test",
)
def deployment_smoke_test(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Two HumanEval tasks with the bundled model: proves the deployment runs an evaluation end to end."""
    if not context.instance.has_dynamic_partition("models", SMOKE_MODEL):
        return dg.SkipReason(f"model partition {SMOKE_MODEL!r} is not registered yet (register_models sensor)")
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
    return dg.RunRequest(
        run_key=f"smoke:{stamp}",
        partition_key=dg.MultiPartitionKey({"model": SMOKE_MODEL, "benchmark": SMOKE_BENCHMARK}),
        run_config=SMOKE_RUN_CONFIG,
        tags={"june/smoke": "true"},
    )


defs = dg.Definitions(sensors=[leaderboard_sensor], schedules=[deployment_smoke_test])
