"""The program in a chat or reasoning model's answer, ready to run (EvalPlus's sanitizer, June's way).

An answer is prose, fenced blocks, example calls and sometimes a reasoning trace; the sandbox needs
the solution only. `sanitize` takes these steps, in order (each one can be turned off, which is how
docs/BENCHMARKS.md measures what it rescues):

  reasoning  drop the reasoning (`<think>...</think>`, markers configurable); an answer that never
             closed it has no answer at all (`unclosed_reasoning`)
  block      among several fenced blocks, the one that defines the entry point, else the longest
             that parses (off: the first block)
  prose      an answer without a fence: the run of lines that parses, prose around it dropped
             (off: the whole answer)
  indent     repair indentation: a block indented as a whole, a bare function body (indented
             by any amount, its first line's indentation lost, or written at column 0)
  prune      keep the entry point and what it needs, transitively (helpers, classes, imports,
             module-level constants, names the tests use); drop example calls, prints, tests and
             `if __name__ == "__main__":` blocks

Only `ast`, `symtable` and `textwrap` from the standard library: no tree-sitter. When nothing parses,
the best-effort text comes back (kind `syntax_error`) so the sandbox reports the error; no answer
makes it raise.
"""

from __future__ import annotations

import ast
import re
import symtable
import textwrap
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

STEPS = ("reasoning", "block", "prose", "indent", "prune")

# Fence tags that mean Python (or say nothing); other tagged blocks (output, bash, json...) are
# candidates only when there is no Python block at all.
_PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3", "pycon", "ipython"})
# Module-level calls that configure the interpreter for the solution (deep recursion, big ints).
_SETUP_CALLS = frozenset({("sys", "setrecursionlimit"), ("sys", "set_int_max_str_digits")})
_OPENING_FENCE = re.compile(r"```[ \t]*([\w+.#-]*)[ \t]*$")
_CODE_LINE = re.compile(r"^\s*(?:def|class|import|from|return|async\s+def|@)\b")


class ExtractionKind(StrEnum):
    """How extraction went, per sample: `ok` and `repaired_indent` produced a program that parses;
    the others are failures of their own kind, counted apart from wrong programs."""

    OK = "ok"
    REPAIRED_INDENT = "repaired_indent"
    NO_CODE = "no_code"
    UNCLOSED_REASONING = "unclosed_reasoning"
    SYNTAX_ERROR = "syntax_error"


@dataclass(frozen=True)
class Reasoning:
    """Where a reasoning trace starts and ends. `always`: the model reasons before every answer
    (Qwen3-Thinking's chat template opens `<think>` itself, so its answers hold only the close
    marker), hence an answer without the close marker never finished its reasoning."""

    open: str = "<think>"
    close: str = "</think>"
    always: bool = False

    def __post_init__(self) -> None:
        if not self.open or not self.close or self.open == self.close:
            raise ValueError(f"reasoning markers must be two distinct non-empty strings: {self.open!r}, {self.close!r}")


@dataclass(frozen=True)
class Extraction:
    """`code` is a whole module, or, when `body` is true, a function body indented by four spaces
    (it follows a prompt that ends inside the function). `changed_by`: the steps that changed it."""

    code: str
    kind: ExtractionKind
    body: bool = False
    changed_by: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Code:
    text: str
    body: bool
    repaired: bool
    tree: ast.Module | None


