"""A file server on loopback standing in for a CDN (Discord attachments): counts the bytes it sends."""

from __future__ import annotations

import asyncio

from aiohttp import web

CHUNK = 64 * 1024


async def stream(request: web.Request, data: bytes, served: dict[str, int], key: str) -> web.StreamResponse:
    """Send `data` in chunks without a Content-Length, counting in `served[key]` what was written
    before the client hung up (a client that stops reading early leaves the count short)."""
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    served[key] = 0
    try:
        for start in range(0, len(data), CHUNK):
            await response.write(data[start:start + CHUNK])
            served[key] += len(data[start:start + CHUNK])
            await asyncio.sleep(0)
    except (ConnectionResetError, asyncio.CancelledError):
        return response
    await response.write_eof()
    return response


class FakeCDN:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.served: dict[str, int] = {}  # bytes written to the client per file, until it hung up
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/attachments/{name}", self._get)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # aiohttp keeps no public port

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    def add(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return f"http://127.0.0.1:{self.port}/attachments/{name}"

    async def _get(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        data = self.files.get(name)
        if data is None:
            return web.Response(status=404)
        return await stream(request, data, self.served, name)
