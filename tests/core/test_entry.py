"""Entering Causette: the entry form's rules, each refusal with its code and field."""

from __future__ import annotations

import pytest

from causette import errors
from causette.core.models import Gender, PmPolicy, Profile
from causette.core.service import Invalid
from causette.ids import token_hash
from tests.core.harness import Harness, HarnessFactory


async def test_a_valid_entry_gives_a_profile_placed_by_the_postal_code(h: Harness) -> None:
    session, token = await h.service.enter(
        h.form("Camille", gender="f", age=34, postal_code="69001", commune="69381")
    )
    assert session.profile == Profile(
        id=session.id,
        name="Camille",
        gender=Gender.WOMAN,
        age=34,
        commune="Lyon 1er Arrondissement",
        dep="69",
        region="84",
    )
    assert (session.postal_code, session.commune_code) == ("69001", "69381")
    assert session.live
    assert session.pm_policy == PmPolicy.EVERYONE
    # The cookie token is a secret: only its hash is kept, and it finds the session.
    assert session.token_hash == token_hash(token)
    assert token not in repr(session)
    assert await h.service.session_for_token(token) == session
    assert await h.service.session_for_token(token + "x") is None


async def test_the_commune_may_be_omitted_when_the_postal_code_has_one(h: Harness) -> None:
    session, _ = await h.service.enter(h.form("Camille", postal_code="69001", commune=""))
    assert (session.profile.commune, session.commune_code) == ("Lyon 1er Arrondissement", "69381")


async def test_a_commune_of_a_shared_postal_code_is_chosen_by_its_insee_code(h: Harness) -> None:
    # 01200 covers communes of the Ain and of Haute-Savoie.
    session, _ = await h.service.enter(h.form("Camille", postal_code="01200", commune="74109"))
    assert (session.profile.commune, session.profile.dep) == ("Éloise", "74")


async def test_the_pseudonym_is_nfkc_normalised_and_trimmed(h: Harness) -> None:
    session, _ = await h.service.enter(h.form("  Ｃａｍｉｌｌｅ  "))  # full-width letters
    assert session.profile.name == "Camille"


@pytest.mark.parametrize(
    ("pseudonym", "code"),
    [
        ("C", "pseudonym_length"),
        ("C" * 21, "pseudonym_length"),
        ("", "pseudonym_length"),
        ("   ", "pseudonym_length"),
        ("Ca\u200bmille", "pseudonym_chars"),  # zero-width space
        ("Cami\u200dlle", "pseudonym_chars"),  # zero-width joiner
        ("\u202eCamille", "pseudonym_chars"),  # right-to-left override
        ("Cami\u2066lle", "pseudonym_chars"),  # left-to-right isolate
        ("Cami😀", "pseudonym_chars"),  # emoji
        ("Cam ille", "pseudonym_chars"),  # space
        ("Cam\tille", "pseudonym_chars"),  # control
        ("Cam<b>", "pseudonym_chars"),
        ("--..''", "pseudonym_chars"),  # punctuation only
    ],
)
async def test_a_malformed_pseudonym_is_refused(h: Harness, pseudonym: str, code: str) -> None:
    assert await h.refusals(pseudonym) == [(code, "pseudonym")]


@pytest.mark.parametrize(
    "pseudonym", ["Ca", "C" * 20, "Jean-Luc", "o'Neil", "zoé_42", "Łukasz", "Ηλίας", "李小龍"]
)
async def test_a_well_formed_pseudonym_is_accepted(h: Harness, pseudonym: str) -> None:
    session, _ = await h.service.enter(h.form(pseudonym))
    assert session.profile.name == pseudonym


@pytest.mark.parametrize(
    "pseudonym",
    ["admin", "ADMIN", "Admin_", "Modérateur", "modo", "Causette", "police", "Système"],
)
async def test_reserved_names_are_refused(h: Harness, pseudonym: str) -> None:
    assert await h.refusals(pseudonym) == [("pseudonym_reserved", "pseudonym")]


@pytest.mark.parametrize(
    "pseudonym", ["admin42", "Administrateur-Bob", "moderatrice2", "modo_du_soir", "staffy"]
)
async def test_names_starting_with_a_reserved_prefix_are_refused(
    h: Harness, pseudonym: str
) -> None:
    assert await h.refusals(pseudonym) == [("pseudonym_reserved", "pseudonym")]