def sanitize(
    answer: str,
    entry_point: str | None = None,
    *,
    keep: Collection[str] = (),
    allow_body: bool = True,
    reasoning: Reasoning = Reasoning(),  # noqa: B008 (frozen dataclass: an immutable default)
    disabled: Collection[str] = (),
) -> Extraction:
    """The program in `answer`. With an `entry_point`, the program is cut down to what it needs
    (plus the names in `keep`, e.g. those the tests use), and a bare function body is accepted
    when `allow_body` (the prompt ends inside that function's header). Without one (the agent's
    scripts) nothing is dropped but prose and reasoning. `disabled` turns steps off (`STEPS`)."""
    entry_point = entry_point or None  # "" (the agent's former call) means none
    unknown = set(disabled) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown sanitizer steps {sorted(unknown)}; expected some of {', '.join(STEPS)}")
    changed: set[str] = set()
    text = answer
    if "reasoning" not in disabled:
        stripped = strip_reasoning(answer, reasoning)
        if stripped is None:
            return Extraction("", ExtractionKind.UNCLOSED_REASONING, changed_by=frozenset({"reasoning"}))
        if stripped != answer:
            changed.add("reasoning")
        text = stripped
    repair = "indent" not in disabled
    body_ok = allow_body and entry_point is not None

    blocks = fenced_blocks(text)
    if blocks:
        pieces = blocks
        if "block" in disabled:
            pieces = blocks[:1]
    elif "prose" in disabled:
        pieces = [text.strip("\n")] if text.strip() else []
    else:
        pieces = _code_runs(text, body_ok, repair, entry_point)
        if pieces != [text.strip("\n")]:
            changed.add("prose")
        if not pieces and any(_CODE_LINE.match(line) for line in text.split("\n")):
            # Code-like lines, none of which parse: hand the sandbox the text from the first one.
            start = next(i for i, line in enumerate(text.split("\n")) if _CODE_LINE.match(line))
            pieces = ["\n".join(text.split("\n")[start:]).strip("\n")]
    pieces = [p for p in pieces if p.strip()]
    if not pieces:
        return Extraction("", ExtractionKind.NO_CODE, changed_by=frozenset(changed))

    parsed = [(piece, _as_code(piece, body_ok, repair, entry_point)) for piece in pieces]
    piece, code = _choose(parsed, entry_point)
    if len(blocks) > 1 and piece != blocks[0]:
        changed.add("block")
    if code is None:
        return Extraction(piece, ExtractionKind.SYNTAX_ERROR, changed_by=frozenset(changed))
    if code.repaired:
        changed.add("indent")
    result = code.text
    if "prune" not in disabled and entry_point is not None and code.tree is not None:
        pruned = prune(code.text, code.tree, {entry_point, *keep})
        if pruned is not None and pruned != code.text:
            changed.add("prune")
            result = pruned
    kind = ExtractionKind.REPAIRED_INDENT if code.repaired else ExtractionKind.OK
    return Extraction(result, kind, body=code.body, changed_by=frozenset(changed))


def strip_reasoning(answer: str, reasoning: Reasoning = Reasoning()) -> str | None:  # noqa: B008 (immutable)
    """The answer after its reasoning, or None when the reasoning was opened and never closed
    (or, for a model that `always` reasons, when the close marker never came)."""
    end = answer.rfind(reasoning.close)
    if end >= 0:
        after = answer[end + len(reasoning.close) :]
        if reasoning.open in after:  # a second trace opened after the last close, never closed
            after = after[: after.index(reasoning.open)]
            return after if after.strip() else None
        return after
    if reasoning.open in answer:
        before = answer[: answer.index(reasoning.open)]
        return before if before.strip() else None
    return None if reasoning.always else answer


def fenced_blocks(text: str) -> list[str]:
    """The contents of the ``` blocks, an unclosed last block included; a fence may open at the end
    of a line of prose ("Here it is: ```python"). Python (or untagged) blocks when there are any,
    else all of them."""
    blocks: list[tuple[str, list[str]]] = []
    current: tuple[str, list[str]] | None = None
    for line in text.split("\n"):
        stripped = line.strip()
        if current is None:
            opening = _OPENING_FENCE.search(stripped)
            if opening:
                current = (opening.group(1).lower(), [])
            elif stripped.startswith("```"):  # a fence with text after its tag
                current = ("?", [])
        elif stripped.startswith("```"):
            blocks.append(current)
            current = None
        else:
            current[1].append(line)
    if current is not None:
        blocks.append(current)
    python = [b for b in blocks if b[0] in _PYTHON_TAGS]
    return ["\n".join(lines).strip("\n") for _, lines in (python or blocks)]


