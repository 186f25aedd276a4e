"""Downloads that stop at a byte limit, whatever size the sender or the server declared."""

from __future__ import annotations

from june_pipelines.voice.audio import AudioTooLarge

CHUNK_BYTES = 64 * 1024


def too_large(limit_mb: str) -> AudioTooLarge:
    """The one message a user sees for audio over the limit."""
    return AudioTooLarge(f"That audio file is too large; the limit is {limit_mb}.")


async def download_capped(url: str, max_bytes: int, limit_mb: str, timeout_s: float = 60.0) -> bytes:
    """GET `url`, reading at most `max_bytes`; past that the connection is closed and AudioTooLarge raised.

    A declared `Content-Length` over the limit is refused before the body is read; a missing or
    false one does not matter, since the body is counted as it arrives.
    """
    import httpx

    received = bytearray()
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=True) as client:
        async with client.stream("GET", url) as response:
            response.raise_for_status()
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise too_large(limit_mb)
            async for chunk in response.aiter_bytes(CHUNK_BYTES):
                received += chunk
                if len(received) > max_bytes:
                    raise too_large(limit_mb)  # leaving the block closes the connection mid-body
    return bytes(received)
