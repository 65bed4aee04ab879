"""The WebSocket protocol (RFC 6455) of the chat's sockets once aiohttp has routed the upgrade.

aiohttp parses the HTTP request and runs the handler (Origin, session, limits); the handler then
answers the handshake itself and takes the socket over (``take_over``): from there on, the
socket's protocol object is the chat's own, and aiohttp keeps nothing for it (decision 9). What
aiohttp kept per WebSocket (request handler, parser, two tasks, the request and its headers, the
``WebSocketResponse``) was about 12 KB of the 19 KB an idle connection cost.

wsproto's ``FrameDecoder`` parses and unmasks frames; ``MessageReader`` puts fragments together
into messages, within a size limit. Text is handed on as bytes: the command decoder checks UTF-8
and answers ``bad_utf8`` without dropping the connection.

What browsers send nearly always, whole unfragmented text frames, is read by ``_whole_texts``
before wsproto (about 1 µs a frame instead of 10, decision 12); anything else, from the first
byte it does not take, goes to wsproto, which is made only then. The tests hold the two readers
to the same answers on random streams.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Final, cast

from aiohttp import web
from wsproto.frame_protocol import Frame, FrameDecoder, ParseFailed
from wsproto.utilities import generate_accept_token

from causette import errors
from causette.web.fanout import ws_frame

OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

# Close codes, RFC 6455 §7.4.1.
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_TOO_BIG: Final = 1009

_CLOSE_CODE = struct.Struct("!H")


class Fail(Exception):
    """The peer broke the protocol: the connection is closed with this code (RFC 6455 §7.1.7)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        #: The messages complete before the fault, to be handled before the close.
        self.before: list[tuple[int, bytes]] = []


class MessageReader:
    """Bytes in, complete messages out: ``(opcode, payload)`` for text, binary, close, ping and
    pong. Control frames may come between the fragments of a message (§5.4)."""

    __slots__ = ("_decoder", "_max", "_opcode", "_parts", "_size")

    def __init__(self, max_size: int) -> None:
        self._decoder: FrameDecoder | None = None  # made for the first frame wsproto reads
        self._max = max_size
        self._opcode = 0  # of the message being put together (0: none)
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        decoder = self._decoder
        out: list[tuple[int, bytes]] = []
        if not self._opcode and (
            decoder is None or (decoder.header is None and not len(decoder.buffer))
        ):
            # Between messages and between frames: whole text frames need no decoder.
            used = _whole_texts(data, self._max, out)
            if used == len(data):
                return out
            data = data[used:]
        if decoder is None:
            decoder = self._decoder = FrameDecoder(client=False)
        return self._decode(decoder, data, out)

    def _decode(
        self, decoder: FrameDecoder, data: bytes, out: list[tuple[int, bytes]]
    ) -> list[tuple[int, bytes]]:
        decoder.receive_bytes(data)
        while True:
            try:
                frame = decoder.process_buffer()
                if frame is None:
                    return out
                self._take(frame, out)
            except ParseFailed as exc:
                fail = Fail(int(exc.code), str(exc))
                fail.before = out
                raise fail from exc
            except Fail as fail:
                fail.before = out
                raise

    def _take(self, frame: Frame, out: list[tuple[int, bytes]]) -> None:
        opcode = int(frame.opcode)
        payload = cast(bytes, frame.payload)  # the decoder's frames hold raw bytes
        if opcode >= OP_CLOSE:  # control frames arrive whole (at most 125 bytes)
            out.append((opcode, payload))
            return
        # A data frame may come in several pieces (as its bytes arrive): the first carries its
        # opcode, the others CONTINUATION, like the frames that continue a message.
        if opcode != OP_CONTINUATION:
            if self._opcode:
                raise Fail(CLOSE_PROTOCOL_ERROR, "new message before the previous one ended")
            self._opcode = opcode
        elif not self._opcode:
            raise Fail(CLOSE_PROTOCOL_ERROR, "continuation frame outside a message")
        self._size += len(payload)
        if self._size > self._max:
            raise Fail(CLOSE_TOO_BIG, "message too big")
        self._parts.append(payload)
        if frame.frame_finished and frame.message_finished:
            parts = self._parts
            out.append((self._opcode, parts[0] if len(parts) == 1 else b"".join(parts)))
            self._opcode = 0
            self._parts = []
            self._size = 0


