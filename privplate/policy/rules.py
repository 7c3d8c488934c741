"""The purpose policy of a deployment: settings plus the jurisdiction preset."""

from __future__ import annotations

import re
from dataclasses import dataclass

from privplate.errors import PurposeDenied
from privplate.jurisdiction import Purpose, SharingRule, get_preset
from privplate.policy.screening import Screen
from privplate.settings import Settings

CASE_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/#:-]{0,63}")


@dataclass(frozen=True)
class PurposePolicy:
    allowed: frozenset[Purpose]
    forbidden: frozenset[Purpose]
    out_of_state_sharing: SharingRule
    min_justification_chars: int
    #: The lexicons of the forbidden purposes (retention/lexicon/, queries.lexicon_files) and
    #: queries.forbidden_terms, built once.
    terms: Screen

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
            terms=Screen.build(
                forbidden,
                settings.queries.forbidden_terms,
                [settings.path(p) for p in settings.queries.lexicon_files],
            ),
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
        """Refuse text that reveals a forbidden purpose, naming the term that did (quoting
        only the span of the original text that matched). Every surface calls this, through
        :meth:`check_case_number` and :meth:`check_justification` or directly (hotlist
        descriptions and entry reasons, hold justifications). A ``field`` that starts with
        "case number" is screened as one: an ambiguous term there always refuses."""
        hit = self.terms.refusal(text, case_number=field.startswith("case number"))
        if hit is not None:
            raise PurposeDenied(
                f"the {field} mentions {hit.span!r}, which indicates a forbidden purpose "
                f"({hit.term.title}); the attempt was recorded and compliance officers will "
                "review it"
            )

    def near_terms(self, *texts: str) -> tuple[str, ...]:
        """Lexicon terms the screen did not refuse in ``texts`` but that came close (an
        ambiguous term accepted only for its benign context or for want of any, or a word one
        typo away from a term of 5 letters or more), as the lexicon writes them, for a
        compliance review; empty when nothing came close. Never the texts' own words."""
        found: dict[str, str] = {}
        for text in texts:
            for term in self.terms.near(text):
                found.setdefault(term.key, term.display)
        return tuple(found.values())

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
