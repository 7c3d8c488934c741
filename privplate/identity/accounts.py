"""Users, bearer sessions and API keys.

Every account belongs to a person, as declared by the administrator who creates it: a person's
id is the name of their first account, and ``create_user(..., person=...)`` adds another account
to that person (audited as ``users.second_account``). Two-person rules compare people, never
accounts, so one person's second account cannot approve what their first one asked for; and a
person who holds a share of the evidence key (an officer) can have no investigator or operator
account, and the other way round.

Bearer secrets are 256-bit random strings; only their SHA-256 is stored, so a database dump
opens no session. Sessions start with ``pps_``, API keys with ``ppk_``. A session ends when it
expires, when it has been idle too long, or when its owner revokes it (by its public id);
sign-in is throttled per account name and per client address (:mod:`.throttle`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from privplate.audit import AuditLog
from privplate.errors import (
    AlreadyExists,
    AuthenticationFailed,
    Conflict,
    InvalidRequest,
    NotFound,
    TooManyAttempts,
)
from privplate.identity import throttle
from privplate.identity.passwords import check_password_rules, hash_password, verify_password
from privplate.identity.roles import USER_ROLES, Role
from privplate.identity.throttle import Refused, SignInLimits
from privplate.store.database import Database
from privplate.store.server_models import ApiKey, Session, User
from privplate.store.unseal_models import ShareCommitment, ShareSet

USER_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,99}")
SESSION_PREFIX = "pps_"
API_KEY_PREFIX = "ppk_"
BAD_CREDENTIALS = "the user name or password is wrong, or the account is disabled"
#: Roles that ask (searches, unseal and hold requests) or run the system: a person with one of
#: them may not also hold a share of the evidence key.
NOT_WITH_A_SHARE: frozenset[Role] = frozenset({Role.INVESTIGATOR, Role.OPERATOR})
#: Taken (Database.lock_subject) by every write transaction that checks who a person is and
#: then changes it: a new account (no asking role for a share holder) and a key ceremony or
#: re-share (no share for a person who asks). Without it, under PostgreSQL's READ COMMITTED
#: each could pass its check before the other commits.
PEOPLE_LOCK = "people"
#: The default of the setting ``server.session_idle_minutes``, for callers that pass none.
DEFAULT_IDLE = timedelta(minutes=30)
#: last_used_at is rewritten only when older than this: no write per request.
TOUCH_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class UserInfo:
    id: uuid.UUID
    name: str
    role: Role
    agency: str
    created_at: datetime
    #: The person this account belongs to (the name of their first account).
    person: str
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
        person=r["person"],
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


def person_accounts(conn: Connection, person: str) -> list[UserInfo]:
    """Every account of ``person``, disabled ones included, by name."""
    rows = conn.execute(select(User).where(User.person == person).order_by(User.name))
    return [_row_to_user(r) for r in rows]


def persons_of(conn: Connection, names: Collection[str]) -> dict[str, str]:
    """Account name -> person, for the accounts of ``names`` that exist."""
    if not names:
        return {}
    rows = conn.execute(select(User.name, User.person).where(User.name.in_(names)))
    return {r.name: r.person for r in rows}


def person_ref(person: str) -> str:
    """How a person is named where accounts are named too (actors, compliance flags)."""
    return f"person:{person}"


def person_of_actor(conn: Connection, actor: str) -> str:
    """Who stands behind an audit actor: ``person:ID`` for a user account (``user:NAME``),
    else the actor itself (a command-line user, the server). Two-person checks on actors
    compare these."""
    name = actor.removeprefix("user:")
    if name != actor:
        person = persons_of(conn, [name]).get(name)
        if person is not None:
            return person_ref(person)
    return actor


def actors_of_person(conn: Connection, actor: str) -> list[str]:
    """The actors (``user:NAME``) of every account of the person behind ``actor``; just
    ``actor`` when it is not a user account. Per-person counts (quotas) count these."""
    person = person_of_actor(conn, actor)
    if person == actor:
        return [actor]
    return [u.actor for u in person_accounts(conn, person.removeprefix("person:"))]


def officer_shares(conn: Connection, person: str) -> list[str]:
    """The person's accounts that hold a share of a live (not superseded) share set."""
    names = select(User.name).where(User.person == person)
    rows = conn.execute(
        select(ShareCommitment.officer)
        .join(ShareSet, ShareSet.id == ShareCommitment.share_set_id)
        .where(ShareSet.superseded_at.is_(None), ShareCommitment.officer.in_(names))
        .distinct()
    )
    return sorted(r.officer for r in rows)


