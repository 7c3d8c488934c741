"""Purpose-screen benchmark: what the screen costs per search.

    python benchmarks/screening.py [--count 1000] [--rounds 5]

A search is screened twice (its case number and its justification). On ``--count`` realistic
searches (ordinary stolen-car, hit-and-run, missing-person reasons with places, vehicles and
case numbers; one in twenty an evasive or forbidden one), this times per search: the screen
with the full lexicon (both forbidden purposes, as under the illinois preset), the old regular
expression screen on the same texts, their ratio, and ``near_terms`` (what the spot-check draw
adds). Prints p50/p99 in microseconds; also how many searches each screen refused.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable

from privplate.errors import PurposeDenied
from privplate.policy.rules import PurposePolicy
from privplate.settings import load_settings

# The screen as it was before the lexicon (privplate/jurisdiction.py, PURPOSE_TERMS), kept here
# only to compare against.
OLD_TERMS = (
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
    r"\babortion\w*",
    r"\breproductive (?:health|care)\b",
    r"\bfamily planning clinic\w*",
)
OLD = re.compile("|".join(f"(?:{t})" for t in OLD_TERMS), re.IGNORECASE)

EVENTS = [
    "Vehicle reported stolen from {place} {when}.",
    "Hit and run at {place} {when}; {vehicle} fled {direction}.",
    "Missing person last seen near {place} {when}, possibly in a {vehicle}.",
    "Amber alert: child taken from {place} in a {vehicle}.",
    "Silver alert: elderly driver left {place} {when} in a {vehicle}.",
    "Armed robbery at {place}, suspects fled in a {vehicle} heading {direction}.",
    "Carjacking near {place} {when}; victim's {vehicle} taken.",
    "Burglary suspect seen loading a {vehicle} behind {place}.",
    "Black ice crash near {place} {when}; the other driver ({vehicle}) left the scene.",
    "Felony warrant: suspect known to drive a {vehicle}, seen near {place}.",
    "Stolen {vehicle} spotted by a patrol officer near {place} {when}.",
    "Shooting at {place}; witnesses describe a {vehicle} leaving {direction}.",
]
PLACES = [
    "the Elm Street lot",
    "Iceland Road",
    "Police Plaza",
    "Customs House Street",
    "the ice rink",
    "Ice House Road",
    "Eroica Lane",
    "the office park on Route 9",
    "the mall",
    "the high school",
    "the service station on Main Street",
    "Oak Avenue and 5th",
    "the county fairgrounds",
    "the Justice Center garage",
    "the hospital ER entrance",
    "the train station",
]
VEHICLES = [
    "silver sedan",
    "red pickup",
    "white cargo van",
    "black SUV",
    "blue hatchback",
    "green minivan",
    "grey motorcycle",
    "tan station wagon",
    "box truck",
    "ice cream truck",
]
WHEN = ["last night", "this morning", "on Sunday", "around 3 pm", "yesterday", "at dawn"]
DIRECTIONS = ["north", "south on I-205", "east", "west", "toward the interstate"]
FORBIDDEN = [
    "Assist I.C.E. with locating the registered owner.",
    "ERO request: locate the vehicle for a removal order.",
    "Owner has an I-247A detainer, find the car.",
    "1mm1gration check on the owner of the car.",
    "Patient travelled for an abortion; find the car.",
    "Immigration and Customs Enforcement asked for the location.",
    "la migra busca este carro.",
    "per ice, locate the registered owner.",
]
CASE_PREFIXES = ["SPD", "CR", "HR", "INC", "PD", "SO", "CASE"]


def searches(count: int, rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for _ in range(count):
        if rng.random() < 0.05:
            text = rng.choice(FORBIDDEN)
        else:
            text = rng.choice(EVENTS).format(
                place=rng.choice(PLACES),
                vehicle=rng.choice(VEHICLES),
                when=rng.choice(WHEN),
                direction=rng.choice(DIRECTIONS),
            )
        case = f"{rng.choice(CASE_PREFIXES)}-{rng.randint(2020, 2026)}-{rng.randint(1, 99999):05d}"
        out.append((case, text))
    return out


def old_screen(case: str, text: str) -> bool:
    return OLD.search(case) is not None or OLD.search(text) is not None


def new_screen(policy: PurposePolicy) -> Callable[[str, str], bool]:
    def screen(case: str, text: str) -> bool:
        try:
            policy.check_case_number(case)
            policy.check_justification(text)
        except PurposeDenied:
            return True
        return False

    return screen


def timed(
    fn: Callable[[str, str], object], items: list[tuple[str, str]], rounds: int
) -> list[float]:
    samples = []
    for _ in range(rounds):
        for case, text in items:
            t0 = time.perf_counter_ns()
            fn(case, text)
            samples.append((time.perf_counter_ns() - t0) / 1000)
    return samples


def pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(17)
    items = searches(args.count, rng)
    with tempfile.TemporaryDirectory() as home:
        t0 = time.perf_counter()
        policy = PurposePolicy.from_settings(load_settings(home, retention={"preset": "illinois"}))
        built = (time.perf_counter() - t0) * 1000
    terms = len(policy.terms.terms)
    new = new_screen(policy)
    for case, text in items[:50]:  # warm the caches both ways
        new(case, text)
        old_screen(case, text)
    forbidden = sum(t in FORBIDDEN for _, t in items)
    refused_new = sum(new(c, t) for c, t in items)
    refused_old = sum(old_screen(c, t) for c, t in items)
    new_t = timed(new, items, args.rounds)
    old_t = timed(old_screen, items, args.rounds)
    near_t = timed(policy.near_terms, items, args.rounds)
    print(
        f"{args.count} searches x {args.rounds} rounds; lexicon of {terms} terms, built in "
        f"{built:.0f} ms (policy, settings and lexicon files)"
    )
    print(f"{forbidden} of them forbidden; the rest ordinary (some say ice rink or Iceland Road)")
    print(f"{'screen':<28}{'p50 us':>10}{'p99 us':>10}{'refused':>10}")
    print(f"{'new (lexicon)':<28}{pct(new_t, 50):>10.1f}{pct(new_t, 99):>10.1f}{refused_new:>10}")
    print(
        f"{'old (regular expressions)':<28}{pct(old_t, 50):>10.1f}{pct(old_t, 99):>10.1f}"
        f"{refused_old:>10}"
    )
    print(f"{'near_terms (spot checks)':<28}{pct(near_t, 50):>10.1f}{pct(near_t, 99):>10.1f}")
    print(
        f"ratio new/old: p50 {pct(new_t, 50) / pct(old_t, 50):.1f}x, "
        f"p99 {pct(new_t, 99) / pct(old_t, 99):.1f}x"
    )


if __name__ == "__main__":
    main()
