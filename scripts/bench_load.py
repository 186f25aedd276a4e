"""How long loading the Dagster definitions takes, against importing bare `dagster` in the same run.

    .venv/bin/python scripts/bench_load.py [--runs 7]

Each measurement is a fresh interpreter (as `dagster dev` and the code server start one). Prints the
medians and the ratio (June definitions / bare dagster import) on the last line as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBES = {
    "dagster_import_s": "import dagster",
    "june_definitions_s": "import june_pipelines.definitions as d; d.defs.resolve_asset_graph()",
}


def measure(code: str) -> float:
    timed = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", timed], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in PROBES}
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        for name, code in PROBES.items():
            samples[name].append(measure(code))
    result = {name: round(statistics.median(values), 3) for name, values in samples.items()}
    result["ratio"] = round(result["june_definitions_s"] / result["dagster_import_s"], 2)
    result["runs"] = args.runs
    print(json.dumps(result))


if __name__ == "__main__":
    main()
