"""`june eval score` and `june eval run` refuse bad input before any sandbox starts: one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from june_pipelines.cli import main

GOOD = {"task_id": "HumanEval/0", "completion": "    return False\n"}


def _score(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["eval", "score", *args], catch_exceptions=False)
    return result.exit_code, result.output


def _samples(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "samples.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


BAD_LINES = {
    "invalid utf-8": (b'{"task_id": "HumanEval/0", "completion": "\xff\xfe"}', "samples.jsonl:2: not valid UTF-8"),
    "binary": (b"\x00\x01\x02\xff", "samples.jsonl:2: not valid UTF-8"),
    "json array": (b'["HumanEval/0", "return 1"]', "samples.jsonl:2: expected a JSON object, got list"),
    "null completion": (b'{"task_id": "HumanEval/0", "completion": null}', "sample 2: completion must be a string"),
    "numeric completion": (b'{"task_id": "HumanEval/0", "completion": 3}', "sample 2: completion must be a string"),
    "text sample_index": (b'{"task_id": "HumanEval/0", "completion": "", "sample_index": "x"}',
                          "sample 2: sample_index must be a non-negative integer"),
    "list task_id": (b'{"task_id": ["HumanEval/0"], "completion": ""}', "sample 2: task_id must be a string"),
    "not json": (b"{nope", "samples.jsonl:2: not JSON"),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_a_bad_line_is_named_and_nothing_runs(tmp_path: Path, case: str) -> None:
    line, message = BAD_LINES[case]
    samples = _samples(tmp_path, [json.dumps(GOOD).encode(), line])
    code, output = _score([str(samples), "--dataset", "humaneval", "--sandbox", "process"])
    assert code == 2, output
    assert message in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1, output
    assert not (tmp_path / "samples.jsonl_results.jsonl").exists()


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf"])
def test_a_timeout_that_is_not_a_positive_number_is_refused(tmp_path: Path, value: str) -> None:
    samples = _samples(tmp_path, [json.dumps(GOOD).encode()])
    code, output = _score([str(samples), "--dataset", "humaneval", "--timeout", value])
    assert code == 2 and "--timeout" in output and "positive number of seconds" in output


def test_no_reportable_k_is_an_error_not_an_empty_result(tmp_path: Path) -> None:
    samples = _samples(tmp_path, [json.dumps(GOOD).encode()])
    code, output = _score([str(samples), "--dataset", "humaneval", "--k", "5,10"])
    assert code == 2 and "no requested k (5,10) is reportable" in output


def test_output_in_a_missing_directory_is_refused_before_any_work(tmp_path: Path) -> None:
    samples = _samples(tmp_path, [json.dumps(GOOD).encode()])
    code, output = _score([str(samples), "--dataset", "humaneval", "--out", str(tmp_path / "nope" / "r.jsonl")])
    assert code == 2 and "does not exist" in output


def test_existing_output_needs_overwrite_and_writes_are_atomic(tmp_path: Path) -> None:
    samples = _samples(tmp_path, [json.dumps(GOOD).encode()])
    out = tmp_path / "results.jsonl"
    out.write_text("an earlier run's results\n")
    code, output = _score([str(samples), "--dataset", "humaneval", "--out", str(out), "--sandbox", "process"])
    assert code == 2 and "exists: pass --overwrite" in output
    assert out.read_text() == "an earlier run's results\n"
    code, output = _score([str(samples), "--dataset", "humaneval", "--out", str(out), "--sandbox", "process",
                           "--overwrite", "--k", "1"])
    assert code == 0, output
    [line] = out.read_text().splitlines()
    assert json.loads(line)["result"] == "failed: "
    assert json.loads(output.strip().splitlines()[-1]) == {"pass@1": 0.0}
    assert not list(tmp_path.glob(".results.jsonl.*.tmp")) and not (tmp_path / "results.jsonl.lock").exists()


def test_a_second_run_on_the_same_output_stops_at_once(tmp_path: Path) -> None:
    samples = _samples(tmp_path, [json.dumps(GOOD).encode()])
    out = tmp_path / "results.jsonl"
    (tmp_path / "results.jsonl.lock").write_text("12345")  # another run holds it
    code, output = _score([str(samples), "--dataset", "humaneval", "--out", str(out), "--overwrite"])
    assert code == 1 and "another `june eval score` is writing" in output
    assert not out.exists()


def test_mbpp_without_a_source_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.delenv("JUNE_MBPP_SOURCE", raising=False)
    samples = _samples(tmp_path, [b'{"task_id": "MBPP/11", "completion": ""}'])
    code, output = _score([str(samples), "--dataset", "mbpp"])
    assert code == 1 and "could not load MBPP" in output and "JUNE_MBPP_SOURCE" in output
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1


def test_evalplus_timeout_option_is_refused(tmp_path: Path) -> None:
    samples = _samples(tmp_path, [b'{"task_id": "HumanEval/0", "completion": ""}'])
    code, output = _score([str(samples), "--dataset", "humanevalplus", "--timeout", "3"])
    assert code == 2 and "per-input limits" in output


@pytest.mark.parametrize("args, message", [
    (["eval", "run", "smollm2", "nosuchbench"], "no benchmark in"),
    (["eval", "run", "smollm2"], "expected MODEL BENCHMARK or a partition key"),
    (["eval", "run", "smollm2", "humaneval", "--n", "0"], "--n"),
    (["eval", "run", "smollm2", "humaneval", "--limit", "-1"], "--limit"),
    (["eval", "run", "smollm2", "humaneval", "--temperature", "-1"], "--temperature"),
    (["eval", "run", "smollm2", "humaneval", "--max-tokens", "0"], "--max-tokens"),
    (["eval", "run", "smollm2", "humaneval", "--k", "0"], "--k"),
])
def test_eval_run_refuses_bad_options_before_any_run(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 2 and message in result.output, result.output
