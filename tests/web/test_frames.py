"""The chat's own WebSocket layer (``web.frames``, ``ws.ChatSocket``), byte by byte: messages put
together from fragments, control frames in between, protocol errors, the close handshake, and
the hand-over from aiohttp. Raw frames go over a plain TCP socket, so nothing is smoothed over
by a client library."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from wsproto.frame_protocol import FrameDecoder
from yarl import URL

from causette.web import frames, ws
from causette.web.fanout import ws_frame
from causette.web.keys import NODE
from tests.conftest import RunningServer, ServerFactory
from tests.support.client import ProtocolClient

TIMEOUT = 5.0


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    """A client-to-server frame (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def command(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


_open: list[asyncio.StreamWriter] = []


@pytest.fixture(autouse=True)
async def _close_raw_sockets() -> AsyncIterator[None]:
    yield
    while _open:
        writer = _open.pop()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


class RawSocket:
    """A WebSocket spoken by hand over TCP, with a person's session cookie."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        _open.append(writer)

    @classmethod
    async def open(cls, server: RunningServer, person: ProtocolClient) -> RawSocket:
        url = URL(server.url)
        reader, writer = await asyncio.open_connection(url.host, url.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: {person.origin}\r\n"
                f"Cookie: causette_session={person.session_token()}\r\n\r\n"
            ).encode()
        )
        async with asyncio.timeout(TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read(self) -> tuple[int, bytes]:
        """The next frame from the server: (opcode, payload)."""
        async with asyncio.timeout(TIMEOUT):
            first, second = await self.reader.readexactly(2)
            assert not second & 0x80, "server frames are not masked"
            n = second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(n)

    async def events(self) -> list[dict[str, Any]]:
        opcode, payload = await self.read()
        assert opcode == frames.OP_TEXT, (opcode, payload)
        events: list[dict[str, Any]] = json.loads(payload)
        return events

    async def until(self, kind: str) -> dict[str, Any]:
        while True:
            for event in await self.events():
                if event["type"] == kind:
                    return event

    async def closed(self) -> bool:
        """True once the server has closed the TCP connection."""
        async with asyncio.timeout(TIMEOUT):
            return await self.reader.read() == b""


async def greeted(server: RunningServer, name: str) -> tuple[ProtocolClient, RawSocket]:
    person = server.client()
    await person.enter(name)
    sock = await RawSocket.open(server, person)
    sock.send(frame(frames.OP_TEXT, command(type="hello", v=1)))
    await sock.until("welcome")
    return person, sock


# --- MessageReader, without a socket ------------------------------------------------------------


def test_a_message_in_fragments_fed_byte_by_byte_comes_out_whole() -> None:
    reader = frames.MessageReader(1000)
    data = (
        frame(frames.OP_TEXT, b'{"type":', fin=False)
        + frame(frames.OP_PING, b"between")
        + frame(frames.OP_CONTINUATION, b' "hello"}')
    )
    out = []
    for i in range(len(data)):
        out += reader.feed(data[i : i + 1])
    assert out == [(frames.OP_PING, b"between"), (frames.OP_TEXT, b'{"type": "hello"}')]
    assert reader.feed(frame(frames.OP_BINARY, b"")) == [(frames.OP_BINARY, b"")]


def test_invalid_utf8_is_left_to_the_command_decoder() -> None:
    # The decoder answers bad_utf8 and the connection stays (RFC 6455 would close it).
    reader = frames.MessageReader(1000)
    assert reader.feed(frame(frames.OP_TEXT, b"\xff\xfe")) == [(frames.OP_TEXT, b"\xff\xfe")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(frames.OP_TEXT, b"x", mask=False), frames.CLOSE_PROTOCOL_ERROR),
        (frame(frames.OP_CONTINUATION, b"x"), frames.CLOSE_PROTOCOL_ERROR),
        (
            frame(frames.OP_TEXT, b"a", fin=False) + frame(frames.OP_TEXT, b"b"),
            frames.CLOSE_PROTOCOL_ERROR,
        ),
        (frame(0x3, b"reserved opcode"), frames.CLOSE_PROTOCOL_ERROR),
        (frame(frames.OP_PING, b"p" * 126), frames.CLOSE_PROTOCOL_ERROR),
        (frame(frames.OP_PING, b"p", fin=False), frames.CLOSE_PROTOCOL_ERROR),
        (frame(frames.OP_TEXT, b"x" * 101), frames.CLOSE_TOO_BIG),
        (
            frame(frames.OP_TEXT, b"x" * 60, fin=False) + frame(frames.OP_CONTINUATION, b"x" * 60),
            frames.CLOSE_TOO_BIG,
        ),
    ],
    ids=[
        "unmasked",
        "continuation outside a message",
        "message inside a message",
        "reserved opcode",
        "control frame over 125 bytes",
        "fragmented control frame",
        "frame over the limit",
        "fragments over the limit",
    ],
)
def test_a_broken_stream_fails_with_its_close_code(data: bytes, code: int) -> None:
    with pytest.raises(frames.Fail) as failed:
        frames.MessageReader(100).feed(data)
    assert failed.value.code == code


def _random_frame(rng: random.Random) -> bytes:
    """One frame a client might send, or now and then one it must not."""
    size = rng.choice([0, 1, 3, 4, 5, 64, 125, 126, 127, 200, 1000, 70_000])
    payload = bytes(rng.randrange(256) for _ in range(min(size, 300))) * (size // 300 + 1)
    payload = payload[:size]
    kind = rng.random()
    if kind < 0.5:
        return frame(frames.OP_TEXT, payload)
    if kind < 0.6:
        cut = rng.randint(0, size)
        return frame(frames.OP_TEXT, payload[:cut], fin=False) + frame(
            frames.OP_CONTINUATION, payload[cut:]
        )
    if kind < 0.7:
        return frame(frames.OP_BINARY, payload)
    if kind < 0.75:
        return frame(rng.choice([frames.OP_PING, frames.OP_PONG, frames.OP_CLOSE]), payload[:20])
    if kind < 0.8:  # keep-alive answers, now and then longer than a control frame may be
        return frame(frames.OP_PONG, payload[: rng.choice([0, 4, 125, 126, 130])])
    broken = rng.randrange(4)
    if broken == 0:
        return frame(frames.OP_TEXT, payload, mask=False)
    if broken == 1:  # a reserved bit set
        data = bytearray(frame(frames.OP_TEXT, payload))
        data[0] |= 0x40
        return bytes(data)
    if broken == 2:  # a short length written in 16 bits
        key = os.urandom(4)
        body = bytes(b ^ key[i % 4] for i, b in enumerate(payload[:100]))
        return struct.pack("!BBH", 0x81, 0x80 | 126, len(body)) + key + body
    return frame(frames.OP_TEXT, payload[:50], fin=False)  # a message left open


class _WsprotoOnly(frames.MessageReader):
    """The reader without its shortcut: every byte through wsproto."""

    __slots__ = ()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self._decoder is None:
            self._decoder = FrameDecoder(client=False)
        return self._decode(self._decoder, data, [])


def _read_all(reader: frames.MessageReader, chunks: list[bytes]) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    for chunk in chunks:
        try:
            out += reader.feed(chunk)
        except frames.Fail as fail:
            return [*out, *fail.before, (-fail.code, b"")]
    return out


def test_the_shortcut_reads_every_stream_as_wsproto_does() -> None:
    rng = random.Random(7)
    for _ in range(400):
        stream = b"".join(_random_frame(rng) for _ in range(rng.randint(1, 8)))
        cuts = sorted(rng.sample(range(1, len(stream)), min(rng.randint(0, 4), len(stream) - 1)))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        limit = rng.choice([100, 1000, 100_000])
        expected = _read_all(_WsprotoOnly(limit), chunks)
        assert _read_all(frames.MessageReader(limit), chunks) == expected


def test_whole_text_frames_need_no_frame_decoder() -> None:
    # An idle connection answering pings, and one that only sends whole messages, keeps no
    # wsproto state.
    reader = frames.MessageReader(1000)
    data = (
        frame(frames.OP_TEXT, b"one")
        + frame(frames.OP_PONG, b"")
        + frame(frames.OP_TEXT, b"two" * 100)
    )
    assert reader.feed(data) == [
        (frames.OP_TEXT, b"one"),
        (frames.OP_PONG, b""),
        (frames.OP_TEXT, b"two" * 100),
    ]
    assert reader.feed(frame(frames.OP_PONG, b"x" * 125)) == [(frames.OP_PONG, b"x" * 125)]
    assert reader._decoder is None
    assert reader.feed(frame(frames.OP_PING, b"p")) == [(frames.OP_PING, b"p")]
    assert reader._decoder is not None


# --- over a real server -------------------------------------------------------------------------


async def test_aiohttp_lets_the_chat_socket_go(start_server: ServerFactory) -> None:
    """After the handshake aiohttp keeps nothing for the socket (what it kept was two thirds of
    an idle connection's memory): its server no longer lists the connection."""
    server: RunningServer = await start_server()
    runner = server.server.runner
    assert runner is not None
    aiohttp_server = runner.server
    assert aiohttp_server is not None
    person = server.client()
    await person.enter("Alice")
    before = len(aiohttp_server.connections)
    sock = await RawSocket.open(server, person)
    sock.send(frame(frames.OP_TEXT, command(type="hello", v=1)))
    await sock.until("welcome")
    assert len(aiohttp_server.connections) == before
    assert len(server.app[NODE].clients) == 1


async def test_fragments_and_pings_are_handled_in_the_order_they_came(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    _, sock = await greeted(server, "Alice")
    join = command(type="join", room=5, ref="j1")  # answered at once: bad_field
    sock.send(
        frame(frames.OP_TEXT, join[:10], fin=False)
        + frame(frames.OP_PING, b"first")
        + frame(frames.OP_CONTINUATION, join[10:])
        + frame(frames.OP_PING, b"second")
    )
    assert await sock.read() == (frames.OP_PONG, b"first")
    answered = False
    while not answered:
        opcode, payload = await sock.read()
        assert opcode == frames.OP_TEXT, "the join is answered before the second pong"
        answered = any(e.get("ref") == "j1" for e in json.loads(payload))
    assert await sock.read() == (frames.OP_PONG, b"second")


async def test_a_protocol_error_answers_what_came_before_then_closes(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    _, sock = await greeted(server, "Alice")
    sock.send(
        frame(frames.OP_TEXT, command(type="join", room=5, ref="before"))
        + frame(frames.OP_TEXT, b"not masked", mask=False)
    )
    error = await sock.until("error")
    assert (error["code"], error["ref"]) == ("bad_field", "before")
    opcode, payload = await sock.read()
    assert opcode == frames.OP_CLOSE
    assert struct.unpack("!H", payload[:2])[0] == frames.CLOSE_PROTOCOL_ERROR
    assert await sock.closed()


async def test_the_peers_close_is_echoed_and_the_socket_closed(start_server: ServerFactory) -> None:
    server = await start_server()
    _, sock = await greeted(server, "Alice")
    sock.send(frame(frames.OP_CLOSE, struct.pack("!H", 1001) + b"bye"))
    opcode, payload = await sock.read()
    assert (opcode, payload) == (frames.OP_CLOSE, struct.pack("!H", 1001))
    assert await sock.closed()


async def test_a_peer_that_never_answers_the_close_is_dropped(
    start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node closes (here: the same session connects again); a peer that reads the close
    frame but never answers it is dropped after ``CLOSE_TIMEOUT_S``."""
    monkeypatch.setattr(ws, "CLOSE_TIMEOUT_S", 0.2)
    server = await start_server()
    alice, sock = await greeted(server, "Alice")
    again = server.client()
    again.share_session(alice)
    await again.connect()
    assert (await sock.until("bye"))["code"] == "session_replaced"
    opcode, _ = await sock.read()
    assert opcode == frames.OP_CLOSE
    assert await sock.closed()  # without the timer, only the keep-alive would end it (60 s)


async def test_a_request_that_is_no_websocket_gets_a_json_400(start_server: ServerFactory) -> None:
    server = await start_server()
    person = server.client()
    await person.enter("Alice")
    async with person.http.get(server.url + "/ws", headers={"Origin": person.origin}) as resp:
        assert resp.status == 400
        assert [e["code"] for e in (await resp.json())["errors"]] == ["bad_request"]


# --- flow control, with a stand-in transport ----------------------------------------------------


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.pauses = 0
        self.resumes = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True

    abort = close  # the server's shutdown, at the end of the test

    def pause_reading(self) -> None:
        self.pauses += 1

    def resume_reading(self) -> None:
        self.resumes += 1


async def test_a_socket_stops_reading_while_its_inbox_is_full(start_server: ServerFactory) -> None:
    server = await start_server()
    node = server.app[NODE]
    person = server.client()
    await person.enter("Flow")
    session = await node.store.get_session(person.me["id"])
    sock = ws.ChatSocket(node, node.config.limits)
    transport = _Transport()
    sock.connection_made(transport)  # type: ignore[arg-type]
    assert session is not None
    sock.client = node.new_client(sock, transport, session, "")
    pings = [b"%d" % i for i in range(ws.INBOX_HIGH + 8)]
    sock.data_received(b"".join(frame(frames.OP_PING, p) for p in pings))
    # More than INBOX_HIGH waiting: the socket no longer reads, until half are handled.
    assert (transport.pauses, transport.resumes) == (1, 0)
    worker = sock._worker
    assert worker is not None
    await worker
    assert (transport.pauses, transport.resumes) == (1, 1)
    assert transport.written == [ws_frame(0x8A, p) for p in pings]  # every ping, in order
    assert not transport.closed


async def test_shutdown_drops_a_peer_that_never_answers_the_close(
    start_server: ServerFactory,
) -> None:
    """aiohttp no longer knows the chat's sockets, so it cannot close them at shutdown: the node
    drops those that did not answer its close frame within the grace."""
    server = await start_server(server={"shutdown_grace_seconds": 0.2})
    _, sock = await greeted(server, "Alice")
    await server.server.close()
    assert (await sock.until("bye"))["code"] == "shutting_down"
    opcode, payload = await sock.read()
    assert (opcode, struct.unpack("!H", payload[:2])[0]) == (frames.OP_CLOSE, 1001)
    assert await sock.closed()
