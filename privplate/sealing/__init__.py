"""Sealed evidence: images encrypted at the edge to the deployment's evidence public key."""

from privplate.sealing.ecies import (
    derive_item_key,
    generate_keypair,
    open_sealed,
    open_with_shared_point,
    parse_sealed,
    seal,
)

__all__ = [
    "derive_item_key",
    "generate_keypair",
    "open_sealed",
    "open_with_shared_point",
    "parse_sealed",
    "seal",
]
