"""The purpose screen: does a justification, reason or case number reveal a forbidden purpose?

A list of regular expressions is evaded by "I.C.E.", a Cyrillic capital Es for "C",
"1mm1gration", an agency's full name or a form number, and it refuses "black ice". So the
screen normalises before it matches, and matches words, not substrings:

1. Every character is folded on its own: Unicode NFKC, case folding, the TR39 confusable
   prototype of a non-ASCII letter when that prototype is ASCII (Cyrillic small Ie -> "e"; the
   table is Unicode's confusables.txt as the ``confusable-homoglyphs`` package ships it),
   accents removed, combining marks and invisible format characters (zero-width space, soft
   hyphen) dropped. Each folded character keeps the index of the character it came from, so
   a refusal quotes the original text, and only the span that matched.
2. The folded text is cut into words: runs of letters or of digits ("ICE2024" is "ice" then
   "2024"), and camel case ("ICEhold"). Digits used as letters (0->o, 1->i or l, 3->e, 4->a,
   5->s, 7->t, @->a, $->s) are a second reading tried beside the first, so "I-247A" and
   "287(g)" still match as numbers.
3. A lexicon term (retention/lexicon/*.toml) matches a run of words whose letters, joined,
   spell it: its own words must start and end on word boundaries of the text (so "police",
   "Iceland" and "hero" never match), and a term's word may be split by dots, dashes or
   underscores ("imm.igration", "I-C-E"), by spaces between single letters ("I C E"), or by a
   space inside a long word ("deport ation").
4. A term that is also an ordinary word (``ambiguous = true``: ICE, DHS, I-205...) is decided
   by its context, as its lexicon group says: see :meth:`Screen._decide`.

It imports nothing of privplate but errors and the jurisdiction's purposes, so any layer may
build one; :class:`privplate.policy.rules.PurposePolicy` builds one per deployment.
"""

from __future__ import annotations

import bisect
import json
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from privplate.errors import ConfigError
from privplate.jurisdiction import Purpose, presets_dir

# -- folding characters ------------------------------------------------------------------------

#: Combining marks and invisible format characters: dropped, so "I\u200bCE" is "ice".
_DROPPED = frozenset({"Mn", "Me", "Cf"})
_LEET_I = {
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s",
    "!": "i", "|": "i",
}  # fmt: skip
_LEET_L = {**_LEET_I, "1": "l", "|": "l"}
_STOPS = frozenset(".!?;")
#: Digits read as letters only where one touches a letter ("1mm1gration") or stands alone
#: among spelled letters ("1.C.E."), not in every year and case number.
#: Words: runs of ASCII letters, of ASCII digits, or of another script's letters.
_RUNS = re.compile(r"[a-z]+|[0-9]+|[^\W_a-z0-9]+")
_LEET = r"[0134578@$!|]"
_LEET_NEEDED = re.compile(rf"[a-z]{_LEET}|{_LEET}[a-z]|(?<![0-9]){_LEET}(?![0-9])")
#: A letter the TR39 table leaves out (small capitals, negative circled and squared letters,
#: regional indicators) is read by its name: "LATIN LETTER SMALL CAPITAL I" is an "i".
_LETTER_NAME = re.compile(
    r"\bLATIN (?:CAPITAL |SMALL )?LETTER (?:SMALL CAPITAL )?([A-Z])$"
    r"|^(?:NEGATIVE )?(?:CIRCLED|SQUARED|PARENTHESIZED) LATIN (?:CAPITAL |SMALL )?LETTER ([A-Z])$"
    r"|^REGIONAL INDICATOR SYMBOL LETTER ([A-Z])$"
)
#: Right-to-left override: the letters after it, up to a pop or the line's end, are shown
#: reversed, so "\u202eECI" reads "ICE" on screen.
_RLO, _PDF = "\u202e", "\u202c"
#: Short words of English and Spanish that a space never splits off a term: "in S Main St" is
#: not "INS", though "I CE" is "ICE".
# fmt: off
_FUNCTION_WORDS = frozenset((
    "a", "an", "as", "at", "be", "by", "do", "go", "he", "if", "in", "is", "it", "me", "my",
    "no", "of", "on", "or", "so", "to", "up", "us", "we",
    "de", "el", "en", "es", "la", "lo", "se", "su", "un", "y",
))
# fmt: on
_SPLIT_GAP = 3  # longest run of separators that may split one word of a term


