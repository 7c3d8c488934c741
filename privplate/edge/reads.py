"""From a closed track to what leaves the edge: tokens under the current epoch key, sealed
evidence and a confidence. The plate text is dropped here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from privplate.edge.evidence import seal_evidence
from privplate.edge.tracking import Track
from privplate.errors import InvalidPlate
from privplate.store.ingest import EvidenceIn, ReadIn, TokenIn
from privplate.tokens import canonical_plate, plate_token
from privplate.tokens.keyring import EpochKey

log = logging.getLogger(__name__)


class KeySource(Protocol):
    """Where the edge gets the epoch key: the local keyring, or the server (sealed to us)."""

    def current_key(self, now: datetime | None = None) -> EpochKey: ...


@dataclass(frozen=True)
class EdgeRead:
    read: ReadIn
    evidence: EvidenceIn | None


def _tokens(
    texts: list[str], key: bytes, fold: Mapping[str, str] | None, limit: int
) -> list[TokenIn]:
    """The best reading's token first, then distinct alternates' tokens, at most ``limit``."""
    if not texts:
        return []
    try:
        best = plate_token(key, canonical_plate(texts[0], fold=fold))
    except InvalidPlate:
        return []  # the best reading is not a plate (e.g. too long): nothing is reported
    tokens = [TokenIn(best)]
    seen = {best}
    for text in texts[1:]:
        if len(tokens) >= limit:
            break
        try:
            token = plate_token(key, canonical_plate(text, fold=fold))
        except InvalidPlate:
            continue
        if token not in seen:  # folding can make an alternate equal to another reading
            seen.add(token)
            tokens.append(TokenIn(token, is_alternate=True))
    return tokens


def reading_tokens(
    track: Track, keys: KeySource, fold: Mapping[str, str] | None, max_tokens: int = 8
) -> tuple[EpochKey, list[TokenIn]]:
    """Tokens of the track's reading (fused once the track closed, see Track.final) and its
    alternates under the current epoch key. After an edge alert the texts of the reading it
    was raised on follow the best one: the read the alert named then matches the same
    hotlist entry on the server even where fusion chose another best reading."""
    final = track.final
    epoch = keys.current_key(track.best_at)
    texts = [final.best.text]
    alerted = track.alerted_on
    if alerted is not None and alerted is not final:
        texts += [alerted.best.text, *(a.text for a in alerted.alternates)]
    texts += [a.text for a in final.alternates]
    return epoch, _tokens(texts, epoch.key, fold, max_tokens)


def build_read(
    track: Track,
    *,
    camera_id: str,
    keys: KeySource,
    fold: Mapping[str, str] | None,
    evidence_key: bytes | None,
    frame_side: int = 640,
    max_tokens: int = 8,
) -> EdgeRead | None:
    best = track.best  # the evidence is the best frame, whatever the text was fused from
    epoch, tokens = reading_tokens(track, keys, fold, max_tokens)
    if not tokens:
        log.info("a reading was not a valid plate (length or characters) and was dropped")
        return None
    evidence = None
    evidence_id = None
    if evidence_key is not None:
        evidence_id, sealed = seal_evidence(
            track.best_frame, best.detection.box, evidence_key, longest_side=frame_side
        )
        evidence = EvidenceIn(evidence_id, camera_id, track.best_at, sealed)
    read = ReadIn(
        read_id=track.read_id,
        camera_id=camera_id,
        observed_at=track.best_at,
        epoch_id=epoch.epoch_id,
        tokens=tokens,
        confidence=round(min(1.0, max(0.0, track.final.confidence)), 4),
        evidence_id=evidence_id,
    )
    return EdgeRead(read, evidence)
