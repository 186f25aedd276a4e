"""Scoring: samples (task_id, completion) -> programs -> sandbox verdicts -> one result per sample.

One service for `june eval score` and the `executions` asset. HumanEval and MBPP samples run as
test programs (the benchmark's asserts, in the judge process), each with its task's calibrated
time limit; HumanEval+ and MBPP+ samples run as calls programs on the base and plus inputs, whose
outputs are compared here with the expected ones (`evalplus.py`).
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from june_pipelines.evals import evalplus
from june_pipelines.evals.datasets import Problem
from june_pipelines.evals.passk import mean_pass_at_k, per_task_pass_at_k
from june_pipelines.evals.references import References
from june_pipelines.sandboxes.base import CallsProgram, CallsResult, Limits, Program, SandboxBackend, Status, Verdict


class ScoringError(ValueError):
    pass


@dataclass(frozen=True)
class Sample:
    """`completion` follows the prompt; with `whole_program` it is the whole program instead
    (EvalPlus's `solution` field)."""

    task_id: str
    completion: str
    sample_index: int
    whole_program: bool = False


@dataclass(frozen=True)
class SampleResult:
    """One sample's verdict. For HumanEval+/MBPP+ `passed` means plus passed (base and plus), and
    `status` is "passed" or "failed"; `base_status`/`plus_status` are EvalPlus's "pass"/"fail"."""

    task_id: str
    sample_index: int
    status: str
    passed: bool
    result: str
    duration_s: float
    base_status: str | None = None
    plus_status: str | None = None
    failure_kind: str = ""  # "" when passed; "wrong answer", "timed out", "syntax error", an exception, ...
    where: str = ""  # the failing test line or input, when known

    def as_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"passed": self.passed, "result": self.result}
        if self.base_status is not None:
            record.update(base_status=self.base_status, plus_status=self.plus_status)
        return record


def program_for(problem: Problem, completion: str, program_id: str) -> Program:
    """HumanEval(+): prompt + completion, then the tests, which see the prompt's own helpers (`poly`)
    and the solution's entry point; MBPP: the completion, then setup + tests; MBPP+ (hub copies):
    prompt + completion, as EvalPlus runs it."""
    test = problem.plus_test or problem.test
    if problem.benchmark in ("humaneval", "humanevalplus"):
        return Program(program_id, problem.prompt + completion + "\n", test,
                       trusted=problem.prompt, entry_point=problem.entry_point)
    if problem.benchmark == "mbppplus":
        return Program(program_id, evalplus.solution_for(problem, completion) + "\n", test)
    return Program(program_id, completion + "\n", test)


def canonical_programs(problems: Iterable[Problem]) -> list[Program]:
    return [program_for(p, p.canonical_solution, p.task_id) for p in problems]


def index_samples(records: Iterable[Mapping[str, Any]], problems: Mapping[str, Problem]) -> list[Sample]:
    """Samples in file order, numbered per task; unknown task ids are an error, not a silent skip.

    A record has `task_id` and either `completion` (what follows the prompt) or, for the EvalPlus
    benchmarks, `solution` (the whole program, EvalPlus's sample format)."""
    per_task: Counter[str] = Counter()
    samples = []
    for line, record in enumerate(records, start=1):
        task_id = record.get("task_id")
        if task_id is None:
            raise ScoringError(f"sample {line}: missing field 'task_id'")
        if not isinstance(task_id, str):
            raise ScoringError(f"sample {line}: task_id must be a string, got {type(task_id).__name__}")
        if task_id not in problems:
            raise ScoringError(f"sample {line}: unknown task_id {task_id!r}")
        problem = problems[task_id]
        whole = False
        if "completion" in record:
            completion = record["completion"]
        elif "solution" in record and problem.is_plus:
            completion, whole = record["solution"], True
        else:
            wanted = "'completion' or 'solution'" if problem.is_plus else "'completion'"
            raise ScoringError(f"sample {line}: missing field {wanted}")
        if not isinstance(completion, str):
            field = "solution" if whole else "completion"
            raise ScoringError(f"sample {line}: {field} must be a string, got {type(completion).__name__}")
        index = record.get("sample_index")
        if index is None:
            number = per_task[task_id]
        elif isinstance(index, int) and not isinstance(index, bool) and index >= 0:
            number = index
        else:
            raise ScoringError(f"sample {line}: sample_index must be a non-negative integer, got {index!r}")
        samples.append(Sample(task_id, completion, number, whole))
        per_task[task_id] += 1
    return samples


def _solution(problem: Problem, sample: Sample) -> str:
    return sample.completion if sample.whole_program else evalplus.solution_for(problem, sample.completion)


def score(
    samples: Sequence[Sample],
    problems: Mapping[str, Problem],
    backend: SandboxBackend,
    limits: Limits,
    references: References | None,
    on_result: Callable[[SampleResult], None] | None = None,
) -> list[SampleResult]:
    """Every sample's verdict, in the order of `samples`."""
    tests = [i for i, s in enumerate(samples) if not problems[s.task_id].base_inputs]
    calls = [i for i, s in enumerate(samples) if problems[s.task_id].base_inputs]
    results: list[SampleResult | None] = [None] * len(samples)
    lock = threading.Lock()

    def done(i: int, result: SampleResult) -> None:
        results[i] = result
        if on_result is not None:
            with lock:
                on_result(result)

    if tests:
        _score_tests([(i, samples[i]) for i in tests], problems, backend, limits, references, done)
    if calls:
        if references is None:
            raise ScoringError("EvalPlus samples need the benchmark's reference outputs")
        _score_calls([(i, samples[i]) for i in calls], problems, backend, limits, references, done)
    return [r for r in results if r is not None]


