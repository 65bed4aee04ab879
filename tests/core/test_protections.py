"""Automatic protections, with their real defaults unless a test says otherwise: message rates
(per person, slower for new sessions, per network), floods of one text, slow mode for private
messages, conversation and join rates, word lists, entry limits per network, auto-mute."""

from __future__ import annotations

import pytest

from causette import errors
from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.cases import CaseStatus
from causette.core.effects import SetMute
from causette.core.models import Message, dm_stream
from tests.core.harness import (
    Harness,
    HarnessFactory,
    Person,
    controls,
    one,
    published,
    replies,
)


@pytest.fixture
def hp(make_harness: HarnessFactory) -> Harness:
    """The real protections; sessions are not new unless a test makes them so."""
    return make_harness(protections=True, safety={"new_session_minutes": 0})


async def in_room(h: Harness, *names: str, **fields: object) -> list[Person]:
    people = [await h.visitor(name, **fields) for name in names]
    for p in people:
        await h.join(p, "general")
    return people


# --- message rates -------------------------------------------------------------------------


async def test_a_person_may_write_a_burst_then_one_message_a_second(hp: Harness) -> None:
    (alice,) = await in_room(hp, "Alice")
    for i in range(8):  # message_burst
        await hp.send(alice, "r:general", f"message {i}")
    error = await hp.fails(alice, cmd.Send(stream="r:general", text="de trop", local_id="z1"))
    assert isinstance(error, errors.RateLimited)
    assert error.retryable
    assert "1 s" in error.message("fr")
    hp.clock.advance(seconds=1)
    await hp.send(alice, "r:general", "de nouveau possible")


async def test_new_sessions_write_more_slowly_for_their_first_minutes(
    make_harness: HarnessFactory,
) -> None:
    h = make_harness(protections=True)
    (alice,) = await in_room(h, "Alice")
    for i in range(4):  # new_session_message_burst
        await h.send(alice, "r:general", f"message {i}")
    assert isinstance(
        await h.fails(alice, cmd.Send(stream="r:general", text="trop tôt", local_id="z")),
        errors.RateLimited,
    )
    h.clock.advance(minutes=5)  # no longer new: the ordinary burst applies
    for i in range(8):
        await h.send(alice, "r:general", f"plus tard {i}")


async def test_people_behind_one_network_share_a_rate(make_harness: HarnessFactory) -> None:
    h = make_harness(
        protections=True, safety={"new_session_minutes": 0, "network_message_burst": 5}
    )
    alice, bruno = await in_room(h, "Alice", "Bruno", ip_key="net-shared")
    (carla,) = await in_room(h, "Carla")
    for i in range(3):
        await h.send(alice, "r:general", f"a{i}")
    for i in range(2):
        await h.send(bruno, "r:general", f"b{i}")
    error = await h.fails(bruno, cmd.Send(stream="r:general", text="b3", local_id="b3"))
    assert isinstance(error, errors.RateLimited)
    await h.send(carla, "r:general", "moi, je peux")  # another network


async def test_the_same_text_again_and_again_is_refused(hp: Harness) -> None:
    (alice,) = await in_room(hp, "Alice")
    for variant in ("Achetez ici !", "ACHETEZ ICI", "achetez... ici"):
        hp.clock.advance(seconds=2)
        await hp.send(alice, "r:general", variant)
    hp.clock.advance(seconds=2)
    error = await hp.fails(alice, cmd.Send(stream="r:general", text="Achetez ici", local_id="d"))
    assert isinstance(error, errors.DuplicateMessage)
    await hp.send(alice, "r:general", "autre chose")
    hp.clock.advance(seconds=61)  # out of the window
    await hp.send(alice, "r:general", "Achetez ici !")


# --- private messages from new sessions ---------------------------------------------------


