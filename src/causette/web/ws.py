"""The WebSocket endpoint: authenticate, then decode each frame and hand it to the node."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from causette import errors
from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.models import Session
from causette.web.fanout import WS_PONG, ws_frame
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
    config = request.app[CONFIG]
    node = request.app[NODE]
    try:
        session = await _admit(request, node)
    except Exception as exc:
        return error_answer(request, exc)  # before the upgrade: an HTTP answer
    ip_key = network_key(request)
    ws = web.WebSocketResponse(
        # Keep-alive is the node's, one pass for every connection (``Node._ping``): no timer
        # per connection, no callback per frame received. So pings and pongs come to the loop.
        heartbeat=None,
        autoping=False,
        max_msg_size=config.limits.hard_frame_bytes,
        compress=False,  # frames are written pre-encoded by the fan-out
        decode_text=False,  # bytes go straight to the decoder, which checks UTF-8 itself
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:  # the peer left during the handshake
        return ws
    if node.network_full(ip_key):
        # Refused after the upgrade, with a bye: a browser cannot read an HTTP refusal of a
        # WebSocket, and would keep reconnecting without knowing why.
        log.info("ws_network_full")
        full = errors.TooManyConnections()
        bye = ev.Bye(code=full.code, message=full.message(session.lang), reconnect=False)
        await ws.send_str("[" + encode(bye).decode() + "]")
        await ws.close(code=CLOSE_POLICY, message=full.code.encode())
        return ws
    client = node.new_client(ws, transport, session, ip_key)
    last_notice = 0
    pending = _InFlight()
    try:
        async for msg in ws:
            now = node.clock.now_ms()
            client.heard_ms = now
            if client.closing:
                continue
            kind = msg.type
            if kind not in (WSMsgType.TEXT, WSMsgType.BINARY):
                if kind == WSMsgType.PONG:
                    continue
                if kind != WSMsgType.PING:
                    break
                # Answered when the loop reaches it, after the frames before it (a client can
                # use a ping as a barrier). Control frames carry at most 125 bytes.
                client.transport.write(ws_frame(WS_PONG, msg.data))
                continue
            text = kind == WSMsgType.TEXT
            data: bytes = msg.data
            # Every frame spends a token, binary ones too: a flood is never answered by a flood.
            if not client.bucket.take(now):
                if now - last_notice >= SLOW_DOWN_NOTICE_MS:
                    last_notice = now
                    await pending.settle()
                    node.error(client, errors.SlowDown(), command_ref(data) if text else None)
                continue
            if not text:
                await pending.settle()
                node.error(client, errors.BinaryNotSupported(), None)
                continue
            await _handle_frame(node, client, data, config.limits.max_frame_bytes, pending)
    finally:
        await pending.settle()  # sends already read finish (acknowledged if still possible)
        node.disconnected(client)
    return ws


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
