"""The people list: filters, "near me", limits, and watching the site list."""

from __future__ import annotations

import pytest

from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.directory import Directory, PeopleFilter
from causette.core.effects import LOBBY_CHANNEL, Publish, Subscribe, Unsubscribe
from causette.core.models import Gender, Profile
from tests.core.harness import Harness, Person


@pytest.fixture
async def crowd(h: Harness) -> dict[str, Person]:
    """People of several genders, ages and places (all connected)."""
    spec = [
        # name, gender, age, postal code → département / region
        ("Anna", "f", 18, "75011"),  # 75 Paris / 11 Île-de-France
        ("Basile", "m", 25, "92100"),  # 92 / 11
        ("Chloe", "f", 26, "69001"),  # 69 Lyon / 84 Auvergne-Rhône-Alpes
        ("Denis", "m", 35, "69002"),  # 69 / 84
        ("Eve", "x", 36, "38000"),  # 38 Grenoble / 84
        ("Fanny", "f", 50, "33000"),  # 33 Bordeaux / 75 Nouvelle-Aquitaine
        ("Gaspard", "m", 51, "13001"),  # 13 Marseille / 93
        ("Hugo", "m", 99, "75011"),  # 75 / 11
    ]
    out: dict[str, Person] = {}
    for name, gender, age, postal in spec:
        out[name] = await h.visitor(name, gender=gender, age=age, postal_code=postal)
    return out


async def test_everyone_connected_is_listed_by_pseudonym(
    h: Harness, crowd: dict[str, Person]
) -> None:
    listing = await h.people(crowd["Anna"])
    assert [p.name for p in listing.items] == sorted(crowd)
    assert listing.total == 8
    assert (listing.scope, listing.room) == ("site", "")
    assert listing.items[0] == crowd["Anna"].session.profile


async def test_filter_by_gender(h: Harness, crowd: dict[str, Person]) -> None:
    me = crowd["Anna"]
    assert await h.names(me, gender=Gender.WOMAN) == ["Anna", "Chloe", "Fanny"]
    assert await h.names(me, gender=Gender.OTHER) == ["Eve"]


@pytest.mark.parametrize(
    ("band", "expected"),
    [
        ("18-25", ["Anna", "Basile"]),
        ("26-35", ["Chloe", "Denis"]),
        ("36-50", ["Eve", "Fanny"]),
        ("51+", ["Gaspard", "Hugo"]),
    ],
)
async def test_age_bands_include_their_bounds(
    h: Harness, crowd: dict[str, Person], band: str, expected: list[str]
) -> None:
    assert await h.names(crowd["Anna"], age_band=band) == expected


async def test_filter_by_departement_and_region(h: Harness, crowd: dict[str, Person]) -> None:
    me = crowd["Anna"]
    assert await h.names(me, dep="69") == ["Chloe", "Denis"]
    assert await h.names(me, region="84") == ["Chloe", "Denis", "Eve"]
    assert await h.names(me, region="11", gender=Gender.MAN) == ["Basile", "Hugo"]
    assert await h.names(me, dep="2A") == []


async def test_people_of_a_room(h: Harness, crowd: dict[str, Person]) -> None:
    for name in ("Chloe", "Gaspard"):
        await h.join(crowd[name], "cuisine")
    listing = await h.people(crowd["Anna"], scope="room", room="cuisine")
    assert [p.name for p in listing.items] == ["Chloe", "Gaspard"]
    assert (listing.scope, listing.room, listing.total) == ("room", "cuisine", 2)
    assert await h.names(crowd["Anna"], scope="room", room="sport") == []
    exc = await h.fails(crowd["Anna"], cmd.People(scope="room", room="nulle-part"))
    assert exc.code == "room_unknown"


async def test_near_me_sorts_my_departement_then_my_region(
    h: Harness, crowd: dict[str, Person]
) -> None:
    # Chloe lives in the 69 (region 84): Denis (69), then Eve (38, region 84), then the rest.
    names = await h.names(crowd["Chloe"], near=True)
    assert names[:4] == ["Chloe", "Denis", "Eve", "Anna"]
    assert sorted(names[3:]) == names[3:]
    assert len(names) == 8


async def test_limit_keeps_the_total(h: Harness, crowd: dict[str, Person]) -> None:
    listing = await h.people(crowd["Anna"], limit=3)
    assert [p.name for p in listing.items] == ["Anna", "Basile", "Chloe"]
    assert listing.total == 8
    listing = await h.people(crowd["Anna"], limit=1, gender=Gender.WOMAN)
    assert (len(listing.items), listing.total) == (1, 3)


async def test_people_who_left_are_not_listed(h: Harness, crowd: dict[str, Person]) -> None:
    await h.end(crowd["Basile"])
    assert "Basile" not in await h.names(crowd["Anna"])


async def test_watching_the_site_subscribes_to_the_lobby(
    h: Harness, crowd: dict[str, Person]
) -> None:
    anna = crowd["Anna"]
    effects = await h.do(anna, cmd.People(scope="site", watch=True))
    assert Subscribe(LOBBY_CHANNEL) in effects
    assert anna.channels == {LOBBY_CHANNEL}
    # Asking again while watching does not subscribe twice.
    again = await h.do(anna, cmd.People(scope="site", watch=True, gender=Gender.MAN))
    assert not [e for e in again if isinstance(e, Subscribe)]
    # Switching to a room's list stops the site-wide feed.
    await h.join(anna, "general")
    effects = await h.do(anna, cmd.People(scope="room", room="general", watch=True))
    assert Unsubscribe(LOBBY_CHANNEL) in effects
    assert anna.channels == set()
    assert not [e for e in effects if isinstance(e, Subscribe)]


async def test_site_watchers_hear_of_arrivals_and_departures(h: Harness) -> None:
    anna = await h.visitor("Anna")
    bruno = await h.enter("Bruno")
    came = await h.connect(bruno)
    lobby = [e for e in came if isinstance(e, Publish) and e.channel == LOBBY_CHANNEL]
    assert [e.event for e in lobby] == [ev.Presence(add=[bruno.session.profile])]
    assert "Bruno" in await h.names(anna)
    left = await h.end(bruno)
    lobby = [e for e in left if isinstance(e, Publish) and e.channel == LOBBY_CHANNEL]
    assert [e.event for e in lobby] == [ev.Presence(remove=[bruno.id])]


def test_directory_counts_members_and_forgets_empty_rooms() -> None:
    d = Directory()
    a = Profile("a", "A", Gender.WOMAN, 30, "X", "75", "11")
    b = Profile("b", "B", Gender.MAN, 40, "Y", "69", "84")
    d.here(a, ["general", "cuisine"])
    d.here(b, ["general"])
    assert d.counts() == {"general": 2, "cuisine": 1}
    assert d.online_count() == 2
    d.leave("a", "cuisine")
    assert d.counts() == {"general": 2}
    assert d.gone("b") == {"general"}
    assert d.counts() == {"general": 1}
    # A join for someone not (yet) here is ignored: their next "here" carries their rooms.
    d.join("b", "sport")
    assert d.counts() == {"general": 1}
    # "here" replaces what was known.
    d.here(a, ["sport"])
    assert d.counts() == {"sport": 1}
    items, total = d.query(PeopleFilter(scope="room", room="sport"))
    assert (items, total) == ([a], 1)
