"""The agent's tools: arithmetic, the current date/time, recall of earlier turns, Python in the sandbox.

Each tool takes one string argument and returns an `Observation`; none raises on bad input.
Spoken arithmetic ("seventeen times twenty three", "square root of 144") is turned into an
expression first, then evaluated by a small AST interpreter (no `eval`). `default_tools()` at the
end describes each tool as a `ToolSpec` (june_pipelines.agent.registry): the rule that detects it,
how its argument is planned, how it runs, and how its result is said.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from june_pipelines.agent.registry import Permissions, ToolArgument, ToolCall, ToolContext, ToolRegistry, ToolSpec

if TYPE_CHECKING:
    from june_pipelines.agent.memory import ConversationMemory
    from june_pipelines.sandboxes.base import Limits, Program, SandboxBackend, Verdict
    from june_pipelines.sandboxes.resources import SandboxResource


@dataclass
class Observation:
    tool: str
    arg: str
    ok: bool
    value: str
    duration_ms: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


# -- arithmetic ---------------------------------------------------------------------------------

_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {
    w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER_WORD = "|".join(sorted(list(_UNITS) + list(_TENS) + list(_SCALES), key=len, reverse=True))


def _words_to_number(words: list[str]) -> int:
    total, current = 0, 0
    for w in words:
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w in _SCALES:
            total += max(current, 1) * _SCALES[w]
            current = 0
    return total + current


def _replace_number_words(text: str) -> str:
    pattern = re.compile(rf"\b(?:{_NUMBER_WORD})(?:[\s-]+(?:and\s+)?(?:{_NUMBER_WORD}))*\b")
    return pattern.sub(lambda m: str(_words_to_number(re.split(r"[\s-]+", m.group(0).replace(" and ", " ")))), text)


_PHRASES = [
    (r"\bsquare root of\s+([\d.]+)", r"sqrt(\1)"),
    (r"\b([\d.]+)\s+percent of\s+([\d.]+)", r"(\1/100*\2)"),
    (r"\b([\d.]+)\s+squared\b", r"(\1**2)"),
    (r"\b([\d.]+)\s+cubed\b", r"(\1**3)"),
    (r"\bto the power of\b", "**"),
    (r"\bmultiplied by\b|\btimes\b|×", "*"),
    (r"\bdivided by\b|\bover\b|÷", "/"),
    (r"\bplus\b|\badded to\b", "+"),
    (r"\bminus\b|\bsubtract(?:ed)?\b", "-"),
    (r"\bmod(?:ulo)?\b", "%"),
]
_EXPR = re.compile(r"(?:sqrt\()?[(\d.][\d\s.+\-*/%()^sqrt]*[\d)]")


def spoken_to_expression(text: str) -> str | None:
    """'What is seventeen times twenty-three?' -> '17 * 23'; None when there is no arithmetic."""
    s = text.lower().replace(",", "")
    s = _replace_number_words(s)
    for pat, rep in _PHRASES:
        s = re.sub(pat, f" {rep} " if not rep.startswith(("(", "sqrt")) else rep, s)
    s = re.sub(r"(\d)\s*x\s*(?=\d)", r"\1 * ", s).replace("^", "**")
    best = None
    for m in _EXPR.finditer(s):
        cand = re.sub(r"\s+", " ", m.group(0)).strip()
        if re.search(r"[+\-*/%]|sqrt", cand) and re.search(r"\d", cand):
            if best is None or len(cand) > len(best):
                best = cand
    return best


_BIN = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_FUNCS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "abs": abs, "round": round, "min": min, "max": max, "log": math.log,
    "log10": math.log10, "sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp,
    "floor": math.floor, "ceil": math.ceil, "factorial": math.factorial,
}
_CONSTS = {"pi": math.pi, "e": math.e}


def safe_eval(expr: str) -> float | int:
    """Evaluate arithmetic without `eval`: numbers, + - * / // % **, a few math functions."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 1000 or abs(left) > 1e6 and abs(right) > 10):
                raise ValueError("exponent too large")
            return _BIN[type(node.op)](left, right)
        if isinstance(node, ast.Name) and node.id in _CONSTS:
            return _CONSTS[node.id]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            name = node.func.id
            if name in _FUNCS:
                args = [ev(a) for a in node.args]
                if name == "factorial" and args and args[0] > 1000:
                    raise ValueError("factorial argument too large")
                return _FUNCS[name](*args)
        raise ValueError(f"unsupported expression element: {type(node).__name__}")

    return ev(ast.parse(expr.strip(), mode="eval"))


def format_number(value: float | int) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


