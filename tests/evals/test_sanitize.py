"""Code extraction from chat and reasoning models' answers (`evals.sanitize`).

Each step of the sanitizer is shown to matter twice: on a constructed answer it changes the program,
and end to end in the process sandbox the sanitized answer passes where June's former rule
(`naive_completion`, the peer in tests/evals/bench_extraction.py) and the sanitizer without that one
step both fail. `data/smollm2_chat_answers.jsonl` holds real answers of the bundled SmolLM2
(`bench_extraction.py generate`, greedy, chat style): every task that passed, answers with example
calls the sanitizer drops, and answers that cannot parse (runaway loops cut at max_tokens, broken
syntax).
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from bench_extraction import naive_completion

from june_pipelines.evals.datasets import Problem, load_humaneval, load_problems
from june_pipelines.evals.generate import GenerationSettings, generate_completions, read_journal
from june_pipelines.evals.prompts import extract_code, extract_completion
from june_pipelines.evals.sanitize import STEPS, ExtractionKind, Reasoning, fenced_blocks, sanitize
from june_pipelines.evals.scoring import Sample, score
from june_pipelines.inference.base import ChatMessage, Completion, LLMClient, SamplingParams

ANSWERS = Path(__file__).with_name("data") / "smollm2_chat_answers.jsonl"
HUMANEVAL = {p.task_id: p for p in load_humaneval()}


def _real_answers() -> list[dict]:
    return [json.loads(line) for line in ANSWERS.read_text().splitlines()]


@pytest.fixture(scope="module")
def real() -> tuple[list[dict], dict[str, Problem]]:
    """The fixture's answers and their problems; its MBPP answers only where the MBPP data is."""
    from shared_data import MBPP_JSONL

    problems = dict(HUMANEVAL)
    if MBPP_JSONL.exists():
        problems.update({p.task_id: p for p in load_problems("mbpp", str(MBPP_JSONL))[0]})
    return [r for r in _real_answers() if r["task_id"] in problems], problems


def _verdicts(problems: dict[str, Problem], completions: Sequence[tuple[str, str]]) -> list[bool]:
    from june_pipelines.sandboxes.resources import ProcessSandboxResource

    resource = ProcessSandboxResource(workers=2, timeout_s=3.0)
    samples = [Sample(task_id, completion, index) for index, (task_id, completion) in enumerate(completions)]
    with resource.open() as backend:
        return [r.passed for r in score(samples, problems, backend, resource.limits(), references=None)]


# -- constructed answers: what each step does ---------------------------------------------------------


def test_fenced_blocks_closed_unclosed_indented_and_other_languages() -> None:
    answer = "Run:\n```bash\npip install x\n```\nCode:\n  ```python\n  x = 1\n  ```\nMore:\n```\ny = 2"
    assert fenced_blocks(answer) == ["  x = 1", "y = 2"]  # bash left out while Python exists; last unclosed
    assert fenced_blocks("```text\nhello\n```") == ["hello"]  # only other blocks: all of them
    assert fenced_blocks("no fence at all") == []


def test_prune_keeps_what_the_entry_point_needs_transitively() -> None:
    answer = """Sure! Here it is:

```python
import numpy as np
import math
from functools import lru_cache
import sys
sys.setrecursionlimit(10000)

LIMIT = 10
UNUSED = 3

class Point:
    scale = LIMIT

def helper(x):
    return math.sqrt(x) + Point.scale

@lru_cache(maxsize=None)
def f(xs):
    result = [helper(x) for x in xs]
    return result

def unrelated():
    return np.zeros(3)

result = f((1, 4))
print(result)
assert f(()) == []
if __name__ == "__main__":
    LIMIT = int(input())
    print(f((9,)))
```
This computes the roots."""
    extraction = sanitize(answer, "f")
    tree = ast.parse(extraction.code)
    kept = [ast.unparse(node).split("\n")[0] for node in tree.body]
    assert kept == [
        "import math",
        "from functools import lru_cache",
        "import sys",
        "sys.setrecursionlimit(10000)",
        "LIMIT = 10",
        "class Point:",
        "def helper(x):",
        "@lru_cache(maxsize=None)",  # the decorator travels with its function
    ]
    # `result` is f's local: the module-level `result = f(...)` test line must not come along.
    assert "print" not in extraction.code and "assert" not in extraction.code and "numpy" not in extraction.code
    assert "input" not in extraction.code  # the `__main__` block rebinds LIMIT, and is dropped all the same
    assert extraction.kind is ExtractionKind.OK and extraction.changed_by == {"prune"}
    assert sanitize(answer, "f", disabled={"prune"}).code.count("print(") == 2


