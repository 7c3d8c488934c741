"""Sign-in throttling per account name and per client address, shared through the database by
every server worker.

Each attempt that gets to check a password leaves one ``sign_in_failures`` row per key: the
account name it gave (whether or not such an account exists, so that an unknown name is
throttled exactly like a wrong password) and, from the network, the client's address. Keys
are keyed BLAKE2b of the name or address under a subkey of the server secret, so a database
dump names neither; without the key (a local command-line sign-in) they fall back to SHA-256
with a domain prefix. The two kinds of key do not add up, which is fine: the command line is
used by whoever already holds the deployment's files.

Race: the row is written *before* the password is checked (a reservation), by a short write
transaction that counts the key's rows in the window and inserts only below the limit. On
PostgreSQL that transaction holds an advisory lock per key (taken in a fixed order, so two
attempts cannot deadlock); on SQLite the database write lock serializes it. So however many
workers try at once, no more than the limit of attempts per key get to the password check:
the slack is zero. A successful sign-in deletes the account's rows and its own address row; a
worker that dies between the reservation and the check leaves the row counted (fails closed).
Rows older than the window are deleted by later attempts, skipping rows another transaction
has locked, so the clean-up never waits on or deadlocks with a concurrent sign-in.

Device enrolment codes (privplate.devices.enrolment) are throttled by the same rows, per client
address only (``name=None``), under a key of their own so the two never count together.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, delete, insert, select

from privplate.server_secret import ServerSecret
from privplate.settings import ServerSettings
from privplate.store.database import Database
from privplate.store.server_models import SignInFailure

Limit = Literal["account", "address"]
_PERSON = b"sign-in-throttle"  # BLAKE2b personalisation: exactly 16 bytes
_UNKEYED_PREFIX = b"privplate/v1/sign-in-throttle\0"
#: Old rows deleted per attempt at most: the clean-up stays cheap after a long flood.
_PURGE_BATCH = 500


@dataclass(frozen=True)
class SignInLimits:
    window: timedelta = timedelta(minutes=15)
    per_account: int = 5
    per_address: int = 20
    #: Key of the keyed hash (a subkey of the server secret); None: SHA-256 with a prefix.
    key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, server: ServerSettings, secret: ServerSecret) -> SignInLimits:
        """The deployment's limits, keyed as every network sign-in (API, console) must be, so
        that all of them count against the same rows."""
        return cls(
            window=timedelta(minutes=server.sign_in_window_minutes),
            per_account=server.sign_in_max_failures_per_account,
            per_address=server.sign_in_max_failures_per_address,
            key=secret.subkey("session-mac"),
        )

    def digest(self, kind: Limit, value: str) -> bytes:
        data = kind.encode() + b"\0" + value.encode()
        if self.key is None:
            return hashlib.sha256(_UNKEYED_PREFIX + data).digest()
        return hashlib.blake2b(data, key=self.key, person=_PERSON, digest_size=32).digest()


@dataclass(frozen=True)
class Refused:
    """The attempt was not let through: which limits are reached, and for how long."""

    limits: tuple[Limit, ...]
    retry_after: int  # seconds


@dataclass(frozen=True)
class Reserved:
    """The attempt was let through and counted; :func:`succeeded` uncounts it."""

    account_key: bytes | None
    address_row: uuid.UUID | None


def admit(
    db: Database,
    conn: Connection,
    limits: SignInLimits,
    *,
    name: str | None,
    address: str | None,
    now: datetime,
) -> Reserved | Refused:
    """In ``conn``'s write transaction: refuse if the name or the address is at its limit,
    else count this attempt as a failure until :func:`succeeded` says otherwise. Without a
    name only the address counts."""
    keys: list[tuple[Limit, bytes, int]] = []
    if name is not None:
        keys.append(("account", limits.digest("account", name), limits.per_account))
    if address:
        keys.append(("address", limits.digest("address", address), limits.per_address))
    for _, key, _ in sorted(keys, key=lambda k: k[1]):
        db.lock_subject(conn, "sign-in:" + key.hex())
    cutoff = now - limits.window
    _purge(conn, cutoff)
    reached: list[Limit] = []
    wait = 0.0
    for kind, key, limit in keys:
        newest = (
            conn.execute(
                select(SignInFailure.failed_at)
                .where(SignInFailure.key == key, SignInFailure.failed_at > cutoff)
                .order_by(SignInFailure.failed_at.desc())
                .limit(limit)
            )
            .scalars()
            .all()
        )
        if len(newest) >= limit:
            reached.append(kind)
            # Below the limit again once the limit-th newest row has left the window.
            wait = max(wait, (newest[limit - 1] + limits.window - now).total_seconds())
    if reached:
        return Refused(tuple(reached), max(1, math.ceil(wait)))
    rows = {kind: uuid.uuid4() for kind, _, _ in keys}
    if keys:
        conn.execute(
            insert(SignInFailure),
            [{"id": rows[kind], "key": key, "failed_at": now} for kind, key, _ in keys],
        )
    account_key = keys[0][1] if name is not None else None
    return Reserved(account_key=account_key, address_row=rows.get("address"))


def succeeded(conn: Connection, reserved: Reserved) -> None:
    """The password was right: the account's failures are forgiven, and this attempt no longer
    counts against its address (the address's other failures still do)."""
    if reserved.account_key is not None:
        conn.execute(delete(SignInFailure).where(SignInFailure.key == reserved.account_key))
    if reserved.address_row is not None:
        conn.execute(delete(SignInFailure).where(SignInFailure.id == reserved.address_row))


def _purge(conn: Connection, cutoff: datetime) -> None:
    # SKIP LOCKED (PostgreSQL; SQLite has no row locks and ignores it): rows a concurrent
    # transaction is deleting are left to it instead of waited on.
    old = (
        select(SignInFailure.id)
        .where(SignInFailure.failed_at <= cutoff)
        .limit(_PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    conn.execute(delete(SignInFailure).where(SignInFailure.id.in_(old)))
