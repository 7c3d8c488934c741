"""The console's own cap on request bodies, far below the API's ``server.max_request_bytes``.

Why: FastAPI parses a form (and spools its files) before any guard runs, so without a cap an
unsigned-in client could make the server hold or write tens of megabytes per request; and
Starlette writes an upload larger than ``MultiPartParser.spool_max_size`` to a temporary file
on disk, which for a hotlist CSV is a file of plates. The biggest thing a console form sends
is a CSV at the import's own limit: every console body must fit that (with room for the form
around it), which keeps every upload in memory and refused ones unread.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from privplate.console.render import PUBLIC_NAV, environment
from privplate.hotlists.csv_import import MAX_IMPORT_BYTES

#: A hotlist CSV at its limit plus the multipart framing and the other fields of its form.
MAX_CONSOLE_BODY = MAX_IMPORT_BYTES + 64 * 1024


class _TooLarge(Exception):
    pass


def _page() -> bytes:
    return (
        environment()
        .get_template("error.html")
        .render(
            title="Too large",
            message=f"refused: the form sent more than {MAX_CONSOLE_BODY} bytes (a hotlist "
            f"CSV may hold at most {MAX_IMPORT_BYTES}); nothing was read",
            status=413,
            user=None,
            nav=(),
            public_nav=PUBLIC_NAV,
            csrf="",
            path="",
        )
        .encode()
    )


class ConsoleBodyLimit:
    """ASGI middleware: a console request whose body is larger than ``max_bytes`` is answered
    413 before it is read (by its Content-Length), or as soon as the count passes the cap (a
    body without one); the route's answer to the cut-off body is dropped for the 413."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_CONSOLE_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/console" or path.startswith("/console/")):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        seen = 0
        over = False
        refused = False

        async def counted() -> Message:
            nonlocal seen, over
            if over:  # the app asks again after the cut: the client is gone, as far as it knows
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # FastAPI turns an error while it reads the form into a 400 of its own: whatever
            # the app answers a body cut off at the cap, the client gets the 413.
            nonlocal refused
            if not over:
                await send(message)
                return
            if not refused:
                refused = True
                await self._refuse(send)

        try:
            await self.app(scope, counted, guarded_send)
        except _TooLarge:
            if not refused:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = _page()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
