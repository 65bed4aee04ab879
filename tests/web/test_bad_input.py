"""The WebSocket protocol against bad input (docs/protocol.md, "Limits and bad input"): every
refusal has its code, the connection stays usable, and nothing acknowledged is lost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from causette.core.clock import FakeClock
from tests.conftest import RunningServer, ServerFactory
from tests.support.client import Event, ProtocolClient

MAX_CHARS = 50
MAX_FRAME = 1024
HARD_FRAME = 4096
SMALL_LIMITS: dict[str, dict[str, Any]] = {
    "messages": {"max_chars": MAX_CHARS},
    "limits": {
        "max_frame_bytes": MAX_FRAME,
        "hard_frame_bytes": HARD_FRAME,
        # Flood control has its own tests below; here a fast run must not trip it.
        "commands_per_second": 10000,
        "commands_burst": 10000,
    },
}


@dataclass
class Room:
    server: RunningServer
    alice: ProtocolClient
    bruno: ProtocolClient
    acked: list[str]  # texts acknowledged so far, in order

    async def say(self, text: str) -> Event:
        ack = await self.alice.say("r:general", text)
        assert ack["type"] == "ack", ack
        self.acked.append(text)
        return ack

    async def check_still_working(self) -> None:
        """Alice can still write, Bruno still hears her, and a newcomer finds every message
        that was acknowledged."""
        text = f"toujours là {len(self.acked)}"
        ack = await self.say(text)
        got = await self.bruno.expect_msg("r:general", lambda e: e["text"] == text)
        assert got["seq"] == ack["seq"]
        chloe = await self.server.visitor(f"Chloe{len(self.acked)}")
        sync = await chloe.join("general")
        texts = [m["text"] for m in sync["items"] if m["kind"] == "text"]
        assert texts == self.acked
        await chloe.close()


async def open_room(server: RunningServer) -> Room:
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno", gender="m", age=41, postal_code="69001")
    await alice.join("general")
    await bruno.join("general")
    room = Room(server, alice, bruno, [])
    await room.say("avant")
    await bruno.expect_msg("r:general", lambda e: e["text"] == "avant")
    return room


@pytest.fixture
async def room(start_server: ServerFactory) -> Room:
    server: RunningServer = await start_server(**SMALL_LIMITS)
    return await open_room(server)


def send(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "send", "stream": "r:general", "text": text, "local_id": "bad-1", **extra}


# (payload, expected code, expected field). A dict is sent as JSON text, bytes as a raw TEXT
# frame (not necessarily UTF-8).
BAD_FRAMES: dict[str, tuple[dict[str, Any] | bytes, str, str | None]] = {
    "not JSON": (b'{"type": "send", "text": ', "bad_json", None),
    "empty frame": (b"", "bad_json", None),
    "invalid UTF-8": (b"\xff\xfe", "bad_utf8", None),
    "invalid UTF-8 inside a string": (
        b'{"type":"send","stream":"r:general","text":"\xc3\x28","local_id":"u1"}',
        "bad_utf8",
        None,
    ),
    "a JSON array": (b'[{"type": "join", "room": "general"}]', "unknown_type", "type"),
    "a JSON string": (b'"join"', "unknown_type", "type"),
    "missing type": ({"room": "general"}, "unknown_type", "type"),
    "unknown type": ({"type": "dance"}, "unknown_type", "type"),
    "type not a string": ({"type": 7}, "unknown_type", "type"),
    "field of the wrong type": ({"type": "join", "room": 5}, "bad_field", "room"),
    "unknown field": ({"type": "join", "room": "general", "colour": "red"}, "bad_field", "colour"),
    "missing field": ({"type": "join"}, "bad_field", "room"),
    "value out of range": (
        {"type": "history", "stream": "r:general", "before": 3, "limit": 201},
        "bad_field",
        "limit",
    ),
    "negative seq": ({"type": "read", "stream": "r:general", "seq": -1}, "bad_field", "seq"),
    "malformed local_id": (send("x", local_id="a b"), "bad_field", "local_id"),
    "ref too long": ({"type": "join", "room": "general", "ref": "r" * 65}, "bad_field", "ref"),
    "frame above max_frame_bytes": (send("x" * (MAX_FRAME + 10)), "frame_too_large", None),
    "text above max_chars": (send("é" * (MAX_CHARS + 1)), "message_too_long", "text"),
    "empty text": (send(""), "message_empty", "text"),
    "blank text": (send(" \n\t "), "message_empty", "text"),
    "control character": (send("a\x1bb"), "message_forbidden_chars", "text"),
    "bidi override": (send("abc\u202edef"), "message_forbidden_chars", "text"),
    "hello twice": ({"type": "hello", "v": 1}, "already_hello", None),
    "unknown room": ({"type": "join", "room": "nulle-part"}, "room_unknown", "room"),
    "room not joined": (
        {"type": "send", "stream": "r:cuisine", "text": "x", "local_id": "n1"},
        "room_not_joined",
        "stream",
    ),
}


async def test_every_bad_frame_is_refused_and_the_connection_stays_usable(room: Room) -> None:
    """One connection receives every bad frame of the table in turn (one server for all: a
    server per case would cost ten times as long). After each, Alice still writes, Bruno
    still hears her and a newcomer still finds every acknowledged message."""
    alice = room.alice
    for case, (payload, code, field) in BAD_FRAMES.items():
        if isinstance(payload, bytes):
            await alice.send_text_frame(payload)
        else:
            await alice.send(payload)
        error = await alice.expect("error")
        assert (error["code"], error.get("field")) == (code, field), (case, error)
        assert error["message"], case  # in the person's language (French here)
        assert not alice.closed.is_set(), case
        await room.check_still_working()
    errors = [e for e in alice.events if e["type"] == "error"]
    assert len(errors) == len(BAD_FRAMES)  # one error per bad frame, nothing more


async def test_the_text_limit_is_exact(room: Room) -> None:
    ack = await room.alice.say("r:general", "é" * MAX_CHARS)
    assert ack["type"] == "ack"
    room.acked.append("é" * MAX_CHARS)
    await room.check_still_working()


async def test_errors_echo_the_ref_of_the_command(room: Room) -> None:
    alice = room.alice
    await alice.send({"type": "join", "room": 5, "ref": "r-17"})
    assert (await alice.expect("error"))["ref"] == "r-17"
    await alice.send(send("", local_id="l-9"))  # a send's local_id is its ref
    error = await alice.expect("error")
    assert (error["code"], error["ref"]) == ("message_empty", "l-9")
    await alice.send_raw('{"type": "nope", "ref": "r-18"}')
    assert (await alice.expect("error"))["ref"] == "r-18"


async def test_a_binary_frame_is_refused(room: Room) -> None:
    await room.alice.send_raw(b'{"type": "join", "room": "general"}')
    error = await room.alice.expect("error")
    assert error["code"] == "binary_not_supported"
    await room.check_still_working()


async def test_invalid_utf8_is_sent_as_a_text_frame(room: Room) -> None:
    """The raw-frame helper really sends a TEXT frame: a valid one is read as a command."""
    await room.alice.send_text_frame(b'{"type": "join", "room": 5, "ref": "raw"}')
    error = await room.alice.expect("error")
    assert (error["code"], error["ref"]) == ("bad_field", "raw")


async def test_a_frame_above_the_hard_limit_closes_only_that_connection(room: Room) -> None:
    alice = room.alice
    await alice.send_raw(
        '{"type": "send", "stream": "r:general", "local_id": "big", "text": "'
        + "x" * HARD_FRAME
        + '"}'
    )
    assert await alice.wait_closed() == 1009
    # The server keeps serving the others, and Alice can come back and resume.
    chloe = await room.server.visitor("Chloe")
    await chloe.join("general")
    ack = await chloe.say("r:general", "je suis là")
    await room.bruno.expect_msg("r:general", lambda e: e["id"] == ack["id"])
    await alice.disconnect()
    await alice.connect()
    sync = await alice.expect(lambda e: e["type"] == "sync" and e["stream"] == "r:general")
    assert sync["recovered"]
    assert [m["text"] for m in sync["items"] if m["kind"] == "text"] == ["je suis là"]
    room.acked.append("je suis là")
    await room.check_still_working()


async def test_commands_before_hello_are_refused(room: Room) -> None:
    server = room.server
    dora = server.client()
    await dora.enter("Dora")
    await dora.connect(hello=False)
    await dora.send({"type": "join", "room": "general", "ref": "early"})
    error = await dora.expect_error("hello_required")
    assert error["ref"] == "early"
    await dora.send({"type": "hello", "v": 2})
    error = await dora.expect_error("bad_field")
    assert error["field"] == "v"
    welcome = await dora.connect(hello=True)  # a new connection, correct this time
    assert welcome is not None
    assert welcome["me"]["name"] == "Dora"
    await dora.join("general")
    ack = await dora.say("r:general", "bonjour")
    await room.bruno.expect_msg("r:general", lambda e: e["id"] == ack["id"])


async def test_a_wrong_version_then_a_right_hello_on_one_connection(room: Room) -> None:
    dora = room.server.client()
    await dora.enter("Dora")
    await dora.connect(hello=False)
    await dora.send({"type": "hello", "v": 2})
    assert (await dora.expect_error("bad_field"))["field"] == "v"
    await dora.send({"type": "hello", "v": 1, "streams": {}})
    welcome = await dora.expect("welcome")
    assert welcome["v"] == 1


async def test_errors_in_english_for_an_english_session(start_server: ServerFactory) -> None:
    server: RunningServer = await start_server()
    eve = server.client()
    await eve.enter("Eve", lang="en")
    await eve.connect()
    await eve.send_raw("{nope")
    error = await eve.expect_error("bad_json")
    assert error["message"] == "Unreadable frame: not valid JSON."


# --- flood control ------------------------------------------------------------------------------


async def test_a_flood_is_slowed_down_with_one_notice_a_second(
    start_server: ServerFactory,
) -> None:
    """The server's clock is a FakeClock, so token refills happen exactly when the test says;
    ``barrier`` (a ping answered in order) tells when the server has read a whole burst."""
    clock = FakeClock()
    server: RunningServer = await start_server(
        clock=clock, limits={"commands_per_second": 2, "commands_burst": 5}
    )
    alice = await server.visitor("Alice")  # hello: 1 token
    bruno = await server.visitor("Bruno")
    await bruno.join("general")
    clock.advance(seconds=10)  # Alice's bucket is full again: 5 tokens

    async def flood(n: int, tag: str) -> list[str]:
        for i in range(n):
            await alice.send({"type": "leave", "room": "nulle-part", "ref": f"{tag}{i}"})
        await alice.barrier()
        return [f"{tag}{i}" for i in range(n)]

    await flood(20, "a")
    # 5 commands done, then a single notice for the 15 refused; the notice names the first one.
    done = [await alice.expect_error("room_unknown") for _ in range(5)]
    assert [e["ref"] for e in done] == ["a0", "a1", "a2", "a3", "a4"]
    notice = await alice.expect_error("slow_down")
    assert (notice["ref"], notice["retryable"]) == ("a5", True)

    clock.advance(ms=500)  # one token back; the last notice was 0.5 s ago
    await flood(3, "b")
    clock.advance(ms=600)  # one more token; the last notice was 1.1 s ago
    await flood(3, "c")
    clock.advance(seconds=10)
    await alice.join("general")
    ack = await alice.say("r:general", "calme")
    assert ack["type"] == "ack"
    got = await bruno.expect_msg("r:general", lambda e: e["text"] == "calme")
    assert got["seq"] == ack["seq"]

    errors = [(e["code"], e.get("ref")) for e in alice.events if e["type"] == "error"]
    assert errors == [
        *[("room_unknown", f"a{i}") for i in range(5)],
        ("slow_down", "a5"),
        ("room_unknown", "b0"),  # b1, b2 refused without a notice (less than a second)
        ("room_unknown", "c0"),
        ("slow_down", "c1"),
    ]


async def test_refused_sends_are_not_stored(start_server: ServerFactory) -> None:
    clock = FakeClock()
    server: RunningServer = await start_server(
        clock=clock, limits={"commands_per_second": 1, "commands_burst": 3}
    )
    alice = await server.visitor("Alice")
    await alice.join("general")
    clock.advance(seconds=10)
    for i in range(6):
        await alice.send(send(f"m{i}", local_id=f"f{i}"))
    await alice.barrier()
    acks = [await alice.expect("ack") for _ in range(3)]
    assert [a["local_id"] for a in acks] == ["f0", "f1", "f2"]
    assert (await alice.expect_error("slow_down"))["ref"] == "f3"
    clock.advance(seconds=10)
    bruno = await server.visitor("Bruno")
    sync = await bruno.join("general")
    assert [m["text"] for m in sync["items"] if m["kind"] == "text"] == ["m0", "m1", "m2"]


async def test_a_flood_of_binary_frames_is_slowed_down_too(start_server: ServerFactory) -> None:
    clock = FakeClock()
    server: RunningServer = await start_server(
        clock=clock, limits={"commands_per_second": 1, "commands_burst": 3}
    )
    alice = await server.visitor("Alice")
    clock.advance(seconds=10)
    for _ in range(20):
        await alice.send_raw(b"\x00")
    await alice.barrier()
    clock.advance(seconds=10)
    await alice.join("general")
    codes = [e["code"] for e in alice.events if e["type"] == "error"]
    assert codes == ["binary_not_supported"] * 3 + ["slow_down"]
