"""Gateway metrics (prometheus-client) and the `/metrics` + `/healthz` endpoint.

Each gateway has its own registry, so several gateways (or tests) can live in one process.
Inbox depth and the age of the oldest pending message are read from the inbox at scrape time,
so they are right even when another process answered the messages.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("june.bots.metrics")

STAGES = ("decode", "stt", "llm", "tools", "tts", "encode", "total")
OUTCOMES = ("answered", "bad_input", "handed_over", "failed", "dead_letter")
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _InboxCollector(Collector):
    def __init__(self, platform: str, pending: Callable[[], tuple[int, float]]) -> None:
        self.platform = platform
        self.pending = pending

    def collect(self) -> Iterator[Metric]:
        try:
            depth, oldest_s = self.pending()
        except Exception as exc:  # the inbox is unreachable: /healthz says so; /metrics still answers
            log.warning("cannot read the inbox for metrics: %s", type(exc).__name__)
            return
        d = GaugeMetricFamily("june_bot_inbox_depth", "Messages not yet answered", labels=["platform"])
        d.add_metric([self.platform], depth)
        yield d
        a = GaugeMetricFamily(
            "june_bot_inbox_oldest_pending_age_seconds", "Age of the oldest message not yet answered",
            labels=["platform"],
        )
        a.add_metric([self.platform], oldest_s)
        yield a


class GatewayMetrics:
    """What a gateway counts: turns by outcome, per-stage latency, refusals, rate limits, bad updates."""

    def __init__(self, platform: str, registry: CollectorRegistry | None = None) -> None:
        self.platform = platform
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.turns = Counter("june_bot_turns", "Turns by outcome", ["platform", "outcome"], registry=r)
        self.stage_seconds = Histogram(
            "june_bot_stage_latency_seconds", "Voice turn latency per stage", ["platform", "stage"],
            buckets=LATENCY_BUCKETS_S, registry=r,
        )
        self.refusals = Counter("june_bot_refusals", "Messages from users not on the list", ["platform"], registry=r)
        self.rate_limited = Counter("june_bot_rate_limited", "Messages over the per-chat rate limit", ["platform"],
                                    registry=r)
        self.unparseable = Counter("june_bot_unparseable_updates", "Updates or payloads the client library could not"
                                   " parse, acknowledged and skipped", ["platform"], registry=r)
        for outcome in OUTCOMES:  # every series exists from the start, at 0
            self.turns.labels(platform, outcome)
        self.refusals.labels(platform)
        self.rate_limited.labels(platform)
        self.unparseable.labels(platform)

    def watch_inbox(self, pending: Callable[[], tuple[int, float]]) -> None:
        self.registry.register(_InboxCollector(self.platform, pending))

    def turn(self, outcome: str, latency_ms: Mapping[str, float] | None = None) -> None:
        self.turns.labels(self.platform, outcome).inc()
        for stage, ms in (latency_ms or {}).items():
            # A stage that did not run (no audio to decode, no tool) reports 0: not a measurement.
            if stage in STAGES and (ms > 0 or stage == "total"):
                self.stage_seconds.labels(self.platform, stage).observe(ms / 1000)

    def refused(self) -> None:
        self.refusals.labels(self.platform).inc()

    def limited(self) -> None:
        self.rate_limited.labels(self.platform).inc()

    def bad_update(self) -> None:
        self.unparseable.labels(self.platform).inc()


class MetricsServer:
    """`/metrics` (Prometheus text format) and `/healthz` (200 while `health()` says ok, else 503)."""

    def __init__(
        self, registry: CollectorRegistry, health: Callable[[], tuple[bool, str]], port: int, host: str = "0.0.0.0"
    ) -> None:
        self.registry = registry
        self.health = health
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, generate_latest(server.registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    try:
                        ok, detail = server.health()
                    except Exception as exc:
                        ok, detail = False, f"health check failed: {type(exc).__name__}"
                    self._answer(200 if ok else 503, (detail + "\n").encode(), "text/plain; charset=utf-8")
                else:
                    self._answer(404, b"not found: try /metrics or /healthz\n", "text/plain; charset=utf-8")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                log.debug("metrics endpoint: " + format, *args)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="june-metrics", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics, health on /healthz", self.httpd.server_address[0], self.port)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
