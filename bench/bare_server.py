"""The raw ceiling: a WebSocket broadcast server with no chat logic.

Same library as Causette (aiohttp, on uvloop) and the same way of writing: every text frame a
client sends is framed once and written to every connected socket, coalesced once per event-loop
tick like Causette's fan-out. No entry, no rooms, no storage, no JSON.

    python -m bench.bare_server --port 8100
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import WSMsgType, web

from causette.web.fanout import ws_text_frame


class Broadcaster:
    def __init__(self) -> None:
        self.transports: set[asyncio.Transport] = set()
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


async def websocket(request: web.Request) -> web.WebSocketResponse:
    hub = request.app[BROADCASTER]
    ws = web.WebSocketResponse(compress=False, heartbeat=30.0)
    await ws.prepare(request)
    transport = request.transport
    if transport is None:
        return ws
    hub.transports.add(transport)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                hub.publish(msg.data.encode())
            elif msg.type != WSMsgType.BINARY:
                break
    finally:
        hub.transports.discard(transport)
    return ws


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app() -> web.Application:
    app = web.Application()
    app[BROADCASTER] = Broadcaster()
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
