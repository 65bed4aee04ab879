"""Blocks: a blocked person and the person who blocked them disappear from each other's lists."""

from __future__ import annotations

from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.effects import Publish, SetHidden
from tests.core.harness import Harness, HarnessFactory, controls, one, replies


async def test_block_hides_both_people_from_each_other(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await h.visitor("Chloe")
    assert await h.names(alice) == ["Alice", "Bruno", "Chloe"]

    effects = await h.do(alice, cmd.Block(person=bruno.id))
    blocks = one(replies(effects, ev.Blocked))
    assert blocks.people == [ev.PersonRef(id=bruno.id, name="Bruno")]
    # Alice's page drops Bruno at once; Bruno's node is told to hide Alice.
    assert ev.Presence(remove=[bruno.id]) in replies(effects, ev.Presence)
    assert controls(effects, SetHidden) == [SetHidden(person=bruno.id, other=alice.id, hidden=True)]
    assert alice.a.hidden == {bruno.id}
    assert bruno.a.hidden == {alice.id}

    assert await h.names(alice) == ["Alice", "Chloe"]
    assert await h.names(bruno) == ["Bruno", "Chloe"]


async def test_blocks_survive_a_reconnection(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await h.do(alice, cmd.Block(person=bruno.id))
    h.disconnect(alice)
    h.disconnect(bruno)
    welcome = one(replies(await h.connect(alice), ev.Welcome))
    assert welcome.blocked == [ev.PersonRef(id=bruno.id, name="Bruno")]
    assert one(replies(await h.connect(bruno), ev.Welcome)).blocked == []
    assert await h.names(alice) == ["Alice"]
    assert await h.names(bruno) == ["Bruno"]


async def test_people_in_a_room_exclude_hidden_people(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    for person in (alice, bruno):
        await h.join(person, "general")
    await h.do(bruno, cmd.Block(person=alice.id))
    assert await h.names(alice, scope="room", room="general") == ["Alice"]
    assert await h.names(bruno, scope="room", room="general") == ["Bruno"]


async def test_a_blocked_person_is_not_announced_to_the_blocker(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await h.join(alice, "general")
    await h.do(alice, cmd.Block(person=bruno.id))
    # Bruno joining the room or coming back online is not shown to Alice.
    joined = [e for e in await h.join(bruno, "general") if isinstance(e, Publish)]
    added = [e for e in joined if isinstance(e.event, ev.Members) and e.event.add]
    assert [e.event for e in added] == [ev.Members(room="general", add=[bruno.session.profile])]
    assert all(alice.id in e.exclude for e in added)
    h.disconnect(bruno)
    h.directory.gone(bruno.id)  # his offline grace ran out
    came = [e for e in await h.connect(bruno) if isinstance(e, Publish)]
    announced = [e for e in came if isinstance(e.event, ev.Presence | ev.Members)]
    assert len(announced) == 2  # the lobby and the room
    assert all(alice.id in e.exclude for e in announced)


async def test_unblock_shows_the_person_again(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await h.do(alice, cmd.Block(person=bruno.id))
    effects = await h.do(alice, cmd.Unblock(person=bruno.id))
    assert one(replies(effects, ev.Blocked)).people == []
    assert controls(effects, SetHidden) == [
        SetHidden(person=bruno.id, other=alice.id, hidden=False)
    ]
    assert alice.a.hidden == set()
    assert bruno.a.hidden == set()
    assert await h.names(alice) == ["Alice", "Bruno"]
    assert await h.names(bruno) == ["Alice", "Bruno"]


async def test_unblock_keeps_people_hidden_while_the_other_side_blocks(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await h.do(alice, cmd.Block(person=bruno.id))
    await h.do(bruno, cmd.Block(person=alice.id))
    effects = await h.do(alice, cmd.Unblock(person=bruno.id))
    assert controls(effects, SetHidden) == [SetHidden(person=bruno.id, other=alice.id, hidden=True)]
    assert alice.a.hidden == {bruno.id}
    assert bruno.a.hidden == {alice.id}
    assert await h.names(alice) == ["Alice"]
    assert await h.names(bruno) == ["Bruno"]


async def test_blocking_oneself_is_refused(h: Harness) -> None:
    alice = await h.visitor("Alice")
    exc = await h.fails(alice, cmd.Block(person=alice.id))
    assert (exc.code, exc.field) == ("block_self", "person")


async def test_blocking_an_unknown_person_is_refused(h: Harness) -> None:
    alice = await h.visitor("Alice")
    exc = await h.fails(alice, cmd.Block(person="personne"))
    assert (exc.code, exc.field) == ("person_unknown", "person")


async def test_the_number_of_blocks_is_limited(make_harness: HarnessFactory) -> None:
    h = make_harness(sessions={"max_blocks": 2})
    alice = await h.visitor("Alice")
    others = [await h.visitor(name) for name in ("Bruno", "Chloe", "Denis")]
    await h.do(alice, cmd.Block(person=others[0].id))
    await h.do(alice, cmd.Block(person=others[1].id))
    exc = await h.fails(alice, cmd.Block(person=others[2].id))
    assert (exc.code, exc.field) == ("too_many_blocks", "person")
    assert "2" in exc.message("fr")
    # Blocking someone already blocked is not a new block.
    assert (
        len(one(replies(await h.do(alice, cmd.Block(person=others[0].id)), ev.Blocked)).people) == 2
    )
    await h.do(alice, cmd.Unblock(person=others[0].id))
    blocks = one(replies(await h.do(alice, cmd.Block(person=others[2].id)), ev.Blocked))
    assert [p.name for p in blocks.people] == ["Chloe", "Denis"]
