"""The purpose policy of a deployment: settings plus the jurisdiction preset."""

from __future__ import annotations

import re
from dataclasses import dataclass

from privplate.errors import PurposeDenied
from privplate.jurisdiction import Purpose, SharingRule, get_preset, term_pattern
from privplate.settings import Settings

CASE_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/#:-]{0,63}")


@dataclass(frozen=True)
class PurposePolicy:
    allowed: frozenset[Purpose]
    forbidden: frozenset[Purpose]
    out_of_state_sharing: SharingRule
    min_justification_chars: int
    pattern: re.Pattern[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> PurposePolicy:
        preset = get_preset(settings.retention.preset)
        forbidden = frozenset(settings.queries.forbidden_purposes) | frozenset(
            Purpose(p) for p in preset.forbidden_purposes if p in Purpose.__members__.values()
        )
        return cls(
            allowed=frozenset(settings.queries.allowed_purposes) - forbidden,
            forbidden=forbidden,
            out_of_state_sharing=preset.out_of_state_sharing,
            min_justification_chars=settings.queries.min_justification_chars,
            pattern=term_pattern(forbidden, tuple(settings.queries.forbidden_terms)),
        )

    def check_purpose(self, purpose: Purpose) -> None:
        if purpose in self.forbidden:
            raise PurposeDenied(
                f"purpose {purpose.value!r} is forbidden in this deployment (its policy or "
                "jurisdiction preset); the attempt was recorded"
            )
        if purpose not in self.allowed:
            raise PurposeDenied(
                f"purpose {purpose.value!r} is not among this deployment's allowed purposes "
                f"({', '.join(sorted(self.allowed))}); the attempt was recorded"
            )

    def screen(self, field: str, text: str) -> None:
        """Refuse text that reveals a forbidden purpose, naming the term that did."""
        found = self.pattern.search(text)
        if found is not None:
            raise PurposeDenied(
                f"the {field} mentions {found.group(0)!r}, which indicates a forbidden purpose; "
                "the attempt was recorded and compliance officers will review it"
            )

    def check_case_number(self, case_number: str) -> None:
        if not case_number.strip():
            raise PurposeDenied("a case number is required; the attempt was recorded")
        if not CASE_NUMBER.fullmatch(case_number):
            raise PurposeDenied(
                "a case number is 1-64 characters of letters, digits and . _ / # : - ; "
                "the attempt was recorded"
            )
        self.screen("case number", case_number)

    def check_justification(self, justification: str) -> None:
        if len(justification.strip()) < self.min_justification_chars:
            raise PurposeDenied(
                f"a justification of at least {self.min_justification_chars} characters is "
                "required; the attempt was recorded"
            )
        self.screen("justification", justification)