def test_prune_keeps_what_the_tests_use(mbpp_source: str) -> None:
    problems, _ = load_problems("mbpp", mbpp_source)
    task = next(p for p in problems if p.task_id == "MBPP/367")  # its tests build trees of `Node`s
    answer = f"```python\n{task.canonical_solution}\n\nprint(is_tree_balanced(Node(1)))\n```"
    completion, kind = extract_completion(task, answer, "chat")
    assert "class Node" in completion and "print(" not in completion and kind is ExtractionKind.OK
    assert _verdicts({task.task_id: task}, [(task.task_id, completion)]) == [True]
    # Anchored on the entry point alone, the class goes and every test fails with a NameError.
    alone = sanitize(answer, task.entry_point).code
    assert "class Node" not in alone
    assert _verdicts({task.task_id: task}, [(task.task_id, alone)]) == [False]


def test_indentation_repairs() -> None:
    # A body whose indentation was lost entirely (`return` at column 0 does not compile).
    flat = sanitize("```python\nresult = []\nfor x in xs:\n    result.append(x)\nreturn result\n```", "f")
    assert flat.body and flat.kind is ExtractionKind.REPAIRED_INDENT
    assert flat.code == "    result = []\n    for x in xs:\n        result.append(x)\n    return result"
    # The first line's indentation stripped, the rest kept.
    first = sanitize("result = []\n    for x in xs:\n        result.append(x)\n    return result", "f")
    assert first.code == flat.code and first.kind is ExtractionKind.REPAIRED_INDENT
    # A body indented by eight: an unexpected indent after the prompt's four-space docstring.
    deep = sanitize("```python\n        return sorted(xs)\n```", "f")
    assert deep.code == "    return sorted(xs)" and deep.body
    # A whole definition indented as a block (an answer's list item) is a definition, not a body.
    nested = sanitize("1. The code:\n   ```python\n   def f(x):\n       return x\n   ```", "f")
    assert nested.code == "def f(x):\n    return x" and not nested.body
    # A well-indented body is left alone.
    plain = sanitize("    return sorted(xs)\n", "f")
    assert plain.code == "    return sorted(xs)" and plain.kind is ExtractionKind.OK and plain.body
    # Without a prompt header (MBPP, the agent), a body cannot be completed: no body repair.
    assert sanitize("return 1", "f", allow_body=False).kind is ExtractionKind.SYNTAX_ERROR
    for answer in ("```python\nreturn sorted(xs)\n```", "```python\nresult = []\n    return result\n```"):
        assert sanitize(answer, "f", disabled={"indent"}).kind is ExtractionKind.SYNTAX_ERROR


def test_block_choice() -> None:
    draft_then_fix = (
        "Draft:\n```python\ndef f(x):\n    return x +\n```\nFixed:\n```python\ndef f(x):\n    return x + 1\n```"
    )
    assert extract_code(draft_then_fix, "f") == "def f(x):\n    return x + 1"
    usage_then_body = "Call it as:\n```python\nprint(f([3, 1]))\n```\nBody:\n```python\n    return sorted(xs)\n```"
    assert sanitize(usage_then_body, "f").code == "    return sorted(xs)"
    # Without an entry point (the agent), the longest block that parses.
    three = "```python\nx = (\n```\n```python\nx = 1\nprint(x)\n```\n```python\ny = 2\n```"
    assert extract_code(three) == "x = 1\nprint(x)"
    assert sanitize(draft_then_fix, "f", disabled={"block"}).kind is ExtractionKind.SYNTAX_ERROR


def test_prose_around_unfenced_code() -> None:
    answer = "Use this:\n\ndef f(x):\n    return x + 1\n\nFor example f(1) returns 2.\nprint(f(1))"
    extraction = sanitize(answer, "f")
    assert extraction.code == "def f(x):\n    return x + 1" and extraction.changed_by == {"prose"}
    assert sanitize(answer, "f", disabled={"prose"}).kind is ExtractionKind.SYNTAX_ERROR
    assert sanitize("The answer is simple: sort the list.", "f").kind is ExtractionKind.NO_CODE
    assert sanitize("Sure", "f").kind is ExtractionKind.NO_CODE  # prose that happens to parse