async def test_new_sessions_write_privately_only_to_people_they_talked_with(
    make_harness: HarnessFactory,
) -> None:
    h = make_harness(protections=True)
    alice, bruno = await in_room(h, "Alice", "Bruno")
    carla = await h.visitor("Carla")
    stream = dm_stream(alice.id, bruno.id)
    error = await h.fails(alice, cmd.Send(stream=stream, text="Salut", local_id="p"))
    assert isinstance(error, errors.NewSessionPrivateMessage)
    assert "5" in error.message("fr")
    # Once both have written in a room they share, it is a conversation, not a cold approach.
    await h.send(alice, "r:general", "Bonjour à tous")
    assert isinstance(
        await h.fails(alice, cmd.Send(stream=stream, text="Salut", local_id="p")),
        errors.NewSessionPrivateMessage,
    )
    await h.send(bruno, "r:general", "Bonjour Alice")
    await h.send(alice, stream, "Salut Bruno")
    # Carla never wrote in a room: nobody new may approach her, until they are no longer new.
    carla_stream = dm_stream(bruno.id, carla.id)
    assert isinstance(
        await h.fails(bruno, cmd.Send(stream=carla_stream, text="Hello", local_id="c")),
        errors.NewSessionPrivateMessage,
    )
    h.clock.advance(minutes=5)
    await h.send(bruno, carla_stream, "Hello Carla")


async def test_a_new_session_may_answer_someone_who_wrote_first(
    make_harness: HarnessFactory,
) -> None:
    h = make_harness(protections=True, safety={"new_session_minutes": 5})
    alice = await h.visitor("Alice")
    h.clock.advance(minutes=10)
    bruno = await h.visitor("Bruno")  # new; Alice is not
    stream = dm_stream(alice.id, bruno.id)
    await h.send(alice, stream, "Bienvenue !")
    await h.send(bruno, stream, "Merci !")


async def test_starting_many_conversations_is_limited(make_harness: HarnessFactory) -> None:
    h = make_harness(protections=True, safety={"new_session_minutes": 0, "conversation_burst": 2})
    alice = await h.visitor("Alice")
    others = [await h.visitor(name) for name in ("Bruno", "Carla", "Denis")]
    await h.send(alice, dm_stream(alice.id, others[0].id), "Salut")
    await h.send(alice, dm_stream(alice.id, others[1].id), "Salut")
    error = await h.fails(
        alice, cmd.Send(stream=dm_stream(alice.id, others[2].id), text="Salut", local_id="s")
    )
    assert isinstance(error, errors.RateLimited)
    # Writing again in a conversation already open is not starting one.
    await h.send(alice, dm_stream(alice.id, others[0].id), "Tu es là ?")


async def test_joining_rooms_is_limited(make_harness: HarnessFactory) -> None:
    h = make_harness(protections=True, safety={"join_burst": 2})
    alice = await h.visitor("Alice")
    await h.join(alice, "general")
    await h.join(alice, "cuisine")
    assert isinstance(await h.fails(alice, cmd.Join(room="sport")), errors.RateLimited)
    h.clock.advance(seconds=3)
    await h.join(alice, "sport")


# --- word lists ------------------------------------------------------------------------------


async def test_a_blocked_expression_is_refused_with_its_reason_and_a_case(hp: Harness) -> None:
    (alice,) = await in_room(hp, "Alice")
    effects = await hp.do(alice, cmd.Send(stream="r:general", text="sale arabe", local_id="w1"))
    error = one(replies(effects, ev.Error))
    assert (error.code, error.ref) == ("message_blocked", "w1")
    assert "automatique" in error.message
    assert "Haine" in error.message
    assert not published(effects, Message)
    assert [m.kind for m in await hp.store.read("r:general", 0, 10)] == ["join"]
    case = one(await hp.store.open_cases(10))
    assert (case.automated, case.category, case.subject) == (True, "hate", alice.id)
    evidence = await hp.store.evidence_of(case.id)
    assert evidence[0].kind == "blocked"
    assert evidence[0].data["text"] == "sale arabe"


