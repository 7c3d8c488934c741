"""Sharing agreements: the only way a query can be run on behalf of another agency.

None exist by default, and there is no cross-deployment or national lookup at all: an agreement
lets this deployment's own investigator answer another agency's case, on the record.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update

from privplate.audit import AuditLog
from privplate.errors import InvalidRequest, NotFound, PurposeDenied
from privplate.jurisdiction import Purpose, SharingRule
from privplate.policy.rules import PurposePolicy
from privplate.store.database import Database
from privplate.store.server_models import SharingAgreement


@dataclass(frozen=True)
class AgreementInfo:
    id: uuid.UUID
    agency: str
    out_of_state: bool
    declaration_signed: bool
    document_reference: str
    purposes: tuple[Purpose, ...]
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked: bool


def _info(row: object) -> AgreementInfo:
    m = row._mapping  # type: ignore[attr-defined]
    return AgreementInfo(
        id=m["id"],
        agency=m["agency"],
        out_of_state=m["out_of_state"],
        declaration_signed=m["declaration_signed"],
        document_reference=m["document_reference"],
        purposes=tuple(Purpose(p) for p in json.loads(m["purposes"])),
        created_by=m["created_by"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        revoked=m["revoked_at"] is not None,
    )


def create_agreement(
    *,
    db: Database,
    audit: AuditLog,
    actor: str,
    agency: str,
    out_of_state: bool,
    declaration_signed: bool,
    document_reference: str,
    purposes: list[Purpose],
    expires_at: datetime,
    policy: PurposePolicy,
) -> AgreementInfo:
    """Record an agreement. Every purpose it covers must be one this deployment allows (the
    same check a search gets), and out-of-state sharing follows the jurisdiction's rule."""
    rule = policy.out_of_state_sharing
    if not 1 <= len(agency.strip()) <= 200 or not 1 <= len(document_reference.strip()) <= 500:
        raise InvalidRequest("an agreement names the agency and a signed document reference")
    if not purposes:
        raise InvalidRequest("an agreement lists the purposes it covers")
    for purpose in purposes:
        policy.check_purpose(purpose)
    if out_of_state and rule == "forbidden":
        raise PurposeDenied("this jurisdiction forbids sharing with out-of-state agencies")
    if out_of_state and rule == "declaration-required" and not declaration_signed:
        raise PurposeDenied(
            "this jurisdiction requires a signed declaration from an out-of-state agency "
            "before any sharing (declaration_signed)"
        )
    now = datetime.now(UTC)
    if expires_at <= now:
        raise InvalidRequest("expires_at is in the past")
    info = AgreementInfo(
        uuid.uuid4(),
        agency.strip(),
        out_of_state,
        declaration_signed,
        document_reference.strip(),
        tuple(purposes),
        actor,
        now,
        expires_at,
        False,
    )
    with db.write() as conn:
        conn.execute(
            insert(SharingAgreement).values(
                id=info.id,
                agency=info.agency,
                out_of_state=out_of_state,
                declaration_signed=declaration_signed,
                document_reference=info.document_reference,
                purposes=json.dumps(sorted(p.value for p in purposes)),
                created_by=actor,
                created_at=now,
                expires_at=expires_at,
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="sharing.agreement_created",
            details={
                "agreement": str(info.id),
                "agency": info.agency,
                "out_of_state": out_of_state,
                "declaration_signed": declaration_signed,
                "purposes": sorted(p.value for p in purposes),
                "expires_at": expires_at.isoformat(),
            },
        )
    return info


def list_agreements(*, db: Database) -> list[AgreementInfo]:
    with db.read() as conn:
        return [
            _info(r)
            for r in conn.execute(select(SharingAgreement).order_by(SharingAgreement.agency))
        ]


def revoke_agreement(*, db: Database, audit: AuditLog, actor: str, agreement_id: uuid.UUID) -> None:
    with db.write() as conn:
        done = conn.execute(
            update(SharingAgreement)
            .where(SharingAgreement.id == agreement_id, SharingAgreement.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        if done.rowcount == 0:
            raise NotFound("no live sharing agreement with this id")
        audit.append(
            conn,
            actor=actor,
            action="sharing.agreement_revoked",
            details={"agreement": str(agreement_id)},
        )


def check_agreement(
    conn: Connection, agreement_id: uuid.UUID, purpose: Purpose, rule: SharingRule, now: datetime
) -> AgreementInfo:
    """The live agreement a query on another agency's behalf relies on, or PurposeDenied."""
    row = conn.execute(select(SharingAgreement).where(SharingAgreement.id == agreement_id)).first()
    if row is None:
        raise PurposeDenied(
            "no sharing agreement with this id: queries for another agency need one recorded "
            "by an administrator"
        )
    info = _info(row)
    if info.revoked or info.expires_at <= now:
        raise PurposeDenied("the sharing agreement has expired or was revoked")
    if purpose not in info.purposes:
        raise PurposeDenied(f"the sharing agreement does not cover purpose {purpose.value!r}")
    if info.out_of_state and rule == "forbidden":
        raise PurposeDenied("this jurisdiction forbids sharing with out-of-state agencies")
    if info.out_of_state and rule == "declaration-required" and not info.declaration_signed:
        raise PurposeDenied("the out-of-state agency has not signed the required declaration")
    return info
