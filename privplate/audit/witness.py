"""`privplate audit witness`: an outside party's check that the deployment's audit log only
ever grows, and its cosignature (c2sp.org/tlog-cosignature) when it does.

The witness runs on another host (the council clerk's, an auditor's) with the core install
only: the standard library's urllib for HTTP, PyNaCl for the signatures, nothing of the
server. It pins the log's verifier key (``privplate audit public-key`` prints it) and keeps
one state file: the last checkpoint it accepted. Each round it

1. fetches ``/.well-known/privplate/checkpoint`` and opens it with the pinned key;
2. compares it with the state: the same size must have the same root; a larger size needs
   a consistency proof from the server (``/.well-known/privplate/consistency``) that
   verifies; a smaller size, another root or a failed proof means the log was rewritten or
   forked, and the witness refuses (never cosigns) and says what it saw;
3. writes the new state (atomically, *before* the cosignature leaves the process: a witness
   that crashed after posting must not later accept another tree of the same size), then
   cosigns and posts the cosignature to ``/.well-known/privplate/cosignature``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nacl.signing

from privplate.audit.cosignature import Cosignature, Cosigner
from privplate.audit.merkle import MerkleProofError, verify_consistency
from privplate.audit.note import ALG_ED25519, NoteVerifier, valid_key_name
from privplate.audit.signing import Checkpoint
from privplate.errors import AuditError, ConfigError, PrivplateError
from privplate.tokens.kek import decode_key, read_key_file, write_private_file

__all__ = [
    "CHECKPOINT_PATH",
    "CONSISTENCY_PATH",
    "COSIGNATURE_PATH",
    "LogInconsistent",
    "Round",
    "ServerUnavailable",
    "Witness",
    "WitnessState",
    "create_witness_key",
    "read_witness_key",
    "watch",
]

CHECKPOINT_PATH = "/.well-known/privplate/checkpoint"
CONSISTENCY_PATH = "/.well-known/privplate/consistency"
COSIGNATURE_PATH = "/.well-known/privplate/cosignature"
_KEY_FORMAT = "privplate-witness-key"
_STATE_FORMAT = "privplate-witness-state"
#: A checkpoint note with every cosignature a deployment may list stays far below this; a
#: consistency proof holds at most 2·63 hashes of 45 characters.
_MAX_ANSWER_BYTES = 64 * 1024


class LogInconsistent(AuditError):
    """The log's new checkpoint does not extend the one this witness accepted before: it was
    rewritten, rolled back or forked. Never cosigned."""

    exit_code = 3


class ServerUnavailable(PrivplateError):
    """No usable answer from the server (down, TLS, a refusal): nothing was decided about the
    log's history."""

    exit_code = 69  # EX_UNAVAILABLE


# -- the witness's key -----------------------------------------------------------------------


def create_witness_key(path: Path, name: str) -> Cosigner:
    """Create the witness's Ed25519 key file (mode 0600); never overwrite one, since the
    deployment and anyone checking its cosignatures pin the public key."""
    if not valid_key_name(name):
        raise ConfigError(
            f"witness name {name!r} is not a valid note key name: no spaces, no '+' (e.g. "
            "clerk.springfield.example/witness)"
        )
    if path.exists():
        raise ConfigError(f"{path} already exists; a witness keeps its key (pick another path)")
    seed = bytes(nacl.signing.SigningKey.generate())
    body = {"format": _KEY_FORMAT, "version": 1, "name": name}
    body["seed"] = base64.b64encode(seed).decode()
    write_private_file(path, json.dumps(body).encode())
    return Cosigner(name, seed)


def read_witness_key(path: Path) -> Cosigner:
    data = read_key_file(
        path,
        fmt=_KEY_FORMAT,
        what="witness key",
        missing_hint="create it with `privplate audit witness --init --key FILE --name NAME`",
    )
    name = data.get("name")
    try:
        seed = decode_key(data, "seed", 32)
        if not isinstance(name, str) or not valid_key_name(name):
            raise ValueError("name must be a note key name")
    except ValueError as exc:
        raise ConfigError(f"witness key {path} is malformed ({exc})") from None
    return Cosigner(name, seed)


