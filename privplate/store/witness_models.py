"""Witnesses' cosignatures of the audit log's checkpoints (c2sp.org/tlog-cosignature).

One row per witness key and tree size, holding the latest cosignature that witness posted for
that size. The witness's public key and the root it cosigned are kept with it, so `privplate
audit verify` checks every row on its own, even after the witness was removed from the
settings, and can say which root a witness saw if the log's no longer matches.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from privplate.store.models import Base


class AuditCosignature(Base):
    __tablename__ = "audit_cosignatures"
    __table_args__ = (UniqueConstraint("witness_key", "tree_size"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: The witness's key name, as its signature line and vkey give it.
    witness: Mapped[str] = mapped_column(String(200))
    #: Its Ed25519 public key (the vkey's key, algorithm byte 0x04).
    witness_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: The cosignature's own POSIX time (signed), and the 64-byte Ed25519 signature.
    timestamp: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    received_at: Mapped[datetime]
