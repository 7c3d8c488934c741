"""The purpose screen survives evasion (dotted and spaced letters, look-alike letters, digits
for letters, full agency names, form numbers, programme names, Spanish) and lets ordinary
words through ("black ice", "police", "Iceland Road"); a refusal quotes the original span.
The lexicon files parse and cite their sources. Refusals reach every surface that screens:
hotlist reasons, unseal and hold justifications."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privplate.errors import ConfigError, PurposeDenied
from privplate.identity.roles import Role
from privplate.jurisdiction import Purpose
from privplate.policy.rules import PurposePolicy
from privplate.policy.screening import Screen, load_lexicon, shipped_lexicons
from privplate.settings import load_settings
from tests import factories
from tests.api_support import CAMERA, Api, now

BOTH = (Purpose.IMMIGRATION_ENFORCEMENT, Purpose.REPRODUCTIVE_HEALTH_CARE_INVESTIGATION)


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> PurposePolicy:
    """The Illinois preset forbids both purposes that have a lexicon."""
    home = tmp_path_factory.mktemp("screen")
    return PurposePolicy.from_settings(load_settings(home, retention={"preset": "illinois"}))


def refused_span(policy: PurposePolicy, text: str, field: str = "justification") -> str:
    with pytest.raises(PurposeDenied) as caught:
        policy.screen(field, text)
    message = str(caught.value)
    assert message.startswith(f"the {field} mentions ")
    assert "which indicates a forbidden purpose" in message
    span = message.split(" mentions ", 1)[1].split(", which indicates", 1)[0]
    assert span[0] == span[-1] == "'" or span.startswith('"')
    return str(eval(span))  # noqa: S307 (the repr the message quotes, from our own code)


# -- evasive phrasings, refused, naming what the text said -------------------------------------

#: (text, the span of it the refusal must quote). Written from the lexicons' sources: agency
#: names and parts (About ICE, About CBP, USCIS), the detainer and warrant forms, 287(g),
#: Secure Communities, Title 8, the misuse reports' reasons, Spanish names, and for
#: reproductive care the Illinois act, the FDA's mifepristone page and Planned Parenthood.
EVASIONS: list[tuple[str, str]] = [
    # ICE written to dodge a whole-word, upper-case regex
    ("Assist I.C.E. with locating the driver today.", "I.C.E."),
    ("Assist I C E with locating the driver today.", "I C E"),
    ("Request from I-C-E field office for the location.", "I-C-E"),
    ("Case for I_C_E, locate the vehicle quickly.", "I_C_E"),
    ("Assist \u0406\u0421\u0415 with locating the driver.", "\u0406\u0421\u0415"),  # Cyrillic
    ("\u0399.C.\u0395. request for the vehicle location.", "\u0399.C.\u0395."),  # Greek
    ("1CE agents need the location of this car.", "1CE"),
    ("ICE agents need the location of this car.", "ICE"),
    ("ice warrant for the registered owner of the car.", "ice"),
    ("per ice, locate the registered owner by Friday.", "ice"),
    ("Federal ice hold on the driver, find the vehicle.", "ice"),
    ("\u00cdC\u00c9 requested the location of this car.", "\u00cdC\u00c9"),  # accents
    ("\uff29\uff23\uff25 requested the location of this car.", "\uff29\uff23\uff25"),  # fullwidth
    ("I\u200bCE asked for the vehicle's location.", "I\u200bCE"),  # zero-width space
    ("ICEhold on the owner, find the car.", "ICE"),
    ("I.C.E. E.R.O. wants the car located.", "I.C.E."),
    # other acronyms and sub-units
    ("Locate for ERO Chicago field office.", "ERO"),
    ("E.R.O. request, locate the vehicle now.", "E.R.O."),
    ("HSI joint task force lead on this vehicle.", "HSI"),
    ("H.S.I. case lead on this vehicle.", "H.S.I."),
    ("CBP lookout on this car at the port.", "CBP"),
    ("USCIS referral about the registered owner.", "USCIS"),
    ("USBP agents asked us to find the car.", "USBP"),
    ("DHS detainer on the driver, find the vehicle.", "DHS"),
    # full names and their parts
    (
        "Immigration and Customs Enforcement request for a location.",
        "Immigration and Customs Enforcement",
    ),
    (
        "Enforcement and Removal Operations asked for the history.",
        "Enforcement and Removal Operations",
    ),
    (
        "Homeland Security Investigations is looking for the owner.",
        "Homeland Security Investigations",
    ),
    ("Customs and Border Protection wants the car's location.", "Customs and Border Protection"),
    ("Border Patrol requested the vehicle history.", "Border Patrol"),
    ("BorderPatrol requested the vehicle history.", "BorderPatrol"),
    # forms and programmes
    ("Driver is the subject of an I-247A detainer.", "I-247A"),
    ("I247A on file for the registered owner.", "I247A"),
    ("Owner has an I-200 administrative warrant out.", "I-200"),
    ("Form I-205 warrant of removal for the owner.", "I-205"),
    ("Served I-862 to the owner, locate the vehicle.", "I-862"),
    ("I-213 narrative mentions this vehicle twice.", "I-213"),
    ("287(g) task force request for the car.", "287(g)"),
    ("Secure Communities match on the owner of this car.", "Secure Communities"),
    ("Operation Streamline referral, vehicle needed.", "Operation Streamline"),
    ("Criminal Alien Program referral for the driver.", "Criminal Alien Program"),
    ("8 U.S.C. 1326 reentry case, find the car.", "8 U.S.C."),
    # legal and status terms
    ("Owner is in removal proceedings, find the car.", "removal proceedings"),
    ("Subject has a final order of removal on file.", "final order of removal"),
    ("Expedited removal case, locate the vehicle.", "Expedited removal"),
    ("Driver is a visa overstay, locate the car.", "visa overstay"),
    ("Owner is an illegal alien, find where he parks.", "illegal alien"),
    ("Undocumented driver, find where he works.", "Undocumented"),
    ("Driver has no papers, pick him up at work.", "no papers"),
    ("Subject may be deportable; locate the vehicle quickly.", "deportable"),
    ("Illegal re-entry suspect, find the car.", "Illegal re-entry"),
    ("immigration hold for the owner of the car.", "immigration hold"),
    # spelled to dodge a word list
    ("1mm1gration check on the owner of the car.", "1mm1gration"),
    ("imm.igration check on the owner of the car.", "imm.igration"),
    ("\u0406mmigration check on the owner of the car.", "\u0406mmigration"),
    ("d3portation pending for the owner of the car.", "d3portation"),
    ("Deport ation hearing, locate the owner.", "Deport ation"),
    # Spanish
    ("la migra busca este carro desde ayer.", "la migra"),
    ("Orden de deportación contra el dueño del carro.", "Orden de deportación"),
    ("Servicio de Inmigración solicita la ubicación.", "Inmigración"),
    ("El dueño del carro es indocumentado.", "indocumentado"),
    ("Patrulla Fronteriza pide el vehículo.", "Patrulla Fronteriza"),
    ("Revisar el estatus migratorio del dueño.", "estatus migratorio"),
    # reproductive health care
    ("Patient travelled for an abortion; find the car.", "abortion"),
    ("ab0rt1on clinic visitor, find the car.", "ab0rt1on"),
    ("Bought mifepristone out of state, find the car.", "mifepristone"),
    ("Misoprostol shipment to this address.", "Misoprostol"),
    ("RU-486 pills seen in the vehicle.", "RU-486"),
    ("Car seen at Planned Parenthood twice this month.", "Planned Parenthood"),
    ("Reproductive health clinic visit out of state.", "Reproductive health"),
    ("Termination of pregnancy out of state, locate.", "Termination of pregnancy"),
    ("Buscamos a la paciente del aborto en otro estado.", "aborto"),
    ("Interrupción del embarazo en otro estado.", "Interrupción del embarazo"),
    ("Pastillas abortivas en el carro de la paciente.", "abortivas"),
    ("A.B.O.R.T.I.O.N. travel out of state, locate.", "A.B.O.R.T.I.O.N."),
    ("\u0430b\u043ertion clinic visit, find the car.", "\u0430b\u043ertion"),  # Cyrillic a, o
    ("Family planning clinic visit, find the car.", "Family planning clinic"),
    # found by a reviewer playing the officer who wants the search unnoticed
    ("Assist \u026a\u1d04\u1d07 with locating the car.", "\u026a\u1d04\u1d07"),  # small caps
    ("Assist \U0001f158\U0001f152\U0001f154 with the car.", "\U0001f158\U0001f152\U0001f154"),
    ("Assist \U0001f1ee\U0001f1e8\U0001f1ea with the car.", "\U0001f1ee\U0001f1e8\U0001f1ea"),
    ("Assist \u202eECI\u202c with locating the car.", "\u202eECI\u202c"),  # shown as "ICE"
    ("Assist !CE with locating the car.", "!CE"),
    ("Assist |CE with locating the car.", "|CE"),
    ("1mm!gration check on the owner of the car.", "1mm!gration"),
    ("HSl request on the owner of the car.", "HSl"),
    ("C8P lookout on this car at the port.", "C8P"),
    ("ICEERO wants the car located.", "ICEERO"),
    ("ICE\u200bERO wants the car located.", "ICE\u200bERO"),
    ("Owner was deported last year, find the car.", "deported"),
    ("Deportees living at the address, find the car.", "Deportees"),
    ("Customs Enforcement request for the car.", "Customs Enforcement"),
    ("Border Protection asked for the vehicle history.", "Border Protection"),
    ("Dept. of Homeland Security/ERO request.", "Homeland Security"),
    ("Dept of Homeland Security removal case, find the car.", "Dept of Homeland Security"),
    ("Form 247A on file for the registered owner.", "Form 247A"),
    ("287 (g) task force request for the car.", "287 (g)"),
    ("Known wetback, find where he parks.", "wetback"),
    ("Vehicle removal order for the owner's deportation.", "deportation"),
    ("Owner has a removal order, locate the car.", "removal order"),
    ("Locate for ERO St. Louis field office.", "ERO"),
    ("Migración busca al dueño del carro.", "Migración"),
    ("She aborted her pregnancy out of state, find the car.", "aborted her pregnancy"),
    ("Quería abortar en otro estado, buscar el carro.", "abortar"),
]


@pytest.mark.parametrize(("text", "span"), EVASIONS)
def test_an_evasive_phrasing_is_refused_naming_what_it_said(
    policy: PurposePolicy, text: str, span: str
) -> None:
    assert refused_span(policy, text) == span


def test_there_are_enough_evasions_of_each_purpose() -> None:
    assert len(EVASIONS) >= 60
    screen = Screen.build([Purpose.REPRODUCTIVE_HEALTH_CARE_INVESTIGATION])
    reproductive = [t for t, _ in EVASIONS if screen.refusal(t) is not None]
    assert len(reproductive) >= 12
    assert len(EVASIONS) - len(reproductive) >= 48


CASE_NUMBERS: list[tuple[str, str]] = [
    ("ICE-2024-113", "ICE"),
    ("ICE2024-17", "ICE"),
    ("ERO_77", "ERO"),
    ("I247A-55", "I247A"),
    ("HSI.22", "HSI"),
    ("case_ice_3", "ice"),
    ("ice-7", "ice"),
    ("CBP/2026/4", "CBP"),
]


@pytest.mark.parametrize(("case_number", "span"), CASE_NUMBERS)
def test_a_case_number_run_together_with_a_term_is_refused(
    policy: PurposePolicy, case_number: str, span: str
) -> None:
    with pytest.raises(PurposeDenied, match=f"mentions '{span}'"):
        policy.check_case_number(case_number)


def test_the_refusal_quotes_only_the_span(policy: PurposePolicy) -> None:
    with pytest.raises(PurposeDenied) as caught:
        policy.check_justification("Vehicle 7ABC123 wanted by I.C.E. for a removal case.")
    message = str(caught.value)
    assert "'I.C.E.'" in message and "immigration enforcement" in message
    assert "7ABC123" not in message and "removal case" not in message


# -- ordinary justifications, accepted ---------------------------------------------------------

ORDINARY: list[str] = [
    "Vehicle reported stolen from the Elm Street lot last night.",
    "Hit and run on Main Street, silver sedan fled north.",
    "Black ice on Route 9 caused a crash; the other driver fled.",
    "Vehicle slid on ice and struck a pole, driver left the scene.",
    "Stolen ice cream truck taken from the depot on Oak Avenue.",
    "Hit and run outside the ice rink on Lake Street.",
    "Dry ice delivery truck stolen from the warehouse.",
    "Ice storm damage; stolen generator seen in a pickup.",
    "Shaved ice vendor's van stolen overnight.",
    "Ice machine stolen from the motel, van seen leaving.",
    "Ice skating coach reported missing, car not seen since.",
    "Ice on the bridge caused a crash; the other car left.",
    "Victim of a hit and run was carrying a bag of ice.",
    "Theft from the ice plant loading dock, truck seen.",
    "Car stolen while the owner was inside the ice arena.",
    "Icy road crash, the second driver left without stopping.",
    "Iced-over windshield, driver struck a cyclist and fled.",
    "Police office report: vehicle stolen, owner statement taken.",
    "Service station robbery, suspect vehicle a grey hatchback.",
    "Office of the Sheriff requests help with a missing person.",
    "Police service dog handler's car broken into.",
    "Missing person last seen near Iceland Road.",
    "Hit and run on Eroica Lane near the school.",
    "Stolen car recovered at the Police Plaza garage.",
    "Burglary on Customs House Street, getaway car seen.",
    "Car stolen from the Customs Brokerage parking lot.",
    "Ice House Road shooting, suspect vehicle fled west.",
    "Justice center parking lot car theft overnight.",
    "Practice field break-in, suspect car a blue coupe.",
    "Missing elderly woman Beatrice Moore, silver alert.",
    "Hero Avenue armed robbery, getaway vehicle.",
    "Stolen car found in the Eros Street garage.",
    "Amber alert: child taken by a non-custodial parent.",
    "Silver alert: man with dementia drove off from home.",
    "Carjacking at gunpoint near the mall, victim unhurt.",
    "Armed robbery of a pharmacy, suspect fled in a sedan.",
    "Felony assault suspect seen driving a red truck.",
    "Wanted person on a felony warrant for aggravated assault.",
    "Stolen vehicle, owner reported keys taken from a gym locker.",
    "Hit-and-run with injuries at the bridge crossing.",
    "Vehicle on I-205 northbound involved in a hit and run.",
    "Stolen truck sold with no papers at the swap meet.",
    "DHS caseworker reports a missing child, last seen in a car.",
    "Driver had no INS and fled the traffic stop.",
    "Driver was issued a notice to appear for reckless driving.",
    "Robo de auto en el estacionamiento del centro deportivo.",
    "Vehicle stolen from the Deportivo sports centre lot.",
    "Search for a stolen car near the Deportes Martinez store.",
    "Pursuit was aborted near the highway; the vehicle is stolen.",
    "Seized 287 g of methamphetamine from the car.",
    "Missing teenager, may be with her boyfriend in a white van.",
    "Domestic violence suspect fled in a black SUV.",
    "Homicide suspect vehicle seen leaving the scene.",
    "Catalytic converter theft ring, van seen at several lots.",
    "Stolen motorcycle spotted near the harbour.",
    "Missing hiker's car not at the trailhead since Sunday.",
    "Stolen rental car, the contract expired two weeks ago.",
    "Hit and run on Border Road near the county line.",
    "Road rage shooting on the interstate, suspect in a sedan.",
    "Arson suspect vehicle seen near the warehouse fire.",
    "Bank robbery getaway car, two suspects inside.",
    "Runaway juvenile seen in a friend's car near the mall.",
    "Check fraud suspect drives a green minivan.",
    "Stolen trailer with landscaping equipment.",
    "Drunk driver fled a crash on Pine Street.",
    "Wrong-way driver caused a collision and fled.",
    "Migraine clinic parking lot theft, suspect in a sedan.",
    "Vehicle stolen outside the Office Depot on 5th Street.",
    "Abortive attempt to steal a car from the dealer lot.",
    "Family reunion car break-in at the park.",
    "Stolen car seen on Planned Drive near the depot.",
    "Suspect in the Avenida de Portales shooting drives a van.",
    "Stolen van seen near the bird migration trail.",
    "Stolen car seen on Ero Street near the school.",
    "Hit and run on Ero St, the driver fled north.",
    "La migración de las aves cerca del lago; robo de auto.",
    "Vehicle removal order for an abandoned car on Main St.",
    "Tow truck removal of the abandoned vehicle.",
    "The suspect was removed from the vehicle by officers.",
    "Removal of the license plate from the stolen car.",
    "Alien Ware laptop stolen from the car.",
    "Burglary at Customs House Square, getaway car seen.",
    "Hit and run on Iceberg Lane.",
    "Ice Cube was a witness to the carjacking.",
    "Search for a stolen car near the Deportes Martinez auto shop.",
    "Robo en la tienda de deportes, el carro huyó.",
    "Parking enforcement and removal of abandoned vehicles on Oak St.",
    "Stolen car parked at 247A Elm Street.",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_an_ordinary_justification_is_accepted(policy: PurposePolicy, text: str) -> None:
    policy.check_justification(text)


def test_there_are_enough_ordinary_justifications() -> None:
    assert len(ORDINARY) >= 60


@pytest.mark.parametrize(
    "word",
    [
        "police",
        "office",
        "service",
        "Iceland",
        "justice",
        "practice",
        "Beatrice",
        "Eroica",
        "hero",
        "notice",
        "slice",
        "hospice",
        "precedent",
        "Heroes",
    ],
)
def test_a_word_that_contains_a_term_never_matches(policy: PurposePolicy, word: str) -> None:
    for text in (word, word.upper(), f"Car stolen near the {word} building."):
        policy.screen("justification", text)


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("ice rink", False),
        ("ice warrant", True),
        ("black ice", False),
        ("ice cream truck", False),
        ("the ice was everywhere", False),  # bare lower-case: accepted, reported near
        ("Assist ICE today", True),  # capitals in mixed-case text
        ("BLACK ICE ON THE ROAD", False),  # all capitals: context decides
        ("ASSIST ICE WITH LOCATE", True),
        ("for ice", True),
        ("from ice", True),
        ("ice agent", True),
        ("slid on ice", False),
        ("ICE cream", False),  # benign beats capitals when no agency word is near
    ],
)
def test_ice_is_told_from_ice_by_context(policy: PurposePolicy, text: str, refused: bool) -> None:
    if refused:
        refused_span(policy, text)
    else:
        policy.screen("reason", text)


# -- near a term -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "near"),
    [
        (("Hit and run outside the ice rink.",), ("ICE",)),
        (("The ice was everywhere, two cars in the ditch.",), ("ICE",)),
        (("Check the imigration records of the owner.",), ("immigration",)),
        (("Bought mifepristine online, car seen.",), ("mifepristone",)),
        (("DHS caseworker, missing child.", "I-205 northbound crash"), ("DHS", "I-205")),
        (("Vehicle reported stolen from Elm Street.", "SPD-2026-0042"), ()),
        (("Pursuit aborted near the highway.",), ()),
    ],
)
def test_near_terms_are_reported_without_refusing(
    policy: PurposePolicy, texts: tuple[str, ...], near: tuple[str, ...]
) -> None:
    for text in texts:
        policy.screen("justification", text)
    assert policy.near_terms(*texts) == near


def test_near_terms_never_echo_the_text(policy: PurposePolicy) -> None:
    found = policy.near_terms("7ABC123 seen at the ice rink, imigration office")
    assert found == ("ICE", "immigration")


# -- the property: insertions and look-alikes do not get a term through -------------------------

LOOK_ALIKES = {
    "a": "\u0430",
    "c": "\u0441",
    "e": "\u0435",
    "i": "\u0456",
    "o": "\u043e",
    "p": "\u0440",
    "x": "\u0445",
    "y": "\u0443",
    "s": "\u0455",
    "A": "\u0391",
    "B": "\u0392",
    "C": "\u0421",
    "E": "\u0395",
    "H": "\u0397",
    "I": "\u0399",
    "O": "\u039f",
    "P": "\u03a1",
    "S": "\u0405",
    "T": "\u0422",
    "M": "\u041c",
    "K": "\u041a",
}
PROPERTY_TERMS = [
    "ICE",
    "ERO",
    "HSI",
    "CBP",
    "USCIS",
    "immigration",
    "deportation",
    "undocumented",
    "abortion",
    "mifepristone",
    "misoprostol",
    "Secure Communities",
    "Border Patrol",
]


@st.composite
def disguised(draw: st.DrawFn) -> tuple[str, str]:
    term = draw(st.sampled_from(PROPERTY_TERMS))
    out = []
    for n, letter in enumerate(term):
        out.append(LOOK_ALIKES.get(letter, letter) if draw(st.booleans()) else letter)
        if n + 1 < len(term) and letter != " " and term[n + 1] != " ":
            out.append(draw(st.sampled_from(["", "", ".", " ", "-", "_", ". ", "\u200b"])))
    return term, "".join(out)


@settings(max_examples=300, deadline=None)
@given(disguised())
def test_inserted_separators_and_look_alikes_are_still_refused(
    policy: PurposePolicy, case: tuple[str, str]
) -> None:
    _, text = case
    with pytest.raises(PurposeDenied) as caught:
        policy.screen("justification", f"Locate the owner for {text} today.")
    assert repr(text) in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=30),
            st.sampled_from(["ICE", "I.C.E.", "\u202e", "\u202c", "|", "!", "l", "8", "deport"]),
        ),
        max_size=10,
    ).map("".join)
)
def test_any_text_is_refused_or_accepted_and_a_refusal_quotes_only_text_it_had(
    policy: PurposePolicy, text: str
) -> None:
    for field in ("justification", "case number"):
        try:
            policy.screen(field, text)
        except PurposeDenied as exc:
            span = str(exc).split(" mentions ", 1)[1].split(", which indicates", 1)[0]
            assert eval(span) in text  # noqa: S307 (the repr the message quotes)
    policy.near_terms(text, text)


# -- the lexicon as data -----------------------------------------------------------------------


def test_the_lexicons_parse_and_every_group_cites_a_source() -> None:
    lexicons = shipped_lexicons()
    assert {lx.purpose for lx in lexicons} == set(BOTH)
    for lexicon in lexicons:
        assert lexicon.groups and lexicon.terms
        for name, citations in lexicon.groups:
            assert name, lexicon.path
            assert citations and all(len(c) > 20 for c in citations), (lexicon.path, name)


def test_a_group_without_a_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "immigration-enforcement.toml"
    path.write_text(
        'purpose = "immigration-enforcement"\n[sources]\na = "A citation"\n'
        '[[groups]]\nname = "x"\nsources = []\nterms = ["migra"]\n'
    )
    with pytest.raises(ConfigError, match="cites no source"):
        load_lexicon(path)
    path.write_text(
        'purpose = "immigration-enforcement"\n[sources]\na = "A citation"\n'
        '[[groups]]\nname = "x"\nsources = ["a"]\nterms = ["migra"]\nbenign_afterr = []\n'
    )
    with pytest.raises(ConfigError, match="unknown keys"):
        load_lexicon(path)


def test_a_deployment_extends_the_lexicon_and_its_forbidden_terms(tmp_path: Path) -> None:
    extra = tmp_path / "county.toml"
    extra.write_text(
        'purpose = "immigration-enforcement"\ntitle = "immigration enforcement"\n'
        '[sources]\nmemo = "County policy memo 2026-4 on the regional removal task force"\n'
        '[[groups]]\nname = "local task force"\nsources = ["memo"]\n'
        'terms = ["Operation Quiet Harbor"]\n'
    )
    settings_ = load_settings(
        tmp_path, queries={"lexicon_files": ["county.toml"], "forbidden_terms": ["ex-wife"]}
    )
    policy = PurposePolicy.from_settings(settings_)
    assert refused_span(policy, "Part of operation quiet-harbor, find car.") == (
        "operation quiet-harbor"
    )
    assert refused_span(policy, "Checking on my ex.wife's new car.") == "ex.wife"
    assert refused_span(policy, "Assist I.C.E. today.") == "I.C.E."


def test_a_lexicon_for_a_purpose_that_is_not_forbidden_is_not_applied() -> None:
    immigration_only = Screen.build([Purpose.IMMIGRATION_ENFORCEMENT])
    assert immigration_only.refusal("Patient travelled for an abortion.") is None
    assert immigration_only.refusal("Assist ICE today.") is not None


# -- every surface that screens gets the new screen --------------------------------------------


def test_a_hotlist_reason_is_refused_through_the_api(api: Api) -> None:
    body = {"name": "stolen", "source": "stolen-vehicle"}
    assert api.call(Role.OPERATOR, "POST", "/hotlists", json=body).status_code == 201
    entries = [{"plate": "1ABC234", "reason": "I.C.E. detainer target", "case_number": "SPD-1"}]
    answer = api.call(Role.OPERATOR, "POST", "/hotlists/stolen/entries", json={"entries": entries})
    assert answer.status_code == 403, answer.text
    message = answer.json()["error"]["message"]
    assert "'I.C.E.'" in message and "1ABC234" not in message
    entries[0].update(reason="stolen", case_number="ERO_77")
    answer = api.call(Role.OPERATOR, "POST", "/hotlists/stolen/entries", json={"entries": entries})
    assert answer.status_code == 403 and "'ERO'" in answer.json()["error"]["message"]


def test_an_unseal_justification_is_refused_through_the_api(api: Api, tmp_path: Path) -> None:
    from tests.unseal_support import setup_unseal

    u = setup_unseal(api, tmp_path)
    body: dict[str, Any] = {
        "evidence_id": str(u.evidence_id),
        "case_number": "SPD-2026-7",
        "justification": "\u0399.C.E. needs this image for the owner's removal case.",
    }
    answer = api.call(Role.INVESTIGATOR, "POST", "/unseal/requests", json=body)
    assert answer.status_code == 403, answer.text
    assert "'\u0399.C.E.'" in answer.json()["error"]["message"]


def test_a_hold_justification_is_refused_through_the_api(api: Api) -> None:
    read = factories.read(api.dep, "7ABC123", camera_id=CAMERA, observed_at=now())
    assert api.ingest([read]).status_code == 200
    body = {
        "kind": "read",
        "target_id": str(read.read_id),
        "case_number": "SPD-2026-7",
        "justification": "Keep it for the Enforcement and Removal Operations case.",
    }
    answer = api.call(Role.INVESTIGATOR, "POST", "/holds", json=body)
    assert answer.status_code == 403, answer.text
    assert "'Enforcement and Removal Operations'" in answer.json()["error"]["message"]
    body["justification"] = "Evidence in a pending hit-and-run prosecution on Ice House Road."
    assert api.call(Role.INVESTIGATOR, "POST", "/holds", json=body).status_code == 201
