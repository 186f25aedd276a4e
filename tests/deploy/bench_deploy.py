"""Latencies of the deployed layout (docs/DEPLOY.md#measured), with the real daemon and Docker runs.

    .venv/bin/python tests/deploy/bench_deploy.py --runs 3

Starts the layout of tests/deploy/test_deployment.py (fresh PostgreSQL database, code server,
daemon, webserver, DockerRunLauncher, fake Telegram Bot API), then, one after another:
- `--runs` evaluation runs launched through GraphQL (2 HumanEval tasks): launch -> run starting in
  its container -> first step -> success;
- `--runs` handed-over bot messages: hand-over -> run created by the bot sensor -> run started ->
  reply received by the Bot API.
Prints every measurement and the medians, as JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import dagster as dg  # noqa: E402
from deploy_support import BotAPIThread, start_deployment  # noqa: E402
from test_deployment import EVAL_CONFIG, PARTITION_TAGS  # noqa: E402

from june_pipelines.deploy.image import ensure_code_image  # noqa: E402


def _first(instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType) -> float:
    records = instance.get_records_for_run(run_id, of_type=kind).records
    return min(r.event_log_entry.timestamp for r in records)


def _wait(predicate, timeout_s: float):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        time.sleep(0.1)
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    image = ensure_code_image(log=lambda line: print(f"[image] {line}", file=sys.stderr))
    results: dict[str, list[float]] = {k: [] for k in (
        "launch_to_container_s", "launch_to_first_step_s", "launch_to_success_s",
        "handover_to_run_created_s", "handover_to_run_started_s", "handover_to_reply_s")}
    with tempfile.TemporaryDirectory(prefix="june-bench-deploy-") as tmp, BotAPIThread() as api, \
            start_deployment(image, api, Path(tmp)) as deployed:
        ui, instance = deployed.ui, deployed.instance
        for i in range(args.runs):
            launched = time.time()
            run_id = ui.launch("evaluation", EVAL_CONFIG, tags=PARTITION_TAGS)
            assert ui.wait_for_run(run_id, timeout_s=900)["status"] == "SUCCESS", run_id
            results["launch_to_container_s"].append(_first(instance, run_id, dg.DagsterEventType.RUN_START) - launched)
            step = _first(instance, run_id, dg.DagsterEventType.STEP_START)
            results["launch_to_first_step_s"].append(step - launched)
            results["launch_to_success_s"].append(_first(instance, run_id, dg.DagsterEventType.RUN_SUCCESS) - launched)
            print(f"evaluation run {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in results.items() if v),
                  file=sys.stderr)
        from june_pipelines.bots.sensor import InboxResource

        inbox = InboxResource().open()
        chat = 777
        for i in range(args.runs):
            message_id = f"{chat}:{i + 1}"
            inbox.receive("telegram", message_id, chat, chat, "text", {"message": {"message_id": i + 1}})
            assert inbox.claim("telegram", message_id)
            before = len(api.messages(chat))
            wall, mono = time.time(), time.monotonic()
            inbox.hand_over("telegram", message_id, "Run this python code:\n```python\nprint(sum(range(10)))\n```")
            filters = dg.RunsFilter(tags={"dagster/run_key": f"telegram:{message_id}"})
            [run] = _wait(lambda f=filters: instance.get_runs(filters=f), 300)
            reply = _wait(lambda b=before: api.messages(chat)[b:], 900)[0]
            assert ui.wait_for_run(run.run_id, timeout_s=300)["status"] == "SUCCESS", run.run_id
            record = instance.get_run_record_by_id(run.run_id)
            assert record is not None
            results["handover_to_run_created_s"].append(record.create_timestamp.timestamp() - wall)
            started = _first(instance, run.run_id, dg.DagsterEventType.RUN_START)
            results["handover_to_run_started_s"].append(started - wall)
            results["handover_to_reply_s"].append(reply.at - mono)
            print(f"bot turn {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in results.items() if "handover" in k),
                  file=sys.stderr)
    medians = {k: round(statistics.median(v), 1) for k, v in results.items() if v}
    print(json.dumps({"runs": args.runs, "median": medians, "all": {k: [round(x, 1) for x in v]
                                                                  for k, v in results.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