def _check_person(conn: Connection, name: str, role: Role, person: str) -> list[UserInfo]:
    """The person's other accounts, after checking that ``role`` may join them."""
    if person == name:
        others = person_accounts(conn, person)
        if others:  # cannot happen while person ids are names of first accounts
            raise AlreadyExists(f"a person with id {person!r} already exists")
        return others
    others = person_accounts(conn, person)
    if not others:
        raise NotFound(
            f"no person {person!r}: a person's id is the name of their first account "
            "(privplate users list shows it); omit --person for someone new"
        )
    if role in NOT_WITH_A_SHARE and (holders := officer_shares(conn, person)):
        raise Conflict(
            f"person {person!r} holds a share of the evidence key (account {holders[0]!r}); an "
            f"officer cannot also be {'an' if role is Role.INVESTIGATOR else 'a'} {role.value} "
            "(re-share the key to other officers first)"
        )
    return others


def create_user(
    *,
    db: Database,
    audit: AuditLog,
    actor: str,
    name: str,
    role: Role,
    password: str | None,
    agency: str = "",
    person: str | None = None,
) -> UserInfo:
    """Create an account. ``person`` is the id of an existing person (the name of their first
    account) when this is another account of someone who has one; omitted, the account is a
    new person with the account's name as id."""
    check_user_name(name)
    person = name if person is None else person
    if not USER_NAME.fullmatch(person):
        raise InvalidRequest("a person id is the name of that person's first account")
    if role not in USER_ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(USER_ROLES)}")
    if len(agency) > 200:
        raise InvalidRequest("agency is longer than 200 characters")
    hashed = hash_password(password) if password is not None else None
    now = datetime.now(UTC)
    user = UserInfo(uuid.uuid4(), name, role, agency, now, person)
    with db.write() as conn:
        db.lock_subject(conn, PEOPLE_LOCK)
        if conn.execute(select(User.id).where(User.name == name)).first() is not None:
            raise AlreadyExists(f"user {name!r} already exists")
        others = _check_person(conn, name, role, person)
        conn.execute(
            insert(User).values(
                id=user.id,
                name=name,
                person=person,
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
            details={"user": name, "role": role.value, "agency": agency, "person": person},
        )
        if others:
            audit.append(
                conn,
                actor=actor,
                action="users.second_account",
                details={
                    "user": name,
                    "role": role.value,
                    "person": person,
                    "other_accounts": {u.name: u.role.value for u in others},
                },
            )
    return user


def get_user(conn: Connection, name: str) -> UserInfo:
    row = conn.execute(select(User).where(User.name == name)).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    return _row_to_user(row)


def list_users(*, db: Database) -> list[UserInfo]:
    with db.read() as conn:
        return [_row_to_user(r) for r in conn.execute(select(User).order_by(User.name))]


def disable_user(*, db: Database, audit: AuditLog, actor: str, name: str) -> UserInfo:
    now = datetime.now(UTC)
    with db.write() as conn:
        user = get_user(conn, name)
        conn.execute(update(User).where(User.id == user.id).values(disabled_at=now))
        conn.execute(delete(Session).where(Session.user_id == user.id))
        conn.execute(
            update(ApiKey)
            .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        audit.append(conn, actor=actor, action="users.disabled", details={"user": name})
    return UserInfo(user.id, user.name, user.role, user.agency, user.created_at, user.person, True)


def set_password(*, db: Database, audit: AuditLog, actor: str, name: str, password: str) -> None:
    hashed = hash_password(password)
    with db.write() as conn:
        user = get_user(conn, name)
        conn.execute(update(User).where(User.id == user.id).values(password_hash=hashed))
        conn.execute(delete(Session).where(Session.user_id == user.id))
        audit.append(conn, actor=actor, action="users.password_set", details={"user": name})


def _admit(
    *,
    db: Database,
    audit: AuditLog,
    limits: SignInLimits,
    actor: str,
    action: str,
    name: str,
    address: str | None,
    now: datetime,
) -> tuple[Row[Any] | None, throttle.Reserved]:
    """The account named ``name`` (None if there is none), once the attempt is let through by
    the throttle and counted; a refused attempt is audited as ``action`` and raised."""
    with db.write() as conn:
        row = conn.execute(select(User).where(User.name == name)).first()
        admission = throttle.admit(db, conn, limits, name=name, address=address, now=now)
        if isinstance(admission, Refused):
            # Which limit, never the address itself.
            audit.append(
                conn,
                actor=actor,
                action=action,
                details={
                    "user": name if row is not None else "(unknown)",
                    "limits": list(admission.limits),
                },
            )
    if isinstance(admission, Refused):
        raise TooManyAttempts(admission.retry_after)
    return row, admission


def login(
    *,
    db: Database,
    audit: AuditLog,
    name: str,
    password: str,
    hours: int,
    address: str | None = None,
    limits: SignInLimits | None = None,
    now: datetime | None = None,
) -> tuple[UserInfo, str, datetime]:
    """Check a password and open a session. Unknown user, wrong password and disabled account
    fail alike (same message, same Argon2 cost, same throttling). ``address`` is the client's
    network address (None from the command line); network callers pass
    ``SignInLimits.from_settings`` so that all of them count against the same rows."""
    now = datetime.now(UTC) if now is None else now
    row, reserved = _admit(
        db=db,
        audit=audit,
        limits=limits or SignInLimits(),
        actor="anonymous",
        action="sessions.login_throttled",
        name=name,
        address=address,
        now=now,
    )
    stored = row._mapping["password_hash"] if row is not None else None
    ok = verify_password(stored, password)
    if row is None or not ok or row._mapping["disabled_at"] is not None:
        # The attempt stays counted as a failure (throttle.admit wrote its rows).
        audit.record(
            actor="anonymous",
            action="sessions.login_failed",
            details={"user": name if row is not None else "(unknown)"},
        )
        raise AuthenticationFailed(BAD_CREDENTIALS)
    user = _row_to_user(row)
    token = _new_secret(SESSION_PREFIX)
    session_id = uuid.uuid4()
    expires = now + timedelta(hours=hours)
    with db.write() as conn:
        throttle.succeeded(conn, reserved)
        conn.execute(delete(Session).where(Session.expires_at < now))
        conn.execute(
            insert(Session).values(
                token_hash=secret_digest(token),
                id=session_id,
                user_id=user.id,
                created_at=now,
                last_used_at=now,
                expires_at=expires,
            )
        )
        audit.append(
            conn, actor=user.actor, action="sessions.opened", details={"session": str(session_id)}
        )
    return user, token, expires


def logout(*, db: Database, audit: AuditLog, user: UserInfo, token: str) -> None:
    with db.write() as conn:
        conn.execute(delete(Session).where(Session.token_hash == secret_digest(token)))
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
            insert(ApiKey).values(
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
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        if done.rowcount == 0:
            raise NotFound("no live API key with this id")
        audit.append(conn, actor=actor, action="api_keys.revoked", details={"key_id": str(key_id)})


def user_for_bearer(
    *,
    db: Database,
    secret: str,
    idle: timedelta | None = None,
    now: datetime | None = None,
) -> UserInfo | None:
    """The live, enabled user a session token or API key belongs to, else None. A session
    unused for longer than ``idle`` (the setting ``server.session_idle_minutes``; 30 minutes
    when not given) is refused; one in use is marked used, at most once per TOUCH_AFTER so
    that a busy session does not cost a write per request. API keys have no idle limit."""
    digest = secret_digest(secret)
    now = datetime.now(UTC) if now is None else now
    idle = DEFAULT_IDLE if idle is None else idle
    if secret.startswith(API_KEY_PREFIX):
        with db.read() as conn:
            key_row = conn.execute(
                select(User)
                .join(ApiKey, ApiKey.user_id == User.id)
                .where(
                    ApiKey.key_hash == digest,
                    ApiKey.revoked_at.is_(None),
                    User.disabled_at.is_(None),
                )
            ).first()
        return _row_to_user(key_row) if key_row is not None else None
    if not secret.startswith(SESSION_PREFIX):
        return None
    with db.read() as conn:
        row = conn.execute(
            select(User, Session.last_used_at.label("session_last_used_at"))
            .join(Session, Session.user_id == User.id)
            .where(
                Session.token_hash == digest,
                Session.expires_at > now,
                Session.last_used_at > now - idle,
                User.disabled_at.is_(None),
            )
        ).first()
    if row is None:
        return None
    if row._mapping["session_last_used_at"] <= now - TOUCH_AFTER:
        with db.write() as conn:
            # The condition again, so concurrent requests write once and never backwards.
            conn.execute(
                update(Session)
                .where(Session.token_hash == digest, Session.last_used_at <= now - TOUCH_AFTER)
                .values(last_used_at=now)
            )
    return _row_to_user(row)


@dataclass(frozen=True)
class SessionInfo:
    """A session as its owner sees it: never the token."""

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    #: The session of the token the caller is using.
    current: bool


def list_sessions(
    *,
    db: Database,
    user: UserInfo,
    token: str | None = None,
    idle: timedelta | None = None,
    now: datetime | None = None,
) -> list[SessionInfo]:
    """The user's live sessions (not expired, not idle too long), oldest first; ``current``
    marks the one ``token`` (the caller's bearer) belongs to."""
    now = datetime.now(UTC) if now is None else now
    idle = DEFAULT_IDLE if idle is None else idle
    mine = secret_digest(token) if token is not None else None
    with db.read() as conn:
        rows = conn.execute(
            select(Session)
            .where(
                Session.user_id == user.id,
                Session.expires_at > now,
                Session.last_used_at > now - idle,
            )
            .order_by(Session.created_at, Session.id)
        ).all()
    return [
        SessionInfo(
            id=r.id,
            created_at=r.created_at,
            last_used_at=r.last_used_at,
            expires_at=r.expires_at,
            current=r.token_hash == mine,
        )
        for r in rows
    ]


def revoke_session(*, db: Database, audit: AuditLog, user: UserInfo, session_id: uuid.UUID) -> None:
    """End one of the user's own sessions; another user's session is as unknown as none."""
    with db.write() as conn:
        done = conn.execute(
            delete(Session).where(Session.id == session_id, Session.user_id == user.id)
        )
        if done.rowcount == 0:
            raise NotFound("you have no session with this id")
        audit.append(
            conn, actor=user.actor, action="sessions.revoked", details={"session": str(session_id)}
        )


def change_own_password(
    *,
    db: Database,
    audit: AuditLog,
    user: UserInfo,
    current_password: str,
    new_password: str,
    keep_token: str | None,
    address: str | None = None,
    limits: SignInLimits | None = None,
    now: datetime | None = None,
) -> int:
    """A user changes their own password, proving the current one; every other session of
    theirs ends (the one of ``keep_token`` stays). Wrong current passwords are throttled and
    counted like failed sign-ins, so a stolen session cannot be used to guess the password.
    Returns how many sessions ended."""
    check_password_rules(new_password)
    if new_password == current_password:
        raise InvalidRequest("the new password is the same as the current one")
    now = datetime.now(UTC) if now is None else now
    row, reserved = _admit(
        db=db,
        audit=audit,
        limits=limits or SignInLimits(),
        actor=user.actor,
        action="users.password_change_throttled",
        name=user.name,
        address=address,
        now=now,
    )
    stored = row._mapping["password_hash"] if row is not None else None
    ok = verify_password(stored, current_password)
    if row is None or not ok or row._mapping["id"] != user.id:
        audit.record(
            actor=user.actor, action="users.password_change_failed", details={"user": user.name}
        )
        raise InvalidRequest("the current password is wrong")
    hashed = hash_password(new_password)
    with db.write() as conn:
        changed = conn.execute(
            update(User)
            .where(User.id == user.id, User.disabled_at.is_(None))
            .values(password_hash=hashed)
        )
        if changed.rowcount == 0:
            raise AuthenticationFailed(BAD_CREDENTIALS)  # disabled meanwhile
        throttle.succeeded(conn, reserved)
        others = delete(Session).where(Session.user_id == user.id)
        if keep_token is not None:
            others = others.where(Session.token_hash != secret_digest(keep_token))
        ended = int(conn.execute(others).rowcount)
        audit.append(
            conn,
            actor=user.actor,
            action="users.password_changed",
            details={"user": user.name, "sessions_ended": ended},
        )
    return ended


def count_users(*, db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(User)).scalar_one())
