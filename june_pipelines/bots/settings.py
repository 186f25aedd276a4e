"""The bots' settings: platform limits and gateway configuration, read from the environment in one place.

Only this module reads the bots' environment variables. Secrets (bot tokens) are not read here:
they reach the gateways through the CLI and the Dagster runs through `dg.EnvVar`, resolved at
run time (see `june_pipelines/bots/resources.py`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from june_pipelines.voice.settings import VOICE_NOTE_MAX_BYTES

log = logging.getLogger("june.bots")

REFUSAL_MODES = ("reply", "ignore")
HANDOFF_MODES = ("inline", "dagster")
METRICS_PORT_ENV = "JUNE_METRICS_PORT"
WEBSERVER_URL_ENV = "JUNE_WEBSERVER_URL"


class BotConfigError(ValueError):
    """A bot setting is missing or malformed (one line, fit for the CLI to print)."""


@dataclass(frozen=True)
class PlatformLimits:
    """What one platform accepts and what June accepts from it. Every size check uses these numbers."""

    text_chars: int  # one outgoing text message
    voice_bytes: int  # one outgoing voice note / audio attachment
    download_bytes: int  # one incoming voice or audio file: the download is aborted past this

    @property
    def download_mb(self) -> str:
        """The download limit as users read it ("20 MB"): the same number in docs and messages."""
        return f"{self.download_bytes / 1_000_000:g} MB"


# Telegram: 4096 characters per message; a voice note shows as voice up to 1 MB; bots may download
# files up to 20 MB. Discord: 2000 characters; uploads up to 10 MiB without boosts; June accepts
# voice messages up to 25 MB.
LIMITS: dict[str, PlatformLimits] = {
    "telegram": PlatformLimits(text_chars=4096, voice_bytes=VOICE_NOTE_MAX_BYTES, download_bytes=20_000_000),
    "discord": PlatformLimits(text_chars=2000, voice_bytes=10 * 1024 * 1024, download_bytes=25_000_000),
}


def parse_ids(value: str | None) -> frozenset[str] | None:
    """'123, 456' -> {'123', '456'}; unset or blank -> None."""
    if value is None or not value.strip():
        return None
    return frozenset(v.strip() for v in value.split(",") if v.strip())


def parse_rate_limit(value: str, var: str = "rate limit") -> tuple[int, float]:
    """'6/60' -> (6, 60.0): at most 6 messages per 60 seconds."""
    n, _, window = value.partition("/")
    try:
        count, seconds = int(n), float(window or 60)
    except ValueError:
        raise BotConfigError(f"{var}={value!r}: expected N/SECONDS, e.g. 6/60") from None
    if count < 1 or not seconds > 0:
        raise BotConfigError(f"{var}={value!r}: N and SECONDS must be positive")
    return count, seconds


def _choice(env: Mapping[str, str], var: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(var) or default
    if value not in choices:
        raise BotConfigError(f"{var}={value!r}: expected one of {', '.join(choices)}")
    return value


def _positive_float(env: Mapping[str, str], var: str, default: float) -> float:
    raw = env.get(var)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BotConfigError(f"{var}={raw!r}: expected a number of seconds") from None
    if not value > 0:
        raise BotConfigError(f"{var}={raw!r}: must be positive")
    return value


@dataclass
class GatewayConfig:
    """How a gateway treats its users (the same on every platform), and how it polls and sweeps."""

    platform: str = ""
    token: str = field(default="", repr=False)
    allowed_users: frozenset[str] | None = None  # None: everyone is served
    allowed_channels: frozenset[str] = frozenset()  # Discord guild channels served besides DMs
    refusal: str = "reply"  # reply | ignore
    rate_limit: tuple[int, float] = (6, 60.0)  # messages per chat per seconds
    handoff: str = "inline"  # inline | dagster
    base_url: str | None = None  # Telegram: a local Bot API server
    action_interval_s: float = 4.0  # "typing" / "recording voice" is refreshed this often
    sweep_interval_s: float = 5.0  # how often unanswered messages (retries, gone owners) are picked up
    retry_backoff_s: float = 2.0  # a failed turn is retried after attempts x this
    poll_interval_s: float = 0.0
    poll_timeout_s: int = 10

    def __post_init__(self) -> None:
        if self.refusal not in REFUSAL_MODES:
            raise BotConfigError(f"refusal {self.refusal!r}: expected one of {', '.join(REFUSAL_MODES)}")
        if self.handoff not in HANDOFF_MODES:
            raise BotConfigError(f"handoff {self.handoff!r}: expected one of {', '.join(HANDOFF_MODES)}")

    @property
    def limits(self) -> PlatformLimits:
        return LIMITS[self.platform]

    @classmethod
    def from_env(cls, token: str, env: Mapping[str, str] | None = None, **overrides: Any) -> Any:
        """TELEGRAM_* or DISCORD_* variables (see docs/VOICE.md); BotConfigError names a bad one."""
        env = os.environ if env is None else env
        platform = cls().platform if cls is not GatewayConfig else overrides.pop("platform")
        prefix = platform.upper()
        users_var = f"{prefix}_ALLOWED_USERS"
        users = parse_ids(env.get(users_var))
        if users is None:
            log.warning("%s is not set: every user is served", users_var)
        else:
            log.info("%s: serving %d user id(s)", users_var, len(users))
        rate_var = f"{prefix}_RATE_LIMIT"
        values: dict[str, Any] = {
            "token": token,
            "allowed_users": users,
            "allowed_channels": parse_ids(env.get(f"{prefix}_ALLOWED_CHANNELS")) or frozenset(),
            "refusal": _choice(env, f"{prefix}_REFUSAL", "reply", REFUSAL_MODES),
            "rate_limit": parse_rate_limit(env.get(rate_var) or "6/60", rate_var),
            "base_url": telegram_api_base_url(env) if platform == "telegram" else None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if cls is GatewayConfig:
            values["platform"] = platform
        return cls(**values)


def inbox_lease_s(env: Mapping[str, str] | None = None) -> float:
    """JUNE_INBOX_LEASE_S: how long a claim holds without renewal before another gateway may take it."""
    return _positive_float(os.environ if env is None else env, "JUNE_INBOX_LEASE_S", 30.0)


def metrics_port(value: int | None = None, env: Mapping[str, str] | None = None) -> int | None:
    """The `/metrics` port: the option, else JUNE_METRICS_PORT, else None (off)."""
    env = os.environ if env is None else env
    if value is None:
        raw = env.get(METRICS_PORT_ENV)
        if not raw:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise BotConfigError(f"{METRICS_PORT_ENV}={raw!r}: expected a port number") from None
    if not 0 <= value <= 65535:
        raise BotConfigError(f"metrics port {value}: expected 0-65535")
    return value


def telegram_api_base_url(env: Mapping[str, str] | None = None) -> str | None:
    """TELEGRAM_API_BASE_URL (a local Bot API server), read when a run builds its client."""
    return (os.environ if env is None else env).get("TELEGRAM_API_BASE_URL") or None


def webserver_url(env: Mapping[str, str] | None = None) -> str:
    """Where the Dagster UI answers, for links in alerts (JUNE_WEBSERVER_URL)."""
    return ((os.environ if env is None else env).get(WEBSERVER_URL_ENV) or "http://127.0.0.1:3000").rstrip("/")


def required_secret(var: str, hint: str = "", env: Mapping[str, str] | None = None) -> str:
    """A token the CLI needs (never logged). BotConfigError when unset."""
    value = (os.environ if env is None else env).get(var, "")
    if not value:
        raise BotConfigError(f"{var} is not set" + (f" ({hint})" if hint else ""))
    return value