def _score_tests(indexed: list[tuple[int, Sample]], problems: Mapping[str, Problem], backend: SandboxBackend,
                 limits: Limits, references: References | None,
                 done: Callable[[int, SampleResult], None]) -> None:
    programs = []
    for _, sample in indexed:
        problem = problems[sample.task_id]
        if sample.whole_program:  # an EvalPlus `solution` on a hub-copy task
            program = Program(f"{sample.task_id}#{sample.sample_index}", sample.completion + "\n",
                              problem.plus_test or problem.test, entry_point=problem.entry_point)
        else:
            program = program_for(problem, sample.completion, f"{sample.task_id}#{sample.sample_index}")
        if references is not None and sample.task_id in references.tasks:
            program = Program(program.id, program.solution, program.test, program.trusted, program.entry_point,
                              references.get(sample.task_id).time_limit_s)
        programs.append(program)
    position = {p.id: i for p, (i, _) in zip(programs, indexed, strict=True)}
    by_id = {p.id: s for p, (_, s) in zip(programs, indexed, strict=True)}

    def on_verdict(verdict: Verdict) -> None:
        sample = by_id[verdict.program_id]
        done(position[verdict.program_id], _test_result(sample, problems[sample.task_id], verdict))

    if references is not None:  # longest first (see _score_calls)
        canonical_s = {task: ref.canonical_s for task, ref in references.tasks.items()}
        programs.sort(key=lambda program: -canonical_s.get(by_id[program.id].task_id, 0.0))
    backend.run(programs, limits, on_verdict)


def failure_kind(status: Status, error_type: str) -> str:
    """A short name for why a sample failed, for counting failure kinds."""
    if status is Status.PASSED:
        return ""
    if status is Status.TIMED_OUT:
        return "timed out"
    if status is Status.ERROR:
        return "sandbox error"
    if error_type == "AssertionError":
        return "wrong answer"
    if error_type in ("SyntaxError", "IndentationError", "TabError"):
        return "syntax error"
    return error_type or "exited early"


def _test_result(sample: Sample, problem: Problem, verdict: Verdict) -> SampleResult:
    status = evalplus.PASS if verdict.passed else evalplus.FAIL
    plus = problem.is_plus  # a hub-copy EvalPlus task: its test holds every input (base and plus)
    return SampleResult(sample.task_id, sample.sample_index, verdict.status.value, verdict.passed, verdict.result,
                        round(verdict.duration_s, 4), status if plus else None, status if plus else None,
                        failure_kind(verdict.status, verdict.error_type), verdict.where)


def _score_calls(indexed: list[tuple[int, Sample]], problems: Mapping[str, Problem], backend: SandboxBackend,
                 limits: Limits, references: References, done: Callable[[int, SampleResult], None]) -> None:
    programs: list[tuple[float, CallsProgram]] = []  # (the canonical solution's time on those inputs, program)
    owner: dict[str, tuple[int, Sample]] = {}
    for i, sample in indexed:
        problem = problems[sample.task_id]
        expected = references.get(sample.task_id).expected
        if expected is None:
            raise ScoringError(f"{sample.task_id}: no expected outputs (its canonical solution failed)")
        solution = _solution(problem, sample)
        program_id = f"{sample.task_id}#{sample.sample_index}"
        for part in ("base", "plus"):
            cost = sum(expected.base_times if part == "base" else expected.plus_times)
            programs.append((cost, evalplus.calls_program(problem, solution, program_id, part, expected.limits(part))))
        owner[program_id] = (i, sample)
    halves: dict[str, dict[str, CallsResult]] = defaultdict(dict)

    def on_half(result: CallsResult) -> None:
        program_id, _, part = result.program_id.rpartition(":")
        halves[program_id][part] = result
        if len(halves[program_id]) == 2:
            i, sample = owner[program_id]
            done(i, _plus_result(sample, problems[sample.task_id], references, halves.pop(program_id)))

    # Longest first: a few tasks hold most of the work (HumanEval+'s 15, 130 and 139 take seconds),
    # and started last they would leave the other workers idle at the end.
    programs.sort(key=lambda costed: -costed[0])
    backend.run_calls([program for _, program in programs], limits, on_half)


def _plus_result(
    sample: Sample, problem: Problem, references: References, halves: dict[str, CallsResult]
) -> SampleResult:
    expected = references.get(problem.task_id).expected
    assert expected is not None
    base, plus = halves["base"], halves["plus"]
    verdict = evalplus.combine(evalplus.grade_part(problem, "base", base, expected.base),
                               evalplus.grade_part(problem, "plus", plus, expected.plus))
    if base.status is Status.ERROR or plus.status is Status.ERROR:
        status = Status.ERROR.value
    else:
        status = Status.PASSED.value if verdict.passed else Status.FAILED.value
    return SampleResult(sample.task_id, sample.sample_index, status, verdict.passed, verdict.result,
                        round(base.duration_s + plus.duration_s, 4), verdict.base_status, verdict.plus_status,
                        verdict.kind, verdict.result.removeprefix("failed: ") if not verdict.passed else "")


def summarize(
    outcomes: Iterable[tuple[str, bool]], ks: Sequence[int]
) -> tuple[dict[int, float], dict[str, dict[int, float]], dict[str, tuple[int, int]]]:
    """(mean pass@k, per-task pass@k, per-task (n, c)) from (task_id, passed) pairs, for the k
    values every task supports."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for task_id, passed in outcomes:
        counts[task_id][0] += 1
        counts[task_id][1] += int(passed)
    nc = {task: (n, c) for task, (n, c) in counts.items()}
    per_task = per_task_pass_at_k(nc, ks)
    return mean_pass_at_k(per_task), per_task, nc
