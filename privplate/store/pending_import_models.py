"""The table of console CSV imports between their preview and their confirmation
(privplate.console.pending_imports).

A row holds the file only as AEAD ciphertext under a subkey of the server secret, which is never
in the database; it is bound to the session that uploaded it (a hash of its token, never the
token), deleted when confirmed, replaced by the session's next upload, and deleted once expired
(on every put and take, and by the retention purge).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from privplate.store.models import Base


class PendingImport(Base):
    __tablename__ = "pending_imports"

    #: SHA-256 of the random key the preview page carries (the key itself is not stored).
    id: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    #: SHA-256 of the uploading session's token: at most one pending import per session.
    owner: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    hotlist: Mapped[str] = mapped_column(String(100))
    #: nonce || XChaCha20-Poly1305 of the padded CSV, bound to id, owner and hotlist.
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