# -- checkpoints and state -------------------------------------------------------------------


@dataclass(frozen=True)
class WitnessState:
    """The last checkpoint this witness accepted, for one log."""

    log: str  # the log's verifier key
    tree_size: int
    root: bytes
    checkpoint: str  # its note text
    seen_at: str

    @classmethod
    def read(cls, path: Path) -> WitnessState | None:
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != _STATE_FORMAT:
                raise ValueError(f"not a {_STATE_FORMAT} file")
            if data.get("version") != 1 or type(data.get("tree_size")) is not int:
                raise ValueError("unsupported version or tree size")
            root = base64.b64decode(data["root"], validate=True)
            if len(root) != 32 or data["tree_size"] < 0:
                raise ValueError("root or tree size out of range")
            return cls(
                log=str(data["log"]),
                tree_size=data["tree_size"],
                root=root,
                checkpoint=str(data["checkpoint"]),
                seen_at=str(data["seen_at"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise ConfigError(
                f"witness state {path} is unreadable ({exc}); it is the witness's memory of "
                "the log: restore it from a backup rather than delete it"
            ) from None

    def write(self, path: Path) -> None:
        body = {
            "format": _STATE_FORMAT,
            "version": 1,
            "log": self.log,
            "tree_size": self.tree_size,
            "root": base64.b64encode(self.root).decode(),
            "checkpoint": self.checkpoint,
            "seen_at": self.seen_at,
        }
        write_private_file(path, (json.dumps(body, indent=2) + "\n").encode())


# -- one round -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    """What one round saw and did."""

    previous_size: int | None  # None: the first checkpoint this witness saw of the log
    tree_size: int
    root: bytes
    cosignature: Cosignature
    #: The server's answer to the posted cosignature ("new", "refreshed").
    recorded: str

    def describe(self) -> str:
        root = base64.b64encode(self.root).decode()
        if self.previous_size is None:
            seen = f"first checkpoint seen: {self.tree_size} entries, root {root}"
        elif self.previous_size == self.tree_size:
            seen = f"log unchanged at {self.tree_size} entries, root {root}"
        else:
            seen = (
                f"log grew from {self.previous_size} to {self.tree_size} entries "
                f"(consistency proof verified), root {root}"
            )
        return f"{seen}; cosigned at {self.cosignature.timestamp} ({self.recorded})"


class Witness:
    def __init__(
        self,
        *,
        server: str,
        log_key: str,
        cosigner: Cosigner,
        state_path: Path,
        ca_file: Path | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urllib.parse.urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--server must be an http:// or https:// URL, not {server!r}")
        self.base = server.rstrip("/")
        self.log = NoteVerifier.parse(log_key)
        if self.log.alg != ALG_ED25519:
            raise ConfigError(
                "--log-key is the log's key (`privplate audit public-key` on the deployment), "
                "not a witness's cosignature key"
            )
        self.cosigner = cosigner
        self.state_path = state_path
        self.timeout = timeout
        self.clock = clock
        self._tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    # -- HTTP (urllib: the witness's box has the core install only) --

    def _call(self, path: str, body: bytes | None = None) -> str:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.base + path,
            data=body,
            method="GET" if body is None else "POST",
            headers={"Content-Type": "text/plain; charset=utf-8"} if body is not None else {},
        )
        with _Cutoff(self.timeout) as cutoff:
            try:
                return self._exchange(request, path, cutoff)
            except ServerUnavailable:
                if cutoff.fired:
                    raise ServerUnavailable(
                        f"the server {self.base} did not answer {path} within {self.timeout:g} "
                        "s (each exchange, headers and body, has that long)"
                    ) from None
                raise

    def _exchange(self, request: urllib.request.Request, path: str, cutoff: _Cutoff) -> str:
        opener = urllib.request.build_opener(_HTTP(cutoff), _HTTPS(cutoff, self._tls))
        try:
            with opener.open(request, timeout=self.timeout) as response:
                data: bytes = response.read(_MAX_ANSWER_BYTES + 1)
                # A body that ends before its Content-Length is a cut connection, not an
                # answer: read as one, it would fail to verify and pass for a forged log.
                short = len(data) <= _MAX_ANSWER_BYTES and bool(response.length)
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            raise ServerUnavailable(
                f"the server answered {exc.code} to {request.get_method()} {path}: {detail}"
            ) from None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            # urllib wraps a TLS failure in a URLError whose reason is the SSLError.
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLError) and not cutoff.fired:
                raise ServerUnavailable(
                    f"TLS with {self.base} failed ({reason.reason or reason}); a server with "
                    "its own (self-signed) certificate needs --ca FILE"
                ) from None
            # http.client's own errors (a malformed status line or headers, a cut chunk) are
            # the server's, like a refused connection: never the end of a watch.
            if isinstance(exc, http.client.HTTPException) and not cutoff.fired:
                raise ServerUnavailable(
                    f"the server {self.base} sent a malformed HTTP answer to {path} "
                    f"({type(exc).__name__}: {str(exc)[:200]})"
                ) from None
            raise ServerUnavailable(
                f"the server {self.base} is unreachable for {path} ({reason})"
            ) from None
        if len(data) > _MAX_ANSWER_BYTES:
            raise ServerUnavailable(f"the server's answer to {path} is larger than expected")
        if short or cutoff.fired:
            raise ServerUnavailable(f"the server's answer to {path} was cut short")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ServerUnavailable(f"the server's answer to {path} is not UTF-8") from None

    def fetch_checkpoint(self) -> Checkpoint:
        note = self._call(CHECKPOINT_PATH)
        try:
            # Opened with the pinned key only; the witnesses' lines on it are left alone.
            return Checkpoint.from_note(note, self.log)
        except AuditError as exc:
            raise LogInconsistent(
                f"the checkpoint at {self.base} does not verify under the pinned log key "
                f"{self.log.name} ({exc}); not cosigned"
            ) from None

    def fetch_consistency(self, old: int, new: int) -> list[bytes]:
        answer = self._call(f"{CONSISTENCY_PATH}?old={old}&new={new}")
        try:
            return [base64.b64decode(line, validate=True) for line in answer.splitlines() if line]
        except (ValueError, binascii.Error):
            raise ServerUnavailable("the consistency proof is not base64 hashes") from None

    # -- the decision --

    def check(self, state: WitnessState | None, seen: Checkpoint) -> None:
        """Raise LogInconsistent unless ``seen`` extends what the state accepted."""
        if state is None:
            return  # trust on first use: the first checkpoint is the one to extend from
        old_root = base64.b64encode(state.root).decode()
        new_root = base64.b64encode(seen.root).decode()
        what = (
            f"this witness accepted {state.tree_size} entries with root {old_root} "
            f"(on {state.seen_at}); the log at {self.base} now shows {seen.tree_size} entries "
            f"with root {new_root}"
        )
        if seen.tree_size < state.tree_size:
            raise LogInconsistent(f"log rolled back or rewritten: {what}; not cosigned")
        if seen.tree_size == state.tree_size:
            if seen.root != state.root:
                raise LogInconsistent(f"log forked: {what}; not cosigned")
            return
        proof = self.fetch_consistency(state.tree_size, seen.tree_size)
        try:
            verify_consistency(state.tree_size, seen.tree_size, state.root, seen.root, proof)
        except MerkleProofError as exc:
            raise LogInconsistent(
                f"log rewritten: {what}, and the server's consistency proof from "
                f"{state.tree_size} to {seen.tree_size} does not verify ({exc}); not cosigned"
            ) from None

    def run_once(self) -> Round:
        state = WitnessState.read(self.state_path)
        if state is not None and state.log != self.log.vkey():
            raise ConfigError(
                f"witness state {self.state_path} is for log {state.log.split('+')[0]}, not "
                f"{self.log.name}: one state file per log"
            )
        seen = self.fetch_checkpoint()
        text = seen.body().decode()
        self.check(state, seen)
        now = self.clock()
        if state is None or seen.tree_size > state.tree_size:
            WitnessState(
                log=self.log.vkey(),
                tree_size=seen.tree_size,
                root=seen.root,
                checkpoint=text,
                seen_at=datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
            ).write(self.state_path)
        cosignature = self.cosigner.cosign(text, int(now))
        answer = self._call(COSIGNATURE_PATH, (text + "\n" + cosignature.line().render()).encode())
        try:
            recorded = str(json.loads(answer).get("recorded", "accepted"))
        except (ValueError, AttributeError):
            recorded = "accepted"
        return Round(
            previous_size=None if state is None else state.tree_size,
            tree_size=seen.tree_size,
            root=seen.root,
            cosignature=cosignature,
            recorded=recorded,
        )


class _Cutoff:
    """The time one exchange with the server may take, headers and body together. The socket
    timeout bounds each read only, so a server sending a byte at a time (in the TLS handshake,
    the headers or the body) could hold the witness for ever, and a watch would go silent
    instead of reporting. When the time is up, each connection of the exchange is shut down
    through a duplicate of its socket (the timer's thread never touches a descriptor the
    exchange may have closed and the system reused), and the blocked read returns."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Cutoff:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._watched:
                sock.close()
            self._watched.clear()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._watched:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _create_connection(
        self, address: tuple[str, int], timeout: float, source: tuple[str, int] | None = None
    ) -> socket.socket:
        sock = socket.create_connection(address, timeout, source)
        with self._lock:
            watched = sock.dup()
            self._watched.append(watched)
            if self.fired:
                with contextlib.suppress(OSError):
                    watched.shutdown(socket.SHUT_RDWR)
        return sock

    def connection(
        self, cls: type[http.client.HTTPConnection]
    ) -> Callable[..., http.client.HTTPConnection]:
        """``cls`` (HTTP or HTTPS) opening its socket where this cutoff watches it."""

        def make(host: str, /, **kwargs: object) -> http.client.HTTPConnection:
            conn = cls(host, **kwargs)  # type: ignore[arg-type] # urllib's own arguments
            # http.client opens its socket through this attribute (before any TLS handshake).
            setattr(conn, "_create_connection", self._create_connection)  # noqa: B010
            return conn

        return make


class _HTTP(urllib.request.HTTPHandler):
    def __init__(self, cutoff: _Cutoff) -> None:
        super().__init__()
        self.cutoff = cutoff

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.cutoff.connection(http.client.HTTPConnection), req)


class _HTTPS(urllib.request.HTTPSHandler):
    def __init__(self, cutoff: _Cutoff, tls: ssl.SSLContext) -> None:
        super().__init__(context=tls)
        self.cutoff = cutoff
        self.tls = tls

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(
            self.cutoff.connection(http.client.HTTPSConnection), req, context=self.tls
        )


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read(4096) or b"{}")
    except (OSError, ValueError, http.client.HTTPException):
        return "no detail"
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return str(message)[:300] if message else "no detail"


def watch(
    witness: Witness,
    *,
    interval: float,
    report: Callable[[str, PrivplateError | None], None],
    stop: threading.Event,
) -> int:
    """Run a round every ``interval`` seconds until ``stop`` is set; each outcome goes to
    ``report`` (a message, and the error if the round failed). Returns the exit code: that of
    the gravest failure seen (an inconsistent log before an unreachable server), 0 if none.

    A failed round does not end the watch: a log that was rewritten keeps being refused (the
    state still holds the last good checkpoint), a server that was down is tried again."""
    worst: PrivplateError | None = None
    while not stop.is_set():
        try:
            report(witness.run_once().describe(), None)
        except PrivplateError as exc:
            report(str(exc), exc)
            if worst is None or _gravity(exc) > _gravity(worst):
                worst = exc
        stop.wait(interval)
    return 0 if worst is None else worst.exit_code


def _gravity(exc: PrivplateError) -> int:
    return 2 if isinstance(exc, LogInconsistent) else 1
