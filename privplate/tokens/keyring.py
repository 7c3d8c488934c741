"""The epoch keyring: one random key per time epoch, wrapped under the KEK.

Storage is behind a small protocol (the store implements it in SQL) so this module stays a
primitive: it decides epoch boundaries, wraps and unwraps keys, and runs the destroy-and-rotate
protocol, but never touches a database itself.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils

from privplate.errors import AlreadyExists, EpochKeyDestroyed, KeyringError
from privplate.tokens import kek as kekfile
from privplate.tokens.plate_token import EPOCH_KEY_BYTES

MIN_EPOCH_SECONDS = 60
_WRAP_DOMAIN = b"privplate/v1/epoch-key\x00"
_NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES


@dataclass(frozen=True)
class EpochRecord:
    """One epoch as stored: its half-open time span and its wrapped key (None once destroyed)."""

    epoch_id: int
    starts_at: datetime
    ends_at: datetime
    kek_generation: int | None
    wrapped_key: bytes | None
    destroyed_at: datetime | None

    @property
    def live(self) -> bool:
        return self.wrapped_key is not None and self.destroyed_at is None

    def covers(self, moment: datetime) -> bool:
        return self.starts_at <= moment < self.ends_at


@dataclass(frozen=True)
class EpochKey:
    epoch_id: int
    starts_at: datetime
    ends_at: datetime
    key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"EpochKey(epoch_id={self.epoch_id}, starts_at={self.starts_at.isoformat()})"


class StaleKek(KeyringError):
    """A newer key-encryption key generation is in use; reload the KEK file and retry."""


class ConcurrentKeyringChange(KeyringError):
    """The set of live epochs changed while a rotation was being prepared; retry."""


class EpochStorage(Protocol):
    """Where epoch records live. Implementations must make ``rewrap`` one transaction."""

    def epoch_at(self, moment: datetime) -> EpochRecord | None: ...

    def latest_epoch(self) -> EpochRecord | None: ...

    def epochs_overlapping(self, start: datetime, end: datetime) -> list[EpochRecord]: ...

    def live_epochs(self) -> list[EpochRecord]: ...

    def add_epoch(self, record: EpochRecord) -> None:
        """Insert ``record`` under the keyring lock.

        Raise AlreadyExists if its id is taken (another process won the race) and StaleKek if
        a live epoch is already wrapped under a newer KEK generation (a rotation happened).
        """
        ...

    def kek_generations_in_use(self) -> set[int]: ...

    def rotation_guard(self) -> AbstractContextManager[None]:
        """Held for a whole KEK rotation or recovery, across every host of the deployment
        (the key directory's flock may not reach other hosts; see crypto/SPEC.md 6)."""
        ...

    def rewrap(
        self,
        rewrapped: dict[int, bytes],
        generation: int,
        destroy: Sequence[int],
        destroyed_at: datetime,
    ) -> None:
        """Under the keyring lock, in one transaction: store ``rewrapped`` under ``generation``
        and erase the keys of ``destroy``.

        Raise ConcurrentKeyringChange, writing nothing, unless the live epochs are exactly
        ``rewrapped`` plus ``destroy`` (an epoch created meanwhile would be lost otherwise).
        """
        ...


def epoch_id_for(starts_at: datetime) -> int:
    """Epoch ids are the start time in Unix seconds: unique, ordered and self-describing."""
    return int(starts_at.timestamp())


def _aad(epoch_id: int, generation: int, ends_at: datetime) -> bytes:
    # Binding the epoch's span stops a database writer from moving a key to another epoch or
    # stretching an epoch to keep its key from scheduled destruction (the id is its start).
    return _WRAP_DOMAIN + struct.pack(">qIq", epoch_id, generation, int(ends_at.timestamp()))


def wrap_key(kek: kekfile.Kek, epoch_id: int, key: bytes, *, ends_at: datetime) -> bytes:
    nonce = nacl.utils.random(_NONCE_BYTES)
    sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        key, _aad(epoch_id, kek.generation, ends_at), nonce, kek.key
    )
    return bytes(nonce + sealed)


def unwrap_key(kek: kekfile.Kek, epoch_id: int, wrapped: bytes, *, ends_at: datetime) -> bytes:
    nonce, sealed = wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:]
    try:
        key = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed, _aad(epoch_id, kek.generation, ends_at), nonce, kek.key
        )
    except nacl.exceptions.CryptoError:
        raise KeyringError(
            f"epoch {epoch_id} key does not decrypt with key-encryption key generation "
            f"{kek.generation}: wrong kek_file for this database, or the row was altered"
        ) from None
    return bytes(key)


