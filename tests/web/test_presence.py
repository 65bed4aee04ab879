"""Who is here: room members, the site list, blocks, live counts — as clients see them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from causette.core.effects import PRESENCE_CHANNEL
from causette.core.models import Session
from causette.core.ports import Envelope
from causette.web.keys import NODE
from causette.web.node import Node
from tests.conftest import RunningServer, ServerFactory
from tests.support.client import ProtocolClient


async def people(c: ProtocolClient, **query: object) -> list[str]:
    """Names in a fresh ``people`` answer (watching the site list unless told otherwise)."""
    await c.send({"type": "people", **query})
    answer = await c.expect("people")
    return [p["name"] for p in answer["items"]]


def added(c: ProtocolClient, kind: str) -> list[str]:
    """Ids in every ``add`` of ``kind`` events received so far."""
    return [p["id"] for e in c.events if e["type"] == kind for p in e.get("add", [])]


async def test_room_members_come_and_go(server: RunningServer) -> None:
    bruno = await server.visitor("Bruno")
    await bruno.join("general")
    alice = await server.visitor("Alice", gender="f", age=34, postal_code="69001")
    await alice.join("general")
    members = await bruno.expect(
        lambda e: e["type"] == "members" and e.get("add", [{}])[0].get("name") == "Alice"
    )
    assert members["room"] == "general"
    assert members["add"] == [alice.me]
    assert members["add"][0]["commune"] == "Lyon 1er Arrondissement"
    assert sorted(await people(bruno, scope="room", room="general")) == ["Alice", "Bruno"]

    await alice.send({"type": "leave", "room": "general"})
    assert (await alice.expect("left"))["room"] == "general"
    members = await bruno.expect(lambda e: e["type"] == "members" and bool(e.get("remove")))
    assert members["remove"] == [alice.me["id"]]
    assert await people(bruno, scope="room", room="general") == ["Bruno"]

    await alice.join("general")
    await bruno.expect(lambda e: e["type"] == "members" and bool(e.get("add")))
    assert await alice.quit() == 204
    members = await bruno.expect(lambda e: e["type"] == "members" and bool(e.get("remove")))
    assert members["remove"] == [alice.me["id"]]
    assert await people(bruno, scope="room", room="general") == ["Bruno"]


async def test_site_watchers_see_people_arrive_and_leave(server: RunningServer) -> None:
    chloe = await server.visitor("Chloe")
    assert await people(chloe, scope="site", watch=True) == ["Chloe"]
    dora = await server.visitor("Dora", gender="x", age=52)
    presence = await chloe.expect("presence")
    assert presence["add"] == [dora.me]
    assert await people(chloe, scope="site", watch=True) == ["Chloe", "Dora"]
    await dora.quit()
    presence = await chloe.expect("presence")
    assert presence["remove"] == [dora.me["id"]]
    assert await people(chloe) == ["Chloe"]


async def test_stopping_to_watch_the_site_stops_presence(server: RunningServer) -> None:
    chloe = await server.visitor("Chloe")
    await chloe.join("general")
    await people(chloe, scope="site", watch=True)
    await people(chloe, scope="room", room="general", watch=True)
    await server.visitor("Dora")
    eve = await server.visitor("Eve")
    await eve.join("general")  # Chloe hears of Eve through the room, after Dora's arrival
    members = await chloe.expect(lambda e: e["type"] == "members" and bool(e.get("add")))
    assert members["add"] == [eve.me]
    assert not [e for e in chloe.events if e["type"] == "presence"]


async def test_people_filters(server: RunningServer) -> None:
    await server.visitor("Anna", gender="f", age=25, postal_code="69001")
    await server.visitor("Basile", gender="m", age=26, postal_code="38000")
    await server.visitor("Clara", gender="f", age=51, postal_code="75011")
    me = await server.visitor("Moi", gender="x", age=40, postal_code="69002")
    assert await people(me, gender="f") == ["Anna", "Clara"]
    assert await people(me, age_band="18-25") == ["Anna"]
    assert await people(me, age_band="26-35") == ["Basile"]
    assert await people(me, age_band="51+") == ["Clara"]
    assert await people(me, dep="69") == ["Anna", "Moi"]
    assert await people(me, region="84") == ["Anna", "Basile", "Moi"]
    assert await people(me, near=True) == ["Moi", "Anna", "Basile", "Clara"]
    await me.send({"type": "people", "limit": 2})
    answer = await me.expect("people")
    assert ([p["name"] for p in answer["items"]], answer["total"]) == (["Anna", "Basile"], 4)
    await me.send({"type": "people", "age_band": "12-17"})
    assert (await me.expect("error"))["code"] == "bad_field"


async def test_blocked_people_vanish_from_each_others_lists(start_server: ServerFactory) -> None:
    server: RunningServer = await start_server(sessions={"offline_grace_seconds": 0})
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await bruno.join("general")
    assert await people(bruno, scope="site", watch=True) == ["Alice", "Bruno"]
    assert await people(alice, scope="site", watch=True) == ["Alice", "Bruno"]

    await bruno.send({"type": "block", "person": alice.me["id"]})
    blocks = await bruno.expect("blocks")
    assert blocks["people"] == [{"id": alice.me["id"], "name": "Alice"}]
    assert (await bruno.expect("presence"))["remove"] == [alice.me["id"]]
    # Alice's list drops Bruno at once, though she did nothing.
    assert (await alice.expect("presence"))["remove"] == [bruno.me["id"]]
    assert await people(alice) == ["Alice"]
    assert await people(bruno) == ["Bruno"]

    # Alice joins Bruno's room, leaves the site and comes back: Bruno is never told.
    await alice.join("general")
    await alice.disconnect()
    await alice.connect()
    await alice.join("general")
    chloe = await server.visitor("Chloe")  # a marker: what Bruno hears after Alice's moves
    await chloe.join("general")
    assert (await bruno.expect(lambda e: e["type"] == "members" and bool(e.get("add"))))["add"] == [
        chloe.me
    ]
    presence_adds = added(bruno, "presence")
    assert chloe.me["id"] in presence_adds
    assert alice.me["id"] not in presence_adds
    assert alice.me["id"] not in added(bruno, "members")
    assert bruno.me["id"] not in added(alice, "presence") + added(alice, "members")
    assert sorted(await people(bruno, scope="room", room="general")) == ["Bruno", "Chloe"]
    assert await people(alice) == ["Alice", "Chloe"]

    # Private messages are refused both ways.
    stream = "d:" + ":".join(sorted([alice.me["id"], bruno.me["id"]]))
    for sender in (alice, bruno):
        refused = await sender.say(stream, "coucou")
        assert (refused["type"], refused["code"]) == ("error", "pm_refused")

    # Unblocking shows them to each other again.
    await bruno.send({"type": "unblock", "person": alice.me["id"]})
    assert (await bruno.expect("blocks"))["people"] == []
    assert await people(bruno) == ["Alice", "Bruno", "Chloe"]
    assert await people(alice) == ["Alice", "Bruno", "Chloe"]


async def test_a_private_conversation_reaches_the_other_person(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    stream = "d:" + ":".join(sorted([alice.me["id"], bruno.me["id"]]))
    ack = await alice.say(stream, "Salut Bruno")
    assert (ack["type"], ack["seq"]) == ("ack", 1)
    conv = await bruno.expect("conv")
    assert (conv["conv"]["stream"], conv["conv"]["other"]) == (stream, alice.me)
    sync = await bruno.expect(lambda e: e["type"] == "sync" and e["stream"] == stream)
    assert [m["text"] for m in sync["items"]] == ["Salut Bruno"]
    reply = await bruno.say(stream, "Salut Alice")
    got = await alice.expect_msg(stream, lambda e: e["id"] == reply["id"])
    assert got["seq"] == 2
    await bruno.send({"type": "typing", "stream": stream})
    typing = await alice.expect("typing")
    assert typing == {"type": "typing", "stream": stream, "person": bruno.me["id"]}
    # Unread counts: Alice has not read Bruno's reply yet.
    await alice.disconnect()
    welcome = await alice.connect()
    assert welcome is not None
    assert [(c["stream"], c["unread"]) for c in welcome["conversations"]] == [(stream, 1)]


async def test_member_counts_are_sent_when_they_change(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    welcome = next(e for e in alice.events if e["type"] == "welcome")
    # The page's table: every count from the welcome, then each ``counts`` (only what changed).
    table = {room["slug"]: room.get("count", 0) for room in welcome["rooms"]}  # zeros left out
    assert len(table) > 2

    def counts_reach(general: int, cuisine: int) -> Callable[[dict[str, Any]], bool]:
        def match(e: dict[str, Any]) -> bool:
            if e["type"] != "counts":
                return False
            assert set(e.get("rooms", {})) <= set(table)
            table.update(e.get("rooms", {}))
            return (table["general"], table["cuisine"]) == (general, cuisine)

        return match

    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    await bruno.join("cuisine")
    # The node sends counts at most once a second: wait for the one that has everything.
    counts = await alice.expect(counts_reach(2, 1), timeout=5)
    assert counts["online"] == 2
    await bruno.quit()
    # A room that empties is counted 0, not left at its last count.
    counts = await alice.expect(counts_reach(1, 0), timeout=5)
    assert counts["online"] == 1
    assert sum(table.values()) == 1
    # Only what changed is sent: the rooms nobody entered are not repeated.
    assert set(counts["rooms"]) <= {"general", "cuisine"}


async def test_a_quick_reconnection_is_not_undone_by_the_offline_timer(
    start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offline grace ends while the person is already back: they must stay listed."""
    server: RunningServer = await start_server(sessions={"offline_grace_seconds": 0})
    node: Node = server.app[NODE]
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    # Hold the offline job in its store read until Alice is back.
    looked_up = asyncio.Event()
    release = asyncio.Event()
    get_session = node.store.get_session

    async def slow_get_session(person_id: str) -> Session | None:
        looked_up.set()
        await release.wait()
        return await get_session(person_id)

    monkeypatch.setattr(node.store, "get_session", slow_get_session)
    await alice.disconnect()
    async with asyncio.timeout(5):
        await looked_up.wait()  # the grace (0 s) ran out: the offline job started
    await alice.connect()
    release.set()
    await people(bruno)  # the job has finished by now (it only needed the store read)
    await server.visitor("Chloe")
    assert await people(bruno) == ["Alice", "Bruno", "Chloe"]
    assert node.directory.is_here(alice.me["id"])


async def test_a_node_that_stops_hearing_its_own_beats_reconnects_its_bus(
    server: RunningServer,
) -> None:
    """A subscriber connection can go silent without an error; the node notices that its own
    beats no longer come back and has the bus connect anew (after three unheard beats)."""
    node: Node = server.app[NODE]
    reconnects: list[int] = []
    node.bus.reconnect = lambda: reconnects.append(1)  # type: ignore[method-assign]
    for _ in range(5):  # heard: nothing to do
        await node.cluster.tick()
    assert reconnects == []
    publish = node.bus.publish

    def deaf(envelope: Envelope) -> None:
        if envelope.channel != PRESENCE_CHANNEL:
            publish(envelope)

    node.bus.publish = deaf  # type: ignore[method-assign]
    for _ in range(3):
        await node.cluster.tick()
    assert reconnects == []
    await node.cluster.tick()
    assert reconnects == [1]
    node.bus.publish = publish  # type: ignore[method-assign]
    for _ in range(5):  # heard again
        await node.cluster.tick()
    assert reconnects == [1]
