"""Enrolling an edge device with a one-time code instead of copying keys.

An administrator makes a code for named cameras (`privplate devices enrol-code`,
``POST /devices/enrolment-codes``); the edge box generates its own Ed25519 key, and sends the
code with the public key to ``POST /devices/enrol``, signed with that key (so the server knows
the caller holds it). The server uses the code and registers the device for exactly the code's
cameras in one transaction, and answers with the server's identity to pin and the device's
configuration.

The code: 20 symbols of Crockford's base32 (0-9 and A-Z without I, L, O, U), printed in four
groups of five: 100 bits from the operating system's random source. Typing is forgiving: case,
spaces and dashes do not matter, and O, I and L are read as 0, 1 and 1. 100 bits are far more
than a 15-minute online guess can reach (the throttle lets 10 refused codes per address through
per 15 minutes: even a million addresses try 2^33 codes, a 2^-67 chance per live code), and
keep a stolen database useless without the server secret.

Stored: only a keyed hash of the normalized code (BLAKE2b under the ``enrol-code`` subkey of
the server secret), never the code; audit entries name a code by its id. A code is used by
one ``UPDATE ... WHERE used_at IS NULL AND expires_at > now RETURNING``: on PostgreSQL a
concurrent second use waits for the first's row lock and then finds the row used, so two
workers can never both enrol with one code. If the registration fails (the device id is
taken, a camera was retired), the transaction rolls back and the code stays usable.

Refusals: an unknown, used or expired code each says so (the answer tells a guesser only
about codes that can no longer be used: 401, 409, 410), and each counts against the client
address in the sign-in throttle's table (``identity/throttle.py``, a key of its own); the
N+1th refused attempt in the window is 429. Refusals are audited through the device refusal
log (``refusals.py``), which aggregates a flood instead of growing the audit log at line rate.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from privplate.audit import AuditLog
from privplate.devices.protocol import SignedHeaders, verify_signature
from privplate.devices.refusals import RefusalLog
from privplate.devices.registry import DeviceInfo, check_fresh, register_in
from privplate.errors import (
    AuthenticationFailed,
    Conflict,
    DeviceRejected,
    EnrolmentCodeExpired,
    InvalidRequest,
    NotFound,
    TooManyAttempts,
)
from privplate.identity import throttle
from privplate.identity.throttle import Refused, SignInLimits
from privplate.server_secret import ServerSecret
from privplate.settings import ServerSettings
from privplate.store.cameras import CAMERA_ID, active_camera_ids
from privplate.store.database import Database
from privplate.store.enrolment_models import EnrolmentCode

#: Where an edge presents its code; also the path its signature covers.
ENROL_PATH = "/devices/enrol"
#: Crockford's base32: no I, L, O or U, so nothing reads as something else.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUPS = 4
GROUP_LENGTH = 5
SYMBOLS = GROUPS * GROUP_LENGTH  # 100 bits
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
DEFAULT_MINUTES = 15
MAX_MINUTES = 7 * 24 * 60
_CODE_FORMAT = (
    f"an enrolment code is {SYMBOLS} letters and digits, printed in {GROUPS} groups of "
    f"{GROUP_LENGTH} (e.g. 7KQ2M-XH4TR-9BD3W-CN6PA); check it for typos"
)


def new_code() -> str:
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(SYMBOLS))
    return "-".join(symbols[i : i + GROUP_LENGTH] for i in range(0, SYMBOLS, GROUP_LENGTH))


def normalize(code: str) -> str:
    """The code's symbols, however it was typed; InvalidRequest (never echoing the input) for
    anything that cannot be a code."""
    symbols = "".join(code.split()).replace("-", "").upper().translate(_READ_AS)
    if len(symbols) != SYMBOLS or any(c not in ALPHABET for c in symbols):
        raise InvalidRequest(_CODE_FORMAT)
    return symbols


def code_hash(secret: ServerSecret, code: str) -> bytes:
    """What is stored of a code: BLAKE2b of its symbols under the server's enrol-code subkey."""
    return hashlib.blake2b(
        normalize(code).encode("ascii"), key=secret.subkey("enrol-code"), digest_size=32
    ).digest()


