"""Small helpers both transports use: per-chat rate limits, text splitting and HTML escaping."""

from __future__ import annotations

import html
import re
import threading
import time
from collections import deque
from collections.abc import Callable


class ChatRateLimiter:
    """At most `max_messages` per `window_s` seconds per chat (sliding window). Thread-safe."""

    def __init__(
        self, max_messages: int = 6, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_messages = max_messages
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._warned: dict[str, float] = {}
        self._lock = threading.Lock()

    def should_warn(self, chat_id: object) -> bool:
        """True once per window for a limited chat: one "slow down" note, not one per message."""
        now = self.clock()
        with self._lock:
            last = self._warned.get(str(chat_id))
            if last is not None and now - last < self.window_s:
                return False
            self._warned[str(chat_id)] = now
            return True

    def allow(self, chat_id: object) -> tuple[bool, float]:
        """(allowed, seconds to wait when not)."""
        now = self.clock()
        with self._lock:
            q = self._seen.setdefault(str(chat_id), deque())
            while q and now - q[0] >= self.window_s:
                q.popleft()
            if len(q) >= self.max_messages:
                return False, self.window_s - (now - q[0])
            q.append(now)
            return True, 0.0


def split_text(text: str, limit: int) -> list[str]:
    """Split at paragraph, line, sentence or word boundaries into pieces of at most `limit` chars."""
    text = text.strip()
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = -1
        for sep in ("\n\n", "\n", ". ", " "):
            cut = window.rfind(sep)
            if cut > limit // 2:
                cut += len(sep) if sep != "\n\n" else 0
                break
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces


def split_html(text: str, limit: int = 4096) -> list[str]:
    """Escape for Telegram's HTML mode (<, >, &) and split so each escaped piece fits `limit`."""
    out: list[str] = []
    for piece in split_text(text, limit):
        escaped = html.escape(piece, quote=False)
        if len(escaped) <= limit:
            out.append(escaped)
            continue
        # Escaping grew it past the limit: split the raw piece further, never inside an entity.
        sub_limit = limit
        while True:
            sub_limit = int(sub_limit * 0.8)
            subs = [html.escape(s, quote=False) for s in split_text(piece, sub_limit)]
            if all(len(s) <= limit for s in subs):
                out.extend(subs)
                break
    return out


def visible_length(escaped_html: str) -> int:
    """Characters Telegram counts after entity parsing."""
    return len(html.unescape(re.sub(r"<[^>]+>", "", escaped_html)))
