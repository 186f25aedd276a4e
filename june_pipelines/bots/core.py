"""The conversation flow every gateway shares; the platforms only plug in a `PlatformAdapter`.

    message in -> inbox (receive) -> refusal | rate limit -> claim (lease) -> download (capped)
      -> voice turn -> reply (voice + text parts) | hand-over to Dagster -> finish
    a failed turn -> retried after a backoff -> after `max_attempts`, a dead letter and an apology

The user-facing strings, the limits (`settings.LIMITS`) and the error handling live here once.
An adapter knows how to talk to one platform: download a file, send text, send voice, show a chat
action, read a stored message back. `send_reply` is also what the bot sensor's Dagster runs use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from june_pipelines.bots.common import ChatRateLimiter
from june_pipelines.bots.download import too_large
from june_pipelines.bots.inbox import Inbox, InboxItem
from june_pipelines.bots.redaction import redact, register_secret
from june_pipelines.bots.settings import LIMITS, GatewayConfig, PlatformLimits
from june_pipelines.voice.audio import AudioError

if TYPE_CHECKING:
    from june_pipelines.bots.metrics import GatewayMetrics
    from june_pipelines.voice.pipeline import TurnResult, VoicePipeline

log = logging.getLogger("june.bots")

REFUSAL = "Sorry, this is a private assistant and you are not on its list of users."
HANDOFF_ACK = "Working on it: I'll run that and send you the answer shortly."
FAILURE = "Sorry, something went wrong while answering. Please try again."
GREETING = "Hi! Send me a voice message or text, and I'll answer."


def rate_limit_note(wait_s: float) -> str:
    return f"You're sending messages faster than I can answer. Please wait {wait_s:.0f} s."


@dataclass(frozen=True)
class Media:
    """An incoming voice or audio file: where to fetch it and the size its sender declared (not trusted)."""

    ref: str
    declared_bytes: int | None = None


@dataclass(frozen=True)
class Incoming:
    """One inbound message, as every platform describes it to the core."""

    message_id: str
    chat_id: str
    user_id: str
    kind: str  # voice | audio | text
    payload: dict[str, Any]


class PlatformAdapter(ABC):
    """One platform's transport. The core decides what to send; the adapter sends it."""

    platform: str = ""
    voice_kind = "voice"  # how a spoken reply is recorded in the message history
    voice_carries_text = False  # Discord: the audio file rides on the first text part
    parse_mode = ""

    @property
    def limits(self) -> PlatformLimits:
        return LIMITS[self.platform]

    @abstractmethod
    def split(self, text: str) -> list[str]:
        """The reply as pieces ready to send, each within the platform's text limit."""

    def visible_chars(self, piece: str) -> int:
        return len(piece)

    @abstractmethod
    def media(self, item: InboxItem) -> Media | None:
        """The voice or audio file of a stored message, if any."""

    @abstractmethod
    def text(self, item: InboxItem) -> str:
        """The text of a stored message."""

    @abstractmethod
    async def download(self, media: Media, max_bytes: int) -> bytes:
        """The file's bytes; AudioTooLarge as soon as more than `max_bytes` arrive."""

    @abstractmethod
    async def send_text(self, item: InboxItem, text: str, reply: bool) -> str:
        """Send one piece to the message's chat (as a reply to it when `reply`); the platform's message id."""

    @abstractmethod
    async def send_voice(self, item: InboxItem, audio: bytes, audio_s: float, reply: bool, text: str | None) -> str:
        """Send a spoken reply (OGG/Opus), with `text` attached where the platform does that."""

    @abstractmethod
    async def chat_action(self, item: InboxItem, voice: bool) -> None:
        """Show "typing" / "recording voice" in the chat for a few seconds."""

    @abstractmethod
    async def post(self, chat_id: str, text: str) -> str:
        """A plain message to a chat outside any conversation (alerts); the platform's message id."""


async def send_reply(
    adapter: PlatformAdapter, inbox: Inbox, item: InboxItem, text: str, audio: bytes | None = None,
    audio_s: float = 0.0, tag: str = "",
) -> None:
    """Send a voice note (if any) and the text, skipping parts this message already got.

    `tag` names a separate reply to the same message (the "ack:" before a handed-over turn, the
    "failure:" apology), so it never hides the real answer's parts. Only the first message sent
    replies to the user's message.
    """
    platform = adapter.platform
    sent = inbox.already_sent(platform, item.message_id)
    pieces = adapter.split(text)
    reply = True
    voice_part = f"{tag}voice"
    if audio and voice_part not in sent:
        if len(audio) > adapter.limits.voice_bytes:
            log.warning("voice reply of %d bytes exceeds %s's limit of %d; sending text only", len(audio), platform,
                        adapter.limits.voice_bytes)
        else:
            first_part = f"{tag}text:0"
            carried = pieces[0] if adapter.voice_carries_text and pieces and first_part not in sent else None
            mid = await adapter.send_voice(item, audio, audio_s, reply, carried)
            inbox.record_sent(platform, item.message_id, voice_part, adapter.voice_kind, item.chat_id,
                              nbytes=len(audio), audio_s=audio_s, platform_message_id=mid)
            if carried is not None:
                _record_text(adapter, inbox, item, first_part, carried, mid)
                sent = sent | {first_part}
            reply = False
    for i, piece in enumerate(pieces):
        part = f"{tag}text:{i}"
        if part in sent:
            continue
        mid = await adapter.send_text(item, piece, reply)
        _record_text(adapter, inbox, item, part, piece, mid)
        reply = False


