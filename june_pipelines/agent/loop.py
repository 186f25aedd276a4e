"""The agent: a direct one-sentence answer, or a bounded think -> plan -> act -> reflect loop.

The loop is deliberately explicit and knows no tool by name: every tool is a `ToolSpec` in the
agent's registry (june_pipelines.agent.tools.default_tools). `think` states what the question needs
(from the decision); `plan` asks each tool's spec for its argument (rules first; the LLM writes code
or a `CALC:` line when the rules cannot); `act` runs the calls, each within its spec's timeout and
only where the tool policy allows; `reflect` checks the observations and, while steps and time
remain, lets a failed tool's spec propose one recovery (a repaired program, Python for arithmetic).
The reply is composed from the observations by the specs, so a small model cannot garble a correct
result. Every step is recorded with its duration.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from june_pipelines.agent import tools as T
from june_pipelines.agent.decision import Decision, decide
from june_pipelines.agent.registry import ToolCall, ToolContext, ToolPolicy, ToolRegistry, ToolSpec, UnknownTool

if TYPE_CHECKING:
    from june_pipelines.agent.memory import ConversationMemory
    from june_pipelines.inference.base import LLMClient, Role
    from june_pipelines.sandboxes.resources import SandboxResource

SYSTEM = "Answer the user's question in one short English sentence."


@dataclass
class AgentReply:
    text: str
    decision: Decision
    steps: list[dict[str, Any]] = field(default_factory=list)
    observations: list[T.Observation] = field(default_factory=list)
    llm_ms: float = 0.0
    tools_ms: float = 0.0

    @property
    def tools(self) -> list[str]:
        return [o.tool for o in self.observations if not o.data.get("denied")]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def first_sentences(text: str, n: int = 2, max_chars: int = 300) -> str:
    """The first `n` distinct sentences, with a small model's loops ("merci, merci, merci") cut."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\b(\w[\w' ]{0,30}?)(?:[,;]? \1\b){2,}", r"\1", text, flags=re.I)
    parts: list[str] = []
    for part in _SENTENCE_END.split(text):
        if part and part.lower() not in {p.lower() for p in parts}:
            parts.append(part)
    out = " ".join(parts[:n]).strip()
    if len(out) > max_chars:
        out = out[:max_chars].rsplit(" ", 1)[0] + "..."
    return out


class ToolTimeout(Exception):
    pass


