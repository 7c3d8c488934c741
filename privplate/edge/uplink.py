"""Sending spooled batches: to the local store (single-box mode) or to the server (signed).

The worker retries with exponential backoff and jitter for as long as it takes; a batch is
acknowledged in the spool only after the store or server answered that it holds it. Because
read ids are chosen by the edge and a batch is re-sent with the same id and bytes, sending
twice stores once.

The server's identity. An enrolled edge pinned the server's audit key (``server_key`` in
enrolment.json, or ``edge.server_key``); :class:`ServerIdentity` holds it. Whoever hands the
edge its epoch key could invert its tokens by trying every plate, so an epoch key is used only
if its answer carries the pinned key's signature over the answer and the request's fresh nonce
(privplate/devices/epoch_answer.py): an impostor at ``edge.server_url`` (a hijacked name, a
mistyped URL, another deployment that registered this device's public key) cannot make one.
The answer kept in the spool for restarts while the server is down is checked again when used.
Before the first upload, and again after any failed connection (a name may now point
elsewhere), the uplink asks for such a fresh signed answer: until one verifies, batches stay in
the spool and are retried (:class:`ServerNotTrusted`), so nothing is lost and nothing reaches
the impostor. What the proof cannot do is guard an ``http://`` link against someone on the
path between two requests: use https. Such a party cannot make the edge drop a batch it did
not store, though: a batch leaves the spool only on a receipt signed by the pinned key over
the request's nonce, the batch id and the SHA-256 of its bytes
(privplate/devices/batch_receipt.py); any other answer keeps the batch, and the server must
prove itself again. Nor can it get a batch set aside (and, a week later, dropped) by answering
with a refusal: a pinned edge believes a refusal only when it is signed over the same request
and bytes; an unsigned one keeps the batch in the spool (a refusal the server does not sign,
of a body it cannot parse, then holds up the spool, and the spool backlog alert says so; a
batch too large for it is sent again in smaller batches). What such a party carries away are
tokens under the real server's epoch key and evidence sealed to the evidence key, which it
cannot open. An edge with no pin (a device key registered by hand and no
``edge.server_key``) checks nothing and says so once in its log.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from privplate.audit.note import NoteVerifier
from privplate.devices.batch_receipt import verify_receipt, verify_refusal
from privplate.devices.batches import IngestBatch
from privplate.devices.epoch_answer import verify_answer
from privplate.devices.protocol import HEADER_NONCE, DeviceKey
from privplate.edge.spool import Spool, SpooledBatch
from privplate.errors import ConfigError, IngestRejected, KeyringError, PrivplateError
from privplate.tokens.keyring import EpochKey

if TYPE_CHECKING:
    from privplate.services import Services

log = logging.getLogger(__name__)


class UplinkError(PrivplateError):
    """The batch did not reach the store or server. ``permanent``: it was refused as it is
    (sending it again cannot help), so it is set aside instead of blocking the spool. An HTTP
    refusal keeps its ``status``, its error ``answer`` and the ``nonce`` its request was signed
    with: a pinned edge believes it only under the server's signature (ServerIdentity)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        status: int = 0,
        answer: Mapping[str, Any] | None = None,
        nonce: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.answer = answer
        self.nonce = nonce


#: HTTP answers that refuse the batch itself; anything else (401 clock skew, 429, 5xx, no
#: answer) may pass on a later try.
PERMANENT_STATUS = frozenset({400, 404, 409, 410, 413, 422})
#: 403 answers that concern the batch, not the device: a camera this device may not report
#: for. Retrying cannot help and would hold up every batch behind it. Other 401/403 answers
#: (revoked device, clock skew) are retried: they will pass once the device is fixed.
PERMANENT_KINDS = frozenset({"device_not_allowed"})
SET_ASIDE_DAYS = 7
#: The server's answer to a body over its size limit (privplate.api.limits.BodyLimit).
TOO_LARGE = 413


class Uplink(Protocol):
    def send(self, batch: SpooledBatch) -> None: ...


