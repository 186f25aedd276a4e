"""Progress: log lines per batch and at the end, counted from per-item callbacks."""

from __future__ import annotations

from june_pipelines.progress import Progress


def test_counter_reports_items_from_callbacks_and_logs_per_batch_and_at_the_end() -> None:
    lines: list[str] = []
    tick = Progress("scoring", lines.append, every=2).counter(5)
    for _ in range(5):
        tick(object())
    # the first item, then every second, and the last
    assert [line.split(" (")[0] for line in lines] == ["scoring: 1/5", "scoring: 3/5", "scoring: 5/5"]


def test_counter_with_several_calls_per_item() -> None:
    lines: list[str] = []
    tick = Progress("references", lines.append, every=1).counter(2, calls_per_item=2)
    for _ in range(3):
        tick(None)
    assert [line.split(" (")[0] for line in lines] == ["references: 1/2"]  # the second item is half done
