"""Response headers of the console (and the API): a strict CSP, no framing, no referrers, and
``no-store`` on every console page, since many show a plate, a hotlist entry or an image."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: No inline script or style, no eval. 'wasm-unsafe-eval' lets the officer's page compile
#: libsodium's WebAssembly (the Argon2id + Ed25519 of an approval); it allows no JS eval.
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
)
# same-origin, not no-referrer: under no-referrer Chromium sends "Origin: null" with a form
# post, which the origin check must refuse. No console URL holds anything private anyway.
NO_STORE = (b"cache-control", b"no-store")
#: Paths whose own Cache-Control stands: static files, and the audit log's public checkpoint,
#: key and proofs (signed, public by design, and polled by witnesses).
CACHEABLE = ("/console/static/", "/.well-known/privplate/")


class SecurityHeaders:
    """ASGI middleware: the headers above on every response; ``no-store`` on console pages
    (static files may be cached: they hold no data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        no_store = not path.startswith(CACHEABLE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {h for h, _ in HEADERS}
                    and not (no_store and k.lower() == b"cache-control")
                ]
                headers.extend(HEADERS)
                if no_store:
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