def _whole_texts(data: bytes, max_size: int, out: list[tuple[int, bytes]]) -> int:
    """Append the whole, final, masked text frames at the start of ``data`` (payload under 64 KB
    and within ``max_size``, reserved bits clear, length in its shortest form) to ``out``, and
    the pongs among them (payload under 126 bytes, as every control frame's); return the number
    of bytes they took. Whatever else comes first (a fragment, a ping, a close, a frame cut
    short, a broken one) is left, with all that follows, to wsproto."""
    end = len(data)
    at = 0
    while end - at >= 6:
        first = data[at]
        if first != 0x81 and first != 0x8A:  # FIN, no RSV bits, and text or pong
            break
        size = data[at + 1] ^ 0x80  # the mask bit must be set: what is left is the length
        if size < 126:
            start = at + 6
        elif size == 126 and first == 0x81 and end - at >= 8:
            size = (data[at + 2] << 8) | data[at + 3]
            if size < 126:
                break  # a length that fits in 7 bits, in 16: wsproto refuses it
            start = at + 8
        else:
            break  # unmasked (size > 127), a 64-bit length, or its bytes not all here
        stop = start + size
        if stop > end or size > max_size:
            break
        key = data[start - 4 : start]
        words = key * ((size >> 2) + 1)
        payload = int.from_bytes(data[start:stop], "little") ^ int.from_bytes(
            words[:size], "little"
        )
        out.append((first & 0x0F, payload.to_bytes(size, "little")))
        at = stop
    return at


#: A ping without payload, server to client (unmasked), RFC 6455 §5.5.2: the keep-alive's.
PING_FRAME: Final = ws_frame(0x80 | OP_PING, b"")


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return ws_frame(0x80 | OP_CLOSE, _CLOSE_CODE.pack(code) + reason[:123])


def close_reply(payload: bytes) -> bytes:
    """The close frame answering the peer's: it echoes the code, if there is one (§5.5.1)."""
    return ws_frame(0x80 | OP_CLOSE, payload[:2])


def handshake(request: web.Request) -> bytes:
    """The ``101 Switching Protocols`` answering a valid opening handshake (RFC 6455 §4.2);
    raises ``BadRequest`` for any other request."""
    headers = request.headers
    if request.method != "GET" or headers.get("Upgrade", "").lower() != "websocket":
        raise errors.BadRequest(detail="expected a WebSocket upgrade")
    if "upgrade" not in [t.strip().lower() for t in headers.get("Connection", "").split(",")]:
        raise errors.BadRequest(detail="Connection: Upgrade missing")
    if headers.get("Sec-WebSocket-Version") != "13":
        raise errors.BadRequest(detail="WebSocket version 13 only")
    key = headers.get("Sec-WebSocket-Key", "")
    if len(key) != 24 or not key.endswith("=="):
        raise errors.BadRequest(detail="bad Sec-WebSocket-Key")
    return (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + generate_accept_token(key.encode("ascii")) + b"\r\n\r\n"
    )


class _Switched(web.StreamResponse):
    """What the handler returns once it has taken the socket: aiohttp has nothing left to write."""

    def __init__(self) -> None:
        super().__init__(status=101)

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def take_over(
    request: web.Request, head: bytes, protocol: asyncio.BaseProtocol
) -> tuple[asyncio.Transport, web.StreamResponse] | None:
    """Write ``head`` and hand the socket to ``protocol``; aiohttp forgets the connection (its
    request handler, parser, timers and tasks go). Returns the transport and the response the
    handler must return, or None if the peer already left."""
    handler = request.protocol
    transport = request.transport
    if transport is None or transport.is_closing():
        return None
    transport.write(head)
    transport.set_protocol(protocol)
    # aiohttp has no API to let a connection go. To its handler the connection is lost (its
    # ``connection_lost`` drops its state and its entry in the server's list); without a
    # transport it neither closes the socket nor writes to it, which ``_Switched`` also spares.
    handler.transport = None
    handler.connection_lost(None)
    protocol.connection_made(transport)
    return transport, _Switched()


__all__ = [
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_TOO_BIG",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "PING_FRAME",
    "Fail",
    "MessageReader",
    "close_frame",
    "close_reply",
    "handshake",
    "take_over",
]
