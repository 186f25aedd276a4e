"""Turning result tables into what people read in the Dagster UI: table previews and plots."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
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


def bar_plot(
    frame: pd.DataFrame, label_columns: Sequence[str], value_columns: Sequence[str], title: str, path: Path
) -> str:
    """Grouped bars (one group per row, one bar per value column); see `figure_markdown`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [" / ".join(str(row[c]) for c in label_columns) for _, row in frame.iterrows()]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 2), 3.2), dpi=100)
    width = 0.8 / max(1, len(value_columns))
    for i, column in enumerate(value_columns):
        xs = [x + i * width for x in range(len(labels))]
        ax.bar(xs, frame[column].fillna(0).tolist(), width=width, label=column)
    ax.set_xticks([x + width * (len(value_columns) - 1) / 2 for x in range(len(labels))], labels, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return figure_markdown(fig, title, path)


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
