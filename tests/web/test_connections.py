"""WebSocket connections: one per session, resuming without gap or duplicate, concurrent
senders, quitting, shutting down, and slow consumers."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from collections.abc import Callable
from typing import cast

import aiohttp
import pytest

from causette.core.clock import FakeClock
from causette.web.keys import NODE
from causette.web.node import Node
from tests.conftest import RunningServer, ServerFactory
from tests.support.client import Event, ProtocolClient


def texts(items: list[Event]) -> list[str]:
    return [m["text"] for m in items if m["kind"] == "text"]


def with_id(message_id: str) -> Callable[[Event], bool]:
    return lambda e: bool(e["id"] == message_id)


def same_session(server: RunningServer, of: ProtocolClient) -> ProtocolClient:
    """Another tab of the same browser: a new client with the same session cookie."""
    other = server.client()
    other.share_session(of)
    return other


# --- one connection per session --------------------------------------------------------------


async def test_a_second_connection_replaces_the_first(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    tab2 = same_session(server, alice)
    welcome = await tab2.connect()
    assert welcome is not None
    assert welcome["me"]["id"] == alice.me["id"]
    assert welcome["joined"] == ["general"]

    bye = await alice.expect("bye")
    assert (bye["code"], bye["reconnect"]) == ("session_replaced", False)
    assert bye["message"]
    assert await alice.wait_closed() == 1008
    assert alice.events[-1] == bye  # nothing after the goodbye

    ack = await tab2.say("r:general", "depuis l'autre onglet")
    assert ack["type"] == "ack"
    got = await bruno.expect_msg("r:general", lambda e: e["kind"] == "text")
    assert (got["text"], got["author"]) == ("depuis l'autre onglet", alice.me["id"])
    # Moving tabs is not leaving: nobody saw a leave item.
    assert not [e for e in bruno.events if e["type"] == "msg" and e["kind"] == "leave"]


async def test_the_replaced_tab_can_take_over_again(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    tab2 = same_session(server, alice)
    await tab2.connect()
    await alice.wait_closed()
    await alice.disconnect()
    await alice.connect()  # "use here"
    assert (await tab2.expect("bye"))["code"] == "session_replaced"
    await alice.join("general")
    assert (await alice.say("r:general", "me revoilà"))["type"] == "ack"


# --- resuming -----------------------------------------------------------------------------------


async def test_resume_replays_exactly_what_was_missed(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    await alice.say("r:general", "avant la coupure")
    await bruno.expect_msg("r:general", lambda e: e["text"] == "avant la coupure")
    await alice.disconnect()
    epoch, cursor = alice.cursors["r:general"]

    missed = [await bruno.say("r:general", f"manqué {i}") for i in range(7)]
    await alice.connect()  # with the cursors it kept
    sync = await alice.expect(lambda e: e["type"] == "sync" and e["stream"] == "r:general")
    assert sync["recovered"] is True
    assert sync["epoch"] == epoch
    assert [m["seq"] for m in sync["items"]] == list(range(cursor + 1, cursor + 8))
    assert [m["id"] for m in sync["items"]] == [a["id"] for a in missed]
    assert sync["last_seq"] == cursor + 7

    # Live messages follow without gap or duplicate (the client checks every seq).
    for i in range(3):
        ack = await bruno.say("r:general", f"en direct {i}")
        got = await alice.expect_msg("r:general", with_id(ack["id"]))
        assert got["seq"] == ack["seq"]
    await alice.say("r:general", "de retour")
    await bruno.expect_msg("r:general", lambda e: e["text"] == "de retour")


async def test_resume_with_nothing_missed_replays_nothing(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    await alice.join("general")
    await alice.disconnect()
    await alice.connect()
    sync = await alice.expect(lambda e: e["type"] == "sync" and e["stream"] == "r:general")
    assert (sync["recovered"], sync["items"]) == (True, [])


async def test_too_much_missed_reloads_the_latest_window(start_server: ServerFactory) -> None:
    server: RunningServer = await start_server(
        limits={"resume_max_replay": 5}, messages={"history_limit": 4}
    )
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    await alice.disconnect()
    acks = [await bruno.say("r:general", f"m{i}") for i in range(6)]
    await alice.connect()
    sync = await alice.expect(lambda e: e["type"] == "sync" and e["stream"] == "r:general")
    assert sync["recovered"] is False
    assert [m["id"] for m in sync["items"]] == [a["id"] for a in acks[-4:]]
    assert sync["last_seq"] == acks[-1]["seq"]
    # Exactly at the bound, the replay is complete.
    await alice.disconnect()
    acks = [await bruno.say("r:general", f"n{i}") for i in range(5)]
    await alice.connect()
    sync = await alice.expect(lambda e: e["type"] == "sync" and e["stream"] == "r:general")
    assert sync["recovered"] is True
    assert [m["id"] for m in sync["items"]] == [a["id"] for a in acks]


async def test_a_replay_larger_than_the_send_queue_limit_is_delivered_whole(
    start_server: ServerFactory,
) -> None:
    # One sync may be bigger than limits.max_send_queue_bytes: it is written at once, and the
    # client is not taken for a slow consumer (which would make it reconnect in a loop).
    server: RunningServer = await start_server(
        limits={"max_send_queue_bytes": 65536, "commands_per_second": 1000, "commands_burst": 1000}
    )
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    await alice.disconnect()
    acks = [await bruno.say("r:general", f"{i:03d}" + "é" * 990) for i in range(120)]
    await alice.connect()
    sync = await alice.expect(lambda e: e["type"] == "sync" and e["stream"] == "r:general")
    assert sync["recovered"] is True
    assert [m["id"] for m in sync["items"]] == [a["id"] for a in acks]
    assert sum(len(m["text"].encode()) for m in sync["items"]) > 65536 * 3
    ack = await alice.say("r:general", "toujours là")
    assert ack["type"] == "ack"
    assert not alice.closed.is_set()


async def test_a_cursor_of_another_epoch_reloads_the_stream(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    await alice.join("general")
    await alice.say("r:general", "un")
    await alice.disconnect()
    epoch, seq = alice.cursors["r:general"]
    await alice.connect(cursors={"r:general": ["autre-epoque", seq]})
    sync = await alice.expect(lambda e: e["type"] == "sync" and e["stream"] == "r:general")
    assert sync["recovered"] is False
    assert sync["epoch"] == epoch
    assert texts(sync["items"]) == ["un"]


async def test_a_cursor_ahead_of_the_stream_reloads_it(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    await alice.join("general")
    await alice.disconnect()
    epoch, seq = alice.cursors["r:general"]
    await alice.connect(cursors={"r:general": [epoch, seq + 50]})
    sync = await alice.expect(lambda e: e["type"] == "sync" and e["stream"] == "r:general")
    assert sync["recovered"] is False
    assert sync["last_seq"] == seq


async def test_a_resent_send_after_reconnecting_is_stored_once(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    first = await alice.say("r:general", "une seule fois", local_id="c-1-1")
    # The ack was lost with the connection: the page resends the same command.
    await alice.disconnect()
    await alice.connect()
    again = await alice.say("r:general", "une seule fois", local_id="c-1-1")
    assert again["dup"] is True
    assert (again["seq"], again["id"]) == (first["seq"], first["id"])
    after = await alice.say("r:general", "ensuite")
    await bruno.expect_msg("r:general", lambda e: e["id"] == after["id"])
    seen = [e for e in bruno.events if e["type"] == "msg" and e["text"] == "une seule fois"]
    assert len(seen) == 1
    assert after["seq"] == first["seq"] + 1


async def test_a_send_cut_off_before_its_ack_is_stored_once(server: RunningServer) -> None:
    """The connection drops right after the send, whether or not the server stored it."""
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    await alice.send({"type": "send", "stream": "r:general", "text": "coupé", "local_id": "cut-1"})
    await alice.disconnect()
    await alice.connect()
    ack = await alice.say("r:general", "coupé", local_id="cut-1")
    after = await alice.say("r:general", "ensuite")
    await bruno.expect_msg("r:general", lambda e: e["id"] == after["id"])
    seen = [e for e in bruno.events if e["type"] == "msg" and e["text"] == "coupé"]
    assert [m["id"] for m in seen] == [ack["id"]]


# --- concurrency ---------------------------------------------------------------------------------


async def test_concurrent_senders_are_seen_in_one_order_by_everyone(
    start_server: ServerFactory,
) -> None:
    server: RunningServer = await start_server(
        limits={"commands_per_second": 1000, "commands_burst": 1000}
    )
    senders = [await server.visitor(f"Personne{i}") for i in range(5)]
    for c in senders:
        await c.join("general")
    last_join = senders[-1].cursors["r:general"][1]
    for c in senders:
        if c.cursors["r:general"][1] < last_join:
            await c.expect_msg("r:general", lambda e: e["seq"] == last_join)

    async def burst(c: ProtocolClient, n: int) -> list[Event]:
        ids = [f"{c.me['name']}-{i}" for i in range(30)]
        for lid in ids:
            await c.send({"type": "send", "stream": "r:general", "text": f"{lid}", "local_id": lid})
        return [await c.answer_to(lid) for lid in ids]

    results = await asyncio.gather(*(burst(c, i) for i, c in enumerate(senders)))
    acks = [a for result in results for a in result]
    assert all(a["type"] == "ack" and not a.get("dup") for a in acks)
    seqs = sorted(a["seq"] for a in acks)
    assert seqs == list(range(last_join + 1, last_join + 151))

    final = last_join + 150
    orders = []
    for c in senders:
        if c.cursors["r:general"][1] < final:
            await c.expect_msg("r:general", lambda e: e["seq"] == final, timeout=10)
        orders.append(
            [
                (e["seq"], e["id"], e["text"])
                for e in c.events
                if e["type"] == "msg" and e["seq"] > last_join
            ]
        )
    assert all(order == orders[0] for order in orders)
    assert len(orders[0]) == 150
    # Each sender's own messages keep the order they were sent in.
    for c in senders:
        mine = [text for _, _, text in orders[0] if text.startswith(c.me["name"] + "-")]
        assert mine == [f"{c.me['name']}-{i}" for i in range(30)]


# --- quitting ---------------------------------------------------------------------------------


async def test_quit_ends_the_session_everywhere(server: RunningServer) -> None:
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    token = alice.session_token()

    assert await alice.quit() == 204
    bye = await alice.expect("bye")
    assert (bye["code"], bye["reconnect"]) == ("quit", False)
    assert await alice.wait_closed() == 1008
    leave = await bruno.expect_msg("r:general", lambda e: e["kind"] == "leave")
    assert leave["author"] == alice.me["id"]
    members = await bruno.expect(lambda e: e["type"] == "members" and e["remove"])
    assert members["remove"] == [alice.me["id"]]

    # The old cookie no longer opens anything, over HTTP or WebSocket.
    async with aiohttp.ClientSession() as raw:
        cookie = {"Cookie": f"causette_session={token}"}
        async with raw.get(server.url + "/api/session", headers=cookie) as resp:
            assert resp.status == 401
            assert (await resp.json())["errors"][0]["code"] == "not_authenticated"
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await raw.ws_connect(
                server.url.replace("http", "ws", 1) + "/ws", origin=server.url, headers=cookie
            )
        assert info.value.status == 401
    # The cookie was cleared, and the pseudonym is free again.
    assert (await alice.get("/api/session"))[0] == 401
    again = server.client()
    assert (await again.enter("Alice"))["name"] == "Alice"


async def test_quit_without_a_session_is_harmless(server: RunningServer) -> None:
    visitor = server.client()
    assert await visitor.quit() == 204


# --- shutting down ----------------------------------------------------------------------------


async def test_shutdown_says_goodbye_before_closing(start_server: ServerFactory) -> None:
    server: RunningServer = await start_server()
    alice = await server.visitor("Alice")
    eve = server.client()
    await eve.enter("Eve", lang="en")
    await eve.connect()
    await alice.join("general")
    await server.server.close()
    for client, message in ((alice, "Le serveur redémarre"), (eve, "The server is restarting")):
        assert await client.wait_closed() == 1001
        bye = client.events[-1]
        assert (bye["type"], bye["code"], bye["reconnect"]) == ("bye", "shutting_down", True)
        assert bye["message"].startswith(message)


# --- slow consumers ------------------------------------------------------------------------------


class RawSocketClient:
    """A WebSocket client on a plain socket with a tiny receive buffer that does not read
    until told to: the server soon has more queued for it than it may."""

    def __init__(
        self, sock: socket.socket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sock = sock
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, server: RunningServer, cookie: str) -> RawSocketClient:
        host, port = server.server.host, server.server.port
        assert port is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: {server.url}\r\n"
                f"Cookie: causette_session={cookie}\r\n\r\n"
            ).encode()
        )
        status = await reader.readline()
        assert b" 101 " in status, status
        while (await reader.readline()) != b"\r\n":
            pass
        # Stop reading from the socket: the kernel buffer fills, then the server's.
        cast(asyncio.Transport, writer.transport).pause_reading()
        return cls(sock, reader, writer)

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x81])
        if n < 126:
            header += bytes([0x80 | n])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)

    async def read_all(self) -> tuple[list[bytes], int | None]:
        """Resume reading: every text payload until the close frame, and its code."""
        cast(asyncio.Transport, self.writer.transport).resume_reading()
        texts: list[bytes] = []
        while True:
            head = await self.reader.readexactly(2)
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await self.reader.readexactly(n)
            if opcode == 0x1:
                texts.append(payload)
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return texts, code

    def close(self) -> None:
        self.writer.close()


async def test_a_slow_consumer_is_cut_off_without_slowing_the_room(
    start_server: ServerFactory,
) -> None:
    server: RunningServer = await start_server(
        # Large messages, so that the kernel's socket buffers (megabytes on loopback) fill
        # after a few hundred of them; the queue bound holds a dozen.
        messages={"max_chars": 20000},
        limits={
            "max_send_queue_bytes": 256 * 1024,
            "max_frame_bytes": 65536,
            "commands_per_second": 10000,
            "commands_burst": 10000,
        },
    )
    bruno = await server.visitor("Bruno")
    await bruno.join("general")
    slow_person = server.client()
    await slow_person.enter("Lent")
    slow = await RawSocketClient.open(server, slow_person.session_token())
    slow.send_text('{"type": "hello", "v": 1}')
    slow.send_text('{"type": "join", "room": "general"}')
    await bruno.expect_msg("r:general", lambda e: e["kind"] == "join" and e["name"] == "Lent")
    alice = await server.visitor("Alice")
    await alice.join("general")
    joined = await bruno.expect_msg("r:general", lambda e: e["author"] == alice.me["id"])
    node = server.app[NODE]

    text = "x" * 19000
    sent = 0
    while node.hub.slow_disconnects == 0:
        assert sent < 2000, "the slow consumer was never cut off"
        batch = [alice.local_id() for _ in range(10)]
        for lid in batch:
            await alice.send({"type": "send", "stream": "r:general", "text": text, "local_id": lid})
        for lid in batch:
            assert (await alice.answer_to(lid))["type"] == "ack"
        sent += len(batch)
    for i in range(20):  # the room goes on
        ack = await alice.say("r:general", f"après {i}")
    last = await bruno.expect_msg("r:general", lambda e: e["seq"] == ack["seq"], timeout=10)
    assert last["text"] == "après 19"
    received = [e for e in _room_items(bruno) if e["seq"] > joined["seq"]]
    assert len(received) == sent + 20  # in order, none missing (the client checks seqs)

    frames, code = await asyncio.wait_for(slow.read_all(), timeout=10)
    slow.close()
    assert code == 1013
    last_events = _events(frames[-1])
    assert last_events[-1]["type"] == "bye"
    assert (last_events[-1]["code"], last_events[-1]["reconnect"]) == ("too_slow", True)


def _room_items(c: ProtocolClient) -> list[Event]:
    return [e for e in c.events if e["type"] == "msg" and e["stream"] == "r:general"]


def _events(frame: bytes) -> list[Event]:
    import json

    events = json.loads(frame)
    assert isinstance(events, list)
    return events


async def test_the_sweep_refreshes_everyone_each_quarter_timeout_and_newcomers_each_time(
    start_server: ServerFactory,
) -> None:
    """Connected people's ``last_seen`` stays well within the idle timeout (another node's sweep
    ends sessions by it) without rewriting every session every 30 s."""
    clock = FakeClock()
    server = await start_server(clock=clock, sessions={"idle_timeout_minutes": 4})
    node: Node = server.app[NODE]  # everyone each minute (a quarter of 4), at most each 30 s

    async def last_seen(client: ProtocolClient) -> int:
        session = await node.store.get_session(cast(str, client.me["id"]))
        assert session is not None
        return session.last_seen

    early = await server.visitor("Early")
    entered = await last_seen(early)
    clock.advance(seconds=10)
    await node._sweep_sessions()  # the first: everyone
    assert await last_seen(early) == entered + 10_000
    clock.advance(seconds=30)
    late = await server.visitor("Late")
    clock.advance(seconds=5)
    await node._sweep_sessions()  # 35 s later: only who connected since
    assert await last_seen(early) == entered + 10_000
    assert await last_seen(late) == entered + 45_000
    clock.advance(seconds=25)
    await node._sweep_sessions()  # 60 s after the first: everyone again
    assert await last_seen(early) == entered + 70_000
    assert await last_seen(late) == entered + 70_000


async def test_a_silent_peer_is_pinged_then_dropped_and_a_lively_one_kept(
    start_server: ServerFactory,
) -> None:
    """Keep-alive is one pass of the node over its connections (``Node._ping``): a peer silent
    for ``heartbeat_seconds`` is pinged; one still silent after twice that is closed, so that
    a vanished phone does not stay listed as connected."""
    clock = FakeClock()
    server = await start_server(clock=clock, limits={"heartbeat_seconds": 30})
    node: Node = server.app[NODE]
    lively = await server.visitor("Lively")
    quiet = await server.visitor("Quiet")
    quiet.answer_pings = False
    clock.advance(seconds=29)
    await node._ping()
    assert [c.pinged_ms for c in node.clients.values()] == [0, 0]  # not silent long enough
    clock.advance(seconds=1)
    await node._ping()
    for c in (lively, quiet):
        async with asyncio.timeout(5):
            assert await c.pings.get() == b""
    await lively.barrier()  # lively's pong, sent before the barrier, has been read
    clock.advance(seconds=30)
    await node._ping()
    await quiet.wait_closed()  # silent for 60 s
    async with asyncio.timeout(5):
        assert await lively.pings.get() == b""  # silent for 30 s: pinged again
    await lively.barrier()
    assert not lively.closed.is_set()