def calc(arg: str) -> Observation:
    t = time.perf_counter()
    expr = arg if re.fullmatch(r"[\d\s.+\-*/%()a-z_,]*", arg.strip()) and not re.search(r"[a-z]{3,}\s", arg) else None
    expr = expr or spoken_to_expression(arg) or arg
    try:
        value = safe_eval(expr)
        ok, out = True, format_number(value)
    except (ValueError, SyntaxError, TypeError, ZeroDivisionError, OverflowError) as exc:
        ok, out = False, f"cannot evaluate {expr!r}: {exc}"
    return Observation("calc", expr, ok, out, (time.perf_counter() - t) * 1000)


# -- time -----------------------------------------------------------------------------------------


def now(arg: str = "", clock: Callable[[], datetime] | None = None) -> Observation:
    t = time.perf_counter()
    current = (clock or (lambda: datetime.now().astimezone()))()
    value = current.strftime("%A %d %B %Y, %H:%M") + (f" {current.tzname()}" if current.tzname() else "")
    return Observation("now", arg, True, value, (time.perf_counter() - t) * 1000, {"iso": current.isoformat()})


# -- recall ---------------------------------------------------------------------------------------


def recall(memory: ConversationMemory | None, user_key: str, query: str) -> Observation:
    t = time.perf_counter()
    if memory is None:
        return Observation("recall", query, False, "no conversation memory is configured")
    hits = memory.search(user_key, query, k=2)
    if not hits:
        ms = (time.perf_counter() - t) * 1000
        return Observation("recall", query, False, "nothing earlier in our conversation matches", ms)
    value = " | ".join(f"you said: {said!r}; I answered: {replied!r}" for said, replied, _ in hits)
    return Observation("recall", query, True, value, (time.perf_counter() - t) * 1000)


# -- python in the sandbox ------------------------------------------------------------------------


class WarmSandbox:
    """The agent's sandbox backend, opened on first use and kept for the agent's life.

    Opening a backend starts its pool of workers (for Docker, containers: 0.5-1 s each); doing that
    once per process instead of once per `python` call is what keeps the tool quick. A backend
    that raises is dropped and a fresh one opened on the next call. Thread-safe.
    """

    def __init__(self, resource: SandboxResource) -> None:
        self.resource = resource
        self.opened = 0  # how many backends were started (1 while all is well)
        self._backend: SandboxBackend | None = None
        self._lock = threading.Lock()
        self._closed = False

    def limits(self, timeout_s: float) -> Limits:
        from dataclasses import replace

        return replace(self.resource.limits(), timeout_s=timeout_s)

    def run(self, program: Program, limits: Limits) -> Verdict:
        backend = self._open()
        try:
            return backend.run([program], limits)[0]
        except Exception:
            self._discard(backend)
            raise

    def _open(self) -> SandboxBackend:
        with self._lock:
            if self._closed:
                raise RuntimeError("the agent's sandbox is closed")
            if self._backend is None:
                self._backend = self.resource.open()
                self.opened += 1
            return self._backend

    def _discard(self, backend: SandboxBackend) -> None:
        with self._lock:
            if self._backend is backend:
                self._backend = None
        backend.close()

    def close(self) -> None:
        """Stop the backend's workers. Idempotent; the sandbox cannot be used afterwards."""
        with self._lock:
            self._closed = True
            backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()


def run_python(sandbox: WarmSandbox | None, code: str, timeout_s: float = 5.0) -> Observation:
    """Run `code` in the sandbox; the observation holds its output (stdout and stderr)."""
    t = time.perf_counter()
    if sandbox is None:
        return Observation("python", code, False, "no sandbox is configured; I cannot run code here")
    from june_pipelines.sandboxes.base import Program

    try:
        verdict = sandbox.run(Program(id="agent", solution=code, test="pass"), sandbox.limits(timeout_s))
    except Exception as exc:  # noqa: BLE001 - the sandbox failing is an observation, not a crash
        return Observation("python", code, False, f"the sandbox failed: {exc}", (time.perf_counter() - t) * 1000)
    output = (getattr(verdict, "output", "") or "").strip()
    ok = verdict.passed
    value = output if ok else (verdict.result + (f"\n{output}" if output else ""))
    return Observation(
        "python", code, ok, value[:2000], (time.perf_counter() - t) * 1000, {"status": verdict.status.value}
    )


# -- the specs ------------------------------------------------------------------------------------

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
_CALC_LINE = re.compile(r"CALC\s*:\s*(.+)", re.I)


def readable_expression(expr: str) -> str:
    """'17 * 23' -> '17 times 23': written and spoken replies read the same."""
    for op, word in (("**", " to the power of "), ("*", " times "), ("/", " divided by "), ("%", " modulo ")):
        expr = expr.replace(op, word)
    expr = re.sub(r"sqrt\((.*?)\)", r"the square root of \1", expr)
    return re.sub(r"\s+", " ", expr).strip()