def test_reasoning_is_stripped_and_unclosed_reasoning_is_its_own_kind() -> None:
    answer = (
        "<think>\nMaybe ```python\ndef f(x):\n    return x - 1\n```? No.\n</think>\n\n"
        "```python\ndef f(x):\n    return x + 1\n```"
    )
    assert extract_code(answer, "f") == "def f(x):\n    return x + 1"
    assert "x - 1" in sanitize(answer, "f", disabled={"reasoning"}).code
    # Qwen3-Thinking's template opens `<think>` itself: its answers carry only the close marker.
    template_opened = (
        "The user wants f.\n```python\ndef f(x): return 0\n```\n</think>\n```python\ndef f(x): return 1\n```"
    )
    assert extract_code(template_opened, "f") == "def f(x): return 1"
    unclosed = sanitize("<think>\nLet me write ```python\ndef f(x): return 1\n```\nand then", "f")
    assert unclosed.kind is ExtractionKind.UNCLOSED_REASONING and unclosed.code == ""
    thinker = Reasoning(always=True)
    cut = sanitize("The user wants f. ```python\ndef f(x): return 1\n```", "f", reasoning=thinker)
    assert cut.kind is ExtractionKind.UNCLOSED_REASONING
    assert sanitize("```python\ndef f(x): return 1\n```", "f").kind is ExtractionKind.OK  # no markers: an answer
    custom = Reasoning(open="[THINK]", close="[/THINK]")
    assert sanitize("[THINK]```python\nx = (\n```[/THINK]\n```python\nx = 1\n```", reasoning=custom).code == "x = 1"
    with pytest.raises(ValueError, match="distinct"):
        Reasoning(open="<t>", close="<t>")


def test_nothing_raises_and_broken_code_reaches_the_sandbox() -> None:
    broken = sanitize("```python\ndef f(x):\n    return (x +\n```", "f")
    assert broken.kind is ExtractionKind.SYNTAX_ERROR and broken.code == "def f(x):\n    return (x +"
    prose_then_broken = sanitize("Here:\ndef f(x):\n    return [x", "f")
    assert prose_then_broken.kind is ExtractionKind.SYNTAX_ERROR and prose_then_broken.code.startswith("def f(x):")
    for odd in ("", "```", "```python\n```", "\x00", "(" * 5000, "```python\n" + "(" * 5000, "</think>", "\t\t\n"):
        assert isinstance(sanitize(odd, "f").code, str)
    with pytest.raises(ValueError, match="unknown sanitizer steps"):
        sanitize("x = 1", disabled={"typo"})


def test_the_agent_gets_whole_scripts_and_nothing_from_prose() -> None:
    """No entry point: nothing is pruned (the agent's programs print their answer)."""
    assert extract_code("Sure:\n```python\nprint(2)\n```") == "print(2)"
    assert extract_code("```python\nprint(3)") == "print(3)"  # unterminated
    unfenced = "Run this:\nimport math\nprint(math.sqrt(16))\nThat prints 4."
    assert extract_code(unfenced) == "import math\nprint(math.sqrt(16))"
    assert extract_code("What is 17 times 23?") == ""
    # No header for a body to follow, whether the entry point is None or "": indentation stays a script's.
    indented = "```python\n    for i in range(3):\n        print(i)\n```"
    assert extract_code(indented) == extract_code(indented, "") == "for i in range(3):\n    print(i)"


# -- end to end: each step rescues a sample in the sandbox ---------------------------------------------

# HumanEval/53 (`add`) and /60 (`sum_to_n`): SmolLM2's real, passing answers, in the shapes that chat
# and reasoning models give them.
SUM_TO_N = HUMANEVAL["HumanEval/60"]
RESCUES = {
    "reasoning": (
        "HumanEval/53",
        "<think>\nA first idea:\n```python\ndef add(x: int, y: int) -> int:\n    return x - y\n```\n"
        "No: add.\n</think>\n"
        "```python\ndef add(x: int, y: int) -> int:\n    return x + y\n```",
    ),
    "block": (
        "HumanEval/53",
        "```python\ndef add(x: int, y: int) -> int:\n    return x +\n```\nOops, fixed:\n"
        "```python\ndef add(x: int, y: int) -> int:\n    return x + y\n```",
    ),
    "prose": (
        "HumanEval/53",
        "The function is:\n\ndef add(x: int, y: int) -> int:\n    return x + y\n\nIt adds x and y.",
    ),
    "indent": ("HumanEval/53", "```python\nreturn x + y\n```"),
    "prune": (
        "HumanEval/60",
        "```python\ndef sum_to_n(n: int) -> int:\n    return n * (n + 1) // 2\n\n"
        "assert sum_to_n(100) == 465  # Output: 465\n```",
    ),
}


