"""Registered edge devices and the authentication of their signed requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from privplate.audit import AuditLog
from privplate.devices.protocol import SignedHeaders, verify_signature
from privplate.errors import (
    AlreadyExists,
    DeviceNotAllowed,
    DeviceRejected,
    InvalidRequest,
    NotFound,
)
from privplate.store.cameras import CAMERA_ID, active_camera_ids
from privplate.store.database import Database
from privplate.store.server_models import Device, DeviceCamera, DeviceNonce

UNKNOWN_DEVICE = "unknown or revoked device: register it with `privplate devices add`"


@dataclass(frozen=True)
class DeviceInfo:
    id: str
    name: str
    public_key: bytes
    cameras: tuple[str, ...]
    created_at: datetime
    revoked: bool = False

    @property
    def actor(self) -> str:
        return f"device:{self.id}"


def register_device(
    *,
    db: Database,
    audit: AuditLog,
    actor: str,
    device_id: str,
    public_key: bytes,
    cameras: list[str],
    name: str = "",
) -> DeviceInfo:
    with db.write() as conn:
        return register_in(
            conn,
            audit=audit,
            actor=actor,
            device_id=device_id,
            public_key=public_key,
            cameras=cameras,
            name=name,
        )


def register_in(
    conn: Connection,
    *,
    audit: AuditLog,
    actor: str,
    device_id: str,
    public_key: bytes,
    cameras: list[str],
    name: str = "",
) -> DeviceInfo:
    """:func:`register_device` inside the caller's write transaction (an enrolment uses its
    code and registers the device in one: either both happen or neither)."""
    if not CAMERA_ID.fullmatch(device_id):
        raise InvalidRequest(
            "a device id is 1-64 characters of a-z, 0-9, '.', '_' or '-' (e.g. edge-gate-1)"
        )
    if len(public_key) != 32:
        raise InvalidRequest("a device public key is 32 bytes (Ed25519)")
    if not cameras:
        raise InvalidRequest("a device must report for at least one camera")
    if len(name) > 200:
        raise InvalidRequest("device name is longer than 200 characters")
    now = datetime.now(UTC)
    known = active_camera_ids(conn, set(cameras))
    unknown = sorted(set(cameras) - known)
    if unknown:
        raise NotFound(
            f"camera {unknown[0]!r} is not registered; add it first (privplate cameras add)"
        )
    if conn.execute(select(Device.id).where(Device.id == device_id)).first():
        raise AlreadyExists(f"device {device_id!r} is already registered")
    try:
        conn.execute(
            insert(Device).values(
                id=device_id,
                name=name,
                public_key=public_key,
                created_at=now,
                created_by=actor,
            )
        )
    except IntegrityError:
        raise AlreadyExists("this public key is already registered to a device") from None
    conn.execute(
        insert(DeviceCamera),
        [{"device_id": device_id, "camera_id": c} for c in sorted(set(cameras))],
    )
    audit.append(
        conn,
        actor=actor,
        action="devices.registered",
        details={
            "device": device_id,
            "cameras": sorted(set(cameras)),
            "public_key": public_key.hex(),
        },
    )
    return DeviceInfo(device_id, name, public_key, tuple(sorted(set(cameras))), now)


def _load(conn: Connection, device_id: str) -> DeviceInfo | None:
    row = conn.execute(select(Device).where(Device.id == device_id)).first()
    if row is None:
        return None
    cams = conn.execute(
        select(DeviceCamera.camera_id)
        .where(DeviceCamera.device_id == device_id)
        .order_by(DeviceCamera.camera_id)
    ).scalars()
    return DeviceInfo(
        row.id,
        row.name,
        bytes(row.public_key),
        tuple(cams),
        row.created_at,
        row.revoked_at is not None,
    )


def list_devices(*, db: Database) -> list[DeviceInfo]:
    with db.read() as conn:
        ids = conn.execute(select(Device.id).order_by(Device.id)).scalars().all()
        return [d for d in (_load(conn, i) for i in ids) if d is not None]


def revoke_device(*, db: Database, audit: AuditLog, actor: str, device_id: str) -> None:
    with db.write() as conn:
        done = conn.execute(
            update(Device)
            .where(Device.id == device_id, Device.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        if done.rowcount == 0:
            raise NotFound(f"no live device {device_id!r}")
        audit.append(conn, actor=actor, action="devices.revoked", details={"device": device_id})


def authenticate(
    *,
    db: Database,
    signed: SignedHeaders,
    method: str,
    path: str,
    body: bytes,
    max_age: timedelta,
    now: datetime | None = None,
) -> DeviceInfo:
    """The device that signed this request; refuses unknown, stale, forged or replayed ones.

    The nonce is recorded only once everything else checked out, so a refused request leaves
    nothing behind.
    """
    now = now or datetime.now(UTC)
    with db.read() as conn:
        device = _load(conn, signed.device_id) if CAMERA_ID.fullmatch(signed.device_id) else None
    if device is None or device.revoked:
        raise DeviceRejected(UNKNOWN_DEVICE)
    check_fresh(signed, max_age=max_age, now=now)
    verify_signature(device.public_key, signed, method, path, body)
    dialect_insert = postgresql.insert if db.is_postgres else sqlite.insert
    try:
        with db.write() as conn:
            # One statement decides: a nonce already there (a replay, or a concurrent request
            # with it) inserts nothing and returns no row.
            fresh = conn.execute(
                dialect_insert(DeviceNonce)
                .values(device_id=device.id, nonce=signed.nonce, seen_at=now)
                .on_conflict_do_nothing()
                .returning(DeviceNonce.nonce)
            ).first()
            seen = fresh is None
            if not seen:
                # Older nonces can never be replayed: the time check refuses them first. Only
                # this device's: requests of other devices (on other workers) deleting the
                # same old rows would wait on each other; the purge clears silent devices'.
                conn.execute(
                    delete(DeviceNonce).where(
                        DeviceNonce.device_id == device.id, DeviceNonce.seen_at < now - 2 * max_age
                    )
                )
    except IntegrityError:
        seen = True  # a concurrent request carried the same nonce
    if seen:
        raise DeviceRejected("this signed request was already received (a replay)")
    return device


def check_fresh(signed: SignedHeaders, *, max_age: timedelta, now: datetime) -> None:
    """Refuse a request signed too long ago, or too far ahead of the server's clock."""
    try:
        sent = datetime.fromtimestamp(signed.timestamp, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise DeviceRejected(
            "the request's timestamp is not a time (check the device clock)"
        ) from None
    if abs(now - sent) > max_age:
        raise DeviceRejected(
            f"the request was signed {int((now - sent).total_seconds())} s from the server's "
            f"time; at most {int(max_age.total_seconds())} s are allowed (check the device clock)"
        )


def check_cameras(device: DeviceInfo, camera_ids: set[str]) -> None:
    foreign = sorted(camera_ids - set(device.cameras))
    if foreign:
        raise DeviceNotAllowed(
            f"device {device.id!r} may not report for camera {foreign[0]!r} "
            "(attach the camera to the device first)"
        )
