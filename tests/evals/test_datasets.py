import pytest

from june_pipelines.evals.datasets import DatasetError, load_problems


def test_humaneval_has_164_tasks_with_checks() -> None:
    problems, few_shot = load_problems("humaneval")
    assert len(problems) == 164 and few_shot == []
    first = problems[0]
    assert first.task_id == "HumanEval/0"
    assert first.test.rstrip().endswith(f"check({first.entry_point})")
    assert f"def {first.entry_point}(" in first.prompt


def test_mbpp_test_split_and_few_shot(mbpp_source: str) -> None:
    problems, few_shot = load_problems("mbpp", mbpp_source)
    ids = [int(p.task_id.split("/")[1]) for p in problems]
    assert ids == list(range(11, 511))
    assert [p.task_id for p in few_shot] == ["MBPP/2", "MBPP/3", "MBPP/4"]
    assert all(p.entry_point and p.tests_shown for p in problems)


def test_mbpp_test_setup_code_runs_before_the_tests(mbpp_source: str) -> None:
    problems, _ = load_problems("mbpp", mbpp_source)
    with_setup = [p for p in problems if not p.test.startswith("\n")]
    assert with_setup, "MBPP's test split has tasks with test_setup_code"
    for problem in with_setup:
        setup, _, asserts = problem.test.partition("\n")
        assert setup.strip() and "assert" in problem.test.split(setup, 1)[1]


def test_limit_and_unknown_benchmark() -> None:
    assert len(load_problems("humaneval", limit=3)[0]) == 3
    with pytest.raises(DatasetError, match="unknown benchmark"):
        load_problems("gsm8k")


def test_missing_mbpp_source_is_a_clear_error(tmp_path) -> None:
    empty = tmp_path / "mbpp.jsonl"
    empty.write_text('{"task_id": 1, "text": "t", "code": "", "test_list": ["assert f()"], "test_setup_code": ""}\n')
    with pytest.raises(DatasetError, match="lacks task ids"):
        load_problems("mbpp", str(empty))
