"""Generation is resumable: a crash or a re-run never regenerates a finished sample."""

import json
from pathlib import Path

import pytest

from june_pipelines.evals.datasets import load_problems
from june_pipelines.evals.generate import (
    GenerationSettings,
    generate_completions,
    read_journal,
)
from june_pipelines.inference.base import LLMClient


class SimulatedCrash(RuntimeError):
    pass


class CrashAfter(LLMClient):
    """The real client, made to die after `budget` calls, as a killed run would."""

    def __init__(self, inner: LLMClient, budget: int) -> None:
        super().__init__(inner.model)
        self.inner, self.budget, self.calls = inner, budget, 0

    def _count(self) -> None:
        self.calls += 1
        if self.calls > self.budget:
            raise SimulatedCrash(f"call {self.calls}")

    def _complete(self, prompt, params):
        self._count()
        return self.inner.complete(prompt, params)

    def _chat(self, messages, params):
        self._count()
        return self.inner.chat(messages, params)


SETTINGS = GenerationSettings(model="smollm2", style="base", n=2, temperature=0.8, max_tokens=32)


def test_crash_then_resume_generates_only_missing_samples(smollm2_client, tmp_path: Path) -> None:
    problems = load_problems("humaneval", limit=3)[0]
    journal = tmp_path / "completions.jsonl"
    with pytest.raises(SimulatedCrash):
        generate_completions(CrashAfter(smollm2_client, budget=4), problems, SETTINGS, journal)
    assert len(read_journal(journal, SETTINGS.fingerprint())) == 4
    with journal.open("a") as handle:
        handle.write('{"task_id": "HumanEval/2", "sampl')  # torn last line of a killed writer

    resumed = CrashAfter(smollm2_client, budget=100)
    records, new = generate_completions(resumed, problems, SETTINGS, journal)
    assert new == 2 and resumed.calls == 2
    assert [(r["task_id"], r["sample_index"]) for r in records] == [
        (p.task_id, i) for p in problems for i in range(2)
    ]

    again = CrashAfter(smollm2_client, budget=0)
    records_again, new_again = generate_completions(again, problems, SETTINGS, journal)
    assert new_again == 0 and records_again == records


def test_changed_settings_do_not_reuse_samples(smollm2_client, tmp_path: Path) -> None:
    problems = load_problems("humaneval", limit=1)[0]
    journal = tmp_path / "completions.jsonl"
    generate_completions(smollm2_client, problems, SETTINGS, journal)
    hotter = GenerationSettings(model="smollm2", style="base", n=2, temperature=1.0, max_tokens=32)
    _, new = generate_completions(smollm2_client, problems, hotter, journal)
    assert new == 2
    more = GenerationSettings(model="smollm2", style="base", n=3, temperature=0.8, max_tokens=32)
    _, new = generate_completions(smollm2_client, problems, more, journal)
    assert new == 1  # raising n keeps the samples it has


def test_records_carry_usage(smollm2_client, tmp_path: Path) -> None:
    problems = load_problems("humaneval", limit=1)[0]
    records, _ = generate_completions(
        smollm2_client, problems, GenerationSettings("smollm2", "chat", max_tokens=16), tmp_path / "j.jsonl"
    )
    record = records[0]
    assert record["prompt_tokens"] > 0 and 0 < record["completion_tokens"] <= 16 and record["latency_s"] > 0
    assert json.loads((tmp_path / "j.jsonl").read_text().splitlines()[0])["raw_output"] == record["raw_output"]


@pytest.mark.parametrize("bad", [{"n": 0}, {"style": "instruct"}, {"temperature": -1.0}])
def test_invalid_settings_are_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        GenerationSettings(**{"model": "smollm2", "style": "base", **bad})
