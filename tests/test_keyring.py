"""The epoch keyring: epochs, wrapping vectors, destruction with KEK rotation, crash recovery."""

from __future__ import annotations

import base64
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from privplate.deployment import Deployment
from privplate.errors import ConfigError, EpochKeyDestroyed, KeyringError
from privplate.store import SqlEpochStorage
from privplate.tokens import kek as kekfile
from privplate.tokens.keyring import Keyring, unwrap_key, wrap_key
from tests import factories
from tests.conftest import ON_POSTGRES, vectors

NOW = datetime.now(UTC)


@pytest.mark.parametrize("vec", vectors("keyring")["vectors"])
def test_wrapping_vector(vec: dict[str, object]) -> None:
    kek = kekfile.Kek(int(vec["kek_generation"]), bytes.fromhex(str(vec["kek"])))
    epoch_id = int(vec["epoch_id"])
    ends = datetime.fromtimestamp(int(vec["ends_at"]), tz=UTC)
    wrapped = bytes.fromhex(str(vec["wrapped"]))
    assert unwrap_key(kek, epoch_id, wrapped, ends_at=ends).hex() == vec["epoch_key"]
    with pytest.raises(KeyringError, match="does not decrypt"):
        unwrap_key(kek, epoch_id + 1, wrapped, ends_at=ends)  # moved to another epoch
    with pytest.raises(KeyringError, match="does not decrypt"):
        unwrap_key(kek, epoch_id, wrapped, ends_at=ends + timedelta(days=30))  # stretched
    rewrapped = wrap_key(kek, epoch_id, bytes.fromhex(str(vec["epoch_key"])), ends_at=ends)
    assert unwrap_key(kek, epoch_id, rewrapped, ends_at=ends).hex() == vec["epoch_key"]


def test_epochs_tile_time_and_keys_are_distinct(dep: Deployment) -> None:
    keys = [dep.keyring.current_key(NOW - timedelta(days=d)) for d in range(5)]
    assert len({k.epoch_id for k in keys}) == 5
    assert len({k.key for k in keys}) == 5
    for k in keys:
        assert k.ends_at - k.starts_at == timedelta(days=1)
        assert dep.keyring.current_key(k.starts_at).key == k.key
    window = dep.keyring.keys_between(NOW - timedelta(days=4, hours=1), NOW)
    assert [k.epoch_id for k in window] == sorted(k.epoch_id for k in keys)


def test_short_epochs_down_to_a_minute(home: Path) -> None:
    with Deployment.open(home) as dep:
        ring = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path, epoch_seconds=60)
        a = ring.current_key(NOW.replace(second=5, microsecond=0) + timedelta(days=30))
        b = ring.current_key(a.ends_at + timedelta(seconds=1))
        assert b.starts_at == a.ends_at and (a.ends_at - a.starts_at).total_seconds() == 60
        with pytest.raises(KeyringError, match="at least 60"):
            Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path, epoch_seconds=59)


def test_two_keyrings_share_one_key_per_epoch(dep: Deployment) -> None:
    other = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)
    assert (
        other.current_key(NOW + timedelta(days=3)).key
        == dep.keyring.current_key(NOW + timedelta(days=3)).key
    )


def test_destroy_rotates_the_kek(dep: Deployment) -> None:
    for d in range(4):
        dep.keyring.current_key(NOW - timedelta(days=d))
    generation = dep.keyring.kek_generation
    cutoff = NOW - timedelta(days=1, hours=1)
    expected = [
        k.epoch_id
        for k in dep.keyring.keys_between(NOW - timedelta(days=5), NOW)
        if k.ends_at <= cutoff
    ]
    destroyed = dep.keyring.destroy_before(cutoff)
    assert destroyed == expected and len(destroyed) >= 1
    assert dep.keyring.kek_generation == generation + 1
    assert kekfile.read_kek(dep.settings.kek_path).generation == generation + 1
    assert not kekfile.next_path(dep.settings.kek_path).exists()
    with pytest.raises(EpochKeyDestroyed):
        dep.keyring.key_for(destroyed[0])
    # Surviving epochs still decrypt, from a fresh process's point of view too.
    fresh = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)
    assert fresh.current_key(NOW).key == dep.keyring.current_key(NOW).key
    assert dep.keyring.destroy_before(NOW - timedelta(days=1, hours=1)) == []