def _record_text(adapter: PlatformAdapter, inbox: Inbox, item: InboxItem, part: str, piece: str, mid: str) -> None:
    problems = inbox.record_sent(adapter.platform, item.message_id, part, "text", item.chat_id, text=piece,
                                 parse_mode=adapter.parse_mode, platform_message_id=mid,
                                 visible_chars=adapter.visible_chars(piece))
    if problems:
        log.error("message %s part %s broke %s's limits: %s", item.message_id, part, adapter.platform, problems)


def _one_line(exc: BaseException) -> str:
    """The error as one line, secrets masked: it is stored as a dead letter's reason and shown by the CLI."""
    text = str(exc).strip().splitlines()
    return redact(f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__)


class GatewayCore:
    """The inbox flow of one gateway process. Thread-safe where the inbox is; runs on one event loop."""

    def __init__(
        self, config: GatewayConfig, adapter: PlatformAdapter, pipeline: VoicePipeline, inbox: Inbox,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        from june_pipelines.bots.metrics import GatewayMetrics

        self.config = config
        self.adapter = adapter
        self.pipeline = pipeline
        self.inbox = inbox
        self.platform = adapter.platform
        self.metrics = metrics or GatewayMetrics(self.platform)
        self.limiter = ChatRateLimiter(*config.rate_limit)
        self.tasks: set[asyncio.Task[Any]] = set()  # turns in flight
        self._inflight: set[str] = set()  # message ids this process is working on

    # -- entry points ------------------------------------------------------------------------
    def allowed(self, user_id: str) -> bool:
        users = self.config.allowed_users
        return users is None or str(user_id) in users

    async def handle(self, incoming: Incoming) -> None:
        """A live message: store it, then refuse it, rate-limit it, or answer it."""
        item = self.inbox.receive(self.platform, incoming.message_id, incoming.chat_id, incoming.user_id,
                                  incoming.kind, incoming.payload)
        if not item.is_new:
            log.info("message %s delivered again (status %s): not answering twice", item.message_id, item.status)
            return
        if not self.allowed(item.user_id):
            await self._refuse(item)
            return
        ok, wait_s = self.limiter.allow(item.chat_id)
        if not ok:
            self.metrics.limited()
            if self.limiter.should_warn(item.chat_id):
                await self._notice(item, "rate_limit", rate_limit_note(wait_s))
            self.inbox.finish(self.platform, item.message_id, "rate_limited")
            return
        await self.process(item)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def wait_idle(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def sweep_once(self) -> int:
        """Pick up what no live process holds: retries whose time has come, messages of gone owners,
        dead letters sent back by `june bot dlq retry`. Returns how many turns were started."""
        found = self.inbox.sweep(self.platform)
        for item in found.dead:
            log.warning("message %s is a dead letter: %s", item.message_id, item.last_error)
            self.metrics.turn("dead_letter")
            await self._apologize(item)
        started = 0
        for item in found.ready:
            if item.message_id not in self._inflight:
                self.spawn(self.process(item, live=False))
                started += 1
        if started:
            log.info("picked up %d unanswered message(s) from the inbox", started)
        return started

    async def sweep_forever(self) -> None:
        # Often enough that a message of a gone owner waits at most about one lease more.
        interval = min(self.config.sweep_interval_s, max(0.05, self.inbox.lease_s / 2))
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database hiccup must not stop the sweeps
                log.warning("inbox sweep failed: %s", _one_line(exc))
            await asyncio.sleep(interval)

    # -- one turn ----------------------------------------------------------------------------
    async def process(self, item: InboxItem, live: bool = True) -> None:
        """Claim the message and answer it. A recovered message is checked against the user list again."""
        if item.message_id in self._inflight:
            return
        self._inflight.add(item.message_id)
        try:
            if not self.inbox.claim(self.platform, item.message_id):
                return
            item = self.inbox.get(self.platform, item.message_id) or item
            if not live and not self.allowed(item.user_id):
                await self._refuse(item)
                return
            await self._turn(item)
        finally:
            self._inflight.discard(item.message_id)

    async def _turn(self, item: InboxItem) -> None:
        media = self.adapter.media(item)
        keepers = [
            asyncio.get_running_loop().create_task(self._keep_action(item, media is not None)),
            asyncio.get_running_loop().create_task(self._keep_lease(item)),
        ]
        try:
            audio: bytes | None = None
            if media is not None:
                try:
                    audio = await self._download(media)
                except AudioError as exc:
                    await send_reply(self.adapter, self.inbox, item, str(exc))
                    self.inbox.finish(self.platform, item.message_id, "done", {"error": type(exc).__name__})
                    self.metrics.turn("bad_input")
                    return
            result: TurnResult = await asyncio.to_thread(
                self.pipeline.turn,
                f"{self.platform}:{item.user_id}",
                audio=audio,
                text=None if media is not None else self.adapter.text(item),
                want_audio=media is not None,
                platform=self.platform,
                message_id=item.message_id,
                allow_handoff=self.config.handoff == "dagster",
            )
            if not self.inbox.renew(self.platform, item.message_id):
                log.warning("message %s: lease lost during the turn; another gateway answers it", item.message_id)
                return
            if result.handoff:
                self.inbox.hand_over(self.platform, item.message_id, result.transcript,
                                     {"input_kind": result.input_kind})
                await send_reply(self.adapter, self.inbox, item, HANDOFF_ACK, tag="ack:")
                self.metrics.turn("handed_over", result.latency_ms)
                return
            await send_reply(self.adapter, self.inbox, item, result.reply, result.audio, result.audio_duration_s)
            self.inbox.finish(self.platform, item.message_id, "done", result.summary())
            self.metrics.turn("bad_input" if result.decision == "none" else "answered", result.latency_ms)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed turn is retried, then dead-lettered with an apology; never dropped
            log.exception("turn %s failed (attempt %d of %d)", item.message_id, item.attempts, self.inbox.max_attempts)
            status = self.inbox.release(self.platform, item.message_id, _one_line(exc),
                                        retry_in_s=self.config.retry_backoff_s * item.attempts)
            if status == "dead_letter":
                self.metrics.turn("dead_letter")
                await self._apologize(item)
            else:
                self.metrics.turn("failed")
        finally:
            for task in keepers:
                task.cancel()

    async def _download(self, media: Media) -> bytes:
        limit = self.adapter.limits
        if media.declared_bytes is not None and media.declared_bytes > limit.download_bytes:
            raise too_large(limit.download_mb)  # refused before anything is fetched
        return await self.adapter.download(media, limit.download_bytes)

    async def _keep_action(self, item: InboxItem, voice: bool) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.adapter.chat_action(item, voice)
            await asyncio.sleep(self.config.action_interval_s)

    async def _keep_lease(self, item: InboxItem) -> None:
        interval = max(0.05, self.inbox.lease_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                if not self.inbox.renew(self.platform, item.message_id):
                    return
            except Exception as exc:  # the database is briefly away: try again at the next beat
                log.warning("cannot renew the lease of message %s: %s", item.message_id, _one_line(exc))

    # -- replies that are not answers --------------------------------------------------------
    async def _refuse(self, item: InboxItem) -> None:
        log.info("refusing user %s", item.user_id)
        self.metrics.refused()
        if self.config.refusal == "reply":
            await self._notice(item, "refusal", REFUSAL)
        self.inbox.finish(self.platform, item.message_id, "refused")

    async def _notice(self, item: InboxItem, part: str, text: str) -> None:
        (piece,) = self.adapter.split(text)  # escaped for the platform; short enough for one message
        mid = await self.adapter.send_text(item, piece, reply=False)
        self.inbox.record_sent(self.platform, item.message_id, part, "text", item.chat_id, text=piece,
                               platform_message_id=mid)

    async def _apologize(self, item: InboxItem) -> None:
        try:
            await send_reply(self.adapter, self.inbox, item, FAILURE, tag="failure:")
        except Exception as exc:
            log.warning("could not apologize for message %s: %s", item.message_id, _one_line(exc))


AdapterT = TypeVar("AdapterT", bound=PlatformAdapter)


class Gateway(ABC, Generic[AdapterT]):
    """What every platform's gateway does around its `GatewayCore`: keep the token out of logs, watch
    the inbox, sweep for unanswered messages and answer /healthz. Subclasses say how they connect."""

    def __init__(
        self, config: GatewayConfig, adapter: AdapterT, pipeline: VoicePipeline, inbox: Inbox,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        register_secret(config.token)
        self.config = config
        self.inbox = inbox
        self.adapter = adapter
        self.core = GatewayCore(config, adapter, pipeline, inbox, metrics)
        self.core.metrics.watch_inbox(lambda: inbox.pending(adapter.platform))
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def metrics(self) -> GatewayMetrics:
        return self.core.metrics

    @abstractmethod
    def _connection_problem(self) -> str | None:
        """Why the platform's side is down, for /healthz; None when connected."""

    def healthy(self) -> tuple[bool, str]:
        """For /healthz: connected to the platform and the inbox answers."""
        problem = self._connection_problem()
        if problem is not None:
            return False, problem
        if not self.inbox.ping():
            return False, f"inbox unreachable ({self.inbox.backend})"
        return True, "ok"

    async def _start_sweeping(self) -> None:
        """Pick up what a previous process left unanswered, then keep sweeping."""
        await self.core.sweep_once()
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self.core.sweep_forever())

    def _stop_sweeping(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
