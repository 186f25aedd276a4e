"""The agent: the decision step, tools, the bounded loop, and persisted per-user memory."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from june_pipelines.agent.decision import decide_by_rules
from june_pipelines.agent.loop import Agent, first_sentences
from june_pipelines.agent.memory import ConversationMemory, TurnRecord
from june_pipelines.agent.tools import calc, safe_eval, spoken_to_expression


@pytest.mark.parametrize(
    "text,kind,tools",
    [
        ("What is the capital of France?", "direct", ()),
        ("Tell me a joke", "direct", ()),
        ("What is seventeen times twenty three?", "agentic", ("calc",)),
        ("What time is it?", "agentic", ("now",)),
        ("What did I ask you earlier?", "agentic", ("recall",)),
        ("Please write a Python program that prints the first ten primes.", "agentic", ("python",)),
        ("Run this:\n```python\nprint(1)\n```", "agentic", ("python",)),
    ],
)
def test_decision_rules(text, kind, tools):
    d = decide_by_rules(text)
    assert (d.kind, d.tools) == (kind, tools)
    assert d.heavy == ("python" in tools)


def test_rules_defer_to_the_llm_when_unsure(smollm2_client):
    assert decide_by_rules("How many legs does a spider have?") is None
    d = Agent(smollm2_client).decide("How many legs does a spider have?")
    assert d.kind in ("direct", "agentic")


def test_arithmetic_tool():
    assert spoken_to_expression("What is three hundred and twelve divided by four?") == "312 / 4"
    assert calc("What is 15 percent of 80").value == "12"
    assert calc("square root of 144").value == "12"
    assert not calc("2 ** 100000").ok
    with pytest.raises(ValueError):
        safe_eval("__import__('os').system('true')")


def test_loop_with_tools_and_memory(smollm2_client, tmp_path):
    path = tmp_path / "memory.sqlite"
    memory = ConversationMemory(path)
    clock = lambda: datetime(2026, 3, 4, 15, 30, tzinfo=UTC)  # noqa: E731
    agent = Agent(smollm2_client, memory=memory, clock=clock)
    r = agent.respond("u1", "What is 17 times 23?")
    assert r.decision.kind == "agentic" and "391" in r.text and r.tools == ["calc"]
    assert [s["stage"] for s in r.steps][:5] == ["decide", "think", "plan", "act", "reflect"]
    memory.record(TurnRecord("u1", "My favourite colour is green.", "Nice!"))
    memory.record(TurnRecord("u2", "My favourite colour is red.", "Nice!"))
    assert "15:30" in agent.respond("u1", "What time is it?").text
    # Memory is persisted and per user.
    again = Agent(smollm2_client, memory=ConversationMemory(path))
    recalled = again.respond("u1", "What did I say earlier about my favourite colour?")
    assert "green" in recalled.text and "is red" not in recalled.text


def test_python_tool_in_the_sandbox(smollm2_client):
    from june_pipelines.sandboxes.resources import ProcessSandboxResource

    with Agent(smollm2_client, sandbox=ProcessSandboxResource(), max_steps=3, time_budget_s=60) as agent:
        r = agent.respond("u", "Run this python:\n```python\nprint(sum(range(10)))\n```")
        assert r.decision.heavy and "45" in r.text
        agent.max_steps = 1  # no repair round: a 160-token repair takes 10-30 s on a busy 2-core machine
        failing = agent.respond("u", "Run this python:\n```python\nraise ValueError('boom')\n```")
        assert "failed" in failing.text or "printed" in failing.text
        assert sum(1 for s in failing.steps if s["stage"] == "act") == 1  # bounded by max_steps


def test_direct_answer_is_short(smollm2_client):
    r = Agent(smollm2_client).respond("u", "What is the capital of France?")
    assert r.decision.kind == "direct" and 0 < len(r.text) <= 303


def test_text_helpers():
    from june_pipelines.evals.prompts import extract_code  # the one extraction, shared with evaluation

    assert extract_code("Sure:\n```python\nprint(2)\n```", "") == "print(2)"
    assert extract_code("```python\nprint(3)", "") == "print(3)"  # unterminated
    assert first_sentences("Yes. Yes. Yes. No.") == "Yes. No."
