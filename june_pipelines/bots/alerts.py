"""Ops alerts: failed runs and failed regression checks, posted to an ops chat on Telegram or Discord.

Two sensors per platform, both off by default (turn on those of the platforms you configured):

- `<platform>_run_failure_alert`: a run-failure sensor; one message per failed run (except a run
  failed only by blocking regression checks: the regression alert reports those, once).
- `<platform>_regression_alert`: one message per failed evaluation of an asset check whose name
  contains "regression" (the evaluation regression gate, `pass_at_k_regression`). A check can
  fail in a run that succeeds, so this reads the checks' execution history, not run failures.

Each message is short: what failed, the job, the partition, and a link to the run in the UI
(`JUNE_WEBSERVER_URL`). Error text is cut to one line and redacted, so no secret reaches a chat.
Messages go through the same platform clients the bots use (`OpsChatResource`).
"""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg

from june_pipelines.bots.redaction import redact
from june_pipelines.bots.resources import OpsChatResource

REGRESSION_MARK = "regression"
_HISTORY_LIMIT = 50


def _first_line(text: str, limit: int = 200) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _partition(tags: Mapping[str, str], partition: str | None = None) -> str:
    if partition:
        return partition
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    dims = sorted((k.split("/", 2)[-1], v) for k, v in tags.items() if k.startswith("dagster/partition/"))
    return "|".join(v for _, v in dims) or "-"


def _root_error(step: Any) -> Any:
    error = getattr(step.event_specific_data, "error", None)
    while error is not None and error.cause is not None:  # Dagster wraps the user's exception
        error = error.cause
    return error


def failed_only_by_regression_checks(failures: list[Any]) -> bool:
    """Every failed step is a blocking check failure, and every check named is a regression check."""
    if not failures:
        return False
    for step in failures:
        error = _root_error(step)
        if error is None or error.cls_name != "DagsterAssetCheckFailedError":
            return False
        # "N blocking asset check(s) failed with ERROR severity:\nasset: check_a,check_b"
        checks = [name for line in error.message.splitlines()[1:] for name in line.rpartition(": ")[2].split(",")]
        if not checks or not all(REGRESSION_MARK in name for name in checks):
            return False
    return True


def run_failure_text(context: dg.RunFailureSensorContext, ops: OpsChatResource) -> str | None:
    """The alert for a failed run; None when the regression alert already covers it."""
    run = context.dagster_run
    failures = list(context.get_step_failure_events())
    if failed_only_by_regression_checks(failures):
        return None
    if failures:
        step = failures[0]
        error = _root_error(step)
        what = f"step {step.step_key}: {_first_line(error.message if error else '')}"
        if len(failures) > 1:
            what += f" (+{len(failures) - 1} more step(s))"
    else:
        what = _first_line(context.failure_event.message or "the run failed")
    text = (
        f"June: run failed\n"
        f"job: {run.job_name}\n"
        f"partition: {_partition(run.tags)}\n"
        f"failed: {what}\n"
        f"{ops.run_url(run.run_id)}"
    )
    return redact(text)


def regression_text(record: Any, job_name: str, tags: dict[str, str], ops: OpsChatResource) -> str:
    evaluation = record.event.asset_check_evaluation if record.event is not None else None
    detail = ""
    if evaluation is not None:
        detail = _first_line(evaluation.description or "") or ", ".join(
            f"{k}={getattr(v, 'value', v)}" for k, v in list(evaluation.metadata.items())[:3]
        )
    key = record.key
    text = (
        f"June: regression check failed\n"
        f"check: {key.name} on {key.asset_key.to_user_string()}\n"
        f"job: {job_name}\n"
        f"partition: {_partition(tags, record.partition)}\n"
        f"failed: {detail or 'the check did not pass'}\n"
        f"{ops.run_url(record.run_id)}"
    )
    return redact(text)


def regression_check_keys(context: dg.SensorEvaluationContext) -> list[dg.AssetCheckKey]:
    repo = context.repository_def
    if repo is None:
        return []
    keys = repo.asset_graph.asset_check_keys
    return sorted((k for k in keys if REGRESSION_MARK in k.name), key=lambda k: k.to_user_string())


def regression_tick(context: dg.SensorEvaluationContext, ops: OpsChatResource) -> dg.SkipReason | None:
    """Post one message per newly failed regression check evaluation; the cursor is per check."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus as Status

    cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    instance = context.instance
    posted = 0
    for key in regression_check_keys(context):
        seen = cursor.get(key.to_user_string())
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=_HISTORY_LIMIT)
        newest = max((r.id for r in history), default=0)
        if seen is None:  # the first tick for this check: start from now, do not replay history
            cursor[key.to_user_string()] = newest
            continue
        for record in sorted((r for r in history if r.id > seen), key=lambda r: r.id):
            run = instance.get_run_by_id(record.run_id)
            if record.status == Status.PLANNED and run is not None and not run.is_finished:
                break  # still running: look again at the next tick
            if record.status == Status.FAILED:
                ops.post(regression_text(record, run.job_name if run else "-", dict(run.tags) if run else {}, ops))
                posted += 1
            seen = record.id
        cursor[key.to_user_string()] = seen
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    return None if posted else dg.SkipReason("no failed regression checks")


def _platform_sensors(platform: str) -> list[dg.SensorDefinition]:
    """The two alert sensors of one platform; resource `<platform>_ops` says where they post."""
    if platform == "telegram":

        @dg.run_failure_sensor(name="telegram_run_failure_alert", minimum_interval_seconds=30)
        def telegram_run_failure_alert(context: dg.RunFailureSensorContext, telegram_ops: OpsChatResource) -> None:
            """Tell the Telegram ops chat that a run failed."""
            if (text := run_failure_text(context, telegram_ops)) is not None:
                telegram_ops.post(text)

        @dg.sensor(name="telegram_regression_alert", minimum_interval_seconds=30)
        def telegram_regression_alert(
            context: dg.SensorEvaluationContext, telegram_ops: OpsChatResource
        ) -> dg.SkipReason | None:
            """Tell the Telegram ops chat that an evaluation regression check failed."""
            return regression_tick(context, telegram_ops)

        return [telegram_run_failure_alert, telegram_regression_alert]

    @dg.run_failure_sensor(name="discord_run_failure_alert", minimum_interval_seconds=30)
    def discord_run_failure_alert(context: dg.RunFailureSensorContext, discord_ops: OpsChatResource) -> None:
        """Tell the Discord ops channel that a run failed."""
        if (text := run_failure_text(context, discord_ops)) is not None:
            discord_ops.post(text)

    @dg.sensor(name="discord_regression_alert", minimum_interval_seconds=30)
    def discord_regression_alert(
        context: dg.SensorEvaluationContext, discord_ops: OpsChatResource
    ) -> dg.SkipReason | None:
        """Tell the Discord ops channel that an evaluation regression check failed."""
        return regression_tick(context, discord_ops)

    return [discord_run_failure_alert, discord_regression_alert]


alert_sensors: list[dg.SensorDefinition] = [*_platform_sensors("telegram"), *_platform_sensors("discord")]
