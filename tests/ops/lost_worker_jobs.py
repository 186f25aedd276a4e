"""A code location for the run-retry test: one job whose run worker is terminated on its first run
(as when its container or host is stopped), and one whose step fails."""

import os
import signal
from pathlib import Path

import dagster as dg


@dg.op
def work_until_the_host_goes_away(context: dg.OpExecutionContext) -> str:
    marker = Path(os.environ["JUNE_TEST_LOST_WORKER_MARKER"])
    if not marker.exists():
        marker.write_text(context.run_id)
        os.kill(os.getpid(), signal.SIGTERM)  # the run worker is stopped from outside (docker stop, eviction)
    return "done"


@dg.op
def fail_in_the_step() -> None:
    raise RuntimeError("the step itself failed")


@dg.job(executor_def=dg.in_process_executor)
def lost_worker_job() -> None:
    work_until_the_host_goes_away()


@dg.job(executor_def=dg.in_process_executor)
def step_failure_job() -> None:
    fail_in_the_step()


defs = dg.Definitions(jobs=[lost_worker_job, step_failure_job])