class Keyring:
    """Epoch keys for one deployment: current key, keys of a window, destruction."""

    def __init__(
        self,
        storage: EpochStorage,
        kek_path: Path,
        *,
        epoch_seconds: int = 86_400,
    ) -> None:
        if epoch_seconds < MIN_EPOCH_SECONDS:
            raise KeyringError(f"epoch length must be at least {MIN_EPOCH_SECONDS} seconds")
        self._storage = storage
        self._kek_path = kek_path
        self._epoch = timedelta(seconds=epoch_seconds)
        self._keks: dict[int, kekfile.Kek] = {}
        self._current: EpochKey | None = None
        self._lock = threading.Lock()
        self.recover()

    # -- KEK handling -------------------------------------------------------------------

    def _load_keks(self) -> None:
        """Read the current KEK and, if a rotation is in flight, the staged next one."""
        current = kekfile.read_kek(self._kek_path)
        keks = {current.generation: current}
        staged = kekfile.next_path(self._kek_path)
        if staged.exists():
            nxt = kekfile.read_kek(staged)
            if nxt.generation in keks and nxt.key != keks[nxt.generation].key:
                raise KeyringError(
                    f"{staged} and {self._kek_path} hold different keys for generation "
                    f"{nxt.generation}; restore the correct key file before continuing"
                )
            keks[nxt.generation] = nxt
        self._current_generation = current.generation
        self._keks = keks

    def _kek(self, generation: int) -> kekfile.Kek:
        if generation not in self._keks:
            # Another process may have rotated the KEK since we loaded it.
            self._load_keks()
        try:
            return self._keks[generation]
        except KeyError:
            raise KeyringError(
                f"key-encryption key generation {generation} is not in {self._kek_path}: "
                "the key file does not belong to this database"
            ) from None

    @property
    def kek_generation(self) -> int:
        """Generation of the KEK in the key file (a staged next KEK does not count)."""
        return self._current_generation

    def refresh(self) -> None:
        """Catch up with what another process changed: re-read the KEK files (so a KEK that a
        rotation retired leaves this process's memory too) and forget the cached current key
        if its epoch was destroyed. Only reads: the rotation itself is the purge's."""
        with self._lock:
            self._load_keks()
            cached = self._current
            if cached is not None and cached.epoch_id not in self.live_epoch_ids():
                self._current = None

    def live_epoch_ids(self) -> set[int]:
        """Ids of the epochs whose keys still exist (nothing is unwrapped)."""
        return {r.epoch_id for r in self._storage.live_epochs()}

    def _wrapping_kek(self) -> kekfile.Kek:
        """The KEK new epoch keys are wrapped under.

        Normally the key file's; a staged next KEK only once the database already uses it (its
        rotation committed and only the rename is pending). Never a staged KEK whose rotation
        might still roll back, or the new epoch's key would be lost with it. The files are
        re-read first: a staged key seen earlier may belong to a rotation that rolled back and
        was retried with a different key under the same generation.
        """
        self._load_keks()
        in_use = self._storage.kek_generations_in_use()
        usable = [
            g
            for g in self._keks
            if g == self._current_generation or (g > self._current_generation and g in in_use)
        ]
        return self._keks[max(usable)]

    def recover(self) -> None:
        """Finish or roll back a rotation that a crash interrupted."""
        with kekfile.rotation_lock(self._kek_path), self._storage.rotation_guard():
            self._recover_locked()

    def _recover_locked(self) -> None:
        self._load_keks()
        staged = kekfile.next_path(self._kek_path)
        if not staged.exists():
            return
        staged_kek = kekfile.read_kek(staged)
        staged_gen = staged_kek.generation
        if staged_gen == self._current_generation and (
            staged_kek.key == self._keks[staged_gen].key
        ):
            kekfile.discard_next(self._kek_path)  # a copy of the current key: harmless
        elif (
            staged_gen == self._current_generation + 1
            and staged_gen in self._storage.kek_generations_in_use()
        ):
            kekfile.promote_next(self._kek_path)  # the database already uses it
        elif staged_gen in self._storage.kek_generations_in_use():
            raise KeyringError(
                f"{staged} (generation {staged_gen}) is in use by the database but does not "
                f"follow {self._kek_path} (generation {self._current_generation}); restore the "
                "key files from the same point in time"
            )
        else:
            kekfile.discard_next(self._kek_path)  # the re-wrap never committed
        self._load_keks()

    # -- epochs ----------------------------------------------------------------------------

    def _unwrap(self, record: EpochRecord) -> EpochKey:
        if record.wrapped_key is None or record.kek_generation is None:
            raise EpochKeyDestroyed(
                f"epoch {record.epoch_id} key was destroyed by retention; its tokens can no "
                "longer be matched"
            )
        if record.epoch_id != epoch_id_for(record.starts_at):
            raise KeyringError(
                f"epoch {record.epoch_id} row was altered: its id no longer matches its start"
            )
        try:
            key = unwrap_key(
                self._kek(record.kek_generation),
                record.epoch_id,
                record.wrapped_key,
                ends_at=record.ends_at,
            )
        except KeyringError:
            # Our copy of that generation may be stale (see _wrapping_kek): re-read once.
            self._load_keks()
            key = unwrap_key(
                self._kek(record.kek_generation),
                record.epoch_id,
                record.wrapped_key,
                ends_at=record.ends_at,
            )
        return EpochKey(record.epoch_id, record.starts_at, record.ends_at, key)

    def current_key(self, now: datetime | None = None) -> EpochKey:
        """Key of the epoch covering ``now``, creating that epoch on first use."""
        now = _utc(now)
        with self._lock:
            cached = self._current
            if cached is not None and cached.starts_at <= now < cached.ends_at:
                return cached
            record = self._storage.epoch_at(now)
            if record is None:
                record = self._create_epoch(now)
            key = self._unwrap(record)
            self._current = key
            return key

    def key_for(self, epoch_id: int) -> EpochKey:
        """Key of one epoch by id (for checking what an edge sent)."""
        for record in self._storage.live_epochs():
            if record.epoch_id == epoch_id:
                return self._unwrap(record)
        raise EpochKeyDestroyed(f"epoch {epoch_id} is unknown or its key was destroyed")

    def live_keys(self) -> list[EpochKey]:
        """Keys of every epoch whose key still exists (hotlists are tokenized under each)."""
        return [self._unwrap(r) for r in self._storage.live_epochs()]

    def keys_between(self, start: datetime, end: datetime) -> list[EpochKey]:
        """Live keys of every epoch overlapping [start, end); destroyed epochs are skipped."""
        start, end = _utc(start), _utc(end)
        if end <= start:
            return []
        return [self._unwrap(r) for r in self._storage.epochs_overlapping(start, end) if r.live]

    def _create_epoch(self, now: datetime) -> EpochRecord:
        span = int(self._epoch.total_seconds())
        aligned = datetime.fromtimestamp(int(now.timestamp()) // span * span, tz=UTC)
        start = aligned
        latest = self._storage.latest_epoch()
        if latest is not None and start < latest.ends_at <= now:
            start = latest.ends_at  # the epoch length changed; never overlap the last epoch
        end = aligned + self._epoch
        epoch_id = epoch_id_for(start)
        key = nacl.utils.random(EPOCH_KEY_BYTES)
        for _attempt in range(5):
            kek = self._wrapping_kek()
            record = EpochRecord(
                epoch_id=epoch_id,
                starts_at=start,
                ends_at=end,
                kek_generation=kek.generation,
                wrapped_key=wrap_key(kek, epoch_id, key, ends_at=end),
                destroyed_at=None,
            )
            try:
                self._storage.add_epoch(record)
            except StaleKek:
                self._load_keks()  # a rotation committed meanwhile: wrap under its KEK
                continue
            except AlreadyExists:
                break
            return record
        else:
            raise KeyringError("the key-encryption key kept changing; try again")
        # Another process created it first: use theirs so everyone shares one key.
        existing = self._storage.epoch_at(now)
        if existing is None:
            raise KeyringError("epoch creation raced and no epoch covers now")
        return existing

    def destroy_before(self, cutoff: datetime, *, now: datetime | None = None) -> list[int]:
        """Destroy every epoch that ended at or before ``cutoff``; rotate the KEK.

        Returns the ids of the epochs destroyed. Rotation re-wraps the remaining keys under a
        fresh KEK so a copy of the database taken earlier cannot be opened with the new file.
        """
        cutoff = _utc(cutoff)
        return self._destroy(lambda r: r.ends_at <= cutoff, _utc(now))

    def destroy_epochs(
        self, epoch_ids: Collection[int], *, now: datetime | None = None
    ) -> list[int]:
        """Destroy the given epochs (those still live); rotate the KEK. Returns those destroyed."""
        wanted = set(epoch_ids)
        return self._destroy(lambda r: r.epoch_id in wanted, _utc(now))

    def _destroy(self, doomed_if: Callable[[EpochRecord], bool], now: datetime) -> list[int]:
        # The file lock keeps two processes from staging different next KEKs at once.
        with self._lock, kekfile.rotation_lock(self._kek_path), self._storage.rotation_guard():
            for _attempt in range(5):
                try:
                    return self._destroy_once(doomed_if, now)
                except ConcurrentKeyringChange:
                    continue
            raise KeyringError("epoch keys kept changing during destruction; run the purge again")

    def _destroy_once(self, doomed_if: Callable[[EpochRecord], bool], now: datetime) -> list[int]:
        # Finish (or undo) any rotation a crashed process left behind before staging ours.
        self._recover_locked()
        live = self._storage.live_epochs()
        doomed = [r.epoch_id for r in live if doomed_if(r)]
        if not doomed:
            return []
        # Unwrap first: an unreadable row fails here, before anything is staged on disk.
        keep = [(r, self._unwrap(r).key) for r in live if not doomed_if(r)]
        staged = kekfile.new_kek(self._current_generation + 1)
        kekfile.write_kek(kekfile.next_path(self._kek_path), staged)
        self._keks[staged.generation] = staged
        rewrapped = {
            r.epoch_id: wrap_key(staged, r.epoch_id, key, ends_at=r.ends_at) for r, key in keep
        }
        try:
            self._storage.rewrap(rewrapped, staged.generation, doomed, now)
        except BaseException:
            # The commit may have landed even though we saw an error: let the database decide
            # which KEK is live rather than guessing and losing every key.
            self._keks.pop(staged.generation, None)
            with contextlib.suppress(Exception):
                self._recover_locked()
            raise
        kekfile.promote_next(self._kek_path)
        self._load_keks()
        if self._current is not None and self._current.epoch_id in doomed:
            self._current = None
        return doomed


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return moment.astimezone(UTC)
