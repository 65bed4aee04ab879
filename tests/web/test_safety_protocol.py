"""Reports, sanctions and automatic protections through the real WebSocket protocol."""

from __future__ import annotations

from typing import Any

from causette.core.cases import Action, Moderator, Role
from causette.core.clock import FakeClock
from causette.web.keys import MODERATION, NODE, SERVICE
from tests.conftest import RunningServer, ServerFactory
from tests.support.client import Event, ProtocolClient


async def moderator(server: RunningServer, login: str = "modo") -> Moderator:
    m = Moderator(
        id="m-" + login,
        login=login,
        password_hash="-",
        totp_secret="-",
        role=Role.MODERATOR,
        created_at=0,
    )
    await server.app[NODE].store.add_moderator(m)
    return m


async def decide(
    server: RunningServer, m: Moderator, case: str, action: Action, **kwargs: Any
) -> None:
    effects = await server.app[MODERATION].decide(m, case, action, **kwargs)
    await server.app[NODE].run(effects)


async def post_status(client: ProtocolClient, path: str, body: Any) -> tuple[int, str]:
    """The status and the Set-Cookie header of a POST answered without a body."""
    async with client.http.post(
        client.base_url + path, json=body, headers={"Origin": client.origin}
    ) as resp:
        return resp.status, resp.headers.get("Set-Cookie", "")


async def report(
    client: ProtocolClient, target: str, ident: str, category: str = "harassment"
) -> Event:
    await client.send(
        {
            "type": "report",
            "target": target,
            "id": ident,
            "category": category,
            "explanation": "Voir le message.",
            "good_faith": True,
            "ref": "r1",
        }
    )
    return await client.expect(lambda e: e["type"] in ("reported", "error"))


async def test_a_reported_message_is_kept_as_evidence_after_the_purge(
    start_server: ServerFactory,
) -> None:
    clock = FakeClock()
    server: RunningServer = await start_server(clock=clock)
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    ack = await alice.say("r:general", "une insulte")
    answer = await report(bruno, "message", ack["id"])
    assert answer["type"] == "reported"
    assert answer["case"].startswith("C-")
    status, case = await bruno.get(f"/api/cases/{answer['case']}")
    assert (status, case["status"], case["category"]) == (200, "open", "harassment")
    # Hours pass: the message is purged for everyone, the case keeps it.
    clock.advance(minutes=181)
    await server.app[SERVICE].purge()
    store = server.app[NODE].store
    assert await store.get_message(ack["id"]) is None
    evidence = {e.kind: e.data for e in await store.evidence_of(answer["case"])}
    assert evidence["message"]["text"] == "une insulte"
    # The page for a case code a stranger guesses does not exist.
    status, body = await bruno.get("/api/cases/C-NOTACASE")
    assert (status, body["errors"][0]["code"]) == (404, "case_unknown")


async def test_a_mute_applies_at_once_and_says_why(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    ack = await alice.say("r:general", "provocation")
    case = (await report(bruno, "message", ack["id"]))["case"]
    m = await moderator(server)
    await decide(server, m, case, Action.MUTE, minutes=10, facts="Provocations répétées.")
    notice = (await alice.expect("decision"))["decision"]
    assert (notice["action"], notice["facts"], notice["automated"]) == (
        "mute",
        "Provocations répétées.",
        False,
    )
    refused = await alice.say("r:general", "encore")
    assert (refused["type"], refused["code"]) == ("error", "muted")
    assert refused["details"]["decision"] == notice["id"]
    outcome = await bruno.expect("case_outcome")
    assert (outcome["case"], outcome["outcome"]) == (case, "actioned")
    # The decision is readable by its code, with its appeal deadline.
    status, view = await alice.get(f"/api/decisions/{notice['id']}")
    assert (status, view["action"], view["appeal"]) == (200, "mute", None)


async def test_a_ban_disconnects_at_once_and_refuses_to_come_back(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    ack = await alice.say("r:general", "menace")
    case = (await report(bruno, "message", ack["id"], "threat"))["case"]
    await decide(server, await moderator(server), case, Action.BAN, facts="Menace de violence.")
    notice = await alice.expect("decision")
    assert notice["decision"]["action"] == "ban"
    bye = await alice.expect("bye")
    assert (bye["code"], bye["reconnect"]) == ("excluded", False)
    assert await alice.wait_closed(timeout=1.0) is not None
    left = await bruno.expect_msg("r:general", lambda e: e["kind"] == "leave")
    assert left["author"] == alice.me["id"]
    # Same network (all tests come from 127.0.0.1): entry refused, with the decision.
    again = server.client()
    status, body = await again.post(
        "/api/session",
        {
            "pseudonym": "Alice2",
            "gender": "f",
            "age": 30,
            "postal_code": "75011",
            "accept_rules": True,
        },
    )
    assert status == 403
    error = body["errors"][0]
    assert (error["code"], error["details"]["decision"]) == ("banned", notice["decision"]["id"])
    # The page hands the ban token back: it becomes an HttpOnly cookie.
    status, cookie = await post_status(alice, "/api/ban-cookie", {"token": notice["ban_token"]})
    assert status == 204
    assert cookie.startswith("causette_ban=" + notice["ban_token"])
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    status, cookie = await post_status(alice, "/api/ban-cookie", {"token": "D-FORGED.0000"})
    assert (status, cookie) == (400, "")


async def test_one_clients_flood_does_not_slow_the_others(start_server: ServerFactory) -> None:
    server: RunningServer = await start_server(
        protections=True,
        safety={
            "new_session_minutes": 0,
            "message_burst": 3,
            "message_rate": 0.001,
            "network_message_burst": 1000,
            "network_message_rate": 1000.0,
        },
    )
    flooder = await server.visitor("Flooder")
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    for c in (flooder, alice, bruno):
        await c.join("general")
    answers = [await flooder.say("r:general", f"flood {i}") for i in range(10)]
    assert [a["type"] for a in answers].count("ack") == 3
    limited = [a for a in answers if a["type"] == "error"]
    assert {a["code"] for a in limited} == {"rate_limited"}
    assert all(a["retryable"] for a in limited)
    # Meanwhile Alice is heard at once, and Bruno receives her message.
    ack = await alice.say("r:general", "je peux parler")
    assert ack["type"] == "ack"
    got = await bruno.expect_msg("r:general", lambda e: e["text"] == "je peux parler")
    assert got["author"] == alice.me["id"]


async def test_too_many_connections_from_one_network_get_a_reason(
    start_server: ServerFactory,
) -> None:
    server: RunningServer = await start_server(
        protections=True, safety={"max_connections_per_network": 2}
    )
    first = await server.visitor("Alice")
    second = await server.visitor("Bruno")
    third = server.client()
    await third.enter("Chloe")
    await third.connect(hello=False)
    bye = await third.expect("bye")
    assert (bye["code"], bye["reconnect"]) == ("too_many_connections", False)
    assert await third.wait_closed() is not None
    # The connections already open are untouched.
    await first.join("general")
    await second.join("general")
    assert (await first.say("r:general", "toujours là"))["type"] == "ack"
    await second.expect_msg("r:general", lambda e: e["text"] == "toujours là")
