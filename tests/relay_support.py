"""A party on an edge's plain-HTTP path (http.server in a thread): it passes the edge's requests
on to a real server and its answers back, and can instead answer ``POST /ingest`` itself (with
an answer it kept from an earlier request, or one it signed with a key of its own)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

INGEST = "/ingest"


class Relay:
    """Requests go to ``upstream``. For ``POST /ingest``: ``forge`` (if set) answers instead,
    with ``forge_status``, from the request's headers (names in lower case) and body, without
    asking anyone (when it returns None the request goes through); ``ingest_refusals`` holds
    every real error answer that came through; with
    ``swallow`` the real answer is kept but the edge gets a 502, as if the link broke.
    ``ingest_answers`` holds every real answer to ``POST /ingest`` that came through."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.forge: Callable[[dict[str, str], bytes], dict[str, Any] | None] | None = None
        self.forge_status = 200
        self.swallow = False
        self.ingest_answers: list[dict[str, Any]] = []
        self.ingest_refusals: list[dict[str, Any]] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ingest = self.command == "POST" and self.path == INGEST
                if ingest and relay.forge is not None:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    forged = relay.forge(headers, body)
                    if forged is not None:  # None: this one goes through
                        self._answer(relay.forge_status, json.dumps(forged).encode())
                        return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower().startswith("x-privplate-") or k.lower() == "content-type"
                }
                answer = httpx.request(
                    self.command,
                    relay.upstream + self.path,
                    content=body,
                    headers=headers,
                    timeout=30,
                )
                if ingest and answer.status_code >= 400:
                    relay.ingest_refusals.append(answer.json())
                if ingest and answer.status_code == 200:
                    relay.ingest_answers.append(answer.json())
                    if relay.swallow:
                        self._answer(502, b'{"detail": "bad gateway"}')
                        return
                self._answer(answer.status_code, answer.content)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _relay  # noqa: N815 - http.server's names
            do_POST = _relay  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