def test_each_step_rescues_a_sample_that_fails_without_it() -> None:
    rows = []
    for step, (task_id, answer) in RESCUES.items():
        problem = HUMANEVAL[task_id]
        rows.append((task_id, extract_completion(problem, answer, "chat")[0]))
        rows.append((task_id, extract_completion(problem, answer, "chat", disabled={step})[0]))
        rows.append((task_id, naive_completion(problem, answer)))
    verdicts = _verdicts(HUMANEVAL, rows)
    for number, step in enumerate(RESCUES):
        sanitized, without_step, naive = verdicts[3 * number : 3 * number + 3]
        assert (step, sanitized, without_step, naive) == (step, True, False, False)
    assert set(RESCUES) == set(STEPS)


# -- real answers of the bundled model -----------------------------------------------------------------


def test_real_answers_parse_or_say_why(real) -> None:
    records, problems = real
    kinds = set()
    for record in records:
        problem = problems[record["task_id"]]
        extraction = sanitize(record["raw_output"], problem.entry_point, allow_body=problem.benchmark == "humaneval")
        kinds.add(extraction.kind)
        if extraction.kind in (ExtractionKind.OK, ExtractionKind.REPAIRED_INDENT):
            program = problem.prompt + extraction.code if extraction.body else extraction.code
            compile(program, record["task_id"], "exec")
            top = {type(node) for node in ast.parse(program).body}
            assert top <= {ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign}, record["task_id"]
        else:
            assert extraction.kind is ExtractionKind.SYNTAX_ERROR and extraction.code.strip(), record["task_id"]
    assert {ExtractionKind.OK, ExtractionKind.SYNTAX_ERROR} <= kinds


def test_real_answers_example_calls_are_dropped(real) -> None:
    records, problems = real
    with_calls = 0
    for record in records:
        problem = problems[record["task_id"]]
        naive = naive_completion(problem, record["raw_output"]).strip("\n")
        try:
            naive_calls = [n for n in ast.parse(naive).body if isinstance(n, ast.Expr)]
        except SyntaxError:
            continue
        if naive_calls:
            with_calls += 1
            sanitized = extract_code(record["raw_output"], problem.entry_point)
            assert not [n for n in ast.parse(sanitized).body if isinstance(n, ast.Expr | ast.If)], record["task_id"]
            assert f"def {problem.entry_point}(" in sanitized
    assert with_calls >= 5


def test_real_answers_with_an_example_block_keep_the_solution_block() -> None:
    """Answers not cut at their first block (as a reasoning model's are not): SmolLM2 follows its
    solution with an "Example usage:" block of prints, a runaway one included."""
    two_blocks = [r for r in _real_answers() if len(fenced_blocks(r["raw_output"])) == 2]
    assert len(two_blocks) == 3
    for record in two_blocks:
        problem = HUMANEVAL[record["task_id"]]
        code = extract_code(record["raw_output"], problem.entry_point)
        assert code == fenced_blocks(record["raw_output"])[0] and "print(" not in code


def test_real_answers_in_the_sandbox_lose_nothing_the_naive_rule_passed(real) -> None:
    records, problems = real
    rows = []
    for record in records:
        problem = problems[record["task_id"]]
        rows.append((problem.task_id, extract_completion(problem, record["raw_output"], "chat")[0]))
        rows.append((problem.task_id, naive_completion(problem, record["raw_output"])))
    verdicts = _verdicts(problems, rows)
    sanitized, naive = verdicts[0::2], verdicts[1::2]
    assert sum(sanitized) >= 9  # the tasks that passed, whichever rule
    lost = [r["task_id"] for r, s, n in zip(records, sanitized, naive, strict=True) if n and not s]
    assert lost == []


# -- the extraction kind in the completions table ------------------------------------------------------


class ScriptedReasoner(LLMClient):
    """Stands in for a reasoning model behind a server (Qwen3-Thinking is not runnable here): answers
    with a trace closed by `</think>` (its template opened it), or a trace cut off; records the
    stop sequences it was given."""

    backend = "scripted"

    def __init__(self, answers: dict[str, str]) -> None:
        super().__init__("thinker")
        self.answers, self.stops = answers, []

    def _complete(self, prompt: str, params: SamplingParams) -> Completion:
        raise AssertionError("chat style only")

    def _chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        self.stops.append(params.stop)
        text = next(a for key, a in self.answers.items() if key in messages[-1].content)
        return Completion(text, prompt_tokens=10, completion_tokens=20, latency_s=0.01, finish_reason="stop")


