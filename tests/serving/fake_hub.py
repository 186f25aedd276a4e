"""A loopback stand-in for the Hugging Face Hub (the external boundary of `model_weights`): the
model-info, tree and resolve endpoints `huggingface_hub` calls for one repository at one commit."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class FakeHub:
    def __init__(
        self,
        repo: str,
        revision: str,
        files: dict[str, bytes],
        lfs: set[str] = frozenset(),
        corrupt: set[str] = frozenset(),
    ) -> None:
        """`corrupt`: files served with one byte flipped while the metadata describes the originals."""
        self.repo, self.revision, self.files, self.lfs, self.corrupt = repo, revision, files, set(lfs), set(corrupt)
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body=b"", headers=None, head=False):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _route(self, head=False):
                path = unquote(urlparse(self.path).path)
                hub.requests.append(f"{self.command} {path}")
                info = f"/api/models/{hub.repo}/revision/{hub.revision}"
                tree = f"/api/models/{hub.repo}/tree/{hub.revision}"
                resolve = f"/{hub.repo}/resolve/{hub.revision}/"
                if path == info:
                    return self._send(
                        200, json.dumps(hub.model_info()).encode(), {"Content-Type": "application/json"}, head
                    )
                if path.startswith(tree):
                    return self._send(200, json.dumps(hub.tree()).encode(), {"Content-Type": "application/json"}, head)
                if path.startswith(resolve) and path[len(resolve) :] in hub.files:
                    name = path[len(resolve) :]
                    data = hub.files[name]
                    if name in hub.corrupt:
                        data = data[:-1] + bytes([data[-1] ^ 0xFF])
                    etag = hub.etag(name)
                    headers = {
                        "X-Repo-Commit": hub.revision,
                        "ETag": f'"{etag}"',
                        "Content-Type": "application/octet-stream",
                    }
                    if name in hub.lfs:
                        headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))})
                    return self._send(200, data, headers, head)
                return self._send(
                    404,
                    b'{"error": "not found"}',
                    {"Content-Type": "application/json", "X-Error-Code": "EntryNotFound"},
                    head,
                )

            def do_GET(self):
                self._route()

            def do_HEAD(self):
                self._route(head=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def etag(self, name: str) -> str:
        data = self.files[name]
        if name in self.lfs:
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git blob id

    def _lfs(self, name: str) -> dict | None:
        if name not in self.lfs:
            return None
        return {"sha256": self.etag(name), "oid": self.etag(name), "size": len(self.files[name]), "pointerSize": 134}

    def model_info(self) -> dict:
        return {
            "id": self.repo,
            "modelId": self.repo,
            "sha": self.revision,
            "private": False,
            "siblings": [
                {
                    "rfilename": n,
                    "size": len(d),
                    "blobId": self.etag(n),
                    **({"lfs": self._lfs(n)} if n in self.lfs else {}),
                }
                for n, d in self.files.items()
            ],
        }

    def tree(self) -> list[dict]:
        return [
            {
                "type": "file",
                "path": n,
                "size": len(d),
                "oid": self.etag(n),
                **({"lfs": self._lfs(n)} if n in self.lfs else {}),
            }
            for n, d in self.files.items()
        ]

    def close(self) -> None:
        self.server.shutdown()