def call_with_timeout(fn: Callable[[], T.Observation], timeout_s: float) -> T.Observation:
    """Run an in-process tool in a daemon thread, so that one which hangs (a database that stopped
    answering) costs the turn its timeout, and cannot keep the process from exiting either."""
    done = threading.Event()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="june-tool", daemon=True).start()
    if not done.wait(timeout_s):
        raise ToolTimeout(f"it took longer than {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class Agent:
    def __init__(
        self,
        llm: LLMClient | None,
        memory: ConversationMemory | None = None,
        sandbox: SandboxResource | None = None,
        max_steps: int = 4,
        time_budget_s: float = 30.0,
        direct_max_tokens: int = 40,
        direct_sentences: int = 1,
        code_timeout_s: float = 5.0,
        clock: Callable[[], Any] | None = None,
        tools: ToolRegistry | None = None,
        policy: ToolPolicy = ToolPolicy(),  # noqa: B008 - frozen, shared safely
    ) -> None:
        self.llm = llm
        self.memory = memory
        self.sandbox = sandbox
        self.max_steps = max_steps
        self.time_budget_s = time_budget_s
        self.direct_max_tokens = direct_max_tokens
        self.direct_sentences = direct_sentences
        self.clock = clock
        self.tools = tools if tools is not None else T.default_tools(code_timeout_s)
        self.policy = policy
        self.warm_sandbox = T.WarmSandbox(sandbox) if sandbox is not None else None
        self._close_lock = threading.Lock()

    def close(self) -> None:
        """Stop the sandbox workers the agent started. Idempotent."""
        with self._close_lock:
            if self.warm_sandbox is not None:
                self.warm_sandbox.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the decision --------------------------------------------------------------------------
    def decide(self, text: str, user_key: str | None = None) -> Decision:
        """Direct or agentic, with the tools this user may not use moved to `denied`."""
        return self._permitted(decide(text, self.llm, self.tools), user_key)

    def _permitted(self, decision: Decision, user_key: str | None) -> Decision:
        allowed: list[str] = []
        denied = list(decision.denied)
        for name in decision.tools:
            why = self.policy.refusal(self.tools.get(name), user_key)
            if why is None:
                allowed.append(name)
            else:
                denied.append((name, why))
        if len(allowed) == len(decision.tools):
            return decision
        heavy = any(self.tools.get(name).heavy for name in allowed)
        return replace(decision, tools=tuple(allowed), heavy=heavy, denied=tuple(denied))

    def respond(self, user_key: str, text: str, decision: Decision | None = None) -> AgentReply:
        t0 = time.perf_counter()
        decision = self._permitted(decision or self.decide(text, user_key), user_key)
        if decision.kind == "direct":
            reply = self._direct(user_key, text, decision)
        else:
            reply = self._loop(user_key, text, decision)
        reply.steps.insert(0, {"stage": "decide", "text": f"{decision.kind}: {decision.reason}", "ms": 0.0})
        reply.steps.append({"stage": "total", "ms": round((time.perf_counter() - t0) * 1000, 1)})
        return reply

    # -- LLM helpers ---------------------------------------------------------------------------
    def _chat(self, messages: list[tuple[Role, str]], max_tokens: int, stop: tuple[str, ...] = ()) -> tuple[str, float]:
        from june_pipelines.inference.base import ChatMessage, SamplingParams

        if self.llm is None:
            return "", 0.0
        t = time.perf_counter()
        out = self.llm.chat(
            [ChatMessage(role, content) for role, content in messages],
            SamplingParams(max_tokens=max_tokens, temperature=0.0, stop=stop),
        )
        return out.text, (time.perf_counter() - t) * 1000

    def _direct(self, user_key: str, text: str, decision: Decision) -> AgentReply:
        reply = AgentReply("", decision)
        if not text.strip():
            reply.text = "I didn't catch anything. Could you say that again?"
            return reply
        if self.llm is None:
            reply.text = "I heard you say: " + text.strip()
            return reply
        messages: list[tuple[Role, str]] = [("system", SYSTEM)]
        if self.memory is not None:
            for said, replied in self.memory.history(user_key, n=1):
                messages += [("user", said[:300]), ("assistant", replied[:300])]
        messages.append(("user", text.strip()[:1000]))
        # For a one-sentence answer, stop generating at the first sentence end: the stop string is
        # cut from the output, so the full stop comes back below.
        stop = (". ", "! ", "? ", "\n") if self.direct_sentences == 1 else ("\n\n",)
        out, ms = self._chat(messages, self.direct_max_tokens, stop=stop)
        reply.llm_ms += ms
        text = first_sentences(out, self.direct_sentences)
        if text and text[-1] not in ".!?\"')":
            text += "."
        reply.text = text or "Sorry, I don't have a good answer to that."
        reply.steps.append({"stage": "answer", "text": reply.text, "ms": round(ms, 1)})
        return reply

    # -- the agentic loop ----------------------------------------------------------------------
    def _context(self, user_key: str, text: str, reply: AgentReply) -> ToolContext:
        def ask(prompt: str, max_tokens: int, note: str | None = None) -> str:
            out, ms = self._chat([("user", prompt)], max_tokens)
            reply.llm_ms += ms
            if note:
                reply.steps.append({"stage": "plan", "text": note, "ms": round(ms, 1)})
            return out

        def can_use(tool: str) -> bool:
            return tool in self.tools and self.policy.refusal(self.tools.get(tool), user_key) is None

        return ToolContext(
            user_key=user_key, text=text, memory=self.memory, sandbox=self.warm_sandbox, clock=self.clock,
            ask=ask, can_use=can_use, has_llm=self.llm is not None,
        )

    def _act(self, call: ToolCall, ctx: ToolContext) -> T.Observation:
        """Run one call: known tool, allowed for this user, a valid argument, within its timeout."""
        try:
            spec = self.tools.get(call.tool)
        except UnknownTool as exc:
            return T.Observation(call.tool, call.arg, False, str(exc.args[0]))
        why = self.policy.refusal(spec, ctx.user_key)
        if why is not None:
            return _refused(spec.name, why)
        problem = spec.argument.problem(call.arg)
        if problem is not None:
            return T.Observation(spec.name, call.arg, False, problem)
        ctx = replace(ctx, timeout_s=spec.timeout_s)
        t = time.perf_counter()
        try:
            if spec.enforces_timeout:
                return spec.run(call.arg, ctx)
            return call_with_timeout(lambda: spec.run(call.arg, ctx), spec.timeout_s)
        except ToolTimeout as exc:
            return T.Observation(spec.name, call.arg, False, str(exc), (time.perf_counter() - t) * 1000)
        except Exception as exc:  # noqa: BLE001 - a tool that breaks is an observation, not a crash
            return T.Observation(spec.name, call.arg, False, f"the {spec.name} tool failed: {exc}",
                                 (time.perf_counter() - t) * 1000)

    def _loop(self, user_key: str, text: str, decision: Decision) -> AgentReply:
        reply = AgentReply("", decision)
        ctx = self._context(user_key, text, reply)
        deadline = time.perf_counter() + self.time_budget_s
        needs = ", ".join(decision.tools) or "a tool"
        reply.steps.append({"stage": "think", "text": f"This needs {needs}: {decision.reason}.", "ms": 0.0})
        for name, why in decision.denied:
            reply.observations.append(_refused(name, why))
            reply.steps.append({"stage": "think", "text": f"{name} is not allowed here: {why}", "ms": 0.0})
        t = time.perf_counter()
        queue: list[ToolCall] = []
        for name in decision.tools:
            arg = self.tools.get(name).plan(text, ctx)
            if arg is not None:
                queue.append(ToolCall(name, arg))
        planned = "; ".join(f"{c.tool}({c.arg[:60]!r})" for c in queue) or "nothing to do"
        reply.steps.append({"stage": "plan", "text": planned, "ms": round((time.perf_counter() - t) * 1000, 1)})
        steps = 0
        recovered: set[str] = set()
        while queue and steps < self.max_steps and time.perf_counter() < deadline:
            call = queue.pop(0)
            obs = self._act(call, ctx)
            steps += 1
            reply.tools_ms += obs.duration_ms
            reply.observations.append(obs)
            reply.steps.append({"stage": "act", "tool": call.tool, "arg": call.arg[:500], "ok": obs.ok,
                                "text": obs.value[:500], "ms": round(obs.duration_ms, 1)})
            note = f"{call.tool} succeeded" if obs.ok else f"{call.tool} failed: {obs.value[:200]}"
            if not obs.ok and call.tool not in recovered and steps < self.max_steps and time.perf_counter() < deadline:
                spec = self.tools.get(call.tool) if call.tool in self.tools else None
                proposal = spec.recover(obs, ctx) if spec is not None and spec.recover is not None else None
                if proposal is not None and proposal[0].tool not in {c.tool for c in queue}:
                    recovered.add(call.tool)
                    queue.insert(0, proposal[0])
                    note = proposal[1]
            reply.steps.append({"stage": "reflect", "text": note, "ms": 0.0})
        if queue:
            reply.steps.append({"stage": "reflect", "text": "stopped: out of steps or time", "ms": 0.0})
        if reply.observations:
            reply.text = self._compose(reply.observations)
        else:
            reply.text = self._fallback(user_key, text, reply)
        return reply

    def _fallback(self, user_key: str, text: str, reply: AgentReply) -> str:
        direct = self._direct(user_key, text, reply.decision)
        reply.llm_ms += direct.llm_ms
        return direct.text

    def _compose(self, observations: list[T.Observation]) -> str:
        last: dict[str, T.Observation] = {}
        for o in observations:
            last[o.tool] = o  # a repaired run replaces the failed one
        parts: list[str] = []
        for tool, o in last.items():
            denied = o.data.get("denied")
            if denied:
                parts.append(f"I can't use the {tool} tool for you here: {denied}.")
            else:
                spec: ToolSpec | None = self.tools.get(tool) if tool in self.tools else None
                parts.append(spec.compose(o) if spec is not None else f"{tool}: {o.value}")
        return " ".join(parts)


def _refused(tool: str, why: str) -> T.Observation:
    return T.Observation(tool, "", False, f"not allowed: {why}", data={"denied": why})
