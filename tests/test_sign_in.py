"""Sign-in throttling per account and per address, idle sessions, and a user's own sessions
and password (identity/accounts.py, identity/throttle.py)."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from privplate.deployment import Deployment
from privplate.errors import AuthenticationFailed, InvalidRequest, NotFound, TooManyAttempts
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.identity.throttle import SignInLimits
from privplate.store.server_models import Session, SignInFailure
from tests.api_support import Api
from tests.privacy import dump_database

PASSWORD = "correct horse battery"
WRONG = "not the password at all"
LIMITS = SignInLimits(window=timedelta(minutes=15), per_account=3, per_address=4)
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _user(dep: Deployment, name: str = "dana", role: Role = Role.INVESTIGATOR) -> None:
    accounts.create_user(
        db=dep.db, audit=dep.audit, actor="test", name=name, role=role, password=PASSWORD
    )


def _login(
    dep: Deployment,
    name: str,
    password: str,
    *,
    now: datetime = T0,
    address: str | None = "198.51.100.7",
    limits: SignInLimits = LIMITS,
) -> str:
    return accounts.login(
        db=dep.db,
        audit=dep.audit,
        name=name,
        password=password,
        hours=12,
        address=address,
        limits=limits,
        now=now,
    )[1]


def _fail(dep: Deployment, name: str, times: int, **kwargs: object) -> None:
    for _ in range(times):
        with pytest.raises(AuthenticationFailed):
            _login(dep, name, WRONG, **kwargs)  # type: ignore[arg-type]


def _rows(dep: Deployment) -> int:
    with dep.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(SignInFailure)).scalar_one())


def _audited(dep: Deployment, action: str) -> list[dict[str, object]]:
    return [
        e.entry.details
        for e in dep.audit.entries(action=action)
        if e.action == action and e.entry is not None
    ]


# -- throttling -----------------------------------------------------------------------------


def test_an_account_is_throttled_after_the_limit_even_with_the_right_password(
    dep: Deployment,
) -> None:
    _user(dep)
    _fail(dep, "dana", LIMITS.per_account)
    with pytest.raises(TooManyAttempts) as refused:
        _login(dep, "dana", PASSWORD, now=T0 + timedelta(minutes=1))
    # The oldest failure leaves the 15-minute window 14 minutes from now.
    assert refused.value.retry_after == 14 * 60
    assert str(refused.value) == "too many failed sign-ins; try again in 14 minutes"
    assert _audited(dep, "sessions.login_throttled") == [{"user": "dana", "limits": ["account"]}]
    # A refused attempt is not counted: it does not push the end of the wait further.
    assert _rows(dep) == 2 * LIMITS.per_account


def test_an_unknown_name_is_throttled_exactly_like_a_wrong_password(dep: Deployment) -> None:
    _user(dep)
    answers = []
    for name, address in (("dana", "198.51.100.7"), ("nobody-here", "198.51.100.8")):
        for _ in range(LIMITS.per_account):
            with pytest.raises(AuthenticationFailed) as failed:
                _login(dep, name, WRONG, address=address)
            answers.append(str(failed.value))
        with pytest.raises(TooManyAttempts) as refused:
            _login(dep, name, PASSWORD, address=address, now=T0 + timedelta(seconds=30))
        answers.append(f"{refused.value} / {refused.value.retry_after}")
    known, unknown = answers[: len(answers) // 2], answers[len(answers) // 2 :]
    assert known == unknown
    assert known[-1] == "too many failed sign-ins; try again in 15 minutes / 870"
    assert _audited(dep, "sessions.login_throttled") == [
        {"user": "dana", "limits": ["account"]},
        {"user": "(unknown)", "limits": ["account"]},
    ]


def test_one_address_is_throttled_across_different_names(dep: Deployment) -> None:
    _user(dep)
    limits = SignInLimits(per_account=100, per_address=4)
    for i in range(4):
        _fail(dep, f"guess-{i}", 1, address="203.0.113.9", limits=limits)
    with pytest.raises(TooManyAttempts):
        _login(dep, "dana", PASSWORD, address="203.0.113.9", limits=limits)
    assert _audited(dep, "sessions.login_throttled") == [{"user": "dana", "limits": ["address"]}]
    # Dana from another address is let in; the flooding address stays refused.
    _login(dep, "dana", PASSWORD, address="203.0.113.10", limits=limits)
    with pytest.raises(TooManyAttempts):
        _login(dep, "guess-9", WRONG, address="203.0.113.9", limits=limits)


def test_a_success_clears_the_accounts_failures_but_not_the_addresss(dep: Deployment) -> None:
    _user(dep)
    _fail(dep, "dana", LIMITS.per_account - 1, address="198.51.100.7")
    _login(dep, "dana", PASSWORD, address="198.51.100.7")
    with dep.db.read() as conn:
        keys = Counter(conn.execute(select(SignInFailure.key)).scalars())
    # Only the address's two failures are left: not the account's, not the successful attempt.
    assert keys == {LIMITS.digest("address", "198.51.100.7"): LIMITS.per_account - 1}
    # The account has its whole allowance again.
    _fail(dep, "dana", LIMITS.per_account, address=None)
    with pytest.raises(TooManyAttempts):
        _login(dep, "dana", PASSWORD, address=None)


def test_failures_age_out_of_the_window_and_are_deleted(dep: Deployment) -> None:
    _user(dep)
    _fail(dep, "dana", LIMITS.per_account, address=None)
    just_before = T0 + LIMITS.window - timedelta(seconds=1)
    with pytest.raises(TooManyAttempts) as refused:
        _login(dep, "dana", PASSWORD, address=None, now=just_before)
    assert refused.value.retry_after == 1
    assert str(refused.value) == "too many failed sign-ins; try again in 1 minute"
    assert _rows(dep) == LIMITS.per_account
    _login(dep, "dana", PASSWORD, address=None, now=T0 + LIMITS.window)
    # The attempt past the window deleted the old rows and its own success left none.
    assert _rows(dep) == 0


def test_the_api_answers_429_with_retry_after(api: Api) -> None:
    _user(api.dep, "erin")
    limit = api.dep.settings.server.sign_in_max_failures_per_account
    for name in ("erin", "no-such-user"):
        statuses = [
            api.client.post("/sessions", json={"name": name, "password": WRONG}).status_code
            for _ in range(limit)
        ]
        assert statuses == [401] * limit
        answer = api.client.post("/sessions", json={"name": name, "password": PASSWORD})
        assert answer.status_code == 429
        assert answer.json()["error"]["type"] == "too_many_attempts"
        assert answer.json()["error"]["message"].startswith("too many failed sign-ins; try again")
        retry = int(answer.headers["Retry-After"])
        assert 0 < retry <= api.dep.settings.server.sign_in_window_minutes * 60
    # Both names failed from the test client's one address (10 < 20): not throttled there.
    assert api.client.post("/sessions", json={"name": "x", "password": WRONG}).status_code == 401


def test_neither_the_name_nor_the_address_is_stored(api: Api) -> None:
    _user(api.dep, "frank")
    limits = SignInLimits.from_settings(api.dep.settings.server, api.services.secret)
    address, unknown = "203.0.113.77", "zz-unknown-person"
    _fail(api.dep, "frank", 2, address=address, limits=limits)
    _fail(api.dep, unknown, 2, address=address, limits=limits)
    # Without the server secret (a command-line sign-in): SHA-256 with a domain prefix.
    _fail(api.dep, unknown, 1, address="192.0.2.1", limits=SignInLimits())
    with api.dep.db.read() as conn:
        keys = set(conn.execute(select(SignInFailure.key)).scalars())
    # Keyed under the server secret: not the unkeyed hash anyone could recompute.
    assert keys == {
        limits.digest("account", "frank"),
        limits.digest("account", unknown),
        limits.digest("address", address),
        SignInLimits().digest("account", unknown),
        SignInLimits().digest("address", "192.0.2.1"),
    }
    assert limits.digest("address", address) != SignInLimits().digest("address", address)
    dump = dump_database(api.dep.settings.resolved_database_url)
    for raw in (address, "192.0.2.1", unknown):
        assert raw.encode() not in dump, raw
        assert raw.encode("utf-16-le") not in dump, raw


def test_concurrent_failures_never_get_past_the_limit(home: Path) -> None:
    """Two deployments on one database stand for two server workers. Each attempt reserves
    its row before the password check, under a lock per key, so the documented slack is zero:
    exactly the limit of attempts reach the check, however they interleave."""
    attempts, limits = 12, SignInLimits(per_account=3, per_address=1_000)
    with Deployment.open(home) as one, Deployment.open(home) as two:
        _user(one, "gail")

        def attempt(i: int) -> str:
            try:
                _login((one, two)[i % 2], "gail", WRONG, address="198.51.100.50", limits=limits)
            except AuthenticationFailed:
                return "checked"
            except TooManyAttempts:
                return "throttled"
            return "opened"

        with ThreadPoolExecutor(6) as pool:
            outcomes = Counter(pool.map(attempt, range(attempts)))
        assert outcomes["checked"] <= limits.per_account  # the bound: slack 0
        assert outcomes == {"checked": limits.per_account, "throttled": attempts - 3}
        assert len(_audited(one, "sessions.login_failed")) == limits.per_account
        assert len(_audited(one, "sessions.login_throttled")) == attempts - limits.per_account


# -- sessions -------------------------------------------------------------------------------


def test_an_idle_session_is_refused_and_use_keeps_it_alive(dep: Deployment) -> None:
    _user(dep)
    token = _login(dep, "dana", PASSWORD)
    idle = timedelta(minutes=30)

    def who(at: datetime) -> str | None:
        user = accounts.user_for_bearer(db=dep.db, secret=token, idle=idle, now=at)
        return user.name if user is not None else None

    def last_used() -> datetime:
        with dep.db.read() as conn:
            return conn.execute(select(Session.last_used_at)).scalar_one()

    assert who(T0 + timedelta(seconds=30)) == "dana"
    assert last_used() == T0  # used within a minute: not rewritten
    assert who(T0 + timedelta(minutes=29)) == "dana"
    assert last_used() == T0 + timedelta(minutes=29)
    assert who(T0 + timedelta(minutes=58)) == "dana"  # 29 minutes after its last use
    assert who(T0 + timedelta(minutes=88, seconds=1)) is None  # 30 min 1 s idle
    # Refused from then on, and not revived by the refusal.
    assert who(T0 + timedelta(minutes=88, seconds=2)) is None
    assert (
        accounts.list_sessions(db=dep.db, user=_info(dep, "dana"), now=T0 + timedelta(hours=2))
        == []
    )


def test_api_keys_have_no_idle_limit(dep: Deployment) -> None:
    accounts.create_user(
        db=dep.db, audit=dep.audit, actor="t", name="svc", role=Role.OPERATOR, password=None
    )
    key = accounts.create_api_key(db=dep.db, audit=dep.audit, actor="t", name="svc")[1]
    later = datetime.now(UTC) + timedelta(days=30)
    user = accounts.user_for_bearer(db=dep.db, secret=key, idle=timedelta(minutes=1), now=later)
    assert user is not None and user.name == "svc"


def _info(dep: Deployment, name: str) -> accounts.UserInfo:
    with dep.db.read() as conn:
        return accounts.get_user(conn, name)


def test_list_and_revoke_own_sessions(dep: Deployment) -> None:
    _user(dep)
    _user(dep, "hank")
    now = datetime.now(UTC)
    first = _login(dep, "dana", PASSWORD, now=now)
    second = _login(dep, "dana", PASSWORD, now=now + timedelta(seconds=1))
    hanks = _login(dep, "hank", PASSWORD, now=now)
    dana = _info(dep, "dana")
    listed = accounts.list_sessions(db=dep.db, user=dana, token=second)
    assert [s.current for s in listed] == [False, True]
    assert listed[0].created_at == now and listed[0].last_used_at == now
    hank_session = accounts.list_sessions(db=dep.db, user=_info(dep, "hank"))[0].id
    with pytest.raises(NotFound):  # someone else's session is as unknown as none
        accounts.revoke_session(db=dep.db, audit=dep.audit, user=dana, session_id=hank_session)
    with pytest.raises(NotFound):
        accounts.revoke_session(db=dep.db, audit=dep.audit, user=dana, session_id=uuid.uuid4())
    accounts.revoke_session(db=dep.db, audit=dep.audit, user=dana, session_id=listed[0].id)
    assert accounts.user_for_bearer(db=dep.db, secret=first) is None
    assert accounts.user_for_bearer(db=dep.db, secret=second) is not None
    assert accounts.user_for_bearer(db=dep.db, secret=hanks) is not None
    assert [s.id for s in accounts.list_sessions(db=dep.db, user=dana)] == [listed[1].id]
    assert _audited(dep, "sessions.revoked") == [{"session": str(listed[0].id)}]


def test_change_own_password(dep: Deployment) -> None:
    _user(dep)
    now = datetime.now(UTC)
    kept, other = (_login(dep, "dana", PASSWORD, now=now) for _ in range(2))
    dana = _info(dep, "dana")
    new = "a brand new passphrase"

    def change(current: str, new_password: str = new) -> int:
        return accounts.change_own_password(
            db=dep.db,
            audit=dep.audit,
            user=dana,
            current_password=current,
            new_password=new_password,
            keep_token=kept,
            limits=LIMITS,
            now=now,
        )

    with pytest.raises(InvalidRequest, match="12 to"):
        change(PASSWORD, "short")
    with pytest.raises(InvalidRequest, match="current password is wrong"):
        change(WRONG)
    assert _rows(dep) == 1  # counted like a failed sign-in
    assert change(PASSWORD) == 1
    assert _rows(dep) == 0
    assert accounts.user_for_bearer(db=dep.db, secret=kept) is not None
    assert accounts.user_for_bearer(db=dep.db, secret=other) is None
    _fail(dep, "dana", 1, now=now)
    _login(dep, "dana", new, now=now)
    assert _audited(dep, "users.password_changed") == [{"user": "dana", "sessions_ended": 1}]
    # Guessing the current password with a session is throttled like signing in.
    for _ in range(LIMITS.per_account):
        with pytest.raises(InvalidRequest):
            change(WRONG, "yet another passphrase")
    with pytest.raises(TooManyAttempts):
        change(new, "yet another passphrase")


def test_the_api_lists_revokes_and_changes_the_password(api: Api) -> None:
    _user(api.dep, "ivy")
    tokens = [
        api.client.post("/sessions", json={"name": "ivy", "password": PASSWORD}).json()["token"]
        for _ in range(2)
    ]
    me = {"Authorization": f"Bearer {tokens[1]}"}
    listed = api.client.get("/me/sessions", headers=me).json()
    assert [s["current"] for s in listed] == [False, True]
    assert "token" not in listed[0] and all(len(s) == 5 for s in listed)
    gone = api.client.delete(f"/me/sessions/{listed[0]['id']}", headers=me)
    assert gone.status_code == 204
    again = api.client.delete(f"/me/sessions/{listed[0]['id']}", headers=me)
    assert again.status_code == 404
    assert (
        api.client.get("/me", headers={"Authorization": f"Bearer {tokens[0]}"}).status_code == 401
    )
    body = {"current_password": WRONG, "new_password": "a brand new passphrase"}
    assert api.client.put("/me/password", json=body, headers=me).status_code == 400
    body["current_password"] = PASSWORD
    assert api.client.put("/me/password", json=body, headers=me).status_code == 204
    assert api.client.get("/me", headers=me).json()["name"] == "ivy"
    old = api.client.post("/sessions", json={"name": "ivy", "password": PASSWORD})
    assert old.status_code == 401


# -- the migration --------------------------------------------------------------------------


def test_the_migration_backfills_sessions_and_matches_the_models(home: Path) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext

    from privplate.store.database import MIGRATIONS_DIR
    from privplate.store.models import Base
    from privplate.store.types import UTCDateTime

    with Deployment.open(home) as dep:
        _user(dep)
        dana = _info(dep, "dana")
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        opened = datetime.now(UTC) - timedelta(minutes=5)
        with dep.db.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0010_query_lookups")
            old_sessions = sa.table(
                "sessions",
                sa.column("token_hash", sa.LargeBinary()),
                sa.column("user_id", sa.Uuid()),
                sa.column("created_at", UTCDateTime()),
                sa.column("expires_at", UTCDateTime()),
            )
            conn.execute(
                sa.insert(old_sessions),
                [
                    {
                        "token_hash": bytes([i]) * 32,
                        "user_id": dana.id,
                        "created_at": opened,
                        "expires_at": opened + timedelta(hours=1),
                    }
                    for i in range(2)
                ],
            )
            command.upgrade(cfg, "head")
            conn.commit()
            ours = {"sessions", "sign_in_failures"}
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
            assert [d for d in diffs if ours & _tables(d)] == []
        listed = accounts.list_sessions(db=dep.db, user=dana, idle=timedelta(hours=1))
    assert len({s.id for s in listed}) == 2
    assert all(s.last_used_at == opened for s in listed)


def _tables(diff: object) -> set[str]:
    """The tables an autogenerate difference (a tuple, or a list of them) is about."""
    found: set[str] = set()
    items = diff if isinstance(diff, list) else [diff]
    for item in items:
        for part in item:
            table = getattr(part, "table", None)
            name = getattr(table, "name", None) or getattr(part, "name", None)
            if isinstance(part, str):
                found.add(part)
            elif isinstance(name, str):
                found.add(name)
    return found
