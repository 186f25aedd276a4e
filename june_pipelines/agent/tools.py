"""The agent's tools: arithmetic, the current date/time, recall of earlier turns, Python in the sandbox.

Each tool takes one string argument and returns an `Observation`; none raises on bad input.
Spoken arithmetic ("seventeen times twenty three", "square root of 144") is turned into an
expression first, then evaluated by a small AST interpreter (no `eval`).
"""

from __future__ import annotations

import ast
import math
import operator
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from june_pipelines.agent.memory import ConversationMemory
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
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
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
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
            args = [ev(a) for a in node.args]
            if node.func.id == "factorial" and args and args[0] > 1000:
                raise ValueError("factorial argument too large")
            return _FUNCS[node.func.id](*args)
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
        return Observation("recall", query, False, "nothing earlier in our conversation matches", (time.perf_counter() - t) * 1000)
    value = " | ".join(f"you said: {said!r}; I answered: {replied!r}" for said, replied, _ in hits)
    return Observation("recall", query, True, value, (time.perf_counter() - t) * 1000)


# -- python in the sandbox ------------------------------------------------------------------------


def run_python(sandbox: SandboxResource | None, code: str, timeout_s: float = 5.0) -> Observation:
    """Run `code` in the sandbox; the observation holds its output (stdout and stderr)."""
    t = time.perf_counter()
    if sandbox is None:
        return Observation("python", code, False, "no sandbox is configured; I cannot run code here")
    from dataclasses import replace

    from june_pipelines.sandboxes.base import Program

    limits = replace(sandbox.limits(), timeout_s=timeout_s)
    try:
        with sandbox.open() as backend:
            verdict = backend.run([Program(id="agent", solution=code, test="pass")], limits)[0]
    except Exception as exc:  # noqa: BLE001 - the sandbox failing is an observation, not a crash
        return Observation("python", code, False, f"the sandbox failed: {exc}", (time.perf_counter() - t) * 1000)
    output = (getattr(verdict, "output", "") or "").strip()
    ok = verdict.passed
    value = output if ok else (verdict.result + (f"\n{output}" if output else ""))
    return Observation(
        "python", code, ok, value[:2000], (time.perf_counter() - t) * 1000, {"status": verdict.status.value}
    )
