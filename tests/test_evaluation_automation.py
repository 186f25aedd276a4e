"""The model-registration sensor and the nightly schedule, evaluated with Dagster's test contexts."""

from datetime import datetime, timezone

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
            instance=instance, scheduled_execution_time=datetime(2026, 11, 21, 2, tzinfo=timezone.utc)
        )
        requests = benchmarks.nightly_evaluation(context)
        keys = sorted(str(r.partition_key) for r in requests)
        assert keys == sorted(f"{b}|{m}" for b in ("humaneval", "humanevalplus", "mbpp", "mbppplus")
                              for m in ("other", "smollm2"))
        assert len({r.run_key for r in requests}) == 8 and all(r.run_key.startswith("2026-11-21:") for r in requests)
