"""The decision step: answer directly, or run the agentic loop with tools.

Rules first (they are cheap, predictable and testable): each tool's spec in the registry says
which messages ask for it. The LLM is asked only when the rules see a hint of work to do but
cannot tell which tool, and only about the tools whose spec offers it a keyword. A small model
(SmolLM2-135M) is unreliable at classification, so its answer is parsed defensively and anything
unclear means "direct".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from june_pipelines.agent.tools import DEFAULT_TOOLS

if TYPE_CHECKING:
    from june_pipelines.agent.registry import ToolRegistry
    from june_pipelines.inference.base import LLMClient

_HINT = re.compile(r"\b(?:calculate|compute|how many|how much|sum of|average|convert|step by step|plan)\b", re.I)


@dataclass(frozen=True)
class Decision:
    kind: str  # "direct" | "agentic"
    reason: str
    tools: tuple[str, ...] = ()
    heavy: bool = False  # a tool runs code: worth handing the turn to a Dagster run
    denied: tuple[tuple[str, str], ...] = ()  # (tool, why) the tool policy refused for this user


def _agentic(tools: tuple[str, ...], reason: str, registry: ToolRegistry) -> Decision:
    return Decision("agentic", reason, tools, heavy=any(registry.get(t).heavy for t in tools))


def decide_by_rules(text: str, tools: ToolRegistry = DEFAULT_TOOLS) -> Decision | None:
    """The rule-based decision, or None when the rules are unsure."""
    t = text.strip()
    if not t:
        return Decision("direct", "empty message")
    found = tools.detect(t)
    if found:
        return _agentic(found, "needs " + ", ".join(found), tools)
    if _HINT.search(t):
        return None
    return Decision("direct", "conversational question")


def decide(text: str, llm: LLMClient | None = None, tools: ToolRegistry = DEFAULT_TOOLS) -> Decision:
    ruled = decide_by_rules(text, tools)
    if ruled is not None:
        return ruled
    choices = tools.llm_choices()
    if llm is None or not choices:
        return Decision("direct", "no rule matched and no LLM to ask")
    from june_pipelines.inference.base import ChatMessage, SamplingParams

    keywords = ", ".join(c.llm_keyword for c in choices)
    prompt = (
        f"Does answering this need {' or '.join(c.llm_hint for c in choices)}? Reply with one word: {keywords} or NO.\n"
        f"Question: {text.strip()[:300]}"
    )
    out = llm.chat([ChatMessage("user", prompt)], SamplingParams(max_tokens=4, temperature=0.0)).text.upper()
    for spec in sorted(choices, key=lambda c: not c.exclusive):  # "PYTHON or CALC" means code
        if spec.llm_keyword in out:
            return _agentic((spec.name,), f"the model asked for {spec.llm_hint}", tools)
    return Decision("direct", f"the model said {out.strip()[:20]!r}")
