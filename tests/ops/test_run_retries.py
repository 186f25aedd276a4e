"""Run retries as the instance is configured (dagster.yaml's `run_retries`), with Dagster's own daemon:
a run whose worker is terminated is re-executed and succeeds; a run whose step failed is not re-run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
JOBS = Path(__file__).with_name("lost_worker_jobs.py")
BIN = Path(sys.executable).parent


def test_the_instance_retries_lost_workers_but_not_step_failures() -> None:
    settings = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())["run_retries"]
    assert settings == {"enabled": True, "max_retries": 1, "retry_on_asset_or_op_failure": False}


def _runs(instance: dg.DagsterInstance, job: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(job_name=job)))


@pytest.mark.slow
def test_a_terminated_run_worker_is_retried_by_the_daemon_and_a_step_failure_is_not(tmp_path, monkeypatch) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_file": str(JOBS)}]}))
    env = {**os.environ, "DAGSTER_HOME": str(home), "JUNE_TEST_LOST_WORKER_MARKER": str(tmp_path / "marker")}
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    # Create the instance's SQLite storage once, here: the daemon and `dagster job launch` starting
    # on a fresh DAGSTER_HOME at the same moment race on its schema migration (alembic errors).
    with dg.DagsterInstance.get():
        pass

    log = (tmp_path / "daemon.log").open("wb")
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env=env, cwd=tmp_path,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        for job in ("step_failure_job", "lost_worker_job"):  # the step failure first: processed first
            launched = subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", str(workspace), "-j", job],
                                      env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
            assert launched.returncode == 0, (launched.stdout + launched.stderr)[-3000:]
        with dg.DagsterInstance.get() as instance:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                runs = _runs(instance, "lost_worker_job")
                if any(r.parent_run_id and r.status == dg.DagsterRunStatus.SUCCESS for r in runs):
                    break
                assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
                time.sleep(1)
            else:
                pytest.fail(f"no successful retry in 300 s: {[(r.run_id, r.status) for r in runs]}\n"
                            + (tmp_path / "daemon.log").read_text()[-3000:])

            [original] = [r for r in runs if r.parent_run_id is None]
            [retry] = [r for r in runs if r.parent_run_id]
            assert original.status == dg.DagsterRunStatus.FAILURE
            assert original.tags.get("dagster/failure_reason") == "UNEXPECTED_TERMINATION"
            assert retry.parent_run_id == original.run_id and retry.tags.get("dagster/retry_number") == "1"

            [failed] = _runs(instance, "step_failure_job")  # never re-run
            assert failed.status == dg.DagsterRunStatus.FAILURE
            assert failed.tags.get("dagster/failure_reason") == "STEP_FAILURE"
            assert failed.tags.get("dagster/will_retry") == "false"
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
