"""Conversation logs for analysts: per-day transcripts with latencies, decisions and outcomes, and a
latency summary across days. The turns come from the conversation memory the gateways and runs
write: every turn, including refused audio, silence and hand-overs."""

from pathlib import Path
from typing import Any

import dagster as dg

from june_pipelines.reporting import figure_markdown
from june_pipelines.voice.metrics import LATENCY_KEYS
from june_pipelines.voice.resources import ConversationMemoryResource

GROUP = "conversations"
STAGES = LATENCY_KEYS
_TURN_COLUMNS = ("ts", "day", "user_key", "platform", "message_id", "input_kind", "transcript", "reply", "decision",
                 "outcome", "error", "audio_s", "reply_audio_s")
_PREVIEW_COLUMNS = ("day", "user_key", "input_kind", "transcript", "reply", "decision", "outcome", "total_ms")
daily = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)


def conversations_dir() -> Path:
    from june_pipelines.paths import june_home

    return june_home() / "conversations"


def turns_frame(turns: list[dict[str, Any]]):  # noqa: ANN201
    import pandas as pd

    rows = []
    for t in turns:
        row = {k: t[k] for k in _TURN_COLUMNS}
        row["tools"] = ",".join(t["tools"])
        for stage in STAGES:
            row[f"{stage}_ms"] = float(t["latency_ms"].get(stage, 0.0))
        rows.append(row)
    columns = [*_TURN_COLUMNS, "tools"] + [f"{s}_ms" for s in STAGES]
    return pd.DataFrame(rows, columns=columns)


def latency_summary(frame):  # noqa: ANN001, ANN201
    """Per stage, over all turns, per decision and per outcome: turns, median, p90 and mean latency (ms)."""
    import pandas as pd

    groups = [("all", "all", frame)]
    groups += [(str(decision), "all", group) for decision, group in frame.groupby("decision")]
    groups += [("all", str(outcome), group) for outcome, group in frame.groupby("outcome")]
    out = []
    for decision, outcome, group in groups:
        for stage in STAGES:
            col = group[f"{stage}_ms"]
            out.append({"decision": decision, "outcome": outcome, "stage": stage, "turns": len(col),
                        "p50_ms": col.median(), "p90_ms": col.quantile(0.9), "mean_ms": col.mean()})
    return pd.DataFrame(out)


def latency_plot(frame, path: Path) -> str:  # noqa: ANN001
    """Box plot of each stage's latency, saved as PNG; returns markdown with the image inlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    ax.boxplot([frame[f"{s}_ms"].tolist() for s in STAGES], showfliers=False)
    ax.set_xticks(range(1, len(STAGES) + 1), list(STAGES))
    ax.set_ylabel("ms")
    ax.set_title(f"Voice turn latency per stage ({len(frame)} turns)")
    return figure_markdown(fig, "latency", path)


@dg.asset(partitions_def=daily, group_name=GROUP, kinds={"parquet"})
def conversation_transcripts(
    context: dg.AssetExecutionContext, memory: ConversationMemoryResource
) -> dg.MaterializeResult:
    """Every turn of one UTC day: what was heard and answered, the decision and outcome, tools and stage latencies."""
    from june_pipelines.reporting import table_metadata

    day = context.partition_key
    with memory.open() as store:
        frame = turns_frame(store.turns(day))
    path = conversations_dir() / "transcripts" / f"{day}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    decisions = frame["decision"].value_counts().to_dict() if len(frame) else {}
    outcomes = frame["outcome"].value_counts().to_dict() if len(frame) else {}
    return dg.MaterializeResult(
        metadata={
            "turns": len(frame),
            "users": int(frame["user_key"].nunique()) if len(frame) else 0,
            "decisions": dg.MetadataValue.json({str(k): int(v) for k, v in decisions.items()}),
            "outcomes": dg.MetadataValue.json({str(k): int(v) for k, v in outcomes.items()}),
            "median_total_ms": float(frame["total_ms"].median()) if len(frame) else 0.0,
            "path": dg.MetadataValue.path(str(path)),
            "preview": table_metadata(frame[list(_PREVIEW_COLUMNS)], limit=10),
        }
    )


@dg.asset(group_name=GROUP, deps=[conversation_transcripts], kinds={"parquet"})
def conversation_latency_summary(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Latency per stage (p50/p90/mean) over all materialized days, with a box plot."""
    import pandas as pd

    from june_pipelines.reporting import markdown_table, table_metadata

    files = sorted((conversations_dir() / "transcripts").glob("*.parquet"))
    frames = [pd.read_parquet(f) for f in files]
    frame = pd.concat(frames, ignore_index=True) if frames else turns_frame([])
    if "outcome" not in frame:  # days materialized before outcomes were logged held answered turns only
        frame["outcome"] = "answered"
    frame["outcome"] = frame["outcome"].fillna("answered")
    summary = latency_summary(frame) if len(frame) else pd.DataFrame()
    out = conversations_dir() / "latency_summary.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    summary.to_parquet(out, index=False)
    metadata: dict[str, Any] = {"turns": len(frame), "days": len(files), "path": dg.MetadataValue.path(str(out))}
    if len(frame):
        voice = frame[frame["input_kind"] == "voice"]
        if len(voice):
            metadata["stt_rtf_median"] = float((voice["stt_ms"] / 1000 / voice["audio_s"].clip(lower=0.1)).median())
        metadata["summary"] = table_metadata(summary.round(1), limit=50)
        plot = latency_plot(frame, conversations_dir() / "latency.png")
        overall = summary[summary["decision"] == "all"].round(1)  # all turns, then per outcome
        metadata["plot"] = dg.MetadataValue.md(plot + "\n\n" + markdown_table(overall))
    return dg.MaterializeResult(metadata=metadata)


# The resources these assets use (`memory`) are bound with the rest of the voice domain's in
# june_pipelines/voice/defs.py.
defs = dg.Definitions(assets=[conversation_transcripts, conversation_latency_summary])