async def test_a_held_message_waits_for_a_moderator_who_can_release_it(hp: Harness) -> None:
    (alice, _bruno) = await in_room(hp, "Alice", "Bruno")
    text = "Paie-moi en coupon PCS et je t'envoie tout"
    effects = await hp.do(alice, cmd.Send(stream="r:general", text=text, local_id="h1"))
    held = one(replies(effects, ev.Held))
    assert (held.local_id, held.stream, held.message) == ("h1", "r:general", text)
    assert not published(effects, Message)
    moderator = await hp.moderator("modo1")
    released = await hp.moderation.dismiss(moderator, held.case, "Pas une arnaque : une blague.")
    hp.apply(None, released)
    item = one(published(released, Message, "r:general"))
    assert (item.text, item.author) == (text, alice.id)
    # The author's page learns its held message went out (same local id as it sent).
    ack = one(published(released, ev.Ack, "p:" + alice.id))
    assert (ack.local_id, ack.seq, ack.id) == ("h1", item.seq, item.id)
    case = await hp.store.get_case(held.case)
    assert case is not None
    assert case.status == CaseStatus.CLOSED


async def test_a_message_held_for_a_gone_person_is_refused_not_held(hp: Harness) -> None:
    # A held message is not appended, so the append cannot check the other session itself.
    alice, stream = await hp.conversation_with_the_gone()
    text = "Paie-moi en coupon PCS et je t'envoie tout"
    exc = await hp.fails(alice, cmd.Send(stream=stream, text=text, local_id="h2"))
    assert (exc.code, exc.field) == ("person_unknown", "stream")
    assert await hp.store.open_cases(10) == []


async def test_a_flagged_message_is_delivered_and_opens_a_case(hp: Harness) -> None:
    (alice,) = await in_room(hp, "Alice")
    effects = await hp.do(alice, cmd.Send(stream="r:general", text="vends beuh", local_id="f1"))
    assert one(published(effects, Message, "r:general")).text == "vends beuh"
    case = one(await hp.store.open_cases(10))
    assert (case.category, case.automated, case.message_id) == (
        "drugs",
        True,
        one(replies(effects, ev.Ack)).id,
    )


async def test_a_pseudonym_with_a_forbidden_expression_is_refused(hp: Harness) -> None:
    assert ("pseudonym_reserved", "pseudonym") in await hp.refusals("Bougnoule")
    assert ("pseudonym_reserved", "pseudonym") in await hp.refusals("Sale_Arabe")


# --- entry ---------------------------------------------------------------------------------


async def test_new_sessions_from_one_network_are_limited(make_harness: HarnessFactory) -> None:
    h = make_harness(protections=True, safety={"session_burst_per_network": 2})
    await h.enter("Alice", ip_key="net-x")
    await h.enter("Bruno", ip_key="net-x")
    with pytest.raises(errors.TooManySessions):
        await h.enter("Carla", ip_key="net-x")
    await h.enter("Denis", ip_key="net-y")


# --- auto-mute -------------------------------------------------------------------------------


async def test_reports_from_several_networks_mute_the_person_pending_review(
    hp: Harness,
) -> None:
    troll, *reporters = await in_room(hp, "Troll", "Alice", "Bruno", "Carla")
    ack = await hp.send(troll, "r:general", "message pénible")
    await hp.report(reporters[0], "message", ack.id)
    await hp.report(reporters[1], "person", troll.id)
    effects = await hp.report(reporters[2], "person", troll.id)
    mute = one(controls(effects, SetMute))
    assert mute.person == troll.id
    assert mute.until == hp.clock.t + 60 * 60_000
    notice = one(published(effects, ev.DecisionNotice, "p:" + troll.id))
    assert (notice.decision.action, notice.decision.automated) == ("mute", True)
    assert "examine" in notice.decision.facts
    error = await hp.fails(troll, cmd.Send(stream="r:general", text="encore", local_id="m"))
    assert isinstance(error, errors.Muted)
    assert error.details["decision"] == notice.decision.id
    hp.clock.advance(minutes=61)
    await hp.send(troll, "r:general", "le délai est passé")


async def test_several_sessions_of_one_network_count_as_one_reporter(hp: Harness) -> None:
    (troll,) = await in_room(hp, "Troll")
    reporters = await in_room(hp, "Alice", "Bruno", "Carla", ip_key="net-same")
    for reporter in reporters:
        await hp.report(reporter, "person", troll.id)
    assert troll.a.muted_until == 0
    await hp.send(troll, "r:general", "toujours là")
