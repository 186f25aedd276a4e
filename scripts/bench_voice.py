#!/usr/bin/env python
"""Benchmark one voice turn on the embedded defaults, stage by stage, and the bot sensor path.

    .venv/bin/python scripts/bench_voice.py --runs 5

Questions (2-4 s) are spoken by Piper itself and encoded as OGG/Opus, as a Telegram voice note
would arrive. Each turn is timed from the received audio bytes to the encoded reply: decode, STT,
LLM (decision + answer), tools, TTS, encode, total. Prints a Markdown table and, on the last line,
a JSON object with every median. `--sensor` also times the hand-over path: inbox -> sensor tick ->
Dagster run (in process) -> reply sent to a local fake Telegram Bot API.

`--against OTHER_CHECKOUT` compares this checkout with another one (e.g. `git worktree add /tmp/old
main`) on a busy machine: each side loads the embedded defaults in its own process, both answer
the same question audio, and turns alternate between them (the order flipping every turn), so load
drifts hit both alike. It prints each side's medians, the median of the per-turn ratios, and the
pipeline's own overhead (total minus the stages).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from june_pipelines.voice.metrics import LATENCY_KEYS as STAGES  # noqa: E402 - found through the sys.path insert

QUESTIONS = [
    "What is the capital of France?",
    "Tell me a fun fact about the moon.",
    "How are you doing today?",
    "What is seventeen times twenty three?",
    "What time is it right now?",
]
# Process CPU time per turn, summed over the pipeline's stages (TurnResult.cpu_ms) in four groups.
CPU_GROUPS = {"stt": ("stt",), "agent": ("decide", "agent"), "speak": ("tts", "encode"), "total": ("total",)}


def make_questions(length_scale: float) -> list[tuple[str, bytes, float]]:
    from june_pipelines.voice.audio import encode_ogg_opus
    from june_pipelines.voice.tts import TextToSpeech, TTSOptions

    voice = TextToSpeech(TTSOptions(length_scale=length_scale))
    out = []
    for q in QUESTIONS:
        samples = voice.synthesize(q)
        pad = np.zeros(int(0.3 * voice.sample_rate), np.float32)
        samples = np.concatenate([pad, samples, pad])
        out.append((q, encode_ogg_opus(samples, voice.sample_rate), len(samples) / voice.sample_rate))
    return out


def median(xs: list[float]) -> float:
    return round(statistics.median(xs), 1) if xs else 0.0


def bench_turns(runs: int, length_scale: float) -> dict:
    from june_pipelines.agent.memory import ConversationMemory
    from june_pipelines.inference.resources import LlamaCppLLMResource
    from june_pipelines.voice.pipeline import build_pipeline
    from june_pipelines.voice.resources import STTResource, TTSResource

    t = time.perf_counter()
    tmp = Path(tempfile.mkdtemp())
    pipeline = build_pipeline(STTResource(), TTSResource(), LlamaCppLLMResource(), None,
                              memory=ConversationMemory(tmp / "memory.sqlite"))
    load_s = time.perf_counter() - t
    questions = make_questions(length_scale)
    pipeline.turn("bench:warmup", audio=questions[0][1])  # first-call costs out of the way
    from june_pipelines.voice.audio import decode_audio

    peer = []  # faster-whisper's own transcribe (30 s window, VAD), same model, same audio, same run
    for _q, audio, _s in questions:
        samples = decode_audio(audio).samples
        for _ in range(runs):
            t = time.perf_counter()
            segments, _info = pipeline.stt.model.transcribe(samples, language="en", beam_size=1, vad_filter=True,
                                                            without_timestamps=True, condition_on_previous_text=False)
            list(segments)
            peer.append((time.perf_counter() - t) * 1000)
    rows = []
    for r in range(runs):
        for q, audio, seconds in questions:
            res = pipeline.turn(f"bench:{r}", audio=audio, record=False)
            rows.append({"question": q, "audio_s": seconds, "transcript": res.transcript, "reply": res.reply,
                         "decision": res.decision, "reply_audio_s": res.audio_duration_s, "stt_path": res.stt_path,
                         **{k: res.latency_ms[k] for k in STAGES},
                         **{f"cpu_{k}": sum(res.cpu_ms.get(s, 0.0) for s in stages)
                            for k, stages in CPU_GROUPS.items()}})
    pipeline.close()
    return {"load_s": load_s, "rows": rows, "peer_stt_ms": peer}


def bench_sensor(runs: int, fresh_process: bool = False) -> list[dict]:
    """Inbox -> sensor tick -> run (in process) -> reply at the fake Bot API, per handed-over turn."""
    import asyncio
    import threading

    import dagster as dg

    sys.path.insert(0, str(REPO / "tests" / "bots"))
    from fake_telegram_api import TOKEN, FakeBotAPI

    from june_pipelines.bots.inbox import Inbox
    from june_pipelines.bots.resources import TelegramClientResource
    from june_pipelines.bots.sensor import InboxResource, bot_sensor, turn_jobs
    from june_pipelines.inference.resources import LlamaCppLLMResource
    from june_pipelines.sandboxes.resources import ProcessSandboxResource
    from june_pipelines.voice.resources import ConversationMemoryResource, TTSResource

    api = FakeBotAPI()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(api.start(), loop).result()
    os.environ["TELEGRAM_BOT_TOKEN"] = TOKEN
    os.environ["TELEGRAM_API_BASE_URL"] = api.base_url
    tmp = Path(tempfile.mkdtemp())
    db = tmp / "inbox.sqlite"
    inbox = Inbox(db)
    instance = dg.DagsterInstance.ephemeral()
    resources = {"llm": LlamaCppLLMResource(), "sandbox": ProcessSandboxResource(), "tts": TTSResource(),
                 "inbox": InboxResource(path=str(db)), "memory": ConversationMemoryResource(path=str(tmp / "m.sqlite")),
                 "telegram": TelegramClientResource(token=dg.EnvVar("TELEGRAM_BOT_TOKEN"))}
    bot_turn_job = turn_jobs["telegram"]
    cursor = None
    out = []
    for i in range(runs + (0 if fresh_process else 1)):
        mid = f"7:{i}"
        inbox.receive("telegram", mid, 7, 7, "voice", {"message": {"message_id": i}})
        inbox.claim("telegram", mid)
        t0 = time.perf_counter()
        inbox.hand_over("telegram", mid, "Run this python code: ```python\nprint(sum(range(10)))\n```")
        context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"inbox": InboxResource(path=str(db))})
        result = bot_sensor(context)
        cursor = result.cursor
        t1 = time.perf_counter()
        (request,) = result.run_requests
        if fresh_process:  # as Dagster's default run launcher does: a new process loads the code and models
            import subprocess

            code = (
                f"import sys, json, dagster as dg; sys.path.insert(0, {str(REPO)!r});"
                "from june_pipelines.bots.sensor import InboxResource, turn_jobs;"
                "from june_pipelines.bots.resources import TelegramClientResource;"
                "from june_pipelines.inference.resources import LlamaCppLLMResource;"
                "from june_pipelines.sandboxes.resources import ProcessSandboxResource;"
                "from june_pipelines.voice.resources import ConversationMemoryResource, TTSResource;"
                "r = turn_jobs['telegram'].execute_in_process(run_config=json.loads(sys.argv[1]),"
                " resources={'llm': LlamaCppLLMResource(), 'sandbox': ProcessSandboxResource(), 'tts': TTSResource(),"
                f" 'inbox': InboxResource(path={str(db)!r}),"
                f" 'memory': ConversationMemoryResource(path={str(tmp / 'm.sqlite')!r}),"
                " 'telegram': TelegramClientResource(token=dg.EnvVar('TELEGRAM_BOT_TOKEN'))});"
                "sys.exit(0 if r.success else 1)"
            )
            subprocess.run([sys.executable, "-c", code, json.dumps(request.run_config)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            run = bot_turn_job.execute_in_process(run_config=request.run_config, resources=resources,
                                                  instance=instance, tags=request.tags)
            assert run.success
        t2 = time.perf_counter()
        assert inbox.get("telegram", mid).status == "done"
        if i or fresh_process:  # in process, the first run loads the models
            out.append({"sensor_ms": (t1 - t0) * 1000, "run_ms": (t2 - t1) * 1000, "total_ms": (t2 - t0) * 1000})
    asyncio.run_coroutine_threadsafe(api.stop(), loop).result()
    return out


# One side of `--against`: only APIs both checkouts have (build_pipeline, turn, latency_ms).
_AB_WORKER = """
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from june_pipelines.agent.memory import ConversationMemory
from june_pipelines.inference.resources import LlamaCppLLMResource
from june_pipelines.voice.pipeline import build_pipeline
from june_pipelines.voice.resources import STTResource, TTSResource
audios = [Path(p).read_bytes() for p in sys.argv[2:]]
memory = ConversationMemory(Path(tempfile.mkdtemp()) / "memory.sqlite")
pipeline = build_pipeline(STTResource(), TTSResource(), LlamaCppLLMResource(), None, memory=memory)
pipeline.turn("bench:warmup", audio=audios[0], record=False)
print("ready", flush=True)
for line in sys.stdin:
    c = time.process_time()
    r = pipeline.turn("bench:ab", audio=audios[int(line)], record=False)
    print(json.dumps({**r.latency_ms, "cpu": (time.process_time() - c) * 1000, "reply": r.reply}), flush=True)
