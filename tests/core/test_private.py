"""Private conversations: who may write to whom, how a conversation starts, unread counts."""

from __future__ import annotations

import pytest

from causette import errors
from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.effects import Attach, AttachStream, Publish
from causette.core.models import Message, PmPolicy, dm_stream
from tests.core.harness import Harness, Person, controls, one, published, replies


async def pm_policy(h: Harness, person: Person, policy: PmPolicy) -> None:
    await h.do(person, cmd.SetPrefs(pm_policy=policy))


async def test_the_first_send_opens_the_conversation_for_both(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    stream = dm_stream(alice.id, bruno.id)
    effects = await h.do(alice, cmd.Send(stream=stream, text="Salut", local_id="p1"))

    # The sender gets the conversation and is attached to it…
    conv = one(replies(effects, ev.Conversation)).conv
    assert (conv.stream, conv.other, conv.gone) == (stream, bruno.session.profile, False)
    assert Attach(stream) in effects
    assert stream in alice.a.streams
    # …the message is stored as seq 1 and published on the stream…
    ack = one(replies(effects, ev.Ack))
    item = one(published(effects, Message, stream))
    assert (ack.seq, item.seq, item.text, item.author) == (1, 1, "Salut", alice.id)
    # …and the other person learns of the conversation and is attached to it.
    told = one(published(effects, ev.Conversation, "p:" + bruno.id))
    assert (told.conv.stream, told.conv.other) == (stream, alice.session.profile)
    assert controls(effects, AttachStream) == [AttachStream(person=bruno.id, stream=stream)]
    assert stream in bruno.a.streams


async def test_later_messages_do_not_reannounce_the_conversation(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    stream = dm_stream(alice.id, bruno.id)
    await h.send(alice, stream, "Salut")
    effects = await h.do(alice, cmd.Send(stream=stream, text="Ça va ?", local_id="p2"))
    assert [type(e.event) for e in effects if isinstance(e, Publish)] == [Message]
    assert not controls(effects, AttachStream)
    reply = await h.do(bruno, cmd.Send(stream=stream, text="Oui", local_id="b1"))
    assert one(replies(reply, ev.Ack)).seq == 3


async def test_dm_opens_a_conversation_without_a_message(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    stream = dm_stream(alice.id, bruno.id)
    effects = await h.do(alice, cmd.OpenDm(person=bruno.id))
    assert one(replies(effects, ev.Conversation)).conv.stream == stream
    assert Attach(stream) in effects
    # Nothing reaches Bruno until a message is written.
    assert not [e for e in effects if isinstance(e, Publish)]
    assert not controls(effects, AttachStream)
    # Asking again answers the same conversation, without attaching twice.
    again = await h.do(alice, cmd.OpenDm(person=bruno.id))
    assert one(replies(again, ev.Conversation)).conv.stream == stream
    assert not [e for e in again if isinstance(e, Attach)]
    # The first message still announces it to Bruno.
    first = await h.do(alice, cmd.Send(stream=stream, text="Salut", local_id="p1"))
    assert controls(first, AttachStream) == [AttachStream(person=bruno.id, stream=stream)]


async def test_a_stream_is_the_same_whoever_starts(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    assert dm_stream(alice.id, bruno.id) == dm_stream(bruno.id, alice.id)
    reversed_stream = f"d:{max(alice.id, bruno.id)}:{min(alice.id, bruno.id)}"
    exc = await h.fails(alice, cmd.Send(stream=reversed_stream, text="x", local_id="p"))
    assert exc.code == "stream_unknown"


async def test_one_cannot_write_in_someone_elses_conversation(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    chloe = await h.visitor("Chloe")
    stream = dm_stream(alice.id, bruno.id)
    await h.send(alice, stream, "entre nous")
    exc = await h.fails(chloe, cmd.Send(stream=stream, text="coucou", local_id="c"))
    assert exc.code == "stream_unknown"
    for command in (
        cmd.History(stream=stream, before=5),
        cmd.Read(stream=stream, seq=1),
        cmd.Typing(stream=stream),
    ):
        assert (await h.fails(chloe, command)).code == "stream_unknown"


async def test_writing_to_oneself_is_refused(h: Harness) -> None:
    alice = await h.visitor("Alice")
    exc = await h.fails(alice, cmd.OpenDm(person=alice.id))
    assert (exc.code, exc.field) == ("pm_self", "person")
    exc = await h.fails(
        alice, cmd.Send(stream=f"d:{alice.id}:{alice.id}", text="moi", local_id="m")
    )
    assert exc.code == "pm_self"


async def test_writing_to_someone_who_left_is_refused(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await h.end(bruno)
    stream = dm_stream(alice.id, bruno.id)
    exc = await h.fails(alice, cmd.Send(stream=stream, text="tu es là ?", local_id="p"))
    assert (exc.code, exc.field) == ("person_unknown", "person")
    assert (await h.fails(alice, cmd.OpenDm(person=bruno.id))).code == "person_unknown"
    assert (await h.fails(alice, cmd.OpenDm(person="inconnu"))).code == "person_unknown"


async def test_an_open_conversation_ends_with_the_other_session(h: Harness) -> None:
    alice, stream = await h.conversation_with_the_gone()
    exc = await h.fails(alice, cmd.Send(stream=stream, text="encore", local_id="p2"))
    assert (exc.code, exc.field) == ("person_unknown", "stream")
    # The conversation can still be read, marked as gone.
    h.disconnect(alice)
    welcome = one(replies(await h.connect(alice), ev.Welcome))
    assert [(c.stream, c.gone) for c in welcome.conversations] == [(stream, True)]


async def test_policy_everyone_lets_anyone_write(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    assert not (await h.send(alice, dm_stream(alice.id, bruno.id), "Salut")).dup


async def test_policy_shared_room_needs_a_shared_room(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await pm_policy(h, bruno, PmPolicy.SHARED_ROOM)
    stream = dm_stream(alice.id, bruno.id)
    await h.join(alice, "general")
    await h.join(bruno, "cuisine")
    exc = await h.fails(alice, cmd.Send(stream=stream, text="Salut", local_id="p1"))
    assert (exc.code, exc.field) == ("pm_refused", "person")
    assert (await h.fails(alice, cmd.OpenDm(person=bruno.id))).code == "pm_refused"
    assert await h.store.stream_head(stream) is None  # nothing was stored
    await h.join(alice, "cuisine")
    assert not (await h.send(alice, stream, "Salut", local_id="p1")).dup


async def test_policy_nobody_refuses_new_conversations(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await pm_policy(h, bruno, PmPolicy.NOBODY)
    await h.join(alice, "general")
    await h.join(bruno, "general")
    stream = dm_stream(alice.id, bruno.id)
    exc = await h.fails(alice, cmd.Send(stream=stream, text="Salut", local_id="p1"))
    assert exc.code == "pm_refused"
    assert (await h.fails(alice, cmd.OpenDm(person=bruno.id))).code == "pm_refused"


async def test_policy_nobody_still_allows_replying_to_whom_one_wrote(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await pm_policy(h, alice, PmPolicy.NOBODY)
    stream = dm_stream(alice.id, bruno.id)
    await h.send(alice, stream, "Salut Bruno")  # Alice wrote first
    assert not (await h.send(bruno, stream, "Salut Alice")).dup
    # Also from a new connection of Bruno's that has not been attached yet.
    h.disconnect(bruno)
    await h.connect(bruno)
    assert stream in bruno.a.streams
    bruno.a.streams.discard(stream)
    assert not (await h.send(bruno, stream, "toujours là")).dup


@pytest.mark.parametrize("blocker", ["alice", "bruno"])
async def test_a_block_either_way_refuses_private_messages(h: Harness, blocker: str) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    who, whom = (alice, bruno) if blocker == "alice" else (bruno, alice)
    await h.do(who, cmd.Block(person=whom.id))
    stream = dm_stream(alice.id, bruno.id)
    for sender in (alice, bruno):
        exc = await h.fails(sender, cmd.Send(stream=stream, text="Salut", local_id="p"))
        assert exc.code == "pm_refused"
    other = bruno if blocker == "alice" else alice
    assert (
        await h.fails(alice if other is bruno else bruno, cmd.OpenDm(person=other.id))
    ).code == ("pm_refused")


async def test_a_block_closes_an_open_conversation_both_ways(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    stream = dm_stream(alice.id, bruno.id)
    await h.send(alice, stream, "Salut")
    await h.send(bruno, stream, "Salut")
    await h.do(alice, cmd.Block(person=bruno.id))
    for sender in (alice, bruno):
        exc = await h.fails(sender, cmd.Send(stream=stream, text="encore", local_id="x"))
        assert exc.code == "pm_refused"
    # The blocked person cannot even show that they are typing.
    h.clock.advance(seconds=2)
    assert not await h.do(bruno, cmd.Typing(stream=stream))


async def test_a_block_made_while_the_blocked_person_was_away_holds(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    stream = dm_stream(alice.id, bruno.id)
    await h.send(alice, stream, "Salut")
    h.disconnect(bruno)
    await h.do(alice, cmd.Block(person=bruno.id))
    await h.connect(bruno)
    assert alice.id in bruno.a.hidden
    exc = await h.fails(bruno, cmd.Send(stream=stream, text="pourquoi ?", local_id="b"))
    assert exc.code == "pm_refused"


async def test_typing_reaches_only_the_other_person_and_is_throttled(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    stream = dm_stream(alice.id, bruno.id)
    await h.send(alice, stream, "Salut")
    effects = await h.do(alice, cmd.Typing(stream=stream))
    publish = one([e for e in effects if isinstance(e, Publish)])
    assert publish.event == ev.TypingNotice(stream=stream, person=alice.id)
    assert publish.exclude == frozenset({alice.id})
    assert not await h.do(alice, cmd.Typing(stream=stream))  # within a second: dropped
    h.clock.advance(seconds=1)
    assert await h.do(alice, cmd.Typing(stream=stream))
    await h.join(alice, "general")
    assert (await h.fails(alice, cmd.Typing(stream="r:general"))).code == "stream_unknown"


async def test_unread_counts_in_welcome(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    stream = dm_stream(alice.id, bruno.id)
    for text in ("un", "deux", "trois"):
        await h.send(alice, stream, text)

    async def unread(person: Person) -> list[tuple[str, int, int]]:
        h.disconnect(person)
        welcome = one(replies(await h.connect(person), ev.Welcome))
        return [(c.stream, c.unread, c.last_seq) for c in welcome.conversations]

    assert await unread(bruno) == [(stream, 3, 3)]
    assert await unread(alice) == [(stream, 0, 3)]  # one's own messages are read
    await h.do(bruno, cmd.Read(stream=stream, seq=2))
    assert await unread(bruno) == [(stream, 1, 3)]
    await h.do(bruno, cmd.Read(stream=stream, seq=1))  # a read mark never goes back
    assert await unread(bruno) == [(stream, 1, 3)]
    await h.send(bruno, stream, "quatre")  # replying marks everything read
    assert await unread(bruno) == [(stream, 0, 4)]
    assert await unread(alice) == [(stream, 1, 4)]


async def test_welcome_lists_conversations_most_recent_first(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    chloe = await h.visitor("Chloe")
    with_bruno = dm_stream(alice.id, bruno.id)
    with_chloe = dm_stream(alice.id, chloe.id)
    await h.send(bruno, with_bruno, "1")
    h.clock.advance(seconds=1)
    await h.send(chloe, with_chloe, "2")
    h.disconnect(alice)
    effects = await h.connect(alice)
    welcome = one(replies(effects, ev.Welcome))
    assert [c.stream for c in welcome.conversations] == [with_chloe, with_bruno]
    assert [c.other.id for c in welcome.conversations] == [chloe.id, bruno.id]
    attached = {e.stream for e in effects if isinstance(e, Attach)}
    assert attached == {with_bruno, with_chloe}


async def test_an_unanswered_dm_is_not_listed_for_the_other_person(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await h.do(alice, cmd.OpenDm(person=bruno.id))
    h.disconnect(bruno)
    welcome = one(replies(await h.connect(bruno), ev.Welcome))
    assert welcome.conversations == []
    h.disconnect(alice)
    welcome = one(replies(await h.connect(alice), ev.Welcome))
    assert [c.other.id for c in welcome.conversations] == [bruno.id]


async def test_a_refused_private_message_is_not_stored(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await pm_policy(h, bruno, PmPolicy.NOBODY)
    stream = dm_stream(alice.id, bruno.id)
    with pytest.raises(errors.PrivateMessageRefused):
        await h.do(alice, cmd.Send(stream=stream, text="Salut", local_id="p"))
    assert await h.store.conversations_of(bruno.id) == []
    assert stream not in alice.a.streams