@cache
def _confusables() -> dict[str, str]:
    """Non-ASCII character -> the ASCII letters or digits it is a TR39 confusable of."""
    data = resources.files("confusable_homoglyphs").joinpath("confusables.json")
    raw: dict[str, list[dict[str, str]]] = json.loads(data.read_text(encoding="utf-8"))
    table: dict[str, str] = {}
    for char, glyphs in raw.items():
        if char.isascii():
            continue
        for glyph in glyphs:
            target = glyph["c"]
            if target.isascii() and target.isalnum():
                table[char] = target.lower()
                break
    return table


@lru_cache(maxsize=1 << 16)
def _fold(char: str) -> str:
    """One original character -> its folded form: ASCII where a look-alike or an accent-free
    form exists, '' for marks and invisible characters."""
    if char.isascii():
        return char.lower()
    out = []
    for c in unicodedata.normalize("NFKC", char):
        if c.isascii():
            out.append(c.lower())
            continue
        if unicodedata.category(c) in _DROPPED:
            continue
        folded = c.casefold()
        table = _confusables()
        target = table.get(folded) or table.get(c)
        if target is None:
            named = _LETTER_NAME.search(unicodedata.name(c, ""))
            if named is not None:
                target = next(g for g in named.groups() if g).lower()
        if target is not None:
            out.append(target)
            continue
        out.append(
            "".join(
                x
                for x in unicodedata.normalize("NFD", folded)
                if unicodedata.category(x) not in _DROPPED
            )
        )
    return "".join(out)


@dataclass(slots=True)
class _Folded:
    """A text folded character by character, each folded character knowing where it came
    from (``origin``), whether it came from a non-ASCII character and whether that was an
    upper-case letter."""

    original: str
    chars: list[str]
    origin: list[int]
    foreign: list[bool]
    upper: list[bool]
    lower: list[bool]

    @classmethod
    def of(cls, text: str) -> _Folded:
        if text.isascii():  # the common case, without the per-character folding
            n = len(text)
            return cls(
                text,
                list(text.lower()),
                list(range(n)),
                [False] * n,
                [c.isupper() for c in text],
                [c.islower() for c in text],
            )
        chars: list[str] = []
        origin: list[int] = []
        foreign: list[bool] = []
        upper: list[bool] = []
        lower: list[bool] = []
        for i, char in enumerate(text):
            folded = _fold(char)
            is_foreign = not char.isascii()
            is_upper, is_lower = char.isupper(), char.islower()
            for c in folded:
                chars.append(c)
                origin.append(i)
                foreign.append(is_foreign)
                upper.append(is_upper)
                lower.append(is_lower)
        return cls(text, chars, origin, foreign, upper, lower)


@dataclass(frozen=True, slots=True)
class _Token:
    start: int  # in the folded text
    end: int
    text: str
    kind: str


