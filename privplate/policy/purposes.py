"""Query purposes: a closed set, so a typo is a type error and the API schema lists them.

Which purposes a deployment allows comes from its settings; which are forbidden outright comes
from the settings and the jurisdiction preset (e.g. Illinois forbids immigration enforcement).
"""

from __future__ import annotations

import re
from enum import StrEnum


class Purpose(StrEnum):
    STOLEN_VEHICLE = "stolen-vehicle"
    AMBER_ALERT = "amber-alert"
    SILVER_ALERT = "silver-alert"
    MISSING_PERSON = "missing-person"
    VIOLENT_FELONY = "violent-felony"
    FELONY_INVESTIGATION = "felony-investigation"
    HIT_AND_RUN = "hit-and-run"
    WANTED_PERSON = "wanted-person"
    # Named so that they can be forbidden by name and recognised when someone asks for them.
    IMMIGRATION_ENFORCEMENT = "immigration-enforcement"
    REPRODUCTIVE_HEALTH_CARE_INVESTIGATION = "reproductive-health-care-investigation"
    CIVIL_OR_PARKING = "civil-or-parking"


DEFAULT_ALLOWED: tuple[Purpose, ...] = (
    Purpose.STOLEN_VEHICLE,
    Purpose.AMBER_ALERT,
    Purpose.SILVER_ALERT,
    Purpose.MISSING_PERSON,
    Purpose.VIOLENT_FELONY,
    Purpose.FELONY_INVESTIGATION,
    Purpose.HIT_AND_RUN,
    Purpose.WANTED_PERSON,
)
#: privplate's own floor: whatever the preset says, these stay forbidden unless the deployment
#: removes them from ``queries.forbidden_purposes`` on purpose (and that change is audited).
DEFAULT_FORBIDDEN: tuple[Purpose, ...] = (Purpose.IMMIGRATION_ENFORCEMENT,)

# Terms that reveal a forbidden purpose in a justification or case number, from the reasons
# recorded in published misuse audits. Acronyms must be whole words, so "ICE" never matches
# inside "police" or "office".
PURPOSE_TERMS: dict[Purpose, tuple[str, ...]] = {
    Purpose.IMMIGRATION_ENFORCEMENT: (
        r"\bICE\b",
        r"\bERO\b",
        r"\bHSI\b",
        r"\bCBP\b",
        r"\bUSCIS\b",
        r"\bimmigra\w*",
        r"\bdeport\w*",
        r"\bremoval (?:order|proceeding)s?\b",
        r"\b(?:illegal|undocumented) (?:alien|immigrant|migrant)s?\b",
        r"\bvisa overstay\w*",
        r"\bborder patrol\b",
    ),
    Purpose.REPRODUCTIVE_HEALTH_CARE_INVESTIGATION: (
        r"\babortion\w*",
        r"\breproductive (?:health|care)\b",
        r"\bfamily planning clinic\w*",
    ),
}


def term_pattern(
    purposes: frozenset[Purpose], extra_terms: tuple[str, ...] = ()
) -> re.Pattern[str]:
    """One case-insensitive pattern for every term of the forbidden purposes (plus extras,
    which are matched as whole words)."""
    parts = [term for p in sorted(purposes) for term in PURPOSE_TERMS.get(p, ())]
    parts.extend(rf"\b{re.escape(t)}\b" for t in extra_terms if t.strip())
    if not parts:
        return re.compile(r"(?!x)x")  # matches nothing
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)
