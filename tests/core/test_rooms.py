"""Rooms and room messages: join, leave, send, history, as the service decides them."""

from __future__ import annotations

import pytest

from causette import errors
from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.effects import Attach, Detach, Publish, RoomJoin, RoomLeave
from causette.core.models import Message
from tests.core.harness import Harness, HarnessFactory, controls, one, published, replies


async def test_join_announces_the_newcomer_and_attaches_the_room(h: Harness) -> None:
    alice = await h.visitor("Alice")
    effects = await h.join(alice, "general")
    assert replies(effects, ev.Joined) == [ev.Joined(room="general")]
    assert [e for e in effects if isinstance(e, Attach)] == [Attach("r:general")]
    item = one(published(effects, Message, "r:general"))
    assert (item.kind, item.author, item.name, item.seq) == ("join", alice.id, "Alice", 1)
    members = one(published(effects, ev.Members, "r:general"))
    assert members.add == [alice.session.profile]
    assert controls(effects, RoomJoin) == [RoomJoin(person=alice.id, room="general")]
    assert "r:general" in alice.a.streams
    assert await h.store.rooms_of(alice.id) == ["general"]
    assert h.directory.counts() == {"general": 1}


async def test_joining_twice_is_idempotent(h: Harness) -> None:
    alice = await h.visitor("Alice")
    await h.join(alice, "general")
    again = await h.join(alice, "general")
    assert replies(again, ev.Joined) == [ev.Joined(room="general")]
    assert not [e for e in again if isinstance(e, Publish)]
    head = await h.store.stream_head("r:general")
    assert head is not None
    assert head.last_seq == 1  # one join item only
    assert await h.store.members_of("general") == [alice.id]


async def test_a_reconnection_reattaches_the_rooms_without_a_new_join_item(h: Harness) -> None:
    alice = await h.visitor("Alice")
    await h.join(alice, "general")
    await h.join(alice, "cuisine")
    h.disconnect(alice)
    effects = await h.connect(alice)
    welcome = one(replies(effects, ev.Welcome))
    assert welcome.joined == ["general", "cuisine"]
    assert [e.stream for e in effects if isinstance(e, Attach)] == ["r:general", "r:cuisine"]
    # Joining again from the new connection changes nothing.
    assert not [e for e in await h.join(alice, "general") if isinstance(e, Publish)]


async def test_leave_announces_the_departure_and_detaches(h: Harness) -> None:
    alice = await h.visitor("Alice")
    await h.join(alice, "general")
    effects = await h.do(alice, cmd.Leave(room="general"))
    assert replies(effects, ev.Left) == [ev.Left(room="general")]
    assert Detach("r:general") in effects
    item = one(published(effects, Message, "r:general"))
    assert (item.kind, item.author, item.seq) == ("leave", alice.id, 2)
    assert one(published(effects, ev.Members, "r:general")).remove == [alice.id]
    assert controls(effects, RoomLeave) == [RoomLeave(person=alice.id, room="general")]
    assert "r:general" not in alice.a.streams
    assert await h.store.rooms_of(alice.id) == []
    assert h.directory.counts() == {}


async def test_leaving_a_room_not_joined_is_refused(h: Harness) -> None:
    alice = await h.visitor("Alice")
    exc = await h.fails(alice, cmd.Leave(room="general"))
    assert (exc.code, exc.field) == ("room_not_joined", "room")


@pytest.mark.parametrize("command", [cmd.Join(room="nulle-part"), cmd.Leave(room="nulle-part")])
async def test_an_unknown_room_is_refused(h: Harness, command: cmd.AnyCommand) -> None:
    alice = await h.visitor("Alice")
    exc = await h.fails(alice, command)
    assert (exc.code, exc.field) == ("room_unknown", "room")


