"""Code extraction measured on real answers: the naive rule June had before against the sanitizer.

  # once (CPU-heavy on 2 loaded cores: HumanEval about 10 min, 35 min uncut; MBPP about 25 s a
  # task): SmolLM2's chat answers through June's generation code, journaled under JUNE_HOME
  JUNE_HOME=/tmp/june-extraction nice .venv/bin/python tests/evals/bench_extraction.py generate humaneval \
      [--uncut] [--limit N]
  # then, as often as wanted: sample files per variant, scored with `june eval score --sandbox process`
  JUNE_HOME=/tmp/june-extraction .venv/bin/python tests/evals/bench_extraction.py score humaneval \
      [--uncut] [--answers SAVED_JOURNAL.jsonl]

`score` writes one samples file per variant (naive; the sanitizer; the sanitizer with one step
turned off) next to the journal, scores each with `june eval score`, and prints, per step, the
samples it rescues (they pass with every step and fail without that one), and pass@1 of each
variant. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from june_pipelines.evals.datasets import Problem, load_problems
from june_pipelines.evals.generate import GenerationSettings, generate_completions
from june_pipelines.evals.prompts import extract_completion
from june_pipelines.evals.store import EvalStore

SHARED_DATA = Path(os.environ.get("JUNE_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
MBPP_SOURCE = str(SHARED_DATA / "mbpp" / "mbpp.jsonl")
SETTINGS = GenerationSettings(model="smollm2", style="chat", n=1, temperature=0.0, max_tokens=384)
# `--uncut`: answers not cut at the end of their first code block, as a reasoning model's are
# (`reasoning=True` drops the chat stop sequence); here they show prose, examples and tests.
UNCUT = replace(SETTINGS, reasoning=True)


def _journal(store: EvalStore, uncut: bool) -> Path:
    return store.root / "completions_uncut.jsonl" if uncut else store.journal


def _problems(benchmark: str) -> tuple[list[Problem], list[Problem]]:
    return load_problems(benchmark, MBPP_SOURCE if benchmark == "mbpp" else None)


def generate(benchmark: str, uncut: bool, limit: int | None) -> None:
    from june_pipelines.inference.resources import LlamaCppLLMResource
    from june_pipelines.progress import Progress

    problems, few_shot = _problems(benchmark)
    problems = problems[:limit] if limit else problems
    store = EvalStore("smollm2", benchmark)
    journal = _journal(store, uncut)
    # One thread: on a shared, loaded machine two spinning llama.cpp threads wait on each other.
    client = LlamaCppLLMResource(n_threads=1).client("smollm2")
    try:
        _, new = generate_completions(
            client, problems, UNCUT if uncut else SETTINGS, journal, few_shot=few_shot,
            progress=Progress(f"answers {benchmark}"),
        )
    finally:
        client.close()
    print(json.dumps({"journal": str(journal), "new": new, "tasks": len(problems)}))


_NAIVE_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:\n```|\Z)", re.DOTALL)


def naive_completion(problem: Problem, answer: str) -> str:
    """June's rule before the sanitizer (the peer): the fenced block that defines the entry point,
    else the first block, else the whole answer; a block that starts indented is a body."""
    blocks = _NAIVE_FENCE.findall(answer)
    code = answer.strip("\n")
    if blocks:
        pattern = rf"^\s*def\s+{re.escape(problem.entry_point)}\s*\("
        code = next((b for b in blocks if re.search(pattern, b, re.MULTILINE)), blocks[0])
    if problem.benchmark == "humaneval" and not code.startswith((" ", "\t")):
        return "\n" + code + "\n"
    return code


def _score(samples: Path) -> tuple[dict[str, bool], dict[str, str]]:
    out = samples.with_name(samples.stem + "_results.jsonl")
    june = Path(sys.executable).with_name("june")
    command = [str(june), "eval", "score", str(samples), "--dataset", samples.parent.name,
               "--sandbox", "process", "--k", "1", "--out", str(out), "--overwrite"]
    if samples.parent.name == "mbpp":
        command += ["--source", MBPP_SOURCE]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {r["task_id"]: r["passed"] for r in rows}, {r["task_id"]: r["result"] for r in rows}


def score(benchmark: str, uncut: bool, answers_file: Path | None = None) -> dict[str, Any]:
    from june_pipelines.evals.sanitize import STEPS

    problems, _ = _problems(benchmark)
    by_id = {p.task_id: p for p in problems}
    store = EvalStore("smollm2", benchmark)
    store.root.mkdir(parents=True, exist_ok=True)
    source = answers_file or _journal(store, uncut)
    records = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    fingerprint = (UNCUT if uncut else SETTINGS).fingerprint()
    answers = {r["task_id"]: r["raw_output"] for r in records if r["fingerprint"] == fingerprint}
    variants: dict[str, Any] = {"naive": lambda p, a: (naive_completion(p, a), "")}
    variants["sanitizer"] = lambda p, a: extract_completion(p, a, "chat")
    for step in STEPS:
        variants[f"without_{step}"] = lambda p, a, s=step: extract_completion(p, a, "chat", disabled={s})
    passed: dict[str, dict[str, bool]] = {}
    kinds: dict[str, str] = {}
    programs: dict[str, dict[str, str]] = {}
    for name, make in variants.items():
        programs[name] = {}
        samples = store.root / f"extraction{'_uncut' if uncut else ''}_{name}.jsonl"
        with samples.open("w") as handle:
            for task_id, answer in answers.items():
                completion, kind = make(by_id[task_id], answer)
                if name == "sanitizer":
                    kinds[task_id] = kind
                programs[name][task_id] = completion
                handle.write(json.dumps({"task_id": task_id, "completion": completion}) + "\n")
        passed[name], _ = _score(samples)
    full = passed["sanitizer"]
    report: dict[str, Any] = {"benchmark": benchmark, "uncut": uncut, "samples": len(answers)}
    report["pass@1"] = {name: round(sum(p.values()) / len(p), 4) for name, p in passed.items()}
    report["passed"] = {name: sum(p.values()) for name, p in passed.items()}
    report["rescued_by_step"] = {
        step: sorted(t for t in full if full[t] and not passed[f"without_{step}"][t]) for step in STEPS
    }
    report["sanitizer_only"] = sorted(t for t in full if full[t] and not passed["naive"][t])
    report["naive_only"] = sorted(t for t in full if passed["naive"][t] and not full[t])
    report["changed_by_step"] = {
        step: sum(programs[f"without_{step}"][t] != programs["sanitizer"][t] for t in answers) for step in STEPS
    }
    report["changed_from_naive"] = sum(programs["naive"][t] != programs["sanitizer"][t] for t in answers)
    report["kinds"] = {k: sum(1 for v in kinds.values() if v == k) for k in sorted(set(kinds.values()))}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["generate", "score"])
    parser.add_argument("benchmark", choices=["humaneval", "mbpp"])
    parser.add_argument("--answers", type=Path, help="score: a saved journal (default: the one under JUNE_HOME)")
    parser.add_argument("--uncut", action="store_true", help="answers not cut at their first code block")
    parser.add_argument("--limit", type=int, help="generate: only the first N tasks")
    args = parser.parse_args()
    if args.action == "generate":
        generate(args.benchmark, args.uncut, args.limit)
    else:
        print(json.dumps(score(args.benchmark, args.uncut, args.answers)))


if __name__ == "__main__":
    main()
