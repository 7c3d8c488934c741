"""Where a hotlist comes from: a closed set shown in the API schema and transparency reports."""

from __future__ import annotations

from enum import StrEnum


class HotlistSource(StrEnum):
    STOLEN_VEHICLE = "stolen-vehicle"
    STOLEN_PLATE = "stolen-plate"
    AMBER_ALERT = "amber-alert"
    SILVER_ALERT = "silver-alert"
    MISSING_PERSON = "missing-person"
    WANTED_PERSON = "wanted-person"
    LOCAL_BOLO = "local-bolo"
