"""Plate formats: parsing and refusing patterns, the shipped files, ranking readings with them,
and accuracy on the shared photos with and without them."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

from privplate.errors import ConfigError  # noqa: E402
from privplate.settings import EdgeSettings  # noqa: E402
from privplate.vision.factory import (  # noqa: E402
    format_names,
    load_format_prior,
    load_plate_formats,
    reader_options,
)
from privplate.vision.formats import MIN_READINGS, FormatSet  # noqa: E402
from privplate.vision.models import registry_dir  # noqa: E402
from privplate.vision.reader import PlateReader, ReaderOptions  # noqa: E402
from privplate.vision.types import Box, Detection, SlotProbabilities  # noqa: E402
from tests.edge_helpers import ENDTOEND, needs_models  # noqa: E402

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
DET = Detection(Box(0, 0, 100, 40), 0.9)


def table(*slots: dict[str, float], width: int = 9) -> SlotProbabilities:
    """A 9-slot OCR output: the given slots, then padding."""
    probs = np.zeros((width, len(ALPHABET)), dtype=np.float32)
    for row in range(width):
        slot = slots[row] if row < len(slots) else {"_": 1.0}
        for ch, p in slot.items():
            probs[row, ALPHABET.index(ch)] = p
        rest = 1.0 - sum(slot.values())
        probs[row, ALPHABET.index("_")] += max(rest, 0.0)
    return SlotProbabilities(probs, ALPHABET, "_")


def sure(text: str) -> list[dict[str, float]]:
    return [{ch: 1.0} for ch in text]


def decode(slots: SlotProbabilities, formats: FormatSet | None) -> tuple[str, list[str]]:
    reader = PlateReader(None, None, ReaderOptions(formats=formats))  # type: ignore[arg-type]
    reading = reader.decode(DET, slots)
    assert reading is not None
    return reading.best.text, [a.text for a in reading.alternates]


CA = load_plate_formats(["us-ca"])


def test_a_format_picks_the_matching_reading_within_the_bound() -> None:
    # The OCR slightly prefers I to 1 in the first slot: "IABC234" matches no California
    # format, "1ABC234" matches the standard one and is almost as probable.
    slots = table({"I": 0.55, "1": 0.45}, *sure("ABC"), {"2": 0.6, "Z": 0.4}, *sure("34"))
    assert decode(slots, None)[0] == "IABC234"
    best, alternates = decode(slots, CA)
    assert best == "1ABC234"
    assert alternates == ["IABC234", "IABCZ34", "1ABCZ34"]  # none matches: most probable first


def test_a_format_never_brings_in_an_implausible_reading() -> None:
    slots = table({"I": 0.9, "1": 0.1}, *sure("ABC"), {"2": 0.85, "Z": 0.15}, *sure("34"))
    strong = replace(CA, weight=50.0) if CA is not None else None
    best, alternates = decode(slots, strong)
    assert best == "IABC234"  # 1ABC234 is 9 times less probable: outside the 0.2 bound
    # It is still an alternate (within 0.05), and listed before a more probable alternate
    # that matches no format.
    assert decode(slots, None)[1] == ["IABCZ34", "1ABC234"]
    assert alternates == ["1ABC234", "IABCZ34"]


def test_the_constrained_decode_finds_a_matching_reading_the_beam_dropped() -> None:
    # Three letters each beat the digit in the first slot, so the beam (3 symbols per slot)
    # never holds a reading that starts with a digit; the digit is still within the bound.
    slots = table({"I": 0.28, "L": 0.26, "T": 0.26, "1": 0.2}, *sure("ABC234"))
    assert CA is not None
    assert decode(slots, replace(CA, constrained=False))[0] == "IABC234"
    assert decode(slots, CA)[0] == "1ABC234"


def test_a_plate_that_matches_no_format_is_still_read() -> None:
    every_us = load_plate_formats(["us-*"])
    assert every_us is not None and not every_us.matches("HELLO")
    assert decode(table(*sure("HELLO")), every_us) == ("HELLO", [])
    # and unsure slots do not turn it into a format's reading by themselves
    slots = table(*sure("HELL"), {"O": 0.7, "0": 0.3})
    assert decode(slots, every_us)[0] == "HELLO"


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("ABC-1234", "separators"),
        ("^ABC1234$", "list of plates"),
        ("ABC12[0-9]{2}", "list of plates"),
        ("(A|B){7}", "groups"),
        ("[A-Z]|[0-9]", "alternation"),
        ("(a+)+$", "groups"),
        ("[A-Z]+[0-9]*", "unbounded"),
        ("[a-z]{3}[0-9]{4}", "lower-case"),
        ("[^I]{7}", "negated"),
        (".{7}", "'.'"),
        ("[A-Z]{3}[0-9]{9}", "longer than"),
        ("[A-Z]{1,2}[0-9]{0,2}[A-Z]{0,2}[0-9]{0,2}[A-Z]{0,2}", "too many optional parts"),
        ("[A-Z{3}", "without its ']'"),
        ("[Z-A]{5}", "range"),
        ("\\w{6}", "escape"),
        ("[A-Z]{3}é", "character"),
        ("", "empty"),
    ],
)
def test_a_bad_pattern_is_refused_by_its_place_never_its_text(pattern: str, problem: str) -> None:
    good = "^[0-9][A-Z]{3}[0-9]{3}$"
    with pytest.raises(ConfigError) as info:
        reader_options(EdgeSettings(plate_patterns=[good, pattern]))
    message = str(info.value)
    assert "edge.plate_patterns[1]" in message
    assert problem in message
    # The pattern may be a mistyped plate: neither it nor its characters run appear.
    assert pattern not in message or not pattern
    assert "ABC" not in message and "1234" not in message


def test_patterns_are_anchored_and_declared_with_files() -> None:
    options = reader_options(
        EdgeSettings(plate_formats=["us-ca", "us-nv"], plate_patterns=["[0-9]{2}[A-Z]{4}"])
    )
    formats = options.formats
    assert formats is not None
    assert formats.matches("12ABCD") and not formats.matches("12ABCDE")
    assert not formats.matches("X12ABCD")
    assert reader_options(EdgeSettings()).formats is None
    with pytest.raises(ConfigError, match="names no file in models/formats"):
        load_plate_formats(["us-zz"])


def test_every_shipped_file_loads_and_cites_a_source() -> None:
    names = format_names()
    assert {"us-ca", "us-ny", "eu-fr", "eu-it"} <= set(names)
    for name in names:
        path = registry_dir() / "formats" / f"{name}.toml"
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        assert "Vehicle registration plates of" in data["source"], name
        assert "https://" in data["source"], name
        assert set(data) == {"title", "source", "formats"}, name
        loaded = load_plate_formats([name])
        assert loaded is not None and len(loaded.formats) == len(data["formats"])
        assert all(f.source == data["source"] for f in loaded.formats)
    every = load_plate_formats(["us-*", "eu-*"])
    assert every is not None
    assert {f.source for f in every.formats} == {
        tomllib.loads((registry_dir() / "formats" / f"{n}.toml").read_text())["source"]
        for n in names
    }
    assert MIN_READINGS >= 1_000  # what keeps plates out of these files


@needs_models
def test_formats_do_not_lower_exact_accuracy_on_the_photos() -> None:
    """Every third photo of plates_endtoend (us and eu), read once per configuration: the
    region's formats ("us-*" or "eu-*") never lower the exact count, per region."""
    from privplate.edge.evaluation import Variant, evaluate
    from privplate.edge.labels import load_labels
    from privplate.vision.factory import load_reader
    from tests.edge_helpers import MODELS_DIR

    items = load_labels(ENDTOEND / "labels.csv", Path(ENDTOEND))[::3]
    base = load_reader(models_dir=MODELS_DIR)
    prior = {"us": load_format_prior("us")}

    def variant(name: str, with_formats: bool) -> Variant:
        readers: dict[str, PlateReader] = {}

        def reader_for(region: str) -> PlateReader:
            if region not in readers:
                formats = load_plate_formats([f"{region}-*"]) if with_formats else None
                options = replace(base.options, prior=prior.get(region), formats=formats)
                readers[region] = PlateReader(base.detector, base.recognizer, options)
            return readers[region]

        return Variant(name, reader_for, 0.05)

    (without, with_), _ = evaluate(
        items, base.detector.detect, [variant("none", False), variant("formats", True)]
    )
    assert without.total.images == len(items) > 100
    assert set(without.regions) == {"us", "eu"}
    for region, tally in without.regions.items():
        assert with_.regions[region].exact >= tally.exact, region
    assert with_.total.exact >= without.total.exact >= 0.8 * len(items)