class LocalUplink:
    """Single-box mode: the edge hands its batches to the deployment's own ingest, the same
    one the server's ``POST /ingest`` uses, so a hotlist hit becomes a server alert (alerts
    page, SSE stream, webhooks, transparency report) exactly as it would from a remote edge."""

    def __init__(self, services: Services, actor: str = "edge") -> None:
        self.services = services
        self.actor = actor

    def send(self, batch: SpooledBatch) -> None:
        reads, evidence = IngestBatch.model_validate_json(batch.body).to_store()
        try:
            self.services.ingest(reads, evidence, actor=self.actor)
        except IngestRejected as exc:
            raise UplinkError(f"local store refused the batch: {exc}", permanent=True) from None
        except PrivplateError as exc:
            raise UplinkError(f"local store unavailable: {exc}") from None


class DeviceClient:
    """Signed requests to the server (see privplate.devices.protocol)."""

    def __init__(self, server_url: str, key: DeviceKey, *, timeout: float = 30.0) -> None:
        self.base = server_url.rstrip("/")
        self.key = key
        self.timeout = timeout

    def request(self, method: str, path: str, body: bytes = b"") -> Any:
        return self.signed_request(method, path, body)[0]

    def signed_request(self, method: str, path: str, body: bytes = b"") -> tuple[Any, bytes]:
        """The answer and the nonce the request was signed with (a server signs over it)."""
        headers = self.key.sign_request(method, path, body)
        headers["Content-Type"] = "application/json"
        nonce = bytes.fromhex(headers[HEADER_NONCE])
        request = urllib.request.Request(  # noqa: S310 - the configured server URL
            self.base + path, data=body if method != "GET" else None, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"null"), nonce
        except urllib.error.HTTPError as exc:
            error = _error_body(exc)
            kind, detail = _detail(error)
            raise UplinkError(
                f"server answered {exc.code} to {method} {path}: {detail}",
                permanent=exc.code in PERMANENT_STATUS or kind in PERMANENT_KINDS,
                status=exc.code,
                answer=error,
                nonce=nonce,
            ) from None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            # urllib wraps a failed connect in a URLError: name its cause (TimeoutError on a
            # cut link, ConnectionRefusedError when nothing listens). http.client's own errors
            # (an answer cut short) must be retried too, or they would end the uplink thread.
            cause = getattr(exc, "reason", exc)
            name = type(cause if isinstance(cause, BaseException) else exc).__name__
            raise UplinkError(f"server unreachable for {method} {path} ({name})") from None


def _error_body(exc: urllib.error.HTTPError) -> dict[str, Any]:
    """The server's error answer as JSON (empty when it is none)."""
    try:
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _detail(body: Mapping[str, Any]) -> tuple[str, str]:
    """(error type, message) of the server's error answer."""
    if not body:
        return "", "no detail"
    error = body.get("error")
    kind = str(error.get("type", "")) if isinstance(error, dict) else ""
    detail = error.get("message") if isinstance(error, dict) else body.get("detail")
    return kind, str(detail)[:300] if detail else "no detail"


class ServerNotTrusted(UplinkError):
    """The server did not prove it holds the key this edge pinned: its epoch key is not used
    and no batch is sent to it, or its answer to a batch is not a receipt signed by that key:
    the batch is not taken as stored. Either way the batches stay in the spool."""


EPOCH_PATH = "/device/epoch"
INGEST_PATH = "/ingest"


