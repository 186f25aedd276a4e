"""A small fake Telegram Bot API server on loopback (aiohttp), for end-to-end gateway tests.

It speaks the methods the gateway uses (getMe, deleteWebhook, getUpdates with long polling and
offsets, getFile, file download, sendVoice, sendMessage, sendChatAction) and records every call.
Updates stay queued until a later getUpdates confirms them with a higher offset, as Telegram does.
Downloads are streamed in chunks without a Content-Length, and `served` counts the bytes actually
written before the client hung up; `file_size_override` makes getFile lie about a file's size.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from fake_cdn import stream

TOKEN = "123456:TEST-token"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


class FakeBotAPI:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.files: dict[str, tuple[str, bytes]] = {}
        self.served: dict[str, int] = {}  # file path -> bytes written to the client
        self.file_size_override: dict[str, int] = {}  # file id -> the size getFile declares
        self._next_update = 1
        self._next_message = 1000
        self._next_file = 1
        self._cond: asyncio.Condition | None = None
        self.runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._cond = asyncio.Condition()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.*}", self._download)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # -- test helpers --------------------------------------------------------------------------
    def _message(self, user_id: int, chat_id: int, **extra: Any) -> dict[str, Any]:
        self._next_message += 1
        return {
            "message_id": self._next_message,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": f"user{user_id}"},
            "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
            **extra,
        }

    async def push(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self._next_update, **update}
        self._next_update += 1
        self.updates.append(update)
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()
        return update

    async def send_voice_update(
        self, user_id: int, data: bytes, chat_id: int | None = None, duration: int = 3, file_size: int | None = None
    ) -> dict[str, Any]:
        file_id = f"voice-{self._next_file}"
        self._next_file += 1
        self.files[file_id] = (f"voice/{file_id}.oga", data)
        voice = {"file_id": file_id, "file_unique_id": file_id + "-u", "duration": duration,
                 "mime_type": "audio/ogg", "file_size": file_size if file_size is not None else len(data)}
        return await self.push({"message": self._message(user_id, chat_id or user_id, voice=voice)})

    async def send_text_update(self, user_id: int, text: str, chat_id: int | None = None) -> dict[str, Any]:
        return await self.push({"message": self._message(user_id, chat_id or user_id, text=text)})

    async def redeliver(self, update: dict[str, Any]) -> None:
        """Telegram delivering the same update again (e.g. the offset was never confirmed)."""
        self.updates.append(update)
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()

    def sent(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [c for c in self.calls
                if c.method == method and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))]

    async def wait_for(self, predicate, timeout: float = 60.0) -> None:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met; calls: " + ", ".join(c.method for c in self.calls))
            await asyncio.sleep(0.05)

    # -- the API -----------------------------------------------------------------------------------
    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            form = await request.post()
            for k, v in form.items():
                if hasattr(v, "file"):
                    files[k] = v.file.read()
                else:
                    params[k] = v
        for k, v in list(params.items()):
            if isinstance(v, str) and v[:1] in "{[":
                try:
                    params[k] = json.loads(v)
                except ValueError:
                    pass
        return params, files

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params, files = await self._params(request)
        self.calls.append(Call(method, params, files))
        chat = {"id": int(params.get("chat_id", 0) or 0), "type": "private"}
        if method == "getMe":
            return self._ok({"id": 123456, "is_bot": True, "first_name": "June", "username": "june_test_bot",
                             "can_join_groups": False, "can_read_all_group_messages": False,
                             "supports_inline_queries": False})
        if method in ("deleteWebhook", "sendChatAction", "setMyCommands"):
            return self._ok(True)
        if method == "getUpdates":
            offset = int(params.get("offset", 0) or 0)
            timeout = float(params.get("timeout", 0) or 0)
            if offset:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            assert self._cond is not None
            deadline = time.monotonic() + min(timeout, 1.0)
            while not self.updates and time.monotonic() < deadline:
                async with self._cond:
                    try:
                        await asyncio.wait_for(self._cond.wait(), max(0.01, deadline - time.monotonic()))
                    except TimeoutError:
                        pass
            return self._ok(list(self.updates))
        if method == "getFile":
            path, data = self.files[params["file_id"]]
            size = self.file_size_override.get(params["file_id"], len(data))
            return self._ok({"file_id": params["file_id"], "file_unique_id": params["file_id"] + "-u",
                             "file_size": size, "file_path": path})
        if method in ("sendMessage", "sendVoice"):
            self._next_message += 1
            msg: dict[str, Any] = {"message_id": self._next_message, "date": int(time.time()), "chat": chat}
            if method == "sendMessage":
                text = params.get("text", "")
                if len(text) > 4096 or not text.strip():
                    return web.json_response(
                        {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}, status=400
                    )
                msg["text"] = text
            else:
                voice = files.get("voice", b"")
                if not voice or len(voice) > 1_000_000:
                    return web.json_response(
                        {"ok": False, "error_code": 400, "description": "Bad Request: bad voice"}, status=400
                    )
                msg["voice"] = {"file_id": "sent", "file_unique_id": "sent-u",
                                "duration": int(params.get("duration", 1))}
            return self._ok(msg)
        return web.json_response({"ok": False, "error_code": 404, "description": f"Not Found: {method}"}, status=404)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        for p, data in self.files.values():
            if p == path:
                return await stream(request, data, self.served, path)
        return web.Response(status=404)