async def test_reserved_names_are_configurable(make_harness: HarnessFactory) -> None:
    h = make_harness(site={"reserved_pseudonyms": ["Zorro"], "reserved_prefixes": []})
    assert await h.refusals("zorro") == [("pseudonym_reserved", "pseudonym")]
    assert (await h.enter("admin")).session.profile.name == "admin"


async def test_a_pseudonym_in_use_is_refused_in_every_look_alike_form(h: Harness) -> None:
    camille = await h.enter("Camille")
    for look_alike in ["Camille", "CAMILLE", "Cämille", "Cаmille", "Cam-ille", "camiIle"]:
        # "Cаmille" has a Cyrillic а; "camiIle" a capital I for the small l.
        assert await h.refusals(look_alike) == [("pseudonym_taken", "pseudonym")], look_alike
    await h.end(camille)
    for look_alike in ["CAMILLE", "Cämille", "Cаmille", "Cam-ille"]:
        other = await h.enter(look_alike)
        assert other.session.profile.name == look_alike
        await h.end(other)


async def test_a_different_pseudonym_is_not_a_look_alike(h: Harness) -> None:
    await h.enter("Camille")
    assert (await h.enter("Camilla")).session.profile.name == "Camilla"


@pytest.mark.parametrize(
    ("age", "code"),
    [
        (17, "age_too_young"),
        (0, "age_invalid"),
        (-3, "age_invalid"),
        (None, "age_invalid"),
        (100, "age_invalid"),  # above site.max_age (99)
        (121, "age_invalid"),
    ],
)
async def test_an_age_outside_the_site_limits_is_refused(
    h: Harness, age: int | None, code: str
) -> None:
    assert await h.refusals("Camille", age=age) == [(code, "age")]


@pytest.mark.parametrize("age", [18, 99])
async def test_the_age_limits_are_inclusive(h: Harness, age: int) -> None:
    assert (await h.enter("Camille", age=age)).session.profile.age == age


async def test_under_age_message_names_the_minimum(h: Harness) -> None:
    with pytest.raises(Invalid) as info:
        await h.service.enter(h.form("Camille", age=17))
    [problem] = info.value.problems
    assert isinstance(problem, errors.AgeTooYoung)
    assert "18" in problem.message("fr")
    assert "18" in problem.message("en")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"postal_code": "00000"}, [("postal_code_invalid", "postal_code")]),
        ({"postal_code": "7501"}, [("postal_code_invalid", "postal_code")]),
        ({"postal_code": ""}, [("postal_code_invalid", "postal_code")]),
        # 01200 covers several communes: one must be chosen.
        ({"postal_code": "01200", "commune": ""}, [("commune_invalid", "commune")]),
        # Lyon 1er is not covered by 75011.
        ({"postal_code": "75011", "commune": "69381"}, [("commune_invalid", "commune")]),
        ({"gender": "z"}, [("gender_invalid", "gender")]),
        ({"gender": ""}, [("gender_invalid", "gender")]),
        ({"accept_rules": False}, [("rules_not_accepted", "accept_rules")]),
    ],
)
async def test_form_refusals(
    h: Harness, fields: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    assert await h.refusals("Camille", **fields) == expected


async def test_every_problem_is_reported_at_once(h: Harness) -> None:
    problems = await h.refusals("C", gender="z", age=17, postal_code="00000", accept_rules=False)
    assert sorted(problems) == sorted(
        [
            ("pseudonym_length", "pseudonym"),
            ("gender_invalid", "gender"),
            ("age_too_young", "age"),
            ("postal_code_invalid", "postal_code"),
            ("rules_not_accepted", "accept_rules"),
        ]
    )


async def test_a_refused_entry_creates_no_session(h: Harness) -> None:
    await h.refusals("Camille", age=17)
    # The pseudonym is still free.
    assert (await h.enter("Camille")).session.profile.name == "Camille"


async def test_the_language_of_the_form_is_kept_or_defaults_to_french(h: Harness) -> None:
    assert (await h.enter("Alice", lang="en")).session.lang == "en"
    assert (await h.enter("Bruno", lang="de")).session.lang == "fr"