class ServerIdentity:
    """The pinned server key, and whether the server at the client's URL proved it holds it
    (see the module). ``pin`` None: an unpinned edge, nothing is checked."""

    def __init__(self, client: DeviceClient, pin: NoteVerifier | None) -> None:
        self.client = client
        self.pin = pin
        self.proven = False
        self._warned = False

    def fetch_epoch(self) -> dict[str, Any]:
        """A fresh ``GET /device/epoch`` answer, checked against the pin; what the spool keeps
        of it (the answer and the nonce it was signed over)."""
        answer, nonce = self.client.signed_request("GET", EPOCH_PATH)
        if not isinstance(answer, dict):
            raise UplinkError(f"the server's answer to GET {EPOCH_PATH} is not an epoch key")
        self.check(answer, nonce)
        self.proven = True
        return {"answer": answer, "nonce": nonce.hex()}

    def _pinned(self) -> NoteVerifier | None:
        """The pin; None for an unpinned edge, which checks nothing (and says so once)."""
        if self.pin is None and not self._warned:
            self._warned = True
            log.warning(
                "uplink: this edge pins no server key (not enrolled, no edge.server_key): "
                "the server's identity is not checked"
            )
        return self.pin

    def check(self, answer: dict[str, Any], nonce: bytes) -> None:
        pin = self._pinned()
        if pin is None:
            return
        if not verify_answer(pin, answer, device_id=self.client.key.device_id, nonce=nonce):
            raise ServerNotTrusted(
                f"the server at {self.client.base} did not prove it holds the key this edge "
                f"pinned ({pin.name}): not the server it was enrolled with (wrong "
                "edge.server_url, or an impostor). No epoch key taken, nothing sent; reads stay "
                "in the spool. Fix edge.server_url, or enrol again with the right server"
            )

    def check_receipt(self, answer: Any, nonce: bytes, batch: SpooledBatch) -> None:
        """Raise ServerNotTrusted unless ``answer`` is the pinned key's receipt for ``batch``
        (its id and bytes) answering the request signed with ``nonce``."""
        pin = self._pinned()
        if pin is None:
            return
        if not isinstance(answer, dict) or not verify_receipt(
            pin,
            answer,
            device_id=self.client.key.device_id,
            nonce=nonce,
            batch_id=batch.batch_id,
            digest=hashlib.sha256(batch.body).digest(),
        ):
            raise ServerNotTrusted(
                f"the answer from {self.client.base} to POST {INGEST_PATH} carries no valid "
                f"receipt signature by the key this edge pinned ({pin.name}) for this "
                "request and batch: it may not come from the server this edge was enrolled with. "
                "The batch stays in the spool and the server must prove itself again"
            )

    def check_refusal(self, exc: UplinkError, batch: SpooledBatch) -> None:
        """Raise ServerNotTrusted unless the refusal ``exc`` is signed by the pinned key for
        the request it answers, ``batch``'s bytes, its status and its error type: whoever
        answers on the path could otherwise get any batch set aside, and in time dropped."""
        pin = self._pinned()
        if pin is None:
            return
        if exc.answer is None or not verify_refusal(
            pin,
            exc.answer,
            device_id=self.client.key.device_id,
            nonce=exc.nonce,
            digest=hashlib.sha256(batch.body).digest(),
            status=exc.status,
        ):
            raise ServerNotTrusted(
                f"{exc}; the refusal carries no valid signature by the key this edge pinned "
                f"({pin.name}) for this request and batch, so it may not come from the server "
                "this edge was enrolled with. The batch stays in the spool and is sent again "
                "once the server has proved itself",
                status=exc.status,
            )

    def ensure(self) -> None:
        """Raise ServerNotTrusted (or UplinkError) unless the server proved itself already."""
        if self.pin is not None and not self.proven:
            self.fetch_epoch()

    def forget(self) -> None:
        """A connection failed: the next server to answer must prove itself again."""
        self.proven = False


class HttpUplink:
    def __init__(self, client: DeviceClient, identity: ServerIdentity | None = None) -> None:
        self.client = client
        self.identity = identity

    def send(self, batch: SpooledBatch) -> None:
        if self.identity is None:
            self.client.request("POST", INGEST_PATH, batch.body)
            return
        try:
            try:
                self.identity.ensure()
                answer, nonce = self.client.signed_request("POST", INGEST_PATH, batch.body)
            except UplinkError as exc:
                # Before the worker sets the batch aside: a refusal not signed for it (or one
                # of the identity proof, not of the batch) becomes ServerNotTrusted.
                if exc.permanent:
                    self.identity.check_refusal(exc, batch)
                raise
            # Before the worker acknowledges (drops) the batch: an answer not signed for it
            # may come from whoever answers on the path, not from a server that stored it.
            self.identity.check_receipt(answer, nonce, batch)
        except UplinkError as exc:
            if not exc.permanent:  # ServerNotTrusted included: prove the server again
                self.identity.forget()
            raise