def enrolment_limits(server: ServerSettings, secret: ServerSecret) -> SignInLimits:
    """The throttle of refused codes: per client address only, under a key of its own so that
    enrolment and sign-in failures never add up."""
    return SignInLimits(
        window=timedelta(minutes=server.enrolment_window_minutes),
        per_address=server.enrolment_max_failures_per_address,
        key=secret.subkey("enrol-throttle"),
    )


@dataclass(frozen=True)
class IssuedCode:
    id: uuid.UUID
    code: str = field(repr=False)
    cameras: tuple[str, ...]
    name: str
    expires_at: datetime


def create_code(
    *,
    db: Database,
    audit: AuditLog,
    secret: ServerSecret,
    actor: str,
    cameras: list[str],
    name: str = "",
    minutes: int = DEFAULT_MINUTES,
    now: datetime | None = None,
) -> IssuedCode:
    """A one-time code that enrols one device for ``cameras`` (registered, active) within
    ``minutes``. The code is returned once and never stored."""
    wanted = sorted(set(cameras))
    if not wanted:
        raise InvalidRequest("an enrolment code is for at least one camera (--camera)")
    if len(wanted) > 64:
        raise InvalidRequest("an enrolment code is for at most 64 cameras")
    if not 1 <= minutes <= MAX_MINUTES:
        raise InvalidRequest(f"an enrolment code is valid for 1 to {MAX_MINUTES} minutes")
    if len(name) > 200:
        raise InvalidRequest("device name is longer than 200 characters")
    for camera in wanted:
        if not CAMERA_ID.fullmatch(camera):
            raise InvalidRequest("a camera id is 1-64 characters of a-z, 0-9, '.', '_' or '-'")
    now = now or datetime.now(UTC)
    code = new_code()
    issued = IssuedCode(uuid.uuid4(), code, tuple(wanted), name, now + timedelta(minutes=minutes))
    with db.write() as conn:
        unknown = sorted(set(wanted) - active_camera_ids(conn, set(wanted)))
        if unknown:
            raise NotFound(
                f"camera {unknown[0]!r} is not registered; add it first (privplate cameras add)"
            )
        conn.execute(
            insert(EnrolmentCode).values(
                id=issued.id,
                code_hash=code_hash(secret, code),
                cameras=json.dumps(wanted),
                name=name,
                created_at=now,
                created_by=actor,
                expires_at=issued.expires_at,
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="devices.enrolment_code_created",
            details={
                "code": str(issued.id),
                "cameras": wanted,
                "name": name,
                "expires_at": issued.expires_at.isoformat(),
            },
        )
    return issued


@dataclass(frozen=True)
class CodeInfo:
    """A code on the record, as an administrator's listing shows it: what it enrols and
    whether it was used, never the code (which is not stored)."""

    id: uuid.UUID
    cameras: tuple[str, ...]
    name: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    used_at: datetime | None
    device_id: str | None

    def state(self, now: datetime) -> str:
        """used, expired or unused (usable until ``expires_at``)."""
        if self.used_at is not None:
            return "used"
        return "expired" if self.expires_at <= now else "unused"


def list_codes(*, db: Database, limit: int = 200) -> list[CodeInfo]:
    """The latest codes made, newest first (used and expired ones too, for the record)."""
    table = EnrolmentCode
    with db.read() as conn:
        rows = conn.execute(
            select(
                table.id,
                table.cameras,
                table.name,
                table.created_at,
                table.created_by,
                table.expires_at,
                table.used_at,
                table.device_id,
            )
            .order_by(table.created_at.desc(), table.id)
            .limit(limit)
        ).all()
    return [
        CodeInfo(
            id=r.id,
            cameras=tuple(json.loads(r.cameras)),
            name=r.name,
            created_at=r.created_at,
            created_by=r.created_by,
            expires_at=r.expires_at,
            used_at=r.used_at,
            device_id=r.device_id,
        )
        for r in rows
    ]


def check_possession(
    *,
    public_key: bytes,
    device_id: str,
    signed: SignedHeaders,
    body: bytes,
    max_age: timedelta,
    now: datetime | None = None,
) -> None:
    """The enrol request is signed, recently, by the key it registers and names its device:
    whoever enrols holds the private key (DeviceRejected otherwise)."""
    if len(public_key) != 32:
        raise InvalidRequest("a device public key is 32 bytes (Ed25519)")
    if signed.device_id != device_id:
        raise DeviceRejected("the X-Privplate-Device header must name the device being enrolled")
    check_fresh(signed, max_age=max_age, now=now or datetime.now(UTC))
    verify_signature(public_key, signed, "POST", ENROL_PATH, body)


@dataclass(frozen=True)
class Enrolled:
    device: DeviceInfo
    code_id: uuid.UUID


def enrol(
    *,
    db: Database,
    audit: AuditLog,
    secret: ServerSecret,
    limits: SignInLimits,
    refusals: RefusalLog,
    code: str,
    public_key: bytes,
    device_id: str,
    name: str = "",
    address: str | None,
    now: datetime | None = None,
) -> Enrolled:
    """Use ``code`` once: register ``device_id`` with ``public_key`` for the code's cameras.
    ``address`` is the client's network address (the throttle's key)."""
    digest = code_hash(secret, code)  # a malformed code is refused before it counts
    now = now or datetime.now(UTC)
    with db.write() as conn:
        admission = throttle.admit(db, conn, limits, name=None, address=address, now=now)
    if isinstance(admission, Refused):
        refusals.refused(path=ENROL_PATH, reason="too many refused enrolment codes (throttled)")
        raise TooManyAttempts(
            admission.retry_after, what="refused enrolment codes from this address"
        )
    table = EnrolmentCode
    with db.write() as conn:
        used = conn.execute(
            update(table)
            .where(
                table.code_hash == digest,
                table.used_at.is_(None),
                table.expires_at > now,
            )
            .values(used_at=now, device_id=device_id)
            .returning(table.id, table.cameras, table.name)
        ).first()
        if used is None:
            state = conn.execute(
                select(table.id, table.used_at, table.expires_at).where(table.code_hash == digest)
            ).first()
        else:
            code_id: uuid.UUID = used.id
            device = register_in(
                conn,
                audit=audit,
                actor=f"enrolment:{code_id}",
                device_id=device_id,
                public_key=public_key,
                cameras=json.loads(used.cameras),
                name=used.name or name,
            )
            audit.append(
                conn,
                actor=device.actor,
                action="devices.enrolled",
                details={
                    "code": str(code_id),
                    "device": device.id,
                    "cameras": list(device.cameras),
                },
            )
            throttle.succeeded(conn, admission)
    if used is not None:
        return Enrolled(device, code_id)
    if state is None:
        refusals.refused(path=ENROL_PATH, reason="unknown enrolment code")
        raise AuthenticationFailed(
            "this enrolment code is not valid: check it for typos, or ask the administrator "
            "for a new one (privplate devices enrol-code)"
        )
    if state.used_at is not None:
        refusals.refused(path=ENROL_PATH, reason=f"enrolment code {state.id} already used")
        raise Conflict(
            "this enrolment code was already used (a code enrols one device); ask the "
            "administrator for a new one"
        )
    refusals.refused(path=ENROL_PATH, reason=f"enrolment code {state.id} expired")
    raise EnrolmentCodeExpired(
        f"this enrolment code expired at {state.expires_at.isoformat(timespec='seconds')}; ask "
        "the administrator for a new one"
    )
