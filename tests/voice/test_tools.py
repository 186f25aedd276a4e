"""The tool registry: a tool is one spec; the policy decides who may use it; the executor bounds it."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from june_pipelines.agent.decision import decide_by_rules
from june_pipelines.agent.loop import Agent
from june_pipelines.agent.registry import (
    Access,
    Permissions,
    ToolArgument,
    ToolPolicy,
    ToolRegistry,
    ToolSpec,
    UnknownTool,
)
from june_pipelines.agent.tools import DEFAULT_TOOLS, Observation, default_tools
from june_pipelines.sandboxes.resources import ProcessSandboxResource

PROGRAM = "Run this python:\n```python\ndef answer():\n    return 6 * 7\n\nprint(answer())\n```"


def reverse_tool(**changes) -> ToolSpec:
    import re

    spec = ToolSpec(
        name="reverse",
        description="Spell a word backwards.",
        argument=ToolArgument("word", "the word", max_chars=20),
        detect=lambda text: "backwards" in text.lower(),
        plan=lambda text, ctx: (re.findall(r"'(\w+)'", text) or [""])[0],
        run=lambda arg, ctx: Observation("reverse", arg, True, arg[::-1]),
        compose=lambda o: f"{o.arg} backwards is {o.value}.",
    )
    return dataclasses.replace(spec, **changes)


def test_a_new_tool_is_one_spec():
    registry = ToolRegistry([*DEFAULT_TOOLS, reverse_tool()])
    agent = Agent(None, tools=registry)
    decision = agent.decide("Spell 'june' backwards please")
    assert (decision.kind, decision.tools, decision.heavy) == ("agentic", ("reverse",), False)
    reply = agent.respond("u", "Spell 'june' backwards please")
    assert reply.text == "june backwards is enuj." and reply.tools == ["reverse"]
    assert [s["stage"] for s in reply.steps] == ["decide", "think", "plan", "act", "reflect", "total"]
    # Its argument schema is checked before it runs.
    long = agent.respond("u", "Spell 'abcdefghijklmnopqrstuvwxyz' backwards")
    assert not long.observations[0].ok and "too long" in long.observations[0].value
    assert registry.get("reverse").schema()["parameters"]["properties"]["word"]["maxLength"] == 20
    with pytest.raises(UnknownTool, match="unknown tool 'nope'"):
        registry.get("nope")
    with pytest.raises(ValueError, match="duplicate"):
        ToolRegistry([*DEFAULT_TOOLS, reverse_tool(), reverse_tool()])


def test_the_default_specs_describe_their_needs():
    assert DEFAULT_TOOLS.names() == ("calc", "now", "recall", "python")
    python = DEFAULT_TOOLS.get("python")
    assert python.permissions == Permissions(code_execution=True) and python.heavy and python.exclusive
    assert not any(DEFAULT_TOOLS.get(n).heavy for n in ("calc", "now", "recall"))
    assert default_tools(code_timeout_s=9).get("python").timeout_s == 9
    schema = python.schema()
    assert schema["name"] == "python" and schema["parameters"]["required"] == ["code"]
    # Code wins over the other rules; otherwise every matching tool is planned.
    assert decide_by_rules("Write a python program to compute 2 plus 2").tools == ("python",)
    assert decide_by_rules("What time is it and what is 2 plus 2?").tools == ("calc", "now")


def test_policy_refuses_code_execution_and_says_so():
    sandbox = ProcessSandboxResource()
    agent = Agent(None, sandbox=sandbox, policy=ToolPolicy(granted=Permissions()))
    decision = agent.decide(PROGRAM, user_key="telegram:1")
    assert decision.kind == "agentic" and decision.tools == () and not decision.heavy  # nothing to hand over
    assert decision.denied == (("python", "it needs code execution, which this deployment does not allow"),)
    reply = agent.respond("telegram:1", PROGRAM, decision)
    assert reply.text == ("I can't use the python tool for you here: it needs code execution, "
                          "which this deployment does not allow.")
    assert reply.tools == [] and agent.warm_sandbox.opened == 0  # no sandbox was started
    # Failed arithmetic does not fall back to Python when Python is not allowed.
    division = agent.respond("telegram:1", "What is 2 divided by 0?")
    assert division.tools == ["calc"] and division.text == "I couldn't work that out."
    assert agent.warm_sandbox.opened == 0


def test_access_is_per_platform_and_user():
    policy = ToolPolicy(access={"python": Access.only(platforms=["telegram"], users=["telegram:1"])})
    with Agent(None, sandbox=ProcessSandboxResource(), policy=policy) as agent:
        assert agent.decide(PROGRAM, user_key="telegram:1").tools == ("python",)
        assert agent.decide(PROGRAM, user_key="telegram:1").heavy
        assert agent.decide(PROGRAM, user_key="telegram:2").denied[0][1] == "you are not on its allowlist"
        assert agent.decide(PROGRAM, user_key="discord:1").tools == ()
        assert agent.decide(PROGRAM).tools == ()  # nobody in particular: not on the list either
        # A decision made elsewhere cannot smuggle a refused tool in.
        allowed = agent.decide(PROGRAM, user_key="telegram:1")
        refused = agent.respond("discord:1", PROGRAM, allowed)
        assert "can't use the python tool" in refused.text and agent.warm_sandbox.opened == 0
        assert "42" in agent.respond("telegram:1", PROGRAM, allowed).text
    assert Access.only(platforms=["discord"]).allows("discord:99") and not Access.only(users=[]).allows("x:1")


def test_in_process_tools_are_bounded_by_their_timeout():
    release = threading.Event()

    def stuck(arg, ctx):
        release.wait(60)
        return Observation("stuck", arg, True, "late")

    spec = reverse_tool(name="stuck", run=stuck, timeout_s=0.2, detect=lambda text: "stuck" in text)
    agent = Agent(None, tools=ToolRegistry([spec]))
    try:
        reply = agent.respond("u", "get stuck on 'x' backwards")
        (obs,) = reply.observations
        assert not obs.ok and obs.value == "it took longer than 0.2 s"
    finally:
        release.set()

    def broken(arg, ctx):
        raise RuntimeError("database went away")

    agent = Agent(None, tools=ToolRegistry([reverse_tool(run=broken)]))
    (obs,) = agent.respond("u", "Spell 'a' backwards").observations
    assert not obs.ok and obs.value == "the reverse tool failed: database went away"


def test_python_tool_keeps_one_warm_sandbox_and_closes_it():
    agent = Agent(None, sandbox=ProcessSandboxResource(workers=1))
    first = agent.respond("u", PROGRAM)
    second = agent.respond("u", "Run this python:\n```python\nimport os\nprint(os.getpid() > 0)\n```")
    assert "42" in first.text and "True" in second.text
    assert agent.warm_sandbox.opened == 1  # one backend for both calls, not a pool per call
    backend = agent.warm_sandbox._backend
    agent.close()
    agent.close()  # idempotent
    assert agent.warm_sandbox._backend is None and backend._closed
    after = agent.respond("u", PROGRAM)
    assert "the sandbox failed" in after.text and "closed" in after.text


def test_agent_runs_whole_programs_from_the_message():
    """The shared code extraction keeps a program's top-level statements (here the print)."""
    agent = Agent(None, sandbox=ProcessSandboxResource(workers=1))
    try:
        reply = agent.respond("u", PROGRAM)
        act = next(s for s in reply.steps if s["stage"] == "act")
        assert act["arg"].rstrip().endswith("print(answer())") and "42" in reply.text
        # Without code in a block and without an LLM there is no program to run, and the reply says so.
        vague = agent.respond("u", "Please write a Python program that prints the first ten primes.")
        assert vague.text == "I ran the program, but it failed: I could not write a program for that"
    finally:
        agent.close()
