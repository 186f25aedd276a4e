"""Progress for long work: Dagster log lines per batch, and a terminal bar under the `june` CLI."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

BAR_ENV = "JUNE_PROGRESS_BAR"


class Progress:
    """Call with (done, total). Logs every `every` items (and at the end); draws a tqdm bar when the
    `june` CLI asked for one (it sets JUNE_PROGRESS_BAR=1), so runs in the UI do not fill logs with bars."""

    def __init__(self, desc: str, log: Callable[[str], None] | None = None, every: int = 10) -> None:
        self.desc = desc
        self.log = log
        self.every = max(1, every)
        self._bar: Any = None  # a tqdm bar, made on first use
        self._logged = -1
        self._started = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        if os.environ.get(BAR_ENV) == "1":
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=self.desc, unit="it", dynamic_ncols=True)
            self._bar.n = done
            self._bar.refresh()
        if self.log and (done - self._logged >= self.every or done == total) and done != self._logged:
            self._logged = done
            rate = done / max(time.perf_counter() - self._started, 1e-9)
            self.log(f"{self.desc}: {done}/{total} ({rate:.1f}/s)")
        if done == total:
            self.close()

    def counter(self, total: int, calls_per_item: int = 1) -> Callable[[object], None]:
        """A callback for work that reports each finished piece (`on_result`, `on_verdict`): every
        call counts one; `calls_per_item` calls make one of the `total` items."""
        calls = 0

        def tick(_: object) -> None:
            nonlocal calls
            calls += 1
            if calls % calls_per_item == 0:
                self(calls // calls_per_item, total)

        return tick

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
