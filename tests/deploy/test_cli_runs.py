"""Runs started by the CLI are ordinary runs of the code location: `june eval run` on the default
instance (SQLite), then `june ui` (a real code server, daemon and dagster-webserver) lists the run on
the evaluation job's page and re-executes it through the GraphQL API; the re-execution succeeds and
the leaderboard follows. `june ui` itself prints the URL and nothing alarming."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef
from deploy_support import free_port

from june_pipelines.deploy.cli_runs import execute_job_run
from june_pipelines.deploy.graphql import DagsterUI

pytestmark = pytest.mark.slow
JUNE = str(Path(sys.executable).with_name("june"))
# What must not greet a user starting the UI (issue 11, item 6).
ALARMING = ("will not be used", "dg dev", "BetaWarning", "Warning", "Traceback", "Checking for new runs")


def test_a_cli_run_records_the_code_location_origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with dg.instance_for_test() as instance:
        run = execute_job_run(instance, "leaderboard_refresh")  # no results yet: the step fails, the run is kept
        assert run.status == dg.DagsterRunStatus.FAILURE
        assert run.remote_job_origin is not None and run.remote_job_origin.location_name == "june"
        # What the job's page filters on (the code location's repository label, stored as a run tag).
        listed = instance.get_runs(filters=dg.RunsFilter(job_name="leaderboard_refresh",
                                                          tags={".dagster/repository": "__repository__@june"}))
        assert [r.run_id for r in listed] == [run.run_id]
        assert run.tags["june/started_by"] == "cli"
        assert run.job_code_origin is not None


class UIProcess:
    """`june ui` in a subprocess, its output collected line by line."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            [JUNE, "ui", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, text: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            if self.popen.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"`june ui` never printed {text!r}; output:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> int:
        os.killpg(self.popen.pid, signal.SIGINT)
        try:
            return self.popen.wait(timeout=60)
        finally:
            self._reader.join(timeout=10)


@pytest.mark.timeout(1200)
def test_cli_evaluation_is_listed_on_the_job_page_and_reexecuted_from_the_ui(tmp_path: Path) -> None:
    home = tmp_path / "june"
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "JUNE_POSTGRES_URL", "JUNE_PROGRESS_BAR")}
    env.update({"JUNE_HOME": str(home), "JUNE_SANDBOX": "process"})
    out = subprocess.run(
        [JUNE, "eval", "run", "smollm2", "humaneval", "--limit", "2", "--max-tokens", "48", "--k", "1"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert (home / "evals" / "leaderboard.parquet").exists()  # the CLI refreshed the leaderboard itself

    instance_ref = InstanceRef.from_dir(str(home / "dagster"))
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        [cli_run] = instance.get_runs(filters=dg.RunsFilter(job_name="evaluation"))
        assert cli_run.tags["june/started_by"] == "cli" and cli_run.status == dg.DagsterRunStatus.SUCCESS

        port = free_port()
        ui_process = UIProcess(env, port)
        try:
            url_line = ui_process.wait_for_line(f"http://127.0.0.1:{port}", timeout_s=240)
            ui = DagsterUI(f"http://127.0.0.1:{port}")
            assert cli_run.run_id in {r["runId"] for r in ui.job_runs("evaluation")}
            rerun_id = ui.reexecute(cli_run.run_id, "ALL_STEPS")
            finished = ui.wait_for_run(rerun_id, timeout_s=540)
            assert finished["status"] == "SUCCESS", "\n".join(ui_process.lines[-40:])
            rerun = instance.get_run_by_id(rerun_id)
            assert rerun is not None and rerun.parent_run_id == cli_run.run_id
            assert rerun.tags["dagster/partition"] == cli_run.tags["dagster/partition"]
            # The UI's run also refreshes the leaderboard (the automation sensor, in the daemon).
            record = instance.get_run_record_by_id(rerun_id)
            assert record is not None and record.end_time is not None
            deadline = time.monotonic() + 240
            while not [r for r in instance.fetch_materializations(dg.AssetKey("leaderboard"), limit=3).records
                       if r.timestamp > record.end_time]:
                assert time.monotonic() < deadline, "the leaderboard was not refreshed after the UI's run"
                time.sleep(2)
            ui.close()
        finally:
            code = ui_process.stop()
    assert code == 0
    output = "\n".join(ui_process.lines)
    assert "June's Dagster UI: http://127.0.0.1:" in url_line
    assert f"JUNE_HOME   {home}" in output
    for phrase in ALARMING:
        assert phrase not in output, f"`june ui` printed {phrase!r}:\n{output}"