@pytest.mark.skipif(
    ON_POSTGRES, reason="copies the SQLite file; the PostgreSQL variant is in retention"
)
def test_backup_taken_before_destruction_cannot_be_opened_after(home: Path, tmp_path: Path) -> None:
    with Deployment.open(home) as dep:
        factories.camera(dep)
        old = factories.read(dep, "ABC123", observed_at=NOW - timedelta(days=3))
        factories.ingest(dep, [old])
        dep.db.engine.dispose()
        db_file = Path(dep.settings.resolved_database_url.removeprefix("sqlite:///"))
        backup = tmp_path / "backup"
        backup.mkdir()
        for f in db_file.parent.glob(db_file.name + "*"):
            shutil.copy2(f, backup / f.name)
        dep.keyring.destroy_before(NOW - timedelta(days=1))
    # The backup plus today's key file: the old epoch's key no longer unwraps.
    shutil.copytree(home / "keys", backup / "keys")
    (backup / "privplate.toml").write_text(
        (home / "privplate.toml").read_text().replace(str(db_file), str(backup / db_file.name))
    )
    with Deployment.open(backup) as restored:
        assert restored.keyring.kek_generation == 2
        with pytest.raises(KeyringError, match="generation 1"):
            restored.keyring.key_for(old.epoch_id)
        with pytest.raises(KeyringError):
            factories.lookup(restored, "ABC123", NOW - timedelta(days=5))


def test_crash_before_commit_rolls_back_the_rotation(dep: Deployment) -> None:
    dep.keyring.current_key(NOW - timedelta(days=3))
    current = dep.keyring.current_key(NOW)
    # Simulate a crash after the next KEK was staged but before the database re-wrap.
    kekfile.write_kek(kekfile.next_path(dep.settings.kek_path), kekfile.new_kek(2))
    ring = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)
    assert not kekfile.next_path(dep.settings.kek_path).exists()
    assert ring.kek_generation == 1
    assert ring.current_key(NOW).key == current.key


def test_crash_after_commit_finishes_the_rotation(
    dep: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep.keyring.current_key(NOW - timedelta(days=3))
    current = dep.keyring.current_key(NOW)

    def crash(path: Path) -> None:
        raise SystemExit("killed between commit and rename")

    monkeypatch.setattr(kekfile, "promote_next", crash)
    with pytest.raises(SystemExit):
        dep.keyring.destroy_before(NOW - timedelta(days=2))
    monkeypatch.undo()
    assert kekfile.next_path(dep.settings.kek_path).exists()
    ring = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)
    assert not kekfile.next_path(dep.settings.kek_path).exists()
    assert ring.kek_generation == 2
    assert ring.current_key(NOW).key == current.key


def test_failed_rewrap_keeps_every_key(dep: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    dep.keyring.current_key(NOW - timedelta(days=3))
    current = dep.keyring.current_key(NOW)
    storage = SqlEpochStorage(dep.db)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(storage, "rewrap", broken)
    ring = Keyring(storage, dep.settings.kek_path)
    with pytest.raises(RuntimeError):
        ring.destroy_before(NOW - timedelta(days=2))
    assert not kekfile.next_path(dep.settings.kek_path).exists()
    fresh = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)
    assert fresh.current_key(NOW).key == current.key
    assert len(fresh.keys_between(NOW - timedelta(days=4), NOW)) == 2


def test_wrong_kek_file_is_a_clear_error(dep: Deployment) -> None:
    dep.keyring.current_key(NOW)
    kekfile.write_kek(dep.settings.kek_path, kekfile.new_kek(1))
    ring = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)
    with pytest.raises(KeyringError, match="wrong kek_file"):
        ring.current_key(NOW)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "malformed"),
        ("[]", "malformed"),
        ('{"format": "x", "version": 1}', "malformed"),
        ('{"format": "privplate-kek", "version": true, "generation": 1, "key": ""}', "malformed"),
        (
            '{"format": "privplate-kek", "version": 1, "generation": 2.9, '
            '"key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}',
            "generation",
        ),
        ('{"format": "privplate-kek", "version": 1, "generation": 1, "key": "abc"}', "key"),
    ],
)
def test_malformed_kek_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "kek.key"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=message):
        kekfile.read_kek(path)


