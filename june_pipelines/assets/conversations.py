"""Conversation logs for analysts: per-day transcripts with latencies and decisions, and a latency
summary across days. The turns come from the conversation memory the gateways and runs write."""


from pathlib import Path
from typing import Any

import dagster as dg

from june_pipelines.reporting import figure_markdown
from june_pipelines.voice.resources import ConversationMemoryResource

GROUP = "conversations"
STAGES = ("decode", "stt", "llm", "tools", "tts", "encode", "total")
daily = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)


def conversations_dir() -> Path:
    from june_pipelines.paths import june_home

    return june_home() / "conversations"


def turns_frame(turns: list[dict[str, Any]]):  # noqa: ANN201
    import pandas as pd

    rows = []
    for t in turns:
        row = {k: t[k] for k in ("ts", "day", "user_key", "platform", "message_id", "input_kind", "transcript",
                                 "reply", "decision", "audio_s", "reply_audio_s")}
        row["tools"] = ",".join(t["tools"])
        for stage in STAGES:
            row[f"{stage}_ms"] = float(t["latency_ms"].get(stage, 0.0))
        rows.append(row)
    columns = ["ts", "day", "user_key", "platform", "message_id", "input_kind", "transcript", "reply", "decision",
               "tools", "audio_s", "reply_audio_s"] + [f"{s}_ms" for s in STAGES]
    return pd.DataFrame(rows, columns=columns)


def latency_summary(frame):  # noqa: ANN001, ANN201
    """Per stage and decision: turns, median, p90 and mean latency (ms)."""
    import pandas as pd

    out = []
    for decision, group in [("all", frame), *frame.groupby("decision")]:
        for stage in STAGES:
            col = group[f"{stage}_ms"]
            out.append({"decision": decision, "stage": stage, "turns": len(col), "p50_ms": col.median(),
                        "p90_ms": col.quantile(0.9), "mean_ms": col.mean()})
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
def conversation_transcripts(context: dg.AssetExecutionContext, memory: ConversationMemoryResource) -> dg.MaterializeResult:
    """Every turn of one UTC day: what was heard and answered, the decision, tools and stage latencies."""
    from june_pipelines.reporting import table_metadata

    day = context.partition_key
    frame = turns_frame(memory.open().turns(day))
    path = conversations_dir() / "transcripts" / f"{day}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    decisions = frame["decision"].value_counts().to_dict() if len(frame) else {}
    return dg.MaterializeResult(
        metadata={
            "turns": len(frame),
            "users": int(frame["user_key"].nunique()) if len(frame) else 0,
            "decisions": dg.MetadataValue.json({str(k): int(v) for k, v in decisions.items()}),
            "median_total_ms": float(frame["total_ms"].median()) if len(frame) else 0.0,
            "path": dg.MetadataValue.path(str(path)),
            "preview": table_metadata(frame[["day", "user_key", "input_kind", "transcript", "reply", "decision", "total_ms"]], limit=10),
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
        metadata["plot"] = dg.MetadataValue.md(plot + "\n\n" + markdown_table(summary[summary["decision"] == "all"].round(1)))
    return dg.MaterializeResult(metadata=metadata)


defs = dg.Definitions(
    assets=[conversation_transcripts, conversation_latency_summary],
    resources={"memory": ConversationMemoryResource()},
)