class ServerKeys:
    """The current epoch key from the server, sealed to this device and signed by the pinned
    server key; the signed answer is kept in the spool so a restart while the server is down
    can still tokenize."""

    STATE = "epoch"

    def __init__(
        self,
        client: DeviceClient,
        spool: Spool,
        *,
        fold: Mapping[str, str] | None = None,
        retry_seconds: float = 30.0,
        identity: ServerIdentity | None = None,
    ) -> None:
        self.client = client
        self.spool = spool
        self.fold = dict(fold) if fold else None
        self.retry_seconds = retry_seconds
        self.identity = identity or ServerIdentity(client, None)
        self._key: EpochKey | None = None
        self._failed_at: float | None = None

    def _from(self, answer: dict[str, Any]) -> EpochKey:
        served = dict(answer.get("confusables") or {}) if answer.get("fold_confusables") else None
        if served != self.fold:
            # Tokens of a folding server never match tokens of an edge that does not fold.
            raise ConfigError(
                "the server and this edge canonicalize plates differently; set "
                "plates.fold_confusables (and plates.confusables) on the edge as on the server"
            )
        key = self.client.key.open_sealed_key(base64.b64decode(answer["sealed_key"]))
        return EpochKey(
            int(answer["epoch_id"]),
            datetime.fromisoformat(answer["starts_at"]),
            datetime.fromisoformat(answer["ends_at"]),
            key,
        )

    def current_key(self, now: datetime | None = None) -> EpochKey:
        now = now or datetime.now(UTC)
        if self._key is not None and self._key.starts_at <= now < self._key.ends_at:
            return self._key
        # While the server is unreachable it is asked again only every retry_seconds: the
        # camera must not wait on a network timeout for every plate.
        recently_failed = (
            self._failed_at is not None and time.monotonic() - self._failed_at < self.retry_seconds
        )
        try:
            if recently_failed:
                raise UplinkError("the server was unreachable moments ago")
            kept = self.identity.fetch_epoch()
            self.spool.set_state(self.STATE, json.dumps(kept).encode())
            self._failed_at = None
            answer = kept["answer"]
        except UplinkError as exc:
            if isinstance(exc, ServerNotTrusted):
                log.error("uplink: %s", exc)
            if not recently_failed:
                self._failed_at = time.monotonic()
            answer = self._cached()
            if answer is None:
                why = "" if isinstance(exc, ServerNotTrusted) else " and the server is unreachable"
                raise KeyringError(f"no epoch key yet{why} ({exc})") from None
        key = self._from(answer)
        if not key.starts_at <= now < key.ends_at:
            raise KeyringError("the held epoch key has ended and the server is unreachable")
        self._key = key
        return key

    def _cached(self) -> dict[str, Any] | None:
        """The answer kept in the spool, if it still verifies against the pin (a spool written
        before answers were signed holds a bare answer: usable only by an unpinned edge)."""
        raw = self.spool.get_state(self.STATE)
        if raw is None:
            return None
        kept = json.loads(raw)
        if "answer" not in kept:
            return kept if self.identity.pin is None else None
        answer: dict[str, Any] = kept["answer"]
        try:
            self.identity.check(answer, bytes.fromhex(kept["nonce"]))
        except (ServerNotTrusted, ValueError):
            return None
        return answer


class ServerHotlistFeed:
    def __init__(self, client: DeviceClient) -> None:
        self.client = client

    def epoch_tokens(self, epoch_id: int) -> list[tuple[bytes, str]]:
        query = urllib.parse.urlencode({"epoch_id": epoch_id})
        answer = self.client.request("GET", f"/device/hotlist-tokens?{query}")
        return [(bytes.fromhex(t["token"]), str(t["hotlist"])) for t in answer["tokens"]]


