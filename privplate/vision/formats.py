"""Plate formats: the shapes a deployment's plates take, as small regular expressions.

A state's or a country's plates follow a few formats (California's digit, three letters, three
digits: ``^[0-9][A-Z]{3}[0-9]{3}$``). A reading that matches a declared format is preferred
among the readings the OCR finds plausible; one that matches none is still reported (cars from
elsewhere drive through).

Patterns are a deliberately small language: a sequence of characters ``A-Z0-9``, classes
``[...]`` of them (ranges allowed, ``\\d`` for a digit) and bounded repeats ``{n}``, ``{m,n}``,
``?``. Without alternation, grouping or unbounded repeats a match costs at most a few
comparisons per character (no catastrophic backtracking), every pattern can be expanded into
fixed-length per-slot masks for a constrained decode, and no pattern can match anything but a
canonical plate. A pattern must match at least ``MIN_READINGS`` plates: one that matches fewer
is a list of plates, not a format, and plates do not belong in configuration.

Error messages name where a pattern is (a setting's index, a file's format name) and the
construct that is wrong, never the pattern's text: a mistyped pattern may be a plate.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import numpy as np

from privplate.errors import ConfigError
from privplate.vision.types import Candidate, SlotProbabilities

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PLATE_CHARS = frozenset(DIGITS + LETTERS)
#: Longest reading a pattern may describe (the OCR has 9 slots; no plate format is longer).
MAX_LENGTH = 10
#: Fewest plates a pattern must match to be a format rather than a plate list.
MIN_READINGS = 1_000
#: Most fixed-length shapes one pattern's optional parts may expand into.
MAX_SHAPES = 64
#: Log-probability added to a reading that matches a declared format: a little more than the
#: plausibility bound (log 5 for ReaderOptions.prior_ratio 0.2), so on the OCR's figures alone
#: a matching reading within the bound ranks first, while a clear character-prior difference
#: still counts. Larger weights overrule the prior too, and lowered accuracy on plates_endtoend
#: (README, "Plate formats").
DEFAULT_WEIGHT = 2.0

Shape = tuple[frozenset[str], ...]


@dataclass(frozen=True)
class Element:
    chars: frozenset[str]
    low: int
    high: int


@dataclass(frozen=True)
class PlateFormat:
    """One named format: its pattern parsed into elements, and where the format comes from."""

    name: str
    elements: tuple[Element, ...]
    source: str = ""
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(_regex(self.elements)))

    def matches(self, text: str) -> bool:
        return self.regex.fullmatch(text) is not None

    def shapes(self) -> list[Shape]:
        """Every fixed-length sequence of per-character classes the pattern allows."""
        ranges = [range(e.low, e.high + 1) for e in self.elements]
        return [
            tuple(c for e, n in zip(self.elements, counts, strict=True) for c in [e.chars] * n)
            for counts in product(*ranges)
        ]


def _class(chars: frozenset[str]) -> str:
    if chars == PLATE_CHARS:
        return "[0-9A-Z]"
    ordered = sorted(chars, key=lambda c: (c.isalpha(), c))
    runs: list[str] = []
    start = prev = ordered[0]
    for ch in [*ordered[1:], ""]:
        if ch and ord(ch) == ord(prev) + 1 and ch.isalpha() == prev.isalpha():
            prev = ch
            continue
        runs.append(start if start == prev else f"{start}-{prev}")
        start = prev = ch
    return runs[0] if len(runs) == 1 and len(runs[0]) == 1 else f"[{''.join(runs)}]"


def _regex(elements: tuple[Element, ...]) -> str:
    parts = []
    for e in elements:
        count = (
            ""
            if e.low == e.high == 1
            else f"{{{e.low}}}"
            if e.low == e.high
            else f"{{{e.low},{e.high}}}"
        )
        parts.append(_class(e.chars) + count)
    return "".join(parts)


_FORBIDDEN = {
    "(": "groups",
    ")": "groups",
    "|": "alternation (declare two patterns instead)",
    "*": "unbounded repeats (use {m,n})",
    "+": "unbounded repeats (use {m,n})",
    ".": "'.' (name the characters: [0-9A-Z])",
    "^": "'^' inside the pattern",
    "$": "'$' inside the pattern",
}


def _describe(ch: str) -> str:
    if ch in _FORBIDDEN:
        return _FORBIDDEN[ch]
    if ch.islower():
        return "lower-case letters (readings are upper-case A-Z and 0-9)"
    if ch in " -·.":
        return "separators (readings have none: write the characters only)"
    return f"the character {ch!r} (readings have only A-Z and 0-9)"


def parse_pattern(pattern: str, where: str) -> tuple[Element, ...]:
    """The elements of ``pattern``, anchored at both ends; a ConfigError naming ``where``."""

    def bad(problem: str) -> ConfigError:
        return ConfigError(
            f"{where} is not a plate format: it uses {problem}. A format is characters A-Z, "
            "0-9 and classes of them with bounded repeats, e.g. ^[0-9][A-Z]{3}[0-9]{3}$"
        )

    # Anchored whatever was written: a format describes a whole reading, never a part of one.
    text = pattern.strip().removeprefix("^").removesuffix("$")
    elements: list[Element] = []
    i = 0
    while i < len(text):
        chars, i = _parse_atom(text, i, bad)
        low, high, i = _parse_repeat(text, i, bad)
        elements.append(Element(chars, low, high))
    _check(tuple(elements), where)
    return tuple(elements)


def _parse_atom(text: str, i: int, bad: Callable[[str], ConfigError]) -> tuple[frozenset[str], int]:
    ch = text[i]
    if ch == "[":
        end = text.find("]", i + 1)
        if end < 0:
            raise bad("a '[' without its ']'")
        return _parse_class(text[i + 1 : end], bad), end + 1
    if ch == "\\":
        if text[i + 1 : i + 2] != "d":
            raise bad("an escape other than \\d")
        return frozenset(DIGITS), i + 2
    if ch in PLATE_CHARS:
        return frozenset(ch), i + 1
    if ch in "{?":
        raise bad("a repeat with nothing before it")
    raise bad(_describe(ch))


def _parse_repeat(text: str, i: int, bad: Callable[[str], ConfigError]) -> tuple[int, int, int]:
    low = high = 1
    if text[i : i + 1] == "?":
        low, i = 0, i + 1
    elif text[i : i + 1] == "{":
        end = text.find("}", i)
        match = re.fullmatch(r"(\d{1,2})(?:,(\d{1,2}))?", text[i + 1 : end]) if end > 0 else None
        if match is None:
            raise bad("a repeat other than {n} or {m,n}")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low or high == 0:
            raise bad("a repeat {m,n} with n below m, or zero")
        i = end + 1
    if text[i : i + 1] in ("*", "+"):
        raise bad(_FORBIDDEN["+"])
    if text[i : i + 1] in ("?", "{"):
        raise bad("two repeats in a row")
    return low, high, i


def _check(elements: tuple[Element, ...], where: str) -> None:
    if not elements:
        raise ConfigError(f"{where} is empty; give a pattern such as ^[0-9][A-Z]{{3}}[0-9]{{3}}$")
    if sum(e.low for e in elements) == 0:
        raise ConfigError(f"{where} matches an empty reading; make at least one part required")
    if sum(e.high for e in elements) > MAX_LENGTH:
        raise ConfigError(f"{where} allows readings longer than {MAX_LENGTH} characters")
    if math.prod(e.high - e.low + 1 for e in elements) > MAX_SHAPES:
        raise ConfigError(
            f"{where} has too many optional parts (more than {MAX_SHAPES} lengths); split it "
            "into a few patterns"
        )
    if math.prod(len(e.chars) ** e.high for e in elements) < MIN_READINGS:
        raise ConfigError(
            f"{where} matches fewer than {MIN_READINGS} plates: that is a list of plates, not "
            "a format, and plates do not belong in the configuration (use a hotlist)"
        )


def _parse_class(body: str, fail: Callable[[str], ConfigError]) -> frozenset[str]:
    if body.startswith("^"):
        raise fail("a negated class [^...] (name the characters allowed)")
    chars: set[str] = set()
    j = 0
    while j < len(body):
        if body[j : j + 2] == "\\d":
            chars.update(DIGITS)
            j += 2
            continue
        ch = body[j]
        if ch not in PLATE_CHARS:
            raise fail(_describe(ch))
        if body[j + 1 : j + 2] == "-" and j + 2 < len(body):
            last = body[j + 2]
            same_kind = last in PLATE_CHARS and last.isalpha() == ch.isalpha()
            if not same_kind or last < ch:
                raise fail("a range that is not within A-Z or 0-9")
            chars.update(chr(c) for c in range(ord(ch), ord(last) + 1))
            j += 3
            continue
        chars.add(ch)
        j += 1
    if not chars:
        raise fail("an empty class []")
    return frozenset(chars)


@dataclass(frozen=True)
class FormatSet:
    """The formats a deployment declared, and how strongly a match is preferred."""

    formats: tuple[PlateFormat, ...]
    weight: float = DEFAULT_WEIGHT
    #: Also look for the most probable reading of each format (a constrained decode), for
    #: when the beam's best readings hold none that matches.
    constrained: bool = True
    _masks: dict[tuple[str, int], list[np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def matches(self, text: str) -> bool:
        return any(f.matches(text) for f in self.formats)

    def score(self, text: str, log_probability: float) -> float:
        """The rescoring term: a bonus for a matching reading (the others' penalty)."""
        return log_probability + (self.weight if self.matches(text) else 0.0)

    def candidates(self, slots: SlotProbabilities) -> list[Candidate]:
        """The most probable reading of every format shape, assuming the OCR's padding comes
        after the characters (left-aligned readings, as fast-plate-ocr's models emit)."""
        if not self.constrained:
            return []
        logp = np.log(np.clip(slots.probs, 1e-12, 1.0))
        pad = slots.alphabet.index(slots.pad)
        best: dict[str, float] = {}
        for mask in self._shape_masks(slots.alphabet, logp.shape[0]):
            n = mask.shape[0]
            scores = np.where(mask, logp[:n], -np.inf)
            picks = scores.argmax(axis=1)
            total = float(scores[np.arange(n), picks].sum() + logp[n:, pad].sum())
            text = "".join(slots.alphabet[k] for k in picks)
            if total > best.get(text, -math.inf):
                best[text] = total
        return [Candidate(t, math.exp(s)) for t, s in best.items()]

    def _shape_masks(self, alphabet: str, slots: int) -> list[np.ndarray]:
        key = (alphabet, slots)
        if key not in self._masks:
            shapes = dict.fromkeys(s for f in self.formats for s in f.shapes())
            self._masks[key] = [
                np.array([[a in chars for a in alphabet] for chars in shape])
                for shape in shapes
                if len(shape) <= slots
            ]
        return self._masks[key]


def load_format_file(path: Path) -> list[PlateFormat]:
    """The formats of one ``models/formats`` file: a ``source`` and ``[[formats]]`` with a
    ``name`` and a ``pattern`` each."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        source = str(data["source"])
        entries = [(str(f["name"]), str(f["pattern"])) for f in data["formats"]]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"plate format file {path} is unreadable ({type(exc).__name__}); it needs a "
            "source and [[formats]] entries with a name and a pattern"
        ) from None
    if not source.strip() or not entries:
        raise ConfigError(f"plate format file {path} needs a source and at least one format")
    return [
        PlateFormat(name, parse_pattern(pattern, f"{path.name}: format {name!r}"), source)
        for name, pattern in entries
    ]


def inline_formats(patterns: list[str], setting: str = "edge.plate_patterns") -> list[PlateFormat]:
    """A deployment's own patterns, each named by its place in the setting."""
    return [
        PlateFormat(f"{setting}[{i}]", parse_pattern(p, f"{setting}[{i}]"), "deployment")
        for i, p in enumerate(patterns)
    ]