def _compiles(source: str) -> ast.Module | None:
    """The module's tree when `source` compiles (compiling also rejects `return` outside a
    function, which parsing alone accepts)."""
    try:
        tree = ast.parse(source)
        compile(tree, "<answer>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    return tree


def _valid_body(body: str) -> bool:
    """Whether `body` continues a function whose header ends in an indented docstring (HumanEval's
    prompts all do, at four spaces): an eight-space body after it is an unexpected indent."""
    return _compiles('def _entry_point_():\n    """The prompt."""\n' + body) is not None


def _reindent(text: str, spaces: int) -> str:
    return textwrap.indent(textwrap.dedent(text), " " * spaces, lambda line: bool(line.strip()))


def _as_code(piece: str, body_ok: bool, repair: bool, entry_point: str | None = None) -> _Code | None:
    """`piece` as a module, or as a function body when `body_ok`, repairing its indentation when
    `repair`. None when it stays invalid."""
    tree = _compiles(piece)
    if tree is not None:
        return _Code(piece, body=False, repaired=False, tree=tree)
    variants = [piece, piece.expandtabs(4)] if "\t" in piece else [piece]
    if repair and entry_point is not None:
        # A whole definition indented as a block (a list item's code): the definition, not a body.
        for variant in variants:
            tree = _compiles(textwrap.dedent(variant))
            if tree is not None and _defines(tree, variant, entry_point):
                return _Code(textwrap.dedent(variant), body=False, repaired=True, tree=tree)
    if body_ok and piece[:1] in (" ", "\t") and _valid_body(piece):
        return _Code(piece, body=True, repaired=False, tree=None)
    if not repair:
        return None
    for variant in variants:
        dedented = textwrap.dedent(variant)
        tree = _compiles(dedented)
        if tree is not None:
            return _Code(dedented, body=False, repaired=True, tree=tree)
        if not body_ok:
            continue
        lines = variant.split("\n")
        rest = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
        candidates = [_reindent(variant, 4)]
        if lines[0][:1] not in (" ", "\t") and rest and min(rest) > 0:
            # The first line lost its indentation (the answer was stripped): give it its block's.
            candidates.append(_reindent(" " * min(rest) + variant, 4))
        for body in candidates:
            if _valid_body(body):
                return _Code(body, body=True, repaired=True, tree=None)
    return None


def _defines(tree: ast.Module | None, piece: str, name: str) -> bool:
    if tree is not None:
        return any(
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name
            for node in tree.body
        )
    return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", piece, re.MULTILINE) is not None


def _lines_of_code(text: str) -> int:
    return sum(1 for line in text.split("\n") if line.strip())


def _choose(parsed: list[tuple[str, _Code | None]], entry_point: str | None) -> tuple[str, _Code | None]:
    """With an entry point: the valid piece that defines it, else a valid function body, else a
    broken piece that defines it. Then the longest valid piece, else the longest piece (invalid:
    the sandbox will say why)."""
    valid = [(piece, code) for piece, code in parsed if code is not None]

    def longest(pairs: list[tuple[str, _Code]]) -> tuple[str, _Code]:
        return max(pairs, key=lambda pair: _lines_of_code(pair[1].text))

    if entry_point is not None:
        defining = [(piece, code) for piece, code in valid if _defines(code.tree, piece, entry_point)]
        bodies = [(piece, code) for piece, code in valid if code.body]
        if defining or bodies:
            return longest(defining or bodies)
        broken = [(piece, code) for piece, code in parsed if code is None and _defines(None, piece, entry_point)]
        if broken:
            return broken[0]
    if valid:
        return longest(valid)
    return max(parsed, key=lambda pair: _lines_of_code(pair[0]))


def _trivial(tree: ast.Module) -> bool:
    """Prose that happens to parse: `Sure`, `Example: 1` (an annotated name), a lone string."""
    return all(
        (isinstance(node, ast.Expr) and isinstance(node.value, ast.Name | ast.Constant))
        or (isinstance(node, ast.AnnAssign) and node.value is None)
        for node in tree.body
    )


_INCOMPLETE = ("never closed", "unexpected EOF", "expected an indented block", "unterminated triple-quoted")


def _rejected_line(chunk: str, body_ok: bool) -> int | None:
    """The line (from 1) where the parser gives up on `chunk`, unless the chunk is merely
    incomplete (an open bracket or block that later lines might close)."""
    header = 'def _entry_point_():\n    """The prompt."""\n' if body_ok and chunk[:1] in (" ", "\t") else ""
    try:
        ast.parse(header + chunk)
    except SyntaxError as error:
        if error.lineno is None or any(words in str(error.msg) for words in _INCOMPLETE):
            return None
        return max(1, error.lineno - header.count("\n"))
    except (ValueError, MemoryError, RecursionError):
        return None
    return None


def _code_runs(text: str, body_ok: bool, repair: bool, entry_point: str | None, max_lines: int = 400) -> list[str]:
    """The whole text when it is code (its indentation repaired if `repair`), else the maximal
    runs of lines that parse (as a module, or as a body when `body_ok`), in order, leaving out
    prose. Left to right, each run as long as it can be."""
    stripped = text.strip("\n")
    whole = _as_code(stripped, body_ok, repair, entry_point) if stripped.strip() else None
    if whole is not None and (whole.tree is None or not _trivial(whole.tree)):
        return [stripped]
    lines = text.split("\n")[:max_lines]
    runs: list[str] = []
    start = 0
    while start < len(lines):
        if not lines[start].strip():
            start += 1
            continue
        found, end = 0, len(lines)
        while end > start:
            if not lines[end - 1].strip():
                end -= 1
                continue
            chunk = "\n".join(lines[start:end])
            code = _as_code(chunk, body_ok, repair=False)
            if code is not None and (code.tree is None or not _trivial(code.tree)):
                found = end
                break
            # No longer run can get past a line the parser rejects: retry just before it.
            bad = _rejected_line(chunk, body_ok)
            end = min(end - 1, start + bad - 1) if bad else end - 1
        if found:
            runs.append("\n".join(lines[start:found]).strip("\n"))
            start = found
        else:
            start += 1
    return runs


def _bound(node: ast.stmt) -> set[str]:
    """Module-level names a statement binds or mutates (`memo[0] = 1` mutates `memo`)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Import):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, ast.ImportFrom):
        return {a.asname or a.name for a in node.names}
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store | ast.Del):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute | ast.Subscript) and isinstance(sub.ctx, ast.Store | ast.Del):
            base = sub.value
            while isinstance(base, ast.Attribute | ast.Subscript):
                base = base.value
            if isinstance(base, ast.Name):
                names.add(base.id)
        elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(sub.name)
        elif isinstance(sub, ast.Import | ast.ImportFrom):
            names |= _bound(sub)
    return names


def _loaded(nodes: Iterable[ast.AST | None]) -> set[str]:
    return {sub.id for node in nodes if node is not None for sub in ast.walk(node) if isinstance(sub, ast.Name)}


def _table_globals(table: symtable.SymbolTable) -> set[str]:
    """Global names a function or class body refers to, its nested scopes included."""
    names = {
        s.get_name() for s in table.get_symbols() if s.is_global() and (s.is_referenced() or s.is_declared_global())
    }
    if table.get_type() == "class":  # a class body's unassigned names are looked up globally too
        names |= {s.get_name() for s in table.get_symbols() if s.is_referenced() and not s.is_assigned()}
    for child in table.get_children():
        names |= _table_globals(child)
    return names


def _uses(node: ast.stmt, tables: dict[tuple[str, int], symtable.SymbolTable]) -> set[str]:
    """Module-level names a statement needs: for a definition, what its decorators, defaults,
    annotations and bases use when it is defined, and the globals its body refers to."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        args = node.args
        at_definition = [*node.decorator_list, *args.defaults, *args.kw_defaults, node.returns]
        at_definition += [a.annotation for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
        at_definition += [a.annotation for a in (args.vararg, args.kwarg) if a is not None]
    elif isinstance(node, ast.ClassDef):
        at_definition = [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]
    else:
        return _loaded([node])
    table = tables.get((node.name, node.lineno))
    return _loaded(at_definition) | (_table_globals(table) if table else _loaded([node]))


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and any(isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(node.test))
    )


def _is_setup_call(node: ast.stmt) -> bool:
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    func = node.value.func
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and (func.value.id, func.attr) in _SETUP_CALLS
    )


