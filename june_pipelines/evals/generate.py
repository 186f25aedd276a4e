"""Completion generation with a journal, so a re-run or a crashed run never regenerates a sample.

Each finished sample is appended to a JSONL journal and flushed at once. A sample is reused only if
it was generated with the same settings (model, style, sampling): its fingerprint must match. The
journal keeps the model's raw answer; the completion is extracted from it again on every run, so a
better extraction, or other reasoning markers, apply to answers already generated.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from june_pipelines.evals.datasets import Problem
from june_pipelines.evals.prompts import build_request, extract_completion
from june_pipelines.evals.sanitize import Reasoning
from june_pipelines.inference.base import LLMClient, SamplingParams


@dataclass(frozen=True)
class GenerationSettings:
    model: str
    style: str
    n: int = 1
    temperature: float = 0.0
    top_p: float = 0.95
    max_tokens: int = 384
    seed: int = 1234
    # A reasoning model thinks before every answer: chat answers are not cut at the first code block
    # (one in its reasoning would end the answer), and an answer whose reasoning never closed is
    # counted as `unclosed_reasoning`. The markers are stripped from every chat answer.
    reasoning: bool = False
    reasoning_markers: tuple[str, str] = ("<think>", "</think>")

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if self.style not in ("base", "chat"):
            raise ValueError(f"style must be 'base' or 'chat', got {self.style!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        self.extraction_reasoning()  # rejects bad markers now, not at the first answer

    def extraction_reasoning(self) -> Reasoning:
        return Reasoning(*self.reasoning_markers, always=self.reasoning)

    def fingerprint(self) -> str:
        """What the answers depend on. Not `n` (more samples reuse the ones there are), not the
        markers (extraction only); `reasoning` only when set, so journals written before it
        existed stay valid."""
        fields = {k: v for k, v in asdict(self).items() if k not in ("n", "reasoning_markers")}
        if not self.reasoning:
            del fields["reasoning"]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def read_journal(path: Path, fingerprint: str) -> dict[tuple[str, int], dict[str, Any]]:
    """Finished samples with this fingerprint. A torn last line (crash mid-write) is ignored."""
    done: dict[tuple[str, int], dict[str, Any]] = {}
    if not path.exists():
        return done
    with path.open() as journal:
        for line in journal:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("fingerprint") == fingerprint:
                done[(record["task_id"], int(record["sample_index"]))] = record
    return done


def _end_torn_line(journal: Path) -> None:
    """A writer killed mid-line leaves no newline; start the next record on a line of its own."""
    if journal.exists() and journal.stat().st_size:
        with journal.open("rb+") as handle:
            handle.seek(-1, 2)
            if handle.read(1) != b"\n":
                handle.write(b"\n")


def _extracted(problem: Problem, answer: str, settings: GenerationSettings) -> dict[str, str]:
    """`completion` (what the sandbox runs) and `extraction` (an `ExtractionKind`: `ok`,
    `repaired_indent`, `no_code`, `unclosed_reasoning`, `syntax_error`) of one answer."""
    completion, kind = extract_completion(problem, answer, settings.style, settings.extraction_reasoning())
    return {"completion": completion, "extraction": kind.value}


def _generate_one(
    client: LLMClient, problem: Problem, index: int, few_shot: Sequence[Problem], settings: GenerationSettings
) -> dict[str, Any]:
    request = build_request(problem, settings.style, few_shot)
    stop = () if settings.reasoning and request.prompt is None else request.stop
    params = SamplingParams(
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        stop=stop,
        seed=settings.seed + index,
    )
    if request.prompt is not None:
        result = client.complete(request.prompt, params)
    else:
        result = client.chat(request.messages, params)
    return {
        "task_id": problem.task_id,
        "sample_index": index,
        **_extracted(problem, result.text, settings),
        "raw_output": result.text,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "latency_s": round(result.latency_s, 4),
        "finish_reason": result.finish_reason,
        "fingerprint": settings.fingerprint(),
    }


def generate_completions(
    client: LLMClient,
    problems: Sequence[Problem],
    settings: GenerationSettings,
    journal: Path,
    few_shot: Sequence[Problem] = (),
    concurrency: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """All n samples for every problem, in (problem, sample index) order, and how many were new."""
    journal.parent.mkdir(parents=True, exist_ok=True)
    done = read_journal(journal, settings.fingerprint())
    by_id = {p.task_id: p for p in problems}
    for key, record in done.items():
        if key[0] in by_id:
            record.update(_extracted(by_id[key[0]], record["raw_output"], settings))
    wanted = [(p, i) for p in problems for i in range(settings.n)]
    todo = [(p, i) for p, i in wanted if (p.task_id, i) not in done]
    lock = threading.Lock()
    finished = len(wanted) - len(todo)
    if progress:
        progress(finished, len(wanted))

    _end_torn_line(journal)
    with journal.open("a") as out:

        def work(item: tuple[Problem, int]) -> None:
            nonlocal finished
            record = _generate_one(client, item[0], item[1], few_shot, settings)
            with lock:
                out.write(json.dumps(record) + "\n")
                out.flush()
                done[(record["task_id"], record["sample_index"])] = record
                finished += 1
                if progress:
                    progress(finished, len(wanted))

        if concurrency <= 1:
            for item in todo:
                work(item)
        else:
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(work, todo))

    return [done[(p.task_id, i)] for p, i in wanted], len(todo)