def test_completions_carry_the_extraction_kind_and_reasoning_models_are_not_cut(tmp_path: Path) -> None:
    problems = [HUMANEVAL["HumanEval/53"], HUMANEVAL["HumanEval/60"]]
    client = ScriptedReasoner({
        "def add": (
            "Adding: ```python\nx - y\n```\n</think>\n\n"
            "```python\ndef add(x: int, y: int) -> int:\n    return x + y\n```"
        ),
        "def sum_to_n": "The sum of 1..n is",  # cut by max_tokens mid-reasoning
    })
    settings = GenerationSettings("thinker", "chat", max_tokens=4096, reasoning=True)
    records, _ = generate_completions(client, problems, settings, tmp_path / "journal.jsonl")
    assert [r["extraction"] for r in records] == ["ok", "unclosed_reasoning"]
    assert client.stops == [(), ()]  # a code block in the reasoning must not end the answer
    assert _verdicts(HUMANEVAL, [(r["task_id"], r["completion"]) for r in records]) == [True, False]
    chat = GenerationSettings("smollm2", "chat")
    assert not chat.reasoning and chat.extraction_reasoning() == Reasoning()


def test_journaled_answers_are_extracted_again(tmp_path: Path) -> None:
    """A journal written by an older extraction (or other markers) gets today's completions; no
    answer is generated again, and the settings of journals written before keep their fingerprint."""
    settings = GenerationSettings(model="smollm2", style="chat", max_tokens=384)
    legacy = {"model": "smollm2", "style": "chat", "temperature": 0.0, "top_p": 0.95, "max_tokens": 384, "seed": 1234}
    assert settings.fingerprint() == hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()[:16]
    problem = SUM_TO_N
    answer = RESCUES["prune"][1]
    journal = tmp_path / "completions.jsonl"
    stale = {"task_id": problem.task_id, "sample_index": 0, "completion": naive_completion(problem, answer),
             "raw_output": answer, "fingerprint": settings.fingerprint()}
    journal.write_text(json.dumps(stale) + "\n")
    never = ScriptedReasoner({})
    records, new = generate_completions(never, [problem], settings, journal)
    assert new == 0 and never.stops == []
    assert records[0]["completion"] == extract_completion(problem, answer, "chat")[0] != stale["completion"]
    assert records[0]["extraction"] == "ok"
    assert read_journal(journal, settings.fingerprint())[(problem.task_id, 0)]["raw_output"] == answer
    thinking = replace(settings, reasoning=True)
    assert thinking.fingerprint() != settings.fingerprint()  # generation changes: no stop sequences
    assert replace(settings, reasoning_markers=("[T]", "[/T]")).fingerprint() == settings.fingerprint()
    with pytest.raises(ValueError, match="distinct"):
        GenerationSettings("smollm2", "chat", reasoning_markers=("", "</think>"))


def test_registry_declares_reasoning_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from june_pipelines.registry import RegistryError, get_model

    registry = tmp_path / "models.yaml"
    registry.write_text(
        "models:\n  thinker:\n    reasoning: true\n    reasoning_markers: ['<reason>', '</reason>']\n  plain: {}\n"
    )
    thinker, plain = get_model("thinker", registry), get_model("plain", registry)
    assert thinker.reasoning and thinker.reasoning_markers == ("<reason>", "</reason>")
    assert not plain.reasoning and plain.reasoning_markers == ("<think>", "</think>")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  thinker:\n    reasoning_markers: '<think>'\n")
    with pytest.raises(RegistryError, match="reasoning_markers"):
        get_model("thinker", bad)


def test_humanevalplus_answers_follow_the_prompt_as_humaneval_ones_do() -> None:
    from shared_data import SHARED_DATA

    source = SHARED_DATA / "evalplus" / "HumanEvalPlus-v0.1.10.jsonl.gz"
    if not source.exists():
        pytest.skip(f"HumanEval+ release file not found at {source} (set JUNE_SHARED_DATA)")
    problem = next(p for p in load_problems("humanevalplus", str(source))[0] if p.task_id == "HumanEval/53")
    completion, kind = extract_completion(problem, RESCUES["indent"][1], "chat")
    assert completion == "    return x + y" and kind is ExtractionKind.REPAIRED_INDENT
    namespace: dict = {}
    exec(compile(problem.prompt + completion + "\n", problem.task_id, "exec"), namespace)
    assert namespace["add"](2, 3) == 5
