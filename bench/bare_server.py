"""The raw ceiling: a WebSocket broadcast server with no chat logic.

The same WebSocket stack as Causette (aiohttp on uvloop for the handshake, then the socket taken
over by its own protocol object, ``causette.web.frames``) and the same way of writing: every text
message a client sends is framed once and written to every connected socket, coalesced once per
event-loop tick like Causette's fan-out. Keep-alive is one pass over the sockets, like Causette's.
No entry, no rooms, no storage, no JSON.

    python -m bench.bare_server --port 8100
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import cast

from aiohttp import web

from causette.web import frames
from causette.web.fanout import WS_PONG, ws_frame, ws_text_frame

#: Keep-alive: a socket silent this long is pinged; silent twice as long, it is closed.
HEARTBEAT_S = 30.0
MAX_MESSAGE = 1 << 20


class Broadcaster:
    def __init__(self) -> None:
        self.transports: set[asyncio.Transport] = set()
        self.sockets: set[BareSocket] = set()
        self.pending: list[bytes] = []
        self.scheduled = False

    def publish(self, payload: bytes) -> None:
        self.pending.append(payload)
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        payload = b"\n".join(self.pending)
        self.pending.clear()
        frame = ws_text_frame(payload)
        for transport in self.transports:
            if not transport.is_closing():
                transport.write(frame)


BROADCASTER: web.AppKey[Broadcaster] = web.AppKey("broadcaster", Broadcaster)


class BareSocket(asyncio.Protocol):
    __slots__ = ("heard", "hub", "reader", "transport")

    def __init__(self, hub: Broadcaster) -> None:
        self.hub = hub
        self.reader = frames.MessageReader(MAX_MESSAGE)
        self.heard = time.monotonic()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.hub.transports.add(self.transport)
        self.hub.sockets.add(self)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self.heard = time.monotonic()
        try:
            messages = self.reader.feed(data)
        except frames.Fail as exc:
            transport.write(frames.close_frame(exc.code))
            transport.close()
            return
        for opcode, payload in messages:
            if opcode == frames.OP_TEXT:
                self.hub.publish(payload)
            elif opcode == frames.OP_PING:
                transport.write(ws_frame(WS_PONG, payload))
            elif opcode == frames.OP_CLOSE:
                transport.write(frames.close_reply(payload))
                transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.transport is not None:
            self.hub.transports.discard(self.transport)
        self.hub.sockets.discard(self)


async def websocket(request: web.Request) -> web.StreamResponse:
    try:
        head = frames.handshake(request)
    except Exception:
        return web.Response(status=400)
    taken = frames.take_over(request, head, BareSocket(request.app[BROADCASTER]))
    return taken[1] if taken is not None else web.Response(status=400)


async def keep_alive(hub: Broadcaster) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_S / 4)
        now = time.monotonic()
        for sock in list(hub.sockets):
            transport = sock.transport
            if transport is None or now - sock.heard < HEARTBEAT_S:
                continue
            if now - sock.heard >= 2 * HEARTBEAT_S:
                transport.close()
            else:
                transport.write(frames.PING_FRAME)


async def _start_keep_alive(app: web.Application) -> None:
    task = asyncio.create_task(keep_alive(app[BROADCASTER]))
    app[KEEP_ALIVE] = task


async def _stop_keep_alive(app: web.Application) -> None:
    app[KEEP_ALIVE].cancel()


KEEP_ALIVE: web.AppKey[asyncio.Task[None]] = web.AppKey("keep_alive", asyncio.Task)


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app() -> web.Application:
    app = web.Application()
    app[BROADCASTER] = Broadcaster()
    app.on_startup.append(_start_keep_alive)
    app.on_cleanup.append(_stop_keep_alive)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    web.run_app(make_app(), host=args.host, port=args.port, print=None, loop=loop, access_log=None)


if __name__ == "__main__":
    main()