@lru_cache(maxsize=1024)
def names_used_by(test_code: str) -> frozenset[str]:
    """Names the test code uses without defining them: besides the entry point, what a solution
    must provide (MBPP's `Pair` class for `max_chain_length`)."""
    try:
        tree = ast.parse(test_code)
    except (SyntaxError, ValueError):
        return frozenset()
    loaded: set[str] = set()
    defined: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return frozenset(loaded - defined)


def prune(source: str, tree: ast.Module, roots: Collection[str]) -> str | None:
    """`source` cut down to the statements that bind what `roots` need, transitively, in their
    order. None when no root is defined in it (nothing to anchor on: leave it alone)."""
    bound = [_bound(node) for node in tree.body]
    if not any(name in names for names in bound for name in roots):
        return None
    try:
        module = symtable.symtable(source, "<answer>", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    tables = {(t.get_name(), t.get_lineno()): t for t in module.get_children()}
    uses = [_uses(node, tables) for node in tree.body]
    needed = set(roots)
    kept = [False] * len(tree.body)
    grew = True
    while grew:
        grew = False
        for index, node in enumerate(tree.body):
            if kept[index] or _is_main_guard(node):
                continue
            star = isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)
            if star or bound[index] & needed or _is_setup_call(node):
                kept[index] = True
                needed |= uses[index]
                grew = True
    if all(kept):
        return source
    lines = source.split("\n")
    segments = []
    for node, keep in zip(tree.body, kept, strict=True):
        if keep:
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            segments.append("\n".join(lines[first - 1 : node.end_lineno]))
    return "\n".join(segments)
