"""The decision step: answer directly, or run the agentic loop with tools.

Rules first (they are cheap, predictable and testable); the LLM is asked only when the rules see
a hint of work to do but cannot tell which tool. A small model (SmolLM2-135M) is unreliable at
classification, so its answer is parsed defensively and anything unclear means "direct".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from june_pipelines.agent.tools import spoken_to_expression

if TYPE_CHECKING:
    from june_pipelines.inference.base import LLMClient

HEAVY_TOOLS = frozenset({"python"})  # tools that justify handing the turn to a Dagster run

_CODE = re.compile(
    r"```|\b(?:write|run|execute|code|program|script|implement)\b.{0,40}\b(?:python|program|code|script|function)\b"
    r"|\bpython\b.{0,30}\b(?:program|code|script|print|compute|calculate)\b|\bin python\b",
    re.I | re.S,
)
_TIME = re.compile(
    r"\b(?:what(?:'s| is)? the time|what time|time is it|current time|the date|today'?s date|what day"
    r"|which day|date today|day is it|day of the week|what year|current date)\b",
    re.I,
)
_RECALL = re.compile(
    r"\b(?:what did i (?:say|ask|tell)|did i (?:say|ask|mention|tell)|i (?:said|asked|told you|mentioned)"
    r"|earlier|remind me what|you remember|do you remember|last time|previous(?:ly)?|before)\b",
    re.I,
)
_HINT = re.compile(r"\b(?:calculate|compute|how many|how much|sum of|average|convert|step by step|plan)\b", re.I)


@dataclass(frozen=True)
class Decision:
    kind: str  # "direct" | "agentic"
    reason: str
    tools: tuple[str, ...] = ()

    @property
    def heavy(self) -> bool:
        return bool(HEAVY_TOOLS & set(self.tools))


def decide_by_rules(text: str) -> Decision | None:
    """The rule-based decision, or None when the rules are unsure."""
    t = text.strip()
    if not t:
        return Decision("direct", "empty message")
    if _CODE.search(t):
        return Decision("agentic", "asks for code to be written or run", ("python",))
    tools: list[str] = []
    if spoken_to_expression(t):
        tools.append("calc")
    if _TIME.search(t):
        tools.append("now")
    if _RECALL.search(t):
        tools.append("recall")
    if tools:
        return Decision("agentic", "needs " + ", ".join(tools), tuple(tools))
    if _HINT.search(t):
        return None
    return Decision("direct", "conversational question")


def decide(text: str, llm: LLMClient | None = None) -> Decision:
    ruled = decide_by_rules(text)
    if ruled is not None:
        return ruled
    if llm is None:
        return Decision("direct", "no rule matched and no LLM to ask")
    from june_pipelines.inference.base import ChatMessage, SamplingParams

    prompt = (
        "Does answering this need a calculator or running Python code? Reply with one word: CALC, PYTHON or NO.\n"
        f"Question: {text.strip()[:300]}"
    )
    out = llm.chat([ChatMessage("user", prompt)], SamplingParams(max_tokens=4, temperature=0.0)).text.upper()
    if "PYTHON" in out:
        return Decision("agentic", "the model asked for Python", ("python",))
    if "CALC" in out:
        return Decision("agentic", "the model asked for the calculator", ("calc",))
    return Decision("direct", f"the model said {out.strip()[:20]!r}")