@dataclass(slots=True)
class _Reading:
    """The folded text cut into words, as one reading (digits as digits, or as letters)."""

    folded: _Folded
    chars: list[str]
    leet: list[bool]
    tokens: list[_Token]
    gaps: list[str]  # gaps[j]: the separators just before token j
    squashed: str  # every token's text, joined
    sq_start: list[int]  # where token j starts in ``squashed``
    sq_end: list[int]

    @classmethod
    def of(cls, folded: _Folded, leet: dict[str, str] | None) -> _Reading:
        chars = list(folded.chars)
        mapped = [False] * len(chars)
        if leet is not None:
            for i, c in enumerate(chars):
                if c in leet:
                    chars[i] = leet[c]
                    mapped[i] = True
                elif c == "l" and _capital_i(folded, i):
                    chars[i] = "i"
                    mapped[i] = True
        tokens: list[_Token] = []
        up, low = folded.upper, folded.lower
        for run in _RUNS.finditer("".join(chars)):
            start, end = run.span()
            kind = "l" if "a" <= run.group()[0] <= "z" else "d" if run.group()[0] <= "9" else "x"
            if kind == "l" and any(up[start + 1 : end]):
                # camel case: "BorderPatrol", and an upper-case run before a lower-case word
                # ("ICEhold" is "ICE" "hold")
                for i in range(start + 1, end):
                    if (low[i - 1] and up[i]) or (
                        i - 1 > start and up[i - 2] and up[i - 1] and low[i]
                    ):
                        tokens.append(_Token(start, i, "".join(chars[start:i]), kind))
                        start = i
            tokens.append(_Token(start, end, "".join(chars[start:end]), kind))
        gaps, sq_start, sq_end, parts = [], [], [], []
        pos, prev_end = 0, 0
        for tok in tokens:
            gaps.append("".join(chars[prev_end : tok.start]))
            sq_start.append(pos)
            pos += tok.end - tok.start
            sq_end.append(pos)
            parts.append(tok.text)
            prev_end = tok.end
        return cls(folded, chars, mapped, tokens, gaps, "".join(parts), sq_start, sq_end)

    def norm_index(self, sq: int) -> int:
        """A position in ``squashed`` -> the folded character it is."""
        j = bisect.bisect_right(self.sq_start, sq) - 1
        return self.tokens[j].start + (sq - self.sq_start[j])


def _capital_i(folded: _Folded, i: int) -> bool:
    """A lower-case "l" among capitals ("HSl", "lCE"): the "l" a capital "I" looks like."""
    if not folded.lower[i] or folded.foreign[i]:
        return False
    sides = [j for j in (i - 1, i + 1) if 0 <= j < len(folded.chars) and folded.chars[j].isalpha()]
    return bool(sides) and all(folded.upper[j] for j in sides)


def _visual(text: str) -> tuple[str, list[int]]:
    """``text`` in the order it is shown where a right-to-left override reverses it, with the
    index in ``text`` of every character shown."""
    order: list[int] = []
    i = 0
    while i < len(text):
        if text[i] != _RLO:
            order.append(i)
            i += 1
            continue
        j = i + 1
        while j < len(text) and text[j] not in (_PDF, "\n", "\r", "\u2029"):
            j += 1
        order.extend(range(j - 1, i - 1, -1))
        i = j
    return "".join(text[k] for k in order), order


def _letters(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())


def _disguised(term: Term, folded: _Folded, first: int, last: int) -> bool:
    """Look-alike or accented letters in a match, unless the lexicon spells the term so itself
    ("migración"): that is the word written correctly, not an evasion."""
    if not any(folded.foreign[first : last + 1]):
        return False
    span = folded.original[folded.origin[first] : folded.origin[last] + 1]
    return _letters(span) != _letters(term.display)


def _has_space(gap: str) -> bool:
    return any(c.isspace() for c in gap)


def _words(text: str) -> list[str]:
    """A phrase of the lexicon -> its folded words (digits as digits)."""
    return [t.text for t in _Reading.of(_Folded.of(text), None).tokens]


# -- the lexicon -------------------------------------------------------------------------------

Bare = Literal["accept", "refuse"]


@dataclass(frozen=True, slots=True)
class Context:
    """How an ambiguous term is told from the ordinary word it equals (a lexicon group's
    ``ambiguous = true`` and its word lists, each a list of phrases)."""

    bare: Bare = "accept"
    caps_signal: bool = False
    benign_before: tuple[tuple[str, ...], ...] = ()
    benign_after: tuple[tuple[str, ...], ...] = ()
    benign_context: frozenset[str] = frozenset()
    agency_before: tuple[tuple[str, ...], ...] = ()
    agency_after: tuple[tuple[str, ...], ...] = ()
    agency_context: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Term:
    display: str  # as the lexicon writes it ("deport*" for a stem)
    title: str  # what it reveals: "immigration enforcement"
    key: str  # its folded letters, joined
    breaks: frozenset[int]  # where its own words meet, in ``key``
    word_at: tuple[int, ...]  # index of the word each letter of ``key`` belongs to
    word_lengths: tuple[int, ...]
    stem: bool  # "deport*": any word that starts so
    tight: bool  # its words meet without a space: "287(g)", never "287 g"
    context: Context | None  # None: not ambiguous, always refused
    exceptions: tuple[tuple[str, bool], ...] = ()  # (folded word, is a stem) that cancel it
    near: bool = True  # a word one typo away is reported as near it


