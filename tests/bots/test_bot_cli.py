"""`june bot` refuses bad settings and options with one line and exit code 2, before loading a model."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from june_pipelines.cli import main as june

GOOD = {"TELEGRAM_BOT_TOKEN": "123456:TEST-token", "DISCORD_BOT_TOKEN": "discord-test-token",
        "JUNE_METRICS_PORT": "", "JUNE_POSTGRES_URL": ""}


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["bot", "telegram"], {"TELEGRAM_BOT_TOKEN": ""}, "TELEGRAM_BOT_TOKEN is not set (get one from @BotFather)"),
        (["bot", "discord"], {"DISCORD_BOT_TOKEN": ""}, "DISCORD_BOT_TOKEN is not set"),
        (["bot", "telegram"], {"TELEGRAM_RATE_LIMIT": "lots"}, "TELEGRAM_RATE_LIMIT='lots': expected N/SECONDS"),
        (["bot", "telegram"], {"TELEGRAM_RATE_LIMIT": "0/60"}, "N and SECONDS must be positive"),
        (["bot", "discord"], {"DISCORD_REFUSAL": "shout"}, "DISCORD_REFUSAL='shout': expected one of reply, ignore"),
        (["bot", "telegram"], {"JUNE_METRICS_PORT": "http"}, "JUNE_METRICS_PORT='http': expected a port number"),
        (["bot", "telegram"], {"JUNE_METRICS_PORT": "70000"}, "metrics port 70000: expected 0-65535"),
        (["bot", "telegram"], {"JUNE_INBOX_LEASE_S": "-1"}, "JUNE_INBOX_LEASE_S='-1': must be positive"),
        (["bot", "telegram"], {"JUNE_POSTGRES_URL": "mysql://x@y/z"}, "JUNE_POSTGRES_URL must look like"),
        (["bot", "dlq", "list"], {"JUNE_POSTGRES_URL": "postgresql://june:secret@127.0.0.1:1/june"},
         "cannot connect to PostgreSQL at postgresql://june:***@127.0.0.1:1/june"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(args, env, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("JUNE_HOME", str(tmp_path))
    result = CliRunner().invoke(june, args, env={**GOOD, **env})
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and expected in lines[-1]
    assert "Traceback" not in result.output and "secret" not in result.output
    assert not (tmp_path / "bots").exists() or "dlq" in args  # nothing opened before the settings were checked


@pytest.mark.parametrize(
    "args",
    [["bot", "telegram", "--metrics-port", "-1"], ["bot", "telegram", "--handoff", "later"],
     ["bot", "dlq", "retry", "zero"], ["bot", "dlq", "retry", "0"], ["bot", "inbox", "--limit", "0"]],
)
def test_bad_options_are_usage_errors(args, tmp_path):
    result = CliRunner().invoke(june, [*args, "--inbox", str(tmp_path / "inbox.sqlite")] if "dlq" in args
                                else args, env=GOOD)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_retrying_what_is_not_a_dead_letter_is_refused(tmp_path):
    from june_pipelines.bots.inbox import Inbox

    db = tmp_path / "inbox.sqlite"
    with Inbox(db) as inbox:
        item = inbox.receive("telegram", "5:1", 5, 5, "text", {})
    result = CliRunner().invoke(june, ["bot", "dlq", "retry", str(item.id), "--inbox", str(db)], env=GOOD)
    assert result.exit_code == 2 and f"no dead letter with id {item.id}" in result.output
    with Inbox(db) as inbox:
        assert inbox.get("telegram", "5:1").status == "received"  # untouched
    listed = CliRunner().invoke(june, ["bot", "dlq", "list", "--inbox", str(db)], env=GOOD)
    assert listed.exit_code == 0 and listed.output.strip() == ""