def test_kek_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kek.key"
    kek = kekfile.new_kek(1)
    kekfile.write_kek(path, kek)
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600") as refused:
        kekfile.read_kek(path)
    # The refusal names the file and the fix, never the key material it found there.
    message = str(refused.value)
    assert str(path) in message
    assert kek.key.hex() not in message
    assert base64.b64encode(kek.key).decode() not in message
    assert base64.urlsafe_b64encode(kek.key).decode().rstrip("=") not in message
    assert "key=" not in repr(kekfile.new_kek(1))


# -- regressions: situations that once lost live keys -----------------------------------------


def test_leftover_committed_rotation_is_finished_before_the_next_one(
    dep: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    for days in (3, 2, 1, 0):
        dep.keyring.current_key(NOW - timedelta(days=days))
    survivor = dep.keyring.current_key(NOW).key
    other = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)  # a long-running process
    monkeypatch.setattr(
        kekfile,
        "promote_next",
        lambda path: (_ for _ in ()).throw(SystemExit("killed between commit and rename")),
    )
    with pytest.raises(SystemExit):
        dep.keyring.destroy_before(NOW - timedelta(days=1, hours=12))
    monkeypatch.undo()
    storage = other._storage

    def hiccup(*args: object, **kwargs: object) -> None:
        raise RuntimeError("db hiccup")

    monkeypatch.setattr(storage, "rewrap", hiccup)
    with pytest.raises(RuntimeError):
        other.destroy_before(NOW - timedelta(hours=12))
    monkeypatch.undo()
    fresh = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)
    assert fresh.current_key(NOW).key == survivor


def test_new_epochs_are_never_wrapped_under_an_uncommitted_kek(dep: Deployment) -> None:
    old = dep.keyring.current_key(NOW - timedelta(days=1)).key
    # A rotation elsewhere has staged its next KEK but not committed; we then create an epoch.
    kekfile.write_kek(kekfile.next_path(dep.settings.kek_path), kekfile.new_kek(2))
    ring = Keyring.__new__(Keyring)
    ring.__dict__.update(dep.keyring.__dict__)
    ring._load_keks()
    ring.current_key(NOW + timedelta(days=2))
    assert SqlEpochStorage(dep.db).kek_generations_in_use() == {1}
    fresh = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)  # the rotation crashed
    assert fresh.current_key(NOW - timedelta(days=1)).key == old
    assert fresh.current_key(NOW + timedelta(days=2)).key


def test_a_stray_older_next_file_is_never_promoted(dep: Deployment) -> None:
    dep.keyring.current_key(NOW - timedelta(days=2))
    live = dep.keyring.current_key(NOW).key
    old_kek = kekfile.read_kek(dep.settings.kek_path)
    dep.keyring.destroy_before(NOW - timedelta(days=1))
    kekfile.write_kek(kekfile.next_path(dep.settings.kek_path), old_kek)  # from a backup
    fresh = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)
    assert kekfile.read_kek(dep.settings.kek_path).generation == 2
    assert fresh.current_key(NOW).key == live


def test_stretched_epoch_row_no_longer_opens(dep: Deployment) -> None:
    from sqlalchemy import text

    key = dep.keyring.current_key(NOW - timedelta(days=3))
    with dep.db.engine.begin() as conn:
        conn.execute(
            text("UPDATE epochs SET ends_at = :e WHERE id = :i"),
            {
                "e": (NOW + timedelta(days=300)).replace(tzinfo=None)
                if dep.db.is_sqlite
                else NOW + timedelta(days=300),
                "i": key.epoch_id,
            },
        )
    fresh = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)
    with pytest.raises(KeyringError, match="does not decrypt"):
        fresh.key_for(key.epoch_id)


def test_a_stale_staged_key_in_another_process_is_never_used(dep: Deployment) -> None:
    dep.keyring.current_key(NOW - timedelta(days=3))
    live = dep.keyring.current_key(NOW).key
    other = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)
    # A first rotation attempt stages generation 2 and the other process reads it...
    kekfile.write_kek(kekfile.next_path(dep.settings.kek_path), kekfile.new_kek(2))
    other._load_keks()
    # ...then that attempt rolls back, and a retry commits generation 2 with a different key.
    kekfile.discard_next(dep.settings.kek_path)
    assert dep.keyring.destroy_before(NOW - timedelta(days=1, hours=12))
    created = other.current_key(NOW + timedelta(days=3))
    assert other.current_key(NOW).key == live
    fresh = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)
    assert fresh.current_key(NOW + timedelta(days=3)).key == created.key
    assert fresh.current_key(NOW).key == live