async def test_a_room_age_floor_is_enforced(h: Harness) -> None:
    young = await h.visitor("Jeune", age=24)
    exc = await h.fails(young, cmd.Join(room="plus-25"))
    assert (exc.code, exc.field) == ("room_age_restricted", "room")
    assert "25" in exc.message("fr")
    assert await h.store.rooms_of(young.id) == []
    old_enough = await h.visitor("Ainee", age=25)
    assert replies(await h.join(old_enough, "plus-25"), ev.Joined)


async def test_the_number_of_rooms_is_limited(make_harness: HarnessFactory) -> None:
    h = make_harness(sessions={"max_rooms": 2})
    alice = await h.visitor("Alice")
    await h.join(alice, "general")
    await h.join(alice, "cuisine")
    exc = await h.fails(alice, cmd.Join(room="sport"))
    assert (exc.code, exc.field) == ("too_many_rooms", "room")
    # Rejoining a room already joined is still fine; leaving one makes room for another.
    assert replies(await h.join(alice, "general"), ev.Joined)
    await h.do(alice, cmd.Leave(room="cuisine"))
    assert replies(await h.join(alice, "sport"), ev.Joined)


async def test_send_is_acknowledged_with_its_seq_and_published(h: Harness) -> None:
    alice = await h.visitor("Alice")
    await h.join(alice, "general")
    effects = await h.do(alice, cmd.Send(stream="r:general", text=" Bonjour ! ", local_id="a-1"))
    ack = one(replies(effects, ev.Ack))
    item = one(published(effects, Message, "r:general"))
    assert (ack.local_id, ack.stream, ack.seq, ack.id, ack.ts, ack.dup) == (
        "a-1",
        "r:general",
        2,
        item.id,
        h.clock.now_ms(),
        False,
    )
    assert (item.kind, item.text, item.name, item.seq) == ("text", "Bonjour !", "Alice", 2)
    publish = one([e for e in effects if isinstance(e, Publish)])
    assert (publish.stream, publish.seq) == ("r:general", 2)


async def test_a_resent_local_id_is_stored_once(h: Harness) -> None:
    alice = await h.visitor("Alice")
    await h.join(alice, "general")
    first = await h.send(alice, "r:general", "Une fois", local_id="x-1")
    h.clock.advance(seconds=5)
    effects = await h.do(alice, cmd.Send(stream="r:general", text="Une fois", local_id="x-1"))
    again = one(replies(effects, ev.Ack))
    assert again.dup
    assert (again.seq, again.id, again.ts) == (first.seq, first.id, first.ts)
    assert not [e for e in effects if isinstance(e, Publish)]
    assert [m.text for m in await h.store.read("r:general", 0, 10)] == ["", "Une fois"]


async def test_a_local_id_reused_in_another_stream_is_refused(h: Harness) -> None:
    # Idempotency is per person: the same local_id elsewhere is a client bug, not a retry.
    alice = await h.visitor("Alice")
    await h.join(alice, "general")
    await h.join(alice, "cuisine")
    await h.send(alice, "r:general", "ici", local_id="k-1")
    with pytest.raises(errors.BadField) as info:
        await h.do(alice, cmd.Send(stream="r:cuisine", text="là", local_id="k-1"))
    assert info.value.field == "local_id"
    assert [m.text for m in await h.store.read("r:cuisine", 0, 10)] == [""]


async def test_the_same_local_id_from_another_person_is_another_message(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await h.join(alice, "general")
    await h.join(bruno, "general")
    a = await h.send(alice, "r:general", "de Alice", local_id="same")
    b = await h.send(bruno, "r:general", "de Bruno", local_id="same")
    assert not b.dup
    assert b.seq == a.seq + 1


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "message_empty"),
        ("  \n ", "message_empty"),
        ("a" * 1001, "message_too_long"),
        ("a\x00b", "message_forbidden_chars"),
        ("\u202eabc", "message_forbidden_chars"),
    ],
)
async def test_invalid_text_is_refused_and_not_stored(h: Harness, text: str, code: str) -> None:
    alice = await h.visitor("Alice")
    await h.join(alice, "general")
    exc = await h.fails(alice, cmd.Send(stream="r:general", text=text, local_id="bad"))
    assert (exc.code, exc.field) == (code, "text")
    head = await h.store.stream_head("r:general")
    assert head is not None
    assert head.last_seq == 1  # only the join item
    # The local id was not consumed: a corrected message with it is stored.
    assert not (await h.send(alice, "r:general", "corrigé", local_id="bad")).dup


