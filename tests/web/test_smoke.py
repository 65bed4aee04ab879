from __future__ import annotations

from tests.conftest import RunningServer


async def test_two_visitors_talk_in_a_room(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno", gender="m", age=41, postal_code="69001")
    await alice.join("general")
    await bruno.join("general")
    ack = await alice.say("r:general", "Bonjour !")
    assert ack["type"] == "ack"
    got = await bruno.expect_msg("r:general", lambda e: e["kind"] == "text")
    assert (got["text"], got["name"], got["seq"]) == ("Bonjour !", "Alice", ack["seq"])
