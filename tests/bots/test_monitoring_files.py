"""deploy/prometheus and deploy/grafana match what the gateways export: every series a dashboard
panel queries exists, with the labels it groups by, and Prometheus scrapes the gateways' path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from june_pipelines.bots.metrics import STAGES, GatewayMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def exported() -> dict[str, set[str]]:
    """Series name -> label names, from a gateway registry after one turn and an inbox reading."""
    metrics = GatewayMetrics("telegram")
    metrics.watch_inbox(lambda: (3, 12.5))
    metrics.turn("answered", dict.fromkeys(STAGES, 120.0))
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def test_every_dashboard_query_uses_exported_series_and_labels():
    dashboard = json.loads((DEPLOY / "grafana" / "june-bots.json").read_text())
    series = exported()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10 and dashboard["uid"] == "june-bots"
    used = set()
    for expr in exprs:
        names = re.findall(r"\b(june_bot_[a-z_]+)", expr)
        assert names or "up{" in expr, expr
        for name in names:
            assert name in series, f"{name} is not exported"
            used.add(name)
            for group in re.findall(r"by \(([^)]*)\)", expr):
                for label in (g.strip() for g in group.split(",")):
                    assert label in series[name], f"{name} has no label {label}"
            for label, value in re.findall(r'(\w+)[!=]="([^"]*)"', expr):
                assert label in series[name] or label == "job", f"{name} has no label {label}"
                if label == "stage":
                    assert value in STAGES
    # Every family a gateway exports has a panel.
    families = {re.sub(r"_(bucket|count|sum|created|total)$", "", n) for n in series}
    assert families <= {re.sub(r"_(bucket|count|sum|created|total)$", "", n) for n in used}


def test_prometheus_scrapes_the_gateways_metrics_path():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "june-bots"]
    assert job["metrics_path"] == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets and all(re.fullmatch(r"[\w.-]+:\d+", t) for t in targets)
    assert {sc["labels"]["gateway"] for sc in job["static_configs"]} == {"telegram", "discord"}
