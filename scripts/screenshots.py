"""PNGs of what the Dagster UI shows for June, for the docs (not part of the test suite).

    apt-get install -y chromium                       # Debian's, headless
    .venv/bin/june demo --limit 20                    # something to show
    .venv/bin/python scripts/screenshots.py           # starts `june ui`'s layout on the project's instance
    .venv/bin/python scripts/screenshots.py --url http://127.0.0.1:3000   # or use a running UI

Writes docs/images/asset-graph.png, pass-at-k.png, pass-at-k-partitions.png, leaderboard.png and
evaluation-runs.png. Each page is loaded in a fresh headless Chromium profile and captured after
`--wait` seconds of page time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    "asset-graph": "/locations/june/asset-groups/evaluation",
    "pass-at-k": "/assets/pass_at_k",
    "pass-at-k-partitions": "/assets/pass_at_k?view=partitions",
    "leaderboard": "/assets/leaderboard",
    "evaluation-runs": "/locations/june/jobs/evaluation/runs",
}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no chromium found: apt-get install -y chromium")


def capture(browser: str, url: str, out: Path, size: str, wait_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="june-chromium-") as profile:
        command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
                   f"--virtual-time-budget={int(wait_s * 1000)}", f"--screenshot={out}", url]
        subprocess.run(command, check=True, capture_output=True, timeout=wait_s + 120)
    print(f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}  <- {url}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running Dagster UI (default: start one on the project's instance)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--size", default="1600,1000")
    parser.add_argument("--wait", type=float, default=25.0, help="seconds of page time before each capture")
    parser.add_argument("--only", nargs="*", choices=sorted(PAGES), help="just these pages")
    args = parser.parse_args()
    browser = chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    pages = {name: PAGES[name] for name in (args.only or PAGES)}

    def shoot(base: str) -> None:
        for name, path in pages.items():
            capture(browser, base.rstrip("/") + path, args.out / f"{name}.png", args.size, args.wait)

    if args.url:
        shoot(args.url)
        return 0
    sys.path.insert(0, str(ROOT))
    from june_pipelines.cli.runs import free_port
    from june_pipelines.deploy.services import Layout
    from june_pipelines.paths import ensure_dagster_home, june_home

    os.environ["JUNE_HOME"] = str(june_home())
    with tempfile.TemporaryDirectory(prefix="june-ui-logs-") as logs:
        with Layout(ensure_dagster_home(), port=free_port(), code_server_port=free_port(), log_dir=Path(logs)) as ui:
            shoot(ui.url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
