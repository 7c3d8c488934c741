"""The API keys on record, for the administrator's list (creating and revoking them lives in
:mod:`privplate.identity.accounts`, with the other account changes). Never the secret: only
its digest is stored, and only the id, owner, label and dates are listed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from privplate.store.database import Database
from privplate.store.server_models import ApiKey, User


@dataclass(frozen=True)
class ApiKeyInfo:
    id: uuid.UUID
    user: str
    label: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def live(self) -> bool:
        return self.revoked_at is None


def list_api_keys(*, db: Database, include_revoked: bool = False) -> list[ApiKeyInfo]:
    """Every live key (and the revoked ones if asked), by owner, oldest first."""
    stmt = (
        select(ApiKey.id, User.name, ApiKey.label, ApiKey.created_at, ApiKey.revoked_at)
        .join(User, User.id == ApiKey.user_id)
        .order_by(User.name, ApiKey.created_at)
    )
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    with db.read() as conn:
        return [
            ApiKeyInfo(id=r[0], user=r[1], label=r[2], created_at=r[3], revoked_at=r[4])
            for r in conn.execute(stmt)
        ]