def _plan_calc(text: str, ctx: ToolContext) -> str | None:
    expr = spoken_to_expression(text)
    if expr is None and ctx.has_llm:
        out = ctx.ask(f"Write the arithmetic as one line 'CALC: <expression>'.\nQuestion: {text[:300]}", 32)
        m = _CALC_LINE.search(out)
        expr = m.group(1).strip().strip("`") if m else None
    return expr or None


def _calc_recover(obs: Observation, ctx: ToolContext) -> tuple[ToolCall, str] | None:
    if ctx.sandbox is None or not ctx.can_use("python"):
        return None
    return ToolCall("python", f"print({obs.arg})\n"), "the calculator failed; trying Python"


def _code(answer: str) -> str | None:
    from june_pipelines.evals.prompts import extract_code

    code = extract_code(answer, "").strip()
    return code + "\n" if code else None


def _write_code(ctx: ToolContext, task: str, error: str | None = None, code: str | None = None) -> str | None:
    if error:
        prompt = (
            f"This Python program failed.\n```python\n{code}```\nError: {error[-300:]}\n"
            "Reply with only the fixed program in a ```python block."
        )
    else:
        prompt = (
            "Write a short Python program that prints the answer. Reply with only a ```python block.\n"
            f"Task: {task[:500]}"
        )
    return _code(ctx.ask(prompt, 160, "the model wrote a program")) if ctx.has_llm else None


def _plan_python(text: str, ctx: ToolContext) -> str:
    """The program the user sent in a code block, else one the model writes."""
    given = _code(text) if "```" in text else None
    return given or _write_code(ctx, text) or ""


def _python_recover(obs: Observation, ctx: ToolContext) -> tuple[ToolCall, str] | None:
    if not obs.arg.strip() or not ctx.has_llm:
        return None
    fixed = _write_code(ctx, ctx.text, error=obs.value, code=obs.arg)
    if not fixed or fixed.strip() == obs.arg.strip():
        return None
    return ToolCall("python", fixed), "the program failed; trying a repaired version"


def _say_python(o: Observation) -> str:
    if o.ok:
        return f"I ran the program. It printed: {o.value.strip() or '(no output)'}"
    return f"I ran the program, but it failed: {o.value.strip()[:300]}"


def default_tools(code_timeout_s: float = 5.0) -> ToolRegistry:
    """June's tools. `python` runs code, so it alone is heavy (worth a Dagster run) and exclusive."""
    return ToolRegistry([
        ToolSpec(
            name="calc",
            description="Evaluate arithmetic (numbers, + - * / % **, sqrt and a few math functions).",
            argument=ToolArgument("expression", "an arithmetic expression such as 17 * 23", max_chars=500),
            detect=lambda text: spoken_to_expression(text) is not None,
            plan=_plan_calc,
            run=lambda arg, ctx: calc(arg),
            recover=_calc_recover,
            compose=lambda o: f"{readable_expression(o.arg)} is {o.value}." if o.ok else "I couldn't work that out.",
            timeout_s=2.0,
            llm_keyword="CALC",
            llm_hint="a calculator",
        ),
        ToolSpec(
            name="now",
            description="The current date and time.",
            argument=ToolArgument("format", "unused", required=False, max_chars=100),
            detect=lambda text: bool(_TIME.search(text)),
            run=lambda arg, ctx: now(arg, clock=ctx.clock),
            compose=lambda o: f"It is {o.value}.",
            timeout_s=1.0,
        ),
        ToolSpec(
            name="recall",
            description="Search what this user said earlier in the conversation (full-text).",
            argument=ToolArgument("query", "what to look for", max_chars=1000),
            detect=lambda text: bool(_RECALL.search(text)),
            plan=lambda text, ctx: text,
            run=lambda arg, ctx: recall(ctx.memory, ctx.user_key, arg),
            compose=lambda o: f"Earlier, {o.value}." if o.ok else "I don't find that earlier in our conversation.",
            timeout_s=5.0,
        ),
        ToolSpec(
            name="python",
            description="Run a short Python program in the sandbox (no network) and report what it printed.",
            argument=ToolArgument("code", "a complete Python program that prints its result", max_chars=20_000,
                                  missing="I could not write a program for that"),
            detect=lambda text: bool(_CODE.search(text)),
            plan=_plan_python,
            run=lambda arg, ctx: run_python(ctx.sandbox, arg, timeout_s=ctx.timeout_s),
            recover=_python_recover,
            compose=_say_python,
            timeout_s=code_timeout_s,
            permissions=Permissions(code_execution=True),
            exclusive=True,
            enforces_timeout=True,
            llm_keyword="PYTHON",
            llm_hint="running Python code",
        ),
    ])


DEFAULT_TOOLS = default_tools()