"""


def bench_against(other: Path, runs: int, length_scale: float) -> dict:
    import subprocess

    tmp = Path(tempfile.mkdtemp())
    files = []
    for i, (_q, audio, _s) in enumerate(make_questions(length_scale)):  # the same bytes for both sides
        files.append(tmp / f"q{i}.ogg")
        files[-1].write_bytes(audio)
    sides = {"this": REPO, "other": other.resolve()}
    procs = {name: subprocess.Popen([sys.executable, "-c", _AB_WORKER, str(path), *map(str, files)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for name, path in sides.items()}
    try:
        for name, proc in procs.items():
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", f"{name} side did not start"
        rows: dict[str, list[dict]] = {name: [] for name in sides}
        for r in range(runs):
            for q in range(len(files)):
                for name in (["this", "other"] if (r + q) % 2 == 0 else ["other", "this"]):
                    proc = procs[name]
                    assert proc.stdin is not None and proc.stdout is not None
                    proc.stdin.write(f"{q}\n")
                    proc.stdin.flush()
                    rows[name].append(json.loads(proc.stdout.readline()))
    finally:
        for proc in procs.values():
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait()
    out: dict = {"turns_each": len(rows["this"]), "other_checkout": str(sides["other"])}
    for name, side in rows.items():
        out[name] = {k: median([x[k] for x in side]) for k in (*STAGES, "cpu")}
        out[name]["overhead_ms"] = round(statistics.median(
            x["total"] - sum(x[k] for k in STAGES if k != "total") for x in side), 2)
    for k in ("total", "cpu", "stt", "tts"):
        ratios = [t[k] / max(o[k], 0.01) for t, o in zip(rows["this"], rows["other"], strict=True)]
        out[f"paired_{k}_ratio_median"] = round(statistics.median(ratios), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="passes over the question set")
    ap.add_argument("--length-scale", type=float, default=1.25, help="Piper speaking rate for the questions")
    ap.add_argument("--sensor", action="store_true", help="also time the bot sensor path")
    ap.add_argument("--against", type=Path, metavar="CHECKOUT", help="compare with another checkout, turn by turn")
    args = ap.parse_args()
    if args.against is not None:
        load = os.getloadavg()[0]
        result = bench_against(args.against, args.runs, args.length_scale)
        result["load_avg"] = [round(load, 2), round(os.getloadavg()[0], 2)]
        print(json.dumps(result))
        return

    load = os.getloadavg()[0]
    turns = bench_turns(args.runs, args.length_scale)
    rows = turns["rows"]
    med = {k: median([r[k] for r in rows]) for k in STAGES}
    p90 = {k: round(float(np.percentile([r[k] for r in rows], 90)), 1) for k in STAGES}
    stt_rtf = statistics.median(r["stt"] / 1000 / r["audio_s"] for r in rows)
    tts_rows = [r for r in rows if r["reply_audio_s"] > 0]
    tts_rtf = statistics.median(r["tts"] / 1000 / r["reply_audio_s"] for r in tts_rows)
    cpu = {k: median([r[f"cpu_{k}"] for r in rows]) for k in CPU_GROUPS}
    decisions = sorted({r["decision"] for r in rows})
    by_decision = {d: median([r["total"] for r in rows if r["decision"] == d]) for d in decisions}

    print(f"# voice turn benchmark: {len(rows)} turns ({args.runs} x {len(QUESTIONS)} questions), "
          f"{os.cpu_count()} cores, load average at start {load:.1f}, models loaded in {turns['load_s']:.1f} s\n")
    print("| question | audio s | heard | decision | reply s | total ms |")
    print("|---|---|---|---|---|---|")
    for r in rows[: len(QUESTIONS)]:
        print(f"| {r['question']} | {r['audio_s']:.1f} | {r['transcript']} | {r['decision']} "
              f"| {r['reply_audio_s']:.1f} | {r['total']:.0f} |")
    print("\n| stage | median ms | p90 ms |\n|---|---|---|")
    for k in STAGES:
        print(f"| {k} | {med[k]} | {p90[k]} |")
    peer_stt = median(turns["peer_stt_ms"])
    print(f"\nSTT: June {med['stt']} ms vs faster-whisper transcribe() {peer_stt} ms on the same audio "
          f"(ratio {peer_stt / max(med['stt'], 0.1):.2f}x)")
    print(f"STT real-time factor (median): {stt_rtf:.3f}; TTS real-time factor (median): {tts_rtf:.3f}")
    print(f"process CPU time per turn (median ms, all threads): {cpu}")
    print("median total by decision: " + ", ".join(f"{d} {v} ms" for d, v in by_decision.items()))
    summary = {"turns": len(rows), "median_ms": med, "p90_ms": p90, "stt_rtf": round(stt_rtf, 3),
               "tts_rtf": round(tts_rtf, 3), "median_total_by_decision_ms": by_decision, "cpu_ms": cpu,
               "peer_stt_ms": peer_stt, "load_avg": round(load, 2)}
    if args.sensor:
        s = bench_sensor(max(3, args.runs))
        summary["sensor_path_ms"] = {k: median([x[k] for x in s]) for k in ("sensor_ms", "run_ms", "total_ms")}
        print(f"sensor path (inbox -> sensor tick -> run in process -> reply sent), median of {len(s)}: "
              f"{summary['sensor_path_ms']}")
        f = bench_sensor(3, fresh_process=True)
        fresh = {k: median([x[k] for x in f]) for k in ("sensor_ms", "run_ms", "total_ms")}
        summary["sensor_path_fresh_process_ms"] = fresh
        print(f"sensor path with the run in a fresh process, median of {len(f)}: {fresh}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
