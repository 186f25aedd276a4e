"""The agent: a direct one-sentence answer, or a bounded think -> plan -> act -> reflect loop.

The loop is deliberately explicit. `think` states what the question needs (from the decision);
`plan` turns that into tool calls (rules first; the LLM writes code or a `CALC:` line when the rules
cannot); `act` runs them; `reflect` checks the observations and, while steps and time remain,
repairs a failed program once. The reply is composed from the observations, so a small model cannot
garble a correct result. Every step is recorded with its duration.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from june_pipelines.agent import tools as T
from june_pipelines.agent.decision import Decision, decide

if TYPE_CHECKING:
    from june_pipelines.agent.memory import ConversationMemory
    from june_pipelines.inference.base import LLMClient
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
        return [o.tool for o in self.observations]


_CODE_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.S | re.I)
_CALC_LINE = re.compile(r"CALC\s*:\s*(.+)", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def extract_code(text: str) -> str | None:
    """The first ```python block (closed or not), or None."""
    m = _CODE_BLOCK.search(text)
    if m and m.group(1).strip():
        return m.group(1).strip() + "\n"
    return None


def readable_expression(expr: str) -> str:
    """'17 * 23' -> '17 times 23': written and spoken replies read the same."""
    for op, word in (("**", " to the power of "), ("*", " times "), ("/", " divided by "), ("%", " modulo ")):
        expr = expr.replace(op, word)
    expr = re.sub(r"sqrt\((.*?)\)", r"the square root of \1", expr)
    return re.sub(r"\s+", " ", expr).strip()


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
    ) -> None:
        self.llm = llm
        self.memory = memory
        self.sandbox = sandbox
        self.max_steps = max_steps
        self.time_budget_s = time_budget_s
        self.direct_max_tokens = direct_max_tokens
        self.direct_sentences = direct_sentences
        self.code_timeout_s = code_timeout_s
        self.clock = clock

    # -- the decision --------------------------------------------------------------------------
    def decide(self, text: str, user_key: str | None = None) -> Decision:
        return decide(text, self.llm)

    def close(self) -> None:
        """Release what the agent opened. Idempotent."""

    def respond(self, user_key: str, text: str, decision: Decision | None = None) -> AgentReply:
        t0 = time.perf_counter()
        decision = decision or self.decide(text)
        reply = self._direct(user_key, text, decision) if decision.kind == "direct" else self._loop(user_key, text, decision)
        reply.steps.insert(0, {"stage": "decide", "text": f"{decision.kind}: {decision.reason}", "ms": 0.0})
        reply.steps.append({"stage": "total", "ms": round((time.perf_counter() - t0) * 1000, 1)})
        return reply

    # -- LLM helpers ---------------------------------------------------------------------------
    def _chat(self, messages: list[tuple[str, str]], max_tokens: int, stop: tuple[str, ...] = ()) -> tuple[str, float]:
        from june_pipelines.inference.base import ChatMessage, SamplingParams

        if self.llm is None:
            return "", 0.0
        t = time.perf_counter()
        out = self.llm.chat(
            [ChatMessage(role, content) for role, content in messages],  # type: ignore[arg-type]
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
        messages: list[tuple[str, str]] = [("system", SYSTEM)]
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
    def _plan(self, text: str, decision: Decision, reply: AgentReply) -> list[tuple[str, str]]:
        plan: list[tuple[str, str]] = []
        for tool in decision.tools:
            if tool == "calc":
                expr = T.spoken_to_expression(text)
                if expr is None:
                    out, ms = self._chat(
                        [("user", f"Write the arithmetic as one line 'CALC: <expression>'.\nQuestion: {text[:300]}")],
                        32,
                    )
                    reply.llm_ms += ms
                    m = _CALC_LINE.search(out)
                    expr = m.group(1).strip().strip("`") if m else None
                if expr:
                    plan.append(("calc", expr))
            elif tool == "now":
                plan.append(("now", ""))
            elif tool == "recall":
                plan.append(("recall", text))
            elif tool == "python":
                code = extract_code(text) or self._write_code(text, reply)
                plan.append(("python", code or ""))
        return plan

    def _write_code(self, task: str, reply: AgentReply, error: str | None = None, code: str | None = None) -> str | None:
        if error:
            prompt = (
                f"This Python program failed.\n```python\n{code}```\nError: {error[-300:]}\n"
                "Reply with only the fixed program in a ```python block."
            )
        else:
            prompt = f"Write a short Python program that prints the answer. Reply with only a ```python block.\nTask: {task[:500]}"
        out, ms = self._chat([("user", prompt)], 160)
        reply.llm_ms += ms
        reply.steps.append({"stage": "plan", "text": "the model wrote a program", "ms": round(ms, 1)})
        return extract_code(out) or extract_code("```python\n" + out)

    def _act(self, user_key: str, tool: str, arg: str) -> T.Observation:
        if tool == "calc":
            return T.calc(arg)
        if tool == "now":
            return T.now(arg, clock=self.clock)
        if tool == "recall":
            return T.recall(self.memory, user_key, arg)
        if tool == "python":
            if not arg.strip():
                return T.Observation("python", "", False, "I could not write a program for that")
            return T.run_python(self.sandbox, arg, timeout_s=self.code_timeout_s)
        return T.Observation(tool, arg, False, f"unknown tool {tool!r}")

    def _loop(self, user_key: str, text: str, decision: Decision) -> AgentReply:
        reply = AgentReply("", decision)
        deadline = time.perf_counter() + self.time_budget_s
        reply.steps.append({"stage": "think", "text": f"This needs {', '.join(decision.tools)}: {decision.reason}.", "ms": 0.0})
        t = time.perf_counter()
        plan = self._plan(text, decision, reply)
        reply.steps.append({"stage": "plan", "text": "; ".join(f"{a}({b[:60]!r})" for a, b in plan) or "nothing to do", "ms": round((time.perf_counter() - t) * 1000, 1)})
        steps = 0
        queue = list(plan)
        repaired = False
        while queue and steps < self.max_steps and time.perf_counter() < deadline:
            tool, arg = queue.pop(0)
            obs = self._act(user_key, tool, arg)
            steps += 1
            reply.tools_ms += obs.duration_ms
            reply.observations.append(obs)
            reply.steps.append({"stage": "act", "tool": tool, "arg": arg[:500], "ok": obs.ok, "text": obs.value[:500], "ms": round(obs.duration_ms, 1)})
            # reflect
            if obs.ok:
                reply.steps.append({"stage": "reflect", "text": f"{tool} succeeded", "ms": 0.0})
            elif tool == "python" and arg.strip() and not repaired and steps < self.max_steps and time.perf_counter() < deadline and self.llm is not None:
                repaired = True
                fixed = self._write_code(text, reply, error=obs.value, code=arg)
                reply.steps.append({"stage": "reflect", "text": "the program failed; trying a repaired version", "ms": 0.0})
                if fixed and fixed.strip() != arg.strip():
                    queue.insert(0, ("python", fixed))
            elif tool == "calc" and "python" not in {q[0] for q in queue} and self.sandbox is not None and steps < self.max_steps:
                reply.steps.append({"stage": "reflect", "text": "the calculator failed; trying Python", "ms": 0.0})
                queue.insert(0, ("python", f"print({arg})\n"))
            else:
                reply.steps.append({"stage": "reflect", "text": f"{tool} failed: {obs.value[:200]}", "ms": 0.0})
        if queue:
            reply.steps.append({"stage": "reflect", "text": "stopped: out of steps or time", "ms": 0.0})
        reply.text = self._compose(text, reply.observations) if reply.observations else self._fallback(user_key, text, reply)
        return reply

    def _fallback(self, user_key: str, text: str, reply: AgentReply) -> str:
        direct = self._direct(user_key, text, reply.decision)
        reply.llm_ms += direct.llm_ms
        return direct.text

    @staticmethod
    def _compose(text: str, observations: list[T.Observation]) -> str:
        parts: list[str] = []
        last: dict[str, T.Observation] = {}
        for o in observations:
            last[o.tool] = o  # a repaired run replaces the failed one
        for tool, o in last.items():
            if tool == "calc":
                parts.append(f"{readable_expression(o.arg)} is {o.value}." if o.ok else "I couldn't work that out.")
            elif tool == "now":
                parts.append(f"It is {o.value}.")
            elif tool == "recall":
                parts.append(f"Earlier, {o.value}." if o.ok else "I don't find that earlier in our conversation.")
            elif tool == "python":
                if o.ok:
                    out = o.value.strip() or "(no output)"
                    parts.append(f"I ran the program. It printed: {out}")
                else:
                    parts.append(f"I ran the program, but it failed: {o.value.strip()[:300]}")
        return " ".join(parts)
