"""Hotlists: wanted plates, encrypted at rest, matched against reads only as tokens."""

from privplate.hotlists.box import PlateBox
from privplate.hotlists.service import EntryIn, EntryInfo, HotlistInfo, Hotlists
from privplate.hotlists.sources import HotlistSource
from privplate.hotlists.tokens import Hit, HotlistTokens

__all__ = [
    "EntryIn",
    "EntryInfo",
    "Hit",
    "HotlistInfo",
    "HotlistSource",
    "HotlistTokens",
    "Hotlists",
    "PlateBox",
]