async def test_the_length_limit_follows_the_configuration(make_harness: HarnessFactory) -> None:
    h = make_harness(messages={"max_chars": 10})
    alice = await h.visitor("Alice")
    await h.join(alice, "general")
    assert not (await h.send(alice, "r:general", "a" * 10)).dup
    exc = await h.fails(alice, cmd.Send(stream="r:general", text="a" * 11, local_id="z"))
    assert exc.code == "message_too_long"


async def test_sending_to_a_room_not_joined_is_refused(h: Harness) -> None:
    alice = await h.visitor("Alice")
    exc = await h.fails(alice, cmd.Send(stream="r:general", text="coucou", local_id="a"))
    assert (exc.code, exc.field) == ("room_not_joined", "stream")
    exc = await h.fails(alice, cmd.Send(stream="r:nulle-part", text="coucou", local_id="a"))
    assert (exc.code, exc.field) == ("room_unknown", "stream")


async def test_after_leaving_a_room_one_cannot_write_in_it(h: Harness) -> None:
    alice = await h.visitor("Alice")
    await h.join(alice, "general")
    await h.do(alice, cmd.Leave(room="general"))
    exc = await h.fails(alice, cmd.Send(stream="r:general", text="encore", local_id="a"))
    assert exc.code == "room_not_joined"


@pytest.mark.parametrize("stream", ["x:general", "general", "d:nope", "d:a:b:c"])
async def test_a_malformed_stream_is_unknown(h: Harness, stream: str) -> None:
    alice = await h.visitor("Alice")
    exc = await h.fails(alice, cmd.Send(stream=stream, text="coucou", local_id="a"))
    assert exc.code == "stream_unknown"


async def test_history_pages_back_through_a_room(h: Harness) -> None:
    alice = await h.visitor("Alice")
    await h.join(alice, "general")
    for i in range(10):
        await h.send(alice, "r:general", f"m{i}")  # seqs 2..11
    page = one(
        replies(
            await h.do(alice, cmd.History(stream="r:general", before=8, limit=3)), ev.HistoryPage
        )
    )
    assert [m.seq for m in page.items] == [5, 6, 7]
    assert page.more
    page = one(
        replies(
            await h.do(alice, cmd.History(stream="r:general", before=3, limit=5)), ev.HistoryPage
        )
    )
    assert [m.seq for m in page.items] == [1, 2]
    assert not page.more
    exc = await h.fails(alice, cmd.History(stream="r:cuisine", before=3))
    assert exc.code == "stream_unknown"


async def test_welcome_lists_rooms_with_counts_and_limits(h: Harness) -> None:
    alice = await h.visitor("Alice", lang="en")
    await h.join(alice, "general")
    bruno = await h.enter("Bruno")
    welcome = one(replies(await h.connect(bruno), ev.Welcome))
    general = next(r for r in welcome.rooms if r.slug == "general")
    assert (general.name, general.count) == ("Général", 1)
    assert welcome.limits.max_chars == 1000
    assert welcome.limits.lifetime_ms == 180 * 60_000
    assert welcome.me == bruno.session.profile
    h.disconnect(alice)
    english = one(replies(await h.connect(alice), ev.Welcome))
    assert next(r for r in english.rooms if r.slug == "general").name == "General"


async def test_hello_with_another_protocol_version_is_refused(h: Harness) -> None:
    alice = await h.enter("Alice")
    with pytest.raises(errors.BadField) as info:
        await h.connect(alice, cmd.Hello(v=2))
    assert info.value.field == "v"
    assert "2" in info.value.message("en")
