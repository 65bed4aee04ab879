"""The chat's WebSocket endpoint: authenticate, answer the handshake and take the socket over
(``frames.take_over``), then decode each message and hand it to the node."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from aiohttp import web

from causette import errors
from causette.config import LimitsConfig
from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.models import Session
from causette.web import frames
from causette.web.fanout import WS_PONG, ws_frame, ws_text_frame
from causette.web.http import current_session, error_answer, network_key, origin_allowed
from causette.web.keys import CONFIG, NODE
from causette.web.node import CLOSE_POLICY, Client, Node
from causette.web.protocol import command_ref, decode_command, encode

log = logging.getLogger(__name__)

#: At most one ``slow_down`` error per this many ms: a flood must not be answered by a flood.
SLOW_DOWN_NOTICE_MS = 1000
#: Room messages one connection may have in flight (read, not yet stored) at once.
PIPELINE_DEPTH = 256


async def _admit(request: web.Request, node: Node) -> Session:
    """The session a WebSocket may open for, or the reason it may not (raised)."""
    if node.shutting_down:
        raise errors.ShuttingDown()
    if not origin_allowed(request, request.app[CONFIG]):
        log.info("ws_origin_refused")
        raise errors.OriginForbidden()
    session = await current_session(request)
    if session is None:
        raise errors.NotAuthenticated()
    return session


async def websocket(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    try:
        session = await _admit(request, node)
        head = frames.handshake(request)
    except Exception as exc:
        return error_answer(request, exc)  # before the upgrade: an HTTP answer
    ip_key = network_key(request)
    if node.network_full(ip_key):
        # Refused after the upgrade, with a bye: a browser cannot read an HTTP refusal of a
        # WebSocket, and would keep reconnecting without knowing why.
        log.info("ws_network_full")
        taken = frames.take_over(request, head, asyncio.Protocol())
        if taken is None:
            return web.Response(status=400)
        transport, switched = taken
        full = errors.TooManyConnections()
        bye = ev.Bye(code=full.code, message=full.message(session.lang), reconnect=False)
        transport.write(ws_text_frame(b"[" + encode(bye) + b"]"))
        transport.write(frames.close_frame(CLOSE_POLICY, full.code.encode()))
        transport.close()
        return switched
    sock = ChatSocket(node, request.app[CONFIG].limits)
    taken = frames.take_over(request, head, sock)
    if taken is None:  # the peer left during the handshake
        return web.Response(status=400)
    transport, switched = taken
    sock.client = node.new_client(sock, transport, session, ip_key)
    return switched


#: A socket stops reading while this many messages wait for its worker, and reads again once
#: half of them are handled: a client cannot queue more than this on the server.
INBOX_HIGH = 32
#: After the node's close frame, how long the peer has to answer before the socket is dropped.
CLOSE_TIMEOUT_S = 10.0
#: An inbox entry that is not a frame: the peer broke the protocol (its payload: the close frame).
_FAILED = -1


class ChatSocket(asyncio.Protocol):
    """One chat WebSocket after the handshake, as the socket's own protocol object.

    ``data_received`` parses frames (``frames.MessageReader``) and queues the messages in
    ``inbox``; a task, made only while the inbox holds something, hands them to the node in
    order. An idle connection holds no task, no timer and no buffer of its own."""

    __slots__ = (
        "_close_timer",
        "_done",
        "_last_notice",
        "_limits",
        "_lost",
        "_paused",
        "_reader",
        "_waiter",
        "_worker",
        "client",
        "close_sent",
        "inbox",
        "node",
        "pending",
        "transport",
    )

    def __init__(self, node: Node, limits: LimitsConfig) -> None:
        self.node = node
        self._limits = limits
        self.client: Client | None = None
        self.transport: asyncio.Transport | None = None
        self._reader: frames.MessageReader | None = frames.MessageReader(limits.hard_frame_bytes)
        self.inbox: list[tuple[int, bytes]] = []
        self.pending = _InFlight()
        self._worker: asyncio.Task[None] | None = None
        self._paused = False
        self._lost = False
        self._done = False
        self.close_sent = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._last_notice = 0

    # --- the transport's callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        client = self.client
        reader = self._reader
        if client is None or reader is None:
            return
        client.heard_ms = self.node.clock.now_ms()
        inbox = self.inbox
        failed: frames.Fail | None = None
        try:
            messages = reader.feed(data)
        except frames.Fail as exc:
            failed, messages = exc, exc.before
        for message in messages:
            if message[0] != frames.OP_PONG:  # a pong only says the peer is there
                inbox.append(message)
        if failed is not None:
            # Nothing more is read; what came before is still handled, then the close.
            log.info("ws_protocol_error", extra={"code": failed.code})
            self._reader = None
            inbox.append((_FAILED, frames.close_frame(failed.code, failed.reason.encode())))
        if not inbox:
            return
        if len(inbox) >= INBOX_HIGH and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())

    def eof_received(self) -> bool:
        return False  # the transport closes itself

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._worker is None:
            if self.pending.count:
                self._worker = asyncio.get_running_loop().create_task(self._work())
            else:
                self._disconnected()

    # --- the node's side (``node.Socket``) ------------------------------------------------

    def close(self, code: int, reason: bytes) -> None:
        transport = self.transport
        if self.close_sent or self._lost or transport is None:
            return
        self.close_sent = True
        if transport.is_closing():
            return
        transport.write(frames.close_frame(code, reason))
        self._close_timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, transport.abort)

    def abort(self) -> None:
        if not self._lost and self.transport is not None:
            self.transport.abort()

    async def wait_closed(self) -> None:
        if self._lost:
            return
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter

    # --- the worker ------------------------------------------------------------------------

    async def _work(self) -> None:
        try:
            while self.inbox:
                opcode, data = self.inbox.pop(0)
                if self._paused and len(self.inbox) <= INBOX_HIGH // 2:
                    self._paused = False
                    if self.transport is not None and not self._lost:
                        self.transport.resume_reading()
                await self._handle(opcode, data)
        except Exception:
            log.exception("ws_worker_failed")
            if self.transport is not None:
                self.transport.abort()
        finally:
            self._worker = None
        if self._lost:
            await self.pending.settle()  # sends already read finish (acknowledged if possible)
            self._disconnected()

    async def _handle(self, opcode: int, data: bytes) -> None:
        node = self.node
        client = self.client
        transport = self.transport
        assert client is not None
        assert transport is not None
        if opcode >= frames.OP_CLOSE or opcode == _FAILED:
            # Written after the events queued for this connection: answers keep the order of
            # the frames (a client can use a ping as a barrier).
            hub = node.hub
            if opcode == frames.OP_PING:
                hub.write_after_queued(client.conn, ws_frame(WS_PONG, data))
                return
            await self.pending.settle()  # the sends before it are answered first
            client.closing = True
            self.inbox.clear()
            if not self.close_sent:
                # Ours after a protocol error; else the peer closes: echo its code (§5.5.1).
                reply = data if opcode == _FAILED else frames.close_reply(data)
                hub.write_after_queued(client.conn, reply)
            self.close_sent = True
            transport.close()
            return
        if client.closing:
            return
        text = opcode == frames.OP_TEXT
        now = node.clock.now_ms()
        pending = self.pending
        # Every frame spends a token, binary ones too: a flood is never answered by a flood.
        if not client.bucket.take(now):
            if now - self._last_notice >= SLOW_DOWN_NOTICE_MS:
                self._last_notice = now
                await pending.settle()
                node.error(client, errors.SlowDown(), command_ref(data) if text else None)
            return
        if not text:
            await pending.settle()
            node.error(client, errors.BinaryNotSupported(), None)
            return
        await _handle_frame(node, client, data, self._limits.max_frame_bytes, pending)

    def _disconnected(self) -> None:
        if self._done:
            return
        self._done = True
        if self.client is not None:
            self.node.disconnected(self.client)


class _InFlight:
    """The room messages of one connection read but not answered yet."""

    __slots__ = ("_waiter", "count")

    def __init__(self) -> None:
        self.count = 0
        self._waiter: asyncio.Future[None] | None = None

    def answered(self) -> None:
        self.count -= 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def below(self, limit: int) -> None:
        while self.count >= limit:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        self._waiter = None

    async def settle(self) -> None:
        """Wait for the sends in flight, so that answers keep the order of the frames."""
        await self.below(1)


async def _handle_frame(
    node: Node, client: Client, data: bytes, max_bytes: int, pending: _InFlight
) -> None:
    try:
        command = decode_command(data, max_bytes)
    except errors.CausetteError as exc:
        await pending.settle()
        node.error(client, exc, command_ref(data) if len(data) <= max_bytes else None)
        return
    if client.greeted and isinstance(command, cmd.Send) and command.stream.startswith("r:"):
        # Room messages are pipelined: the next frames are read while this one is stored (the
        # store commits appends in groups), and no task is made for it: it is checked now, and
        # acknowledged and fanned out when the store answers (decision 8). Appends are stored
        # in the order they were made, so seqs and acks keep the order of the frames; any other
        # command, and any error, waits for the sends before it.
        ref = command.ref or command.local_id

        def answered(error: BaseException | None) -> None:
            if error is not None:
                _report(node, client, command, ref, error)
            pending.answered()

        try:
            rest = node.send_in_room(client, command, answered)
        except Exception as exc:
            await pending.settle()
            _report(node, client, command, ref, exc)
            return
        if rest is None:
            pending.count += 1
            await pending.below(PIPELINE_DEPTH)
            return
        try:
            await pending.settle()
        except BaseException:
            rest.close()  # the connection is going: the held send never started
            raise
        try:
            await node.run(await rest, client)
        except Exception as exc:
            _report(node, client, command, ref, exc)
        return
    await pending.settle()
    await _run(node, client, command)


async def _run(node: Node, client: Client, command: cmd.AnyCommand) -> None:
    ref = command.ref or (command.local_id if isinstance(command, cmd.Send) else None)
    try:
        if client.greeted:
            await node.command(client, command)
        elif isinstance(command, cmd.Hello):
            await node.greet(client, command)
        else:
            raise errors.HelloRequired()
    except Exception as exc:
        _report(node, client, command, ref, exc)


def _report(
    node: Node, client: Client, command: cmd.AnyCommand, ref: str | None, exc: BaseException
) -> None:
    """Answer a failed command: its error, or ``internal_error`` (logged) for a fault of ours."""
    if isinstance(exc, errors.CausetteError):
        node.error(client, exc, ref)
        return
    log.error("command_failed", exc_info=exc, extra={"command": type(command).__name__})
    node.error(client, errors.InternalError(), ref)