@dataclass(frozen=True, slots=True)
class Lexicon:
    """One lexicon file: the terms of one purpose, each group citing its sources."""

    purpose: Purpose
    title: str
    path: Path
    terms: tuple[Term, ...]
    groups: tuple[tuple[str, tuple[str, ...]], ...]  # (group name, its citations)


_GROUP_KEYS = frozenset(
    {
        "name",
        "sources",
        "terms",
        "note",
        "ambiguous",
        "bare",
        "caps_signal",
        "tight",
        "near",
        "exceptions",
        "benign_before",
        "benign_after",
        "benign_context",
        "agency_before",
        "agency_after",
        "agency_context",
    }
)


def _phrases(values: object, where: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{where} must be a list of strings")
    return tuple(tuple(_words(v)) for v in values if _words(v))


def make_term(
    text: str,
    title: str,
    *,
    context: Context | None = None,
    tight: bool = False,
    exceptions: tuple[tuple[str, bool], ...] = (),
    near: bool = True,
) -> Term:
    stem = text.endswith("*")
    words = _words(text.rstrip("*"))
    if not words:
        raise ValueError(f"term {text!r} has no letters or digits")
    breaks, word_at, pos = set(), [], 0
    for n, w in enumerate(words):
        if n:
            breaks.add(pos)
        word_at.extend([n] * len(w))
        pos += len(w)
    return Term(
        display=text,
        title=title,
        key="".join(words),
        breaks=frozenset(breaks),
        word_at=tuple(word_at),
        word_lengths=tuple(len(w) for w in words),
        stem=stem,
        tight=tight,
        context=context,
        exceptions=exceptions,
        near=near,
    )


def _group_terms(group: dict[str, object], title: str, where: str) -> list[Term]:
    unknown = set(group) - _GROUP_KEYS
    if unknown:
        raise ValueError(f"{where} has unknown keys {sorted(unknown)}")
    terms = group.get("terms")
    if not isinstance(terms, list) or not terms or not all(isinstance(t, str) for t in terms):
        raise ValueError(f"{where} needs a non-empty list of terms")
    context = None
    if group.get("ambiguous", False):
        bare = group.get("bare", "accept")
        if bare not in ("accept", "refuse"):
            raise ValueError(f"{where}: bare is 'accept' or 'refuse'")
        context = Context(
            bare=bare,
            caps_signal=bool(group.get("caps_signal", False)),
            benign_before=_phrases(group.get("benign_before", []), where),
            benign_after=_phrases(group.get("benign_after", []), where),
            benign_context=frozenset(
                w for p in _phrases(group.get("benign_context", []), where) for w in p
            ),
            agency_before=_phrases(group.get("agency_before", []), where),
            agency_after=_phrases(group.get("agency_after", []), where),
            agency_context=frozenset(
                w for p in _phrases(group.get("agency_context", []), where) for w in p
            ),
        )
    raw_exceptions = group.get("exceptions", [])
    if not isinstance(raw_exceptions, list):
        raise ValueError(f"{where}: exceptions must be a list of strings")
    exceptions = tuple(("".join(_words(e.rstrip("*"))), e.endswith("*")) for e in raw_exceptions)
    tight = bool(group.get("tight", False))
    near = bool(group.get("near", True))
    return [
        make_term(t, title, context=context, tight=tight, exceptions=exceptions, near=near)
        for t in terms
    ]


def load_lexicon(path: Path) -> Lexicon:
    """Parse one lexicon file; a malformed one is a configuration error naming the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        purpose = Purpose(data["purpose"])
        title = str(data.get("title", purpose.value.replace("-", " ")))
        sources = data["sources"]
        if not isinstance(sources, dict) or not sources:
            raise ValueError("[sources] must map ids to citations")
        terms: list[Term] = []
        groups: list[tuple[str, tuple[str, ...]]] = []
        for n, group in enumerate(data["groups"], start=1):
            where = f"group {n} ({group.get('name', 'unnamed')})"
            cited = group.get("sources")
            if not isinstance(cited, list) or not cited:
                raise ValueError(f"{where} cites no source")
            missing = [s for s in cited if s not in sources]
            if missing:
                raise ValueError(f"{where} cites unknown sources {missing}")
            terms.extend(_group_terms(group, title, where))
            groups.append((str(group.get("name", "")), tuple(str(sources[s]) for s in cited)))
    except (KeyError, TypeError, ValueError, OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"lexicon {path} is malformed or unreadable: {exc} (see the 'Lexicons' section "
            "of retention/README.md)"
        ) from None
    return Lexicon(purpose, title, path, tuple(terms), tuple(groups))


def lexicon_dir() -> Path:
    return presets_dir() / "lexicon"


@cache
def shipped_lexicons() -> tuple[Lexicon, ...]:
    """The lexicons privplate ships, one file per purpose."""
    found = []
    for path in sorted(lexicon_dir().glob("*.toml")):
        lexicon = load_lexicon(path)
        if lexicon.purpose.value != path.stem:
            raise ConfigError(f"lexicon {path.name} must be named {lexicon.purpose.value}.toml")
        found.append(lexicon)
    return tuple(found)


# -- matching ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    """A term found in a text: where (in the original text), and whether it refuses."""

    term: Term
    start: int
    end: int
    refused: bool
    span: str


@dataclass(slots=True)
class _Candidate:
    term: Term
    reading: _Reading
    k: int  # first token
    m: int  # last token
    p: int  # start in squashed
    q: int  # end in squashed


def _within_one(a: str, b: str) -> bool:
    """Optimal-string-alignment distance of at most 1 (a typo: one letter added, dropped,
    changed, or two swapped)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:
            return True
        return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    if la > lb:
        return a[i + 1 :] == b[i:]
    return a[i:] == b[i + 1 :]


@dataclass(repr=False)
class Screen:
    """Every term of a deployment's forbidden purposes, indexed for matching. Build it once
    (:meth:`build`) and call :meth:`hits` per text."""

    terms: tuple[Term, ...]
    _exact: dict[str, list[Term]] = field(default_factory=dict)
    _stems: dict[str, list[Term]] = field(default_factory=dict)
    _stem_lengths: tuple[int, ...] = ()
    _prefixes: frozenset[str] = frozenset()
    _near_by_length: dict[int, list[Term]] = field(default_factory=dict)
    _near_stems: tuple[Term, ...] = ()

    def __repr__(self) -> str:
        return f"Screen({len(self.terms)} terms)"

    def __post_init__(self) -> None:
        for term in self.terms:
            (self._stems if term.stem else self._exact).setdefault(term.key, []).append(term)
        self._stem_lengths = tuple(sorted({len(k) for k in self._stems}))
        # Every beginning of every term: matching stops as soon as the letters leave them.
        self._prefixes = frozenset(t.key[:n] for t in self.terms for n in range(1, len(t.key) + 1))
        # One-word terms of 5 letters or more (stems of 7): a word one typo away is "near".
        for t in self.terms:
            if t.near and len(t.word_lengths) == 1 and t.key.isalpha():
                if t.stem and len(t.key) >= 7:
                    self._near_stems += (t,)
                elif not t.stem and len(t.key) >= 5:
                    self._near_by_length.setdefault(len(t.key), []).append(t)

    @classmethod
    def build(
        cls,
        purposes: Iterable[Purpose],
        extra_terms: Sequence[str] = (),
        lexicon_files: Sequence[Path] = (),
    ) -> Screen:
        """The screen for these forbidden purposes: the shipped lexicons, a deployment's own
        lexicon files (applied where their purpose is forbidden) and its ``forbidden_terms``."""
        return _build(frozenset(purposes), tuple(extra_terms), tuple(lexicon_files))

    # -- finding terms

    def hits(self, text: str, *, case_number: bool = False) -> list[Hit]:
        """Every term in ``text``, refused or not, in order of position; where a right-to-left
        override reverses letters, the terms of the text as shown too."""
        hits = self._analyse(text, case_number=case_number)[0]
        if _RLO in text:
            shown, order = _visual(text)
            for h in self._analyse(shown, case_number=case_number)[0]:
                where = [order[i] for i in range(h.start, h.end)]
                start, end = min(where), max(where) + 1
                hits.append(Hit(h.term, start, end, h.refused, text[start:end]))
            hits.sort(key=lambda h: (h.start, -(h.end - h.start), not h.refused))
        return hits

    def refusal(self, text: str, *, case_number: bool = False) -> Hit | None:
        """The first term in ``text`` that refuses it (the longest where two start together)."""
        return next((h for h in self.hits(text, case_number=case_number) if h.refused), None)

    def near(self, text: str) -> list[Term]:
        """Terms that came close in ``text`` without refusing it: an ambiguous term accepted
        for its context (or lack of one), and a word one typo away from a long term."""
        hits, reading = self._analyse(text, case_number=False)
        found = [h.term for h in hits if not h.refused]
        matched = {i for h in hits for i in range(h.start, h.end)}
        if reading is None:
            return found
        for tok in reading.tokens:
            word = tok.text
            if tok.kind != "l" or len(word) < 4 or reading.folded.origin[tok.start] in matched:
                continue
            for n in (len(word) - 1, len(word), len(word) + 1):
                found.extend(
                    term
                    for term in self._near_by_length.get(n, ())
                    if word != term.key
                    and _within_one(word, term.key)
                    and not self._excepted(term, word)
                )
            # a changed, added or swapped letter in a long stem ("imnigra..."); a dropped one
            # is left to the term's full words, or "aborting" would be near "abortion"
            found.extend(
                term
                for term in self._near_stems
                if not word.startswith(term.key)
                and any(
                    _within_one(word[:n], term.key)
                    for n in (len(term.key), len(term.key) + 1)
                    if n <= len(word)
                )
                and not self._excepted(term, word)
            )
        return found

    def _analyse(self, text: str, *, case_number: bool) -> tuple[list[Hit], _Reading | None]:
        if not self.terms or not text:
            return [], None
        folded = _Folded.of(text)
        readings = [_Reading.of(folded, None)]
        if _LEET_NEEDED.search("".join(folded.chars)) or any(
            c == "l" and _capital_i(folded, i) for i, c in enumerate(folded.chars)
        ):
            readings.append(_Reading.of(folded, _LEET_I))
            if "1" in folded.chars:
                readings.append(_Reading.of(folded, _LEET_L))
        seen: dict[tuple[int, int, str], Hit] = {}
        for n, reading in enumerate(readings):
            for cand in self._candidates(reading):
                if n and not self._leet_worthy(cand):
                    continue
                hit = self._judge(cand, case_number=case_number, leet=n > 0)
                key = (hit.start, hit.end, hit.term.key)
                if key not in seen or (hit.refused and not seen[key].refused):
                    seen[key] = hit
        hits = sorted(seen.values(), key=lambda h: (h.start, -(h.end - h.start)))
        return hits, readings[0]

    def _candidates(self, reading: _Reading) -> Iterable[_Candidate]:
        tokens, gaps, s = reading.tokens, reading.gaps, reading.squashed
        sq_start, sq_end, prefixes = reading.sq_start, reading.sq_end, self._prefixes
        for k, tok in enumerate(tokens):
            p = sq_start[k]
            if tok.kind == "x" or s[p] not in prefixes:
                continue
            # Extend over the following words while the letters so far begin some term, and
            # not past another script's word or a gap wider than any term's own.
            m = k
            while True:
                sub = s[p : sq_end[m]]
                for term in self._exact.get(sub, ()):
                    cand = _Candidate(term, reading, k, m, p, sq_end[m])
                    if self._fits(cand):
                        yield cand
                if (
                    sub not in prefixes
                    or m + 1 >= len(tokens)
                    or tokens[m + 1].kind == "x"
                    or len(gaps[m + 1]) > _SPLIT_GAP
                ):
                    break
                m += 1
            reach = sq_end[m]
            for length in self._stem_lengths:
                q = p + length
                if q > reach or s[p:q] not in prefixes:
                    break
                terms = self._stems.get(s[p:q])
                if not terms:
                    continue
                last = bisect.bisect_right(sq_start, q - 1, lo=k, hi=m + 1) - 1
                for term in terms:
                    cand = _Candidate(term, reading, k, last, p, q)
                    if self._fits(cand) and not self._excepted(term, s[p : sq_end[last]]):
                        yield cand

    @staticmethod
    def _excepted(term: Term, word: str) -> bool:
        return any(word.startswith(e) if is_stem else word == e for e, is_stem in term.exceptions)

    @staticmethod
    def _fits(cand: _Candidate) -> bool:
        """Do the text's word boundaries inside the match agree with the term's own?"""
        term, r, p, q = cand.term, cand.reading, cand.p, cand.q
        inside = set()
        for j in range(cand.k + 1, cand.m + 1):
            b = r.sq_start[j] - p
            inside.add(b)
            gap = r.gaps[j]
            if b in term.breaks:
                # between two of the term's words: "border patrol", "I-247", not "border. Patrol"
                # a tight term's words take a bracket with a space ("287 (g)"), never a space alone
                tight = term.tight and "(" not in gap
                if len(gap) > _SPLIT_GAP or (_has_space(gap) and (tight or _STOPS & set(gap))):
                    return False
                continue
            if not gap:
                continue  # camel case or digits for letters: "DePortation", "1mm1gration"
            if len(gap) > _SPLIT_GAP:
                return False
            if _has_space(gap):
                left = r.sq_end[j - 1] - max(r.sq_start[j - 1], p)
                right = min(r.sq_end[j], q) - r.sq_start[j]
                word = term.word_at[b]
                # a stem's open last word takes no space: "in migraine" is not "inmigra*"
                open_word = term.stem and word == len(term.word_lengths) - 1
                pieces = (r.tokens[j - 1].text, r.tokens[j].text)
                if not (
                    (min(left, right) == 1 and not _FUNCTION_WORDS.intersection(pieces))
                    or (not open_word and term.word_lengths[word] >= 5)
                ):
                    return False
        for b in term.breaks - inside:
            # the term's words run together in the text: "BorderPatrol", "USC" for "U.S.C."
            left = term.word_lengths[term.word_at[b - 1]]
            right = term.word_lengths[term.word_at[b]]
            if not (
                (left >= 3 and right >= 3) or (left == 1 and right == 1 and len(term.key) >= 3)
            ):
                return False
        return True

    @staticmethod
    def _leet_worthy(cand: _Candidate) -> bool:
        """A match in the digits-as-letters reading counts only if it used a digit for a letter
        and kept at least one real letter ("5150" is not "siso")."""
        r = cand.reading
        idx = [r.norm_index(i) for i in range(cand.p, cand.q)]
        return any(r.leet[i] for i in idx) and any(
            not r.leet[i] and r.chars[i].isalpha() for i in idx
        )

    def _judge(self, cand: _Candidate, *, case_number: bool, leet: bool) -> Hit:
        r = cand.reading
        q = r.sq_end[cand.m] if cand.term.stem else cand.q  # a stem names its whole word
        first, last = r.norm_index(cand.p), r.norm_index(cand.q - 1)
        folded = r.folded
        start, end = folded.origin[first], folded.origin[r.norm_index(q - 1)] + 1
        original = folded.original
        while end < len(original) and _fold(original[end]) == "":
            end += 1  # keep the accents of the last letter
        tail = cand.term.display[len(cand.term.display.rstrip(".)]")) :]
        if tail and original[end : end + len(tail)] == tail:
            end += len(tail)  # "287(g)" with its bracket, "8 U.S.C." with its dot
        spelled = cand.m > cand.k and all(
            r.tokens[j].end - r.tokens[j].start == 1 for j in range(cand.k, cand.m + 1)
        )
        if spelled and "." in r.gaps[cand.k + 1] and end < len(original) and original[end] == ".":
            end += 1  # "I.C.E." with its last dot
        refused = True
        if cand.term.context is not None:
            refused = self._decide(
                cand, first, last, case_number=case_number, leet=leet, spelled=spelled
            )
        return Hit(cand.term, start, end, refused, original[start:end])

    def _decide(
        self,
        cand: _Candidate,
        first: int,
        last: int,
        *,
        case_number: bool,
        leet: bool,
        spelled: bool,
    ) -> bool:
        """Refuse an ambiguous term, or accept it as the ordinary word?

        Always refused when written to evade or as a code: in a case number, dotted or spaced
        letters, digits for letters, look-alike or accented letters, or joined to digits or
        underscores ("ICE2024", "case_ice_3"). Otherwise by its neighbours: a benign one
        ("black ice", "ice rink") accepts it, an agency one ("ICE agent", "per ice") refuses
        it; with both, capitals in mixed-case text decide. With neither, capitals refuse it
        where the group says case is a signal, and ``bare`` decides the rest.
        """
        ctx = cand.term.context
        assert ctx is not None  # noqa: S101 (only ambiguous terms come here)
        r, k, m = cand.reading, cand.k, cand.m
        folded = r.folded
        if case_number or leet or spelled or _disguised(cand.term, folded, first, last):
            return True
        tokens, gaps = r.tokens, r.gaps

        def joined(j: int, gap: str) -> bool:
            return 0 <= j < len(tokens) and (
                "_" in gap or (tokens[j].kind == "d" and gap in ("", "-", ".", "/", "#", ":"))
            )

        if joined(k - 1, gaps[k]) or (m + 1 < len(tokens) and joined(m + 1, gaps[m + 1])):
            return True
        before: list[str] = []
        j = k
        while j > 0 and len(before) < 3 and not (_STOPS & set(gaps[j])):
            j -= 1
            before.append(tokens[j].text)
        after: list[str] = []
        j = m
        while j + 1 < len(tokens) and len(after) < 3 and not (_STOPS & set(gaps[j + 1])):
            j += 1
            after.append(tokens[j].text)

        def follows(phrases: tuple[tuple[str, ...], ...], words: list[str], window: int) -> bool:
            return any(tuple(words[i : i + len(ph)]) == ph for ph in phrases for i in range(window))

        def precedes(phrases: tuple[tuple[str, ...], ...], window: int) -> bool:
            back = before[::-1]  # nearest last
            n = len(back)
            return any(
                tuple(back[n - len(ph) - i : n - i]) == ph
                for ph in phrases
                for i in range(window)
                if n - len(ph) - i >= 0
            )

        near = set(before) | set(after)
        benign = (
            precedes(ctx.benign_before, 1)
            or follows(ctx.benign_after, after, 1)
            or bool(near & ctx.benign_context)
        )
        agency = (
            precedes(ctx.agency_before, 1)
            or follows(ctx.agency_after, after, 2)
            or bool(near & ctx.agency_context)
        )
        letters = [i for i in range(first, last + 1) if r.chars[i].isalpha()]
        caps = (
            ctx.caps_signal
            and len(letters) >= 2
            and all(folded.upper[i] for i in letters)
            and any(folded.lower[i] for i in range(len(folded.chars)) if not first <= i <= last)
        )
        if agency and not benign:
            return True
        if benign:
            return agency and caps
        if caps:
            return True
        return ctx.bare == "refuse"


@lru_cache(maxsize=32)
def _build(
    purposes: frozenset[Purpose], extra_terms: tuple[str, ...], files: tuple[Path, ...]
) -> Screen:
    lexicons = [lx for lx in shipped_lexicons() if lx.purpose in purposes]
    lexicons.extend(lx for lx in (load_lexicon(f) for f in files) if lx.purpose in purposes)
    terms = [t for lx in lexicons for t in lx.terms]
    for extra in extra_terms:
        if extra.strip():
            try:
                terms.append(make_term(extra, "a term this deployment forbids"))
            except ValueError:
                raise ConfigError(
                    f"queries.forbidden_terms has {extra!r}, which has no letters or digits"
                ) from None
    return Screen(tuple(terms))
