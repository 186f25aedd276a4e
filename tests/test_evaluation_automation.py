"""The model-registration sensor and the nightly schedule, evaluated with Dagster's test contexts."""

from datetime import UTC, datetime

import dagster as dg

from june_pipelines.assets import benchmarks


def test_register_models_adds_registry_models_once() -> None:
    with dg.instance_for_test() as instance:
        result = benchmarks.register_models(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.SensorResult)
        [request] = result.dynamic_partitions_requests
        assert request.partitions_def_name == "models" and "smollm2" in request.partition_keys
        instance.add_dynamic_partitions("models", list(request.partition_keys))
        again = benchmarks.register_models(dg.build_sensor_context(instance=instance))
        assert isinstance(again, dg.SkipReason)


def test_nightly_schedule_requests_every_model_and_benchmark() -> None:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("models", ["smollm2", "other"])
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 21, 2, tzinfo=UTC)
        )
        requests = benchmarks.nightly_evaluation(context)
        keys = sorted(str(r.partition_key) for r in requests)
        assert keys == sorted(f"{b}|{m}" for b in ("humaneval", "humanevalplus", "mbpp", "mbppplus")
                              for m in ("other", "smollm2"))
        assert len({r.run_key for r in requests}) == 8 and all(r.run_key.startswith("2026-11-21:") for r in requests)


def _materialize_pass_at_k(instance: dg.DagsterInstance, model: str, benchmark: str) -> None:
    """Record a pass_at_k materialization for one partition, as a finished evaluation run does."""
    key = dg.MultiPartitionKey({"model": model, "benchmark": benchmark})
    instance.report_runless_asset_event(dg.AssetMaterialization("pass_at_k", partition=key))


def test_leaderboard_refreshes_after_any_new_pass_at_k_partition() -> None:
    """Dagster's eager() would wait until every model|benchmark partition exists; the leaderboard
    must refresh after each new result, once, however few partitions exist."""
    from june_pipelines.definitions import defs

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("models", ["smollm2", "other"])
        first = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=dg.AssetSelection.assets("leaderboard")
        )
        assert first.total_requested == 0  # nothing evaluated yet
        _materialize_pass_at_k(instance, "smollm2", "humaneval")  # 1 of the 8 model x benchmark partitions
        second = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=first.cursor, asset_selection=dg.AssetSelection.assets("leaderboard")
        )
        assert second.total_requested == 1 and second.get_num_requested(dg.AssetKey("leaderboard")) == 1
        third = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=second.cursor, asset_selection=dg.AssetSelection.assets("leaderboard")
        )
        assert third.total_requested == 0  # handled: not requested again until the next result


def test_the_leaderboard_sensor_runs_by_default_and_targets_only_the_leaderboard() -> None:
    from june_pipelines.definitions import defs

    sensor = defs.resolve_sensor_def("leaderboard_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    targeted = sensor.asset_selection.resolve(graph)
    assert {k.to_user_string() for k in targeted} == {"leaderboard"}


def test_smoke_schedule_requests_two_humaneval_tasks_of_the_bundled_model() -> None:
    from june_pipelines.deploy import automation

    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 21, 2, 30, tzinfo=UTC)
        )
        assert isinstance(automation.deployment_smoke_test(context), dg.SkipReason)  # model not registered yet
        instance.add_dynamic_partitions("models", ["smollm2"])
        request = automation.deployment_smoke_test(context)
        assert isinstance(request, dg.RunRequest)
        assert str(request.partition_key) == "humaneval|smollm2" and request.run_key == "smoke:2026-11-21T02:30"
        assert request.run_config["ops"]["problems"]["config"]["limit"] == 2
    assert automation.deployment_smoke_test.default_status == dg.DefaultScheduleStatus.STOPPED
