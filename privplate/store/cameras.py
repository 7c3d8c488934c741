"""Camera registry. A read from a camera that is not registered here is refused."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from privplate.errors import AlreadyExists, NotFound, PrivplateError
from privplate.store.database import Database
from privplate.store.models import Camera, table_of

CAMERA_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


_CAMERAS = table_of(Camera)


@dataclass(frozen=True)
class CameraInfo:
    id: str
    name: str
    created_at: datetime
    active: bool


class InvalidCameraId(PrivplateError, ValueError):
    exit_code = 65


def check_camera_id(camera_id: str) -> str:
    if not CAMERA_ID.fullmatch(camera_id):
        raise InvalidCameraId(
            "camera id must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a "
            "letter or digit (e.g. gate-north)"
        )
    return camera_id


def insert_camera(conn: Connection, *, camera_id: str, name: str = "") -> CameraInfo:
    """Register a camera in the caller's transaction (so the audit entry can join it)."""
    check_camera_id(camera_id)
    if len(name) > 200:
        raise InvalidCameraId("camera name is longer than 200 characters")
    exists = conn.execute(select(Camera.id).where(Camera.id == camera_id)).first()
    if exists is not None:
        raise AlreadyExists(f"camera {camera_id!r} is already registered")
    created = datetime.now(UTC)
    try:
        conn.execute(
            insert(Camera).values(id=camera_id, name=name, created_at=created, active=True)
        )
    except IntegrityError:
        raise AlreadyExists(f"camera {camera_id!r} is already registered") from None
    return CameraInfo(camera_id, name, created, True)


def deactivate_camera(conn: Connection, *, camera_id: str) -> None:
    """Deactivate a camera in the caller's transaction: its reads are refused from now on;
    what it stored stays until retention removes it. NotFound if it is not active."""
    done = conn.execute(
        update(Camera).where(Camera.id == camera_id, Camera.active.is_(True)).values(active=False)
    )
    if done.rowcount == 0:
        raise NotFound(f"no active camera {camera_id!r}")


def list_cameras(*, db: Database) -> list[CameraInfo]:
    with db.read() as conn:
        rows = conn.execute(
            select(Camera.id, Camera.name, Camera.created_at, Camera.active).order_by(Camera.id)
        )
        return [CameraInfo(r.id, r.name, r.created_at, r.active) for r in rows]


def get_camera(*, db: Database, camera_id: str) -> CameraInfo:
    with db.read() as conn:
        row = conn.execute(
            select(Camera.id, Camera.name, Camera.created_at, Camera.active).where(
                Camera.id == camera_id
            )
        ).first()
    if row is not None:
        return CameraInfo(row.id, row.name, row.created_at, row.active)
    raise NotFound(
        f"camera {camera_id!r} is not registered; add it with `privplate cameras add {camera_id}`"
    )


def active_camera_ids(conn: Connection, camera_ids: set[str]) -> set[str]:
    # Core columns: every ingest batch asks (see privplate.store.ingest).
    cams = _CAMERAS.c
    rows = conn.execute(
        select(cams.id).where(cams.id.in_(sorted(camera_ids)), cams.active.is_(True))
    )
    return {r[0] for r in rows}