class UplinkWorker:
    """Drains the spool in a background thread."""

    def __init__(
        self,
        spool: Spool,
        uplink: Uplink,
        *,
        batch_reads: int = 200,
        initial_delay: float = 0.5,
        max_delay: float = 30.0,
        idle_poll: float = 0.5,
        linger: float = 0.0,
    ) -> None:
        self.spool = spool
        self.uplink = uplink
        self.batch_reads = batch_reads
        #: Reads per batch now: batch_reads, less after the server found a batch too large.
        self.batch_limit = batch_reads
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.idle_poll = idle_poll
        #: After a batch smaller than batch_reads, wait this long for more reads before the
        #: next: fewer, fuller requests (a server's cost is mostly per request). hurry() cuts
        #: the wait short for a read that raised an alert at the edge.
        self.linger = linger
        self._wake = threading.Event()
        self.status = "idle"
        self.sent_reads = 0
        self.failures = 0
        self.rejected = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_reads = 0

    def step(self) -> bool:
        """Send one batch; True if one was sent, False if the spool was empty.
        Raises UplinkError when the batch could not be delivered."""
        batch = self.spool.next_batch(self.batch_limit)
        if batch is None:
            self.status = "idle"
            return False
        try:
            self.uplink.send(batch)
        except UplinkError as exc:
            self.failures += 1
            if exc.status == TOO_LARGE and batch.reads > 1:
                # Too large for the server (or so says someone on the path: no matter, the
                # reads still leave the spool only on a signed receipt, and the server stores
                # a read once): the reads go again in batches half the size, from now on.
                self.spool.release(batch.batch_id)
                self.batch_limit = max(1, batch.reads // 2)
                log.warning(
                    "uplink: a batch of %d reads was too large for the server; sending at "
                    "most %d reads a batch",
                    batch.reads,
                    self.batch_limit,
                )
                return True
            if exc.permanent:
                self.spool.set_aside(batch.batch_id, str(exc))
                self.rejected += 1
                log.error(
                    "uplink: batch of %d reads refused (%s); set aside in the spool, "
                    "`privplate edge spool --retry` sends it again",
                    batch.reads,
                    exc,
                )
                return True
            self.spool.attempted(batch.batch_id)
            raise
        self.spool.acknowledge(batch.batch_id)
        self._last_reads = batch.reads
        self.sent_reads += batch.reads
        self.status = "sending"
        return True

    def run(self) -> None:
        delay = 0.0
        swept = 0.0
        while not self._stop.is_set():
            if time.monotonic() - swept > 3600:
                # Refused batches are kept for an operator, not forever (retention).
                self.spool.drop_set_aside_before(time.time() - SET_ASIDE_DAYS * 86_400)
                swept = time.monotonic()
            try:
                sent = self.step()
            except UplinkError as exc:
                delay = min(self.max_delay, max(self.initial_delay, delay * 2))
                self.status = f"retrying in {delay:.0f}s"
                log.warning("uplink: %s; retrying in %.1f s", exc, delay)
                self._stop.wait(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
                continue
            delay = 0.0
            if not sent:
                self._pause(max(self.idle_poll, self.linger))
            elif self.linger > 0 and self._last_reads < self.batch_limit:
                self._pause(self.linger)

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or until stop() or hurry()."""
        self._wake.wait(seconds)
        self._wake.clear()

    def hurry(self) -> None:
        """A read that raised an alert at the edge was spooled: send without lingering."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="privplate-uplink", daemon=True)
        self._thread.start()

    def stop(self, *, drain_seconds: float = 0.0) -> None:
        """Stop; first try for up to ``drain_seconds`` to send what is waiting."""
        if drain_seconds > 0 and self._thread is not None:
            deadline = threading.Event()
            timer = threading.Timer(drain_seconds, deadline.set)
            timer.start()
            while not deadline.is_set() and self.spool.depth() > 0:
                deadline.wait(0.1)
            timer.cancel()
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
