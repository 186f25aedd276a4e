"""Turning result tables into what people read in the Dagster UI: table previews and plots."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    import pandas as pd


def table_metadata(frame: pd.DataFrame, limit: int = 20) -> dg.TableMetadataValue:
    """A preview of the first `limit` rows as a Dagster table (values as text, long text clipped)."""
    head = frame.head(limit)
    columns = [dg.TableColumn(str(c), "string") for c in head.columns]
    records = [
        dg.TableRecord({str(k): _cell(v) for k, v in row.items()}) for row in head.to_dict("records")
    ]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns))


def _cell(value: object, width: int = 120) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def figure_markdown(fig: Any, title: str, path: Path) -> str:
    """Save a matplotlib figure as PNG at `path` and close it; return markdown with the image
    inlined, which the Dagster UI renders in the metadata panel."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"![{title}](data:image/png;base64,{encoded})"


def interval_plot(
    labels: Sequence[str],
    series: Mapping[str, Sequence[tuple[float, float, float]]],
    title: str,
    path: Path,
    xlabel: str = "pass@k",
) -> str:
    """Horizontal bars with 95% error bars and their values written on them: one row per label,
    one bar per series (e.g. plus and base), each value a (point, low, high) triple. The axis ends a
    little past the highest interval, so 0.05 is a bar one can see, not a sliver on a 0-1 axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(series)
    height = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(7.0, max(1.6, 0.55 * len(labels) * max(1, len(names)) + 1.0)), dpi=100)
    top = max((high for values in series.values() for _, _, high in values), default=0.0)
    limit = min(1.0, max(0.1, top * 1.25))
    for i, name in enumerate(names):
        values = series[name]
        ys = [row + (len(names) - 1 - i) * height for row in range(len(labels))]
        points = [v[0] for v in values]
        errors = [[max(0.0, v[0] - v[1]) for v in values], [max(0.0, v[2] - v[0]) for v in values]]
        ax.barh(ys, points, height=height * 0.9, xerr=errors, capsize=3, label=name)
        for y, (point, low, high) in zip(ys, values, strict=True):
            ax.text(min(high, limit) + limit * 0.01, y, f"{point:.3f} [{low:.3f}, {high:.3f}]", va="center",
                    fontsize=8)
    ax.set_yticks([row + height * (len(names) - 1) / 2 for row in range(len(labels))], labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, limit * 1.45)
    ax.set_xlabel(f"{xlabel} (bars: 95% interval)")
    ax.set_title(title)
    if len(names) > 1:
        ax.legend(fontsize=8, loc="lower right")
    return figure_markdown(fig, title, path)
