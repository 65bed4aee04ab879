"""A protocol client for tests: enters over HTTP like the page does, then speaks the WebSocket
protocol. Waiting is always for an event (with a deadline), never a sleep."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from yarl import URL

Event = dict[str, Any]

DEFAULT_TIMEOUT = 5.0


class ProtocolClient:
    def __init__(self, base_url: str, *, origin: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.origin = origin if origin is not None else self.base_url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.me: Event = {}
        self.events: list[Event] = []  # everything received, in order
        self.frames: list[list[Event]] = []
        self._inbox: asyncio.Queue[Event] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.cursors: dict[str, list[Any]] = {}  # stream -> [epoch, last_seq]
        self._n = 0
        self._pongs: dict[bytes, asyncio.Future[None]] = {}
        #: Whether the server's pings are answered (a browser's always are), and how many came.
        self.answer_pings = True
        self.pings: asyncio.Queue[bytes] = asyncio.Queue()

    # --- HTTP ---------------------------------------------------------------------------------

    async def enter(
        self,
        pseudonym: str,
        *,
        gender: str = "f",
        age: int = 30,
        postal_code: str = "75011",
        commune: str = "",
        **extra: Any,
    ) -> Event:
        body = {
            "pseudonym": pseudonym,
            "gender": gender,
            "age": age,
            "postal_code": postal_code,
            "commune": commune,
            "accept_rules": True,
            **extra,
        }
        status, data = await self.post("/api/session", body)
        if status != 201:
            raise AssertionError(f"entry refused ({status}): {data}")
        self.me = data["me"]
        return self.me

    async def post(self, path: str, body: Any, **headers: str) -> tuple[int, Any]:
        hdrs = {"Origin": self.origin, **headers}
        async with self.http.post(self.base_url + path, json=body, headers=hdrs) as resp:
            return resp.status, await resp.json()

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base_url + path) as resp:
            return resp.status, await resp.json()

    async def quit(self) -> int:
        async with self.http.delete(
            self.base_url + "/api/session", headers={"Origin": self.origin}
        ) as resp:
            return resp.status

    def session_token(self, name: str = "causette_session") -> str:
        """The session cookie's value ("" when there is none)."""
        morsel = self.http.cookie_jar.filter_cookies(URL(self.base_url)).get(name)
        return morsel.value if morsel is not None else ""

    def share_session(self, other: ProtocolClient) -> None:
        """Use ``other``'s session cookie, as another tab of the same browser does."""
        self.http.cookie_jar.update_cookies({"causette_session": other.session_token()})
        self.me = other.me

    # --- WebSocket ----------------------------------------------------------------------------

    async def connect(
        self,
        *,
        hello: bool = True,
        cursors: dict[str, list[Any]] | None = None,
        origin: str | None = None,
    ) -> Event | None:
        self.closed = asyncio.Event()
        self.close_code = None
        self.ws = await self.http.ws_connect(
            self.base_url.replace("http", "ws", 1) + "/ws",
            origin=origin if origin is not None else self.origin,
            max_msg_size=16 << 20,
            autoping=False,  # pongs are read by ``barrier``; pings are answered in ``_read``
        )
        self._reader = asyncio.create_task(self._read(self.ws))
        if not hello:
            return None
        await self.send(
            {"type": "hello", "v": 1, "streams": cursors if cursors is not None else self.cursors}
        )
        return await self.expect("welcome")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.PING:
                    if self.answer_pings:
                        await ws.pong(msg.data)
                    self.pings.put_nowait(msg.data)
                    continue
                if msg.type == aiohttp.WSMsgType.PONG:
                    waiter = self._pongs.pop(msg.data, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                assert isinstance(frame, list), f"server frames are arrays, got {frame!r}"
                self.frames.append(frame)
                for event in frame:
                    self._track(event)
                    self.events.append(event)
                    self._inbox.put_nowait(event)
        finally:
            self.close_code = ws.close_code
            self.closed.set()

    def _track(self, event: Event) -> None:
        """Keep per-stream cursors like the page does, and check the delivery contract."""
        if event["type"] == "sync":
            self.cursors[event["stream"]] = [event["epoch"], event["last_seq"]]
        elif event["type"] == "msg":
            cursor = self.cursors.get(event["stream"])
            assert cursor is not None, f"msg before sync for {event['stream']}"
            assert event["seq"] == cursor[1] + 1, (
                f"gap or duplicate in {event['stream']}: got {event['seq']} after {cursor[1]}"
            )
            cursor[1] = event["seq"]

    async def send(self, command: Event) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(command))

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def send_text_frame(self, payload: bytes) -> None:
        """A TEXT frame with exactly these bytes (even when they are not valid UTF-8)."""
        assert self.ws is not None
        await self.ws._writer.send_frame(payload, aiohttp.WSMsgType.TEXT)

    async def barrier(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Return once the server has read every frame sent before: it answers a ping only
        when its reading loop reaches it, after handling the frames ahead of it. (Replies to
        those frames may still be on their way: wait for them with ``expect``.)"""
        assert self.ws is not None
        self._n += 1
        token = f"barrier-{self._n}".encode()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs[token] = waiter
        await self.ws.ping(token)
        async with asyncio.timeout(timeout):
            await waiter

    def local_id(self) -> str:
        self._n += 1
        return f"t{self._n}"

    async def say(self, stream: str, text: str, *, local_id: str | None = None) -> Event:
        lid = local_id or self.local_id()
        await self.send({"type": "send", "stream": stream, "text": text, "local_id": lid})
        return await self.answer_to(lid)

    async def answer_to(self, local_id: str, timeout: float = DEFAULT_TIMEOUT) -> Event:
        """The ``ack`` of the send with this ``local_id``, or the ``error`` it caused."""
        return await self.expect(
            lambda e: (
                (e["type"] == "ack" and e["local_id"] == local_id)
                or (e["type"] == "error" and e.get("ref") == local_id)
            ),
            timeout,
        )

    async def join(self, room: str) -> Event:
        await self.send({"type": "join", "room": room})
        return await self.expect(lambda e: e["type"] == "sync" and e["stream"] == "r:" + room)

    async def expect(
        self, what: str | Callable[[Event], bool], timeout: float = DEFAULT_TIMEOUT
    ) -> Event:
        """The next received event matching ``what`` (a type name or a predicate); events
        before it are skipped (they stay in ``events``)."""
        match = (lambda e: e["type"] == what) if isinstance(what, str) else what
        async with asyncio.timeout(timeout):
            while True:
                event = await self._inbox.get()
                if match(event):
                    return event

    async def expect_error(self, code: str, timeout: float = DEFAULT_TIMEOUT) -> Event:
        return await self.expect(lambda e: e["type"] == "error" and e["code"] == code, timeout)

    async def expect_msg(
        self,
        stream: str,
        predicate: Callable[[Event], bool] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Event:
        return await self.expect(
            lambda e: (
                e["type"] == "msg" and e["stream"] == stream and (predicate is None or predicate(e))
            ),
            timeout,
        )

    async def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> int | None:
        async with asyncio.timeout(timeout):
            await self.closed.wait()
        return self.close_code

    async def disconnect(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader
        self._inbox = asyncio.Queue()

    async def close(self) -> None:
        await self.disconnect()
        await self.http.close()
