"""Secrets never reach a log: every log record is redacted when it is created, whoever logs it.

A Telegram bot token is part of every Bot API URL (`.../bot123:abc/getUpdates`), and
python-telegram-bot, httpx and httpcore log those URLs at INFO or DEBUG. A filter on one logger
or one handler misses records of other loggers and handlers added later, so June installs a log
record factory instead: the message (with its arguments), the exception text and the stack are
redacted before any handler sees the record. Known secret values are replaced exactly; anything
shaped like a Telegram token, and the password of a `scheme://user:password@host` URL, too.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from typing import Any

MASK = "***"
# `/bot<digits>:<secret>` in a Bot API or file URL, bare Telegram tokens, passwords in URLs.
_BOT_URL = re.compile(r"(\bbot)\d+:[A-Za-z0-9_-]+")
_BARE_TOKEN = re.compile(r"\b\d{6,}:[A-Za-z0-9_-]{30,}\b")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@", re.IGNORECASE)

_lock = threading.Lock()
_secrets: set[str] = set()
_installed = False


def register_secret(value: str | None) -> None:
    """Redact this value from every log record from now on (values under 6 characters are ignored)."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """`text` with every registered secret and every token-shaped string masked."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _BOT_URL.sub(r"\1" + MASK, text)
    text = _BARE_TOKEN.sub(MASK, text)
    return _URL_PASSWORD.sub(r"\1" + MASK + "@", text)


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed format string: log it as it is, not crash the caller
        message = str(record.msg)
    record.msg, record.args = redact(message), ()
    if record.exc_info and record.exc_info[0] is not None:
        # Formatters reuse `exc_text` when it is set: render the traceback once, redacted.
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install() -> None:
    """Redact every log record of this process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
