"""Users, bearer sessions and API keys.

Bearer secrets are 256-bit random strings; only their SHA-256 is stored, so a database dump
opens no session. Sessions start with ``pps_``, API keys with ``ppk_``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Table, delete, func, insert, select, update

from privplate.audit import AuditLog
from privplate.errors import AlreadyExists, AuthenticationFailed, InvalidRequest, NotFound
from privplate.identity.passwords import hash_password, verify_password
from privplate.identity.roles import USER_ROLES, Role
from privplate.store.database import Database
from privplate.store.server_models import ApiKey, Session, User

_users: Table = User.__table__  # type: ignore[assignment]
_sessions: Table = Session.__table__  # type: ignore[assignment]
_keys: Table = ApiKey.__table__  # type: ignore[assignment]

USER_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,99}")
SESSION_PREFIX = "pps_"
API_KEY_PREFIX = "ppk_"
BAD_CREDENTIALS = "the user name or password is wrong, or the account is disabled"


@dataclass(frozen=True)
class UserInfo:
    id: uuid.UUID
    name: str
    role: Role
    agency: str
    created_at: datetime
    disabled: bool = False

    @property
    def actor(self) -> str:
        return f"user:{self.name}"


def _row_to_user(row: object) -> UserInfo:
    r = row._mapping  # type: ignore[attr-defined]
    return UserInfo(
        id=r["id"],
        name=r["name"],
        role=Role(r["role"]),
        agency=r["agency"],
        created_at=r["created_at"],
        disabled=r["disabled_at"] is not None,
    )


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _new_secret(prefix: str) -> str:
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def check_user_name(name: str) -> str:
    if not USER_NAME.fullmatch(name):
        raise InvalidRequest(
            "a user name is 1-100 characters of a-z, 0-9, '.', '_', '@' or '-', starting with "
            "a letter or digit"
        )
    return name


def create_user(
    *,
    db: Database,
    audit: AuditLog,
    actor: str,
    name: str,
    role: Role,
    password: str | None,
    agency: str = "",
) -> UserInfo:
    check_user_name(name)
    if role not in USER_ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(USER_ROLES)}")
    if len(agency) > 200:
        raise InvalidRequest("agency is longer than 200 characters")
    hashed = hash_password(password) if password is not None else None
    now = datetime.now(UTC)
    user = UserInfo(uuid.uuid4(), name, role, agency, now)
    with db.write() as conn:
        if conn.execute(select(_users.c.id).where(_users.c.name == name)).first() is not None:
            raise AlreadyExists(f"user {name!r} already exists")
        conn.execute(
            insert(_users).values(
                id=user.id,
                name=name,
                role=role.value,
                password_hash=hashed,
                agency=agency,
                created_at=now,
                created_by=actor,
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="users.created",
            details={"user": name, "role": role.value, "agency": agency},
        )
    return user


def get_user(conn: Connection, name: str) -> UserInfo:
    row = conn.execute(select(_users).where(_users.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    return _row_to_user(row)


def list_users(*, db: Database) -> list[UserInfo]:
    with db.read() as conn:
        return [_row_to_user(r) for r in conn.execute(select(_users).order_by(_users.c.name))]


def disable_user(*, db: Database, audit: AuditLog, actor: str, name: str) -> UserInfo:
    now = datetime.now(UTC)
    with db.write() as conn:
        user = get_user(conn, name)
        conn.execute(update(_users).where(_users.c.id == user.id).values(disabled_at=now))
        conn.execute(delete(_sessions).where(_sessions.c.user_id == user.id))
        conn.execute(
            update(_keys)
            .where(_keys.c.user_id == user.id, _keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        audit.append(conn, actor=actor, action="users.disabled", details={"user": name})
    return UserInfo(user.id, user.name, user.role, user.agency, user.created_at, True)


def set_password(*, db: Database, audit: AuditLog, actor: str, name: str, password: str) -> None:
    hashed = hash_password(password)
    with db.write() as conn:
        user = get_user(conn, name)
        conn.execute(update(_users).where(_users.c.id == user.id).values(password_hash=hashed))
        conn.execute(delete(_sessions).where(_sessions.c.user_id == user.id))
        audit.append(conn, actor=actor, action="users.password_set", details={"user": name})


def login(
    *, db: Database, audit: AuditLog, name: str, password: str, hours: int
) -> tuple[UserInfo, str, datetime]:
    """Check a password and open a session. Unknown user, wrong password and disabled account
    fail alike (same message, same Argon2 cost)."""
    with db.read() as conn:
        row = conn.execute(select(_users).where(_users.c.name == name)).first()
    stored = row._mapping["password_hash"] if row is not None else None
    ok = verify_password(stored, password)
    if row is None or not ok or row._mapping["disabled_at"] is not None:
        audit.record(
            actor="anonymous",
            action="sessions.login_failed",
            details={"user": name if row is not None else "(unknown)"},
        )
        raise AuthenticationFailed(BAD_CREDENTIALS)
    user = _row_to_user(row)
    token = _new_secret(SESSION_PREFIX)
    now = datetime.now(UTC)
    expires = now + timedelta(hours=hours)
    with db.write() as conn:
        conn.execute(delete(_sessions).where(_sessions.c.expires_at < now))
        conn.execute(
            insert(_sessions).values(
                token_hash=secret_digest(token), user_id=user.id, created_at=now, expires_at=expires
            )
        )
        audit.append(conn, actor=user.actor, action="sessions.opened", details={})
    return user, token, expires


def logout(*, db: Database, audit: AuditLog, user: UserInfo, token: str) -> None:
    with db.write() as conn:
        conn.execute(delete(_sessions).where(_sessions.c.token_hash == secret_digest(token)))
        audit.append(conn, actor=user.actor, action="sessions.closed", details={})


def create_api_key(
    *, db: Database, audit: AuditLog, actor: str, name: str, label: str = ""
) -> tuple[uuid.UUID, str]:
    """A long-lived bearer key for a service account. The secret is shown once."""
    if len(label) > 200:
        raise InvalidRequest("label is longer than 200 characters")
    key = _new_secret(API_KEY_PREFIX)
    key_id = uuid.uuid4()
    with db.write() as conn:
        user = get_user(conn, name)
        if user.disabled:
            raise InvalidRequest(f"user {name!r} is disabled")
        conn.execute(
            insert(_keys).values(
                id=key_id,
                user_id=user.id,
                key_hash=secret_digest(key),
                label=label,
                created_at=datetime.now(UTC),
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="api_keys.created",
            details={"user": name, "key_id": str(key_id), "label": label},
        )
    return key_id, key


def revoke_api_key(*, db: Database, audit: AuditLog, actor: str, key_id: uuid.UUID) -> None:
    with db.write() as conn:
        done = conn.execute(
            update(_keys)
            .where(_keys.c.id == key_id, _keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        if done.rowcount == 0:
            raise NotFound("no live API key with this id")
        audit.append(conn, actor=actor, action="api_keys.revoked", details={"key_id": str(key_id)})


def user_for_bearer(*, db: Database, secret: str) -> UserInfo | None:
    """The live, enabled user a session token or API key belongs to, else None."""
    digest = secret_digest(secret)
    now = datetime.now(UTC)
    with db.read() as conn:
        if secret.startswith(SESSION_PREFIX):
            stmt = (
                select(_users)
                .join(_sessions, _sessions.c.user_id == _users.c.id)
                .where(_sessions.c.token_hash == digest, _sessions.c.expires_at > now)
            )
        elif secret.startswith(API_KEY_PREFIX):
            stmt = (
                select(_users)
                .join(_keys, _keys.c.user_id == _users.c.id)
                .where(_keys.c.key_hash == digest, _keys.c.revoked_at.is_(None))
            )
        else:
            return None
        row = conn.execute(stmt.where(_users.c.disabled_at.is_(None))).first()
    return _row_to_user(row) if row is not None else None


def count_users(*, db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(_users)).scalar_one())
