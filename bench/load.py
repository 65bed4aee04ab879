"""The load generator's worker process: many clients on one event loop, driven by the coordinator.

A worker never shares a process with a server. It holds its clients cheaply: WebSocket clients on
picows (a C-level frame parser that calls back synchronously, no task or await per frame), IRC
clients as plain asyncio protocols. Every message carries ``B<sender>.<stamp>Z`` where the stamp is
the moment it was *scheduled* (``time.monotonic_ns()``, shared by all processes of the machine), so
a late generator shows up as latency instead of hiding it (no coordinated omission). Receivers find
the stamps in each frame with one regex scan, whatever the framing (a Causette frame is a JSON
array of coalesced events) and record the delay in an HDR histogram.

The coordinator talks to a worker over a ``multiprocessing`` pipe: one request, one answer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import random
import re
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

import aiohttp
import picows
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

MARK = re.compile(rb"B(\d+)\.(\d+)Z")
#: Latencies are recorded in microseconds, from 1 µs to 60 s, with 3 significant digits.
HIST_ARGS = (1, 60_000_000, 3)
ENTRY_CONCURRENCY = 64
#: InspIRCd completes a registration on its once-a-second pass: many must be under way at once.
IRC_CONCURRENCY = 1000
#: The shortest sleep of an open-loop sender (uvloop's timer resolution).
MIN_SLEEP_S = 0.001
#: A slow reader (S8) leaves its socket unread this long, then reads for SLOW_READ.
SLOW_PAUSE = 2.0
SLOW_READ = 0.02


def new_histogram() -> HdrHistogram:
    return HdrHistogram(*HIST_ARGS)


@dataclass
class Stats:
    """What one worker measured since the last reset. Latencies (µs) are only appended to a list
    while measuring; they go into the HDR histogram when collected, outside the measurement."""

    values: list[int] = field(default_factory=list)
    slow_values: list[int] = field(default_factory=list)
    sent: int = 0
    acks: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    disconnects: int = 0
    max_lag_ms: float = 0.0
    bytes_in: int = 0

    @property
    def delivered(self) -> int:
        return len(self.values)

    @property
    def slow_delivered(self) -> int:
        return len(self.slow_values)

    def record(self, payload: bytes, own: int, slow: bool) -> None:
        # The generator shares the machine with the server: every microsecond spent here is
        # taken from it (one findall and a comprehension: 1.3 -> 1.0 us a delivery).
        now = time.monotonic_ns()
        self.bytes_in += len(payload)
        mine = b"%d" % own
        latencies = [(now - int(t)) // 1000 for s, t in MARK.findall(payload) if s != mine]
        (self.slow_values if slow else self.values).extend(latencies)

    @staticmethod
    def histogram(values: list[int]) -> HdrHistogram:
        hist = new_histogram()
        top = HIST_ARGS[1]
        for value, count in collections.Counter(values).items():
            hist.record_value(min(max(1, value), top), count)
        return hist

    def error(self, sample: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(sample[:300])


class Client:
    gid: int
    slow: bool
    person: str
    stats: Stats

    def send_text(self, target: str, text: str, local_id: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


# --- WebSocket clients (Causette and the bare broadcast server) -------------------------------


class WsListener(picows.WSListener):
    def __init__(self, client: WsClient) -> None:
        self.client = client

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type != picows.WSMsgType.TEXT:
            if frame.msg_type == picows.WSMsgType.CLOSE:
                transport.disconnect()
            return
        self.client.on_payload(frame.get_payload_as_bytes())

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.client.on_disconnected()


class WsClient(Client):
    """One browser tab: a session cookie and one WebSocket. ``chat`` is False for the bare server,
    which has no entry, rooms or acknowledgements."""

    def __init__(self, gid: int, stats: Stats, chat: bool, slow: bool) -> None:
        self.gid = gid
        self.stats = stats
        self.chat = chat
        self.slow = slow
        self.person = ""
        self.transport: Any = None
        self.listener: Any = None
        self.synced: dict[str, int] = {}
        self.setup = True
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.closed = False

    def on_payload(self, payload: bytes) -> None:
        stats = self.stats
        if self.setup:
            for event in json.loads(payload) if self.chat else ():
                key = event.get("type", "")
                if key == "sync":
                    key = "sync " + event.get("stream", "")
                future = self.waiting.pop(key, None)
                if future is not None and not future.done():
                    future.set_result(event)
                if event.get("type") == "error":
                    stats.error(json.dumps(event))
        if self.chat:
            if b'"type":"ack"' in payload:
                stats.acks += payload.count(b'"type":"ack"')
            if not self.setup and b'"type":"error"' in payload:
                stats.error(payload.decode(errors="replace"))
            if b'"type":"sync"' in payload:
                payload = self.unsynced(payload)
        stats.record(payload, self.gid, self.slow)

    def unsynced(self, payload: bytes) -> bytes:
        """The texts of a frame holding a ``sync``, without items an earlier ``sync`` of the same
        stream already counted (a ``recovered: false`` sync repeats what the page replaces)."""
        texts = []
        for event in json.loads(payload):
            if event.get("type") == "msg":
                texts.append(event.get("text", ""))
            elif event.get("type") == "sync":
                stream = event["stream"]
                done = self.synced.get(stream, 0)
                for item in event.get("items", []):
                    if item["seq"] > done:
                        texts.append(item.get("text", ""))
                self.synced[stream] = max([done] + [i["seq"] for i in event.get("items", [])])
        return " ".join(texts).encode()

    def on_disconnected(self) -> None:
        if not self.closed:
            self.stats.disconnects += 1
        self.closed = True
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("disconnected"))

    async def expect(self, key: str, send: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
        future = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        if send is not None:
            self.transport.send(picows.WSMsgType.TEXT, json.dumps(send).encode())
        return await asyncio.wait_for(future, timeout)

    async def open(
        self, ws_url: str, headers: dict[str, str], rooms: list[str], timeout: float
    ) -> None:
        # Keep the listener: picows does not hold it strongly, and frames stop when it is collected.
        self.transport, self.listener = await picows.ws_connect(
            lambda: WsListener(self),
            ws_url,
            extra_headers=headers,
            read_buffer_init_size=2048,
            websocket_handshake_timeout=timeout,
        )
        if not self.chat:
            self.setup = False
            return
        welcome = await self.expect("welcome", {"type": "hello", "v": 1, "streams": {}}, timeout)
        self.person = welcome["me"]["id"]
        for room in rooms:
            await self.expect(f"sync r:{room}", {"type": "join", "room": room}, timeout)
        self.setup = False
        if self.slow:
            asyncio.get_running_loop().create_task(self.read_slowly())

    async def read_slowly(self) -> None:
        """A slow consumer: reads for 20 ms every 2 s, so its socket fills up."""
        raw = self.transport.underlying_transport
        while True:
            raw.pause_reading()
            await asyncio.sleep(SLOW_PAUSE)
            if self.transport.is_disconnected:
                return
            raw.resume_reading()
            await asyncio.sleep(SLOW_READ)

    def send_text(self, target: str, text: str, local_id: str) -> None:
        if self.closed:
            return
        if self.chat:
            command = {"type": "send", "stream": target, "text": text, "local_id": local_id}
            self.transport.send(picows.WSMsgType.TEXT, json.dumps(command).encode())
        else:
            self.transport.send(picows.WSMsgType.TEXT, text.encode())

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.disconnect()


# --- IRC clients (InspIRCd) ----------------------------------------------------------------------


class IrcClient(Client, asyncio.Protocol):
    def __init__(self, gid: int, stats: Stats, slow: bool) -> None:
        self.gid = gid
        self.stats = stats
        self.slow = slow
        self.person = ""
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.setup = True
        self.waiting: dict[bytes, asyncio.Future[bytes]] = {}
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        data = self.buffer + data
        cut = data.rfind(b"\n") + 1
        self.buffer = data[cut:]
        chunk = data[:cut]
        if b"PING" in chunk or self.setup:
            for line in chunk.split(b"\r\n"):
                if line.startswith(b"PING "):
                    self.write(b"PONG " + line[5:])
                elif self.setup:
                    parts = line.split(b" ", 3)
                    if len(parts) > 1:
                        future = self.waiting.pop(parts[1], None)
                        if future is not None and not future.done():
                            future.set_result(line)
                        if parts[1] in (b"433", b"465", b"ERROR"):
                            self.stats.error(line.decode(errors="replace"))
        self.stats.record(chunk, self.gid, self.slow)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.stats.disconnects += 1
        self.closed = True
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("disconnected"))

    def write(self, line: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(line + b"\r\n")

    async def expect(self, numeric: bytes, send: list[bytes], timeout: float) -> bytes:
        future = asyncio.get_running_loop().create_future()
        self.waiting[numeric] = future
        for line in send:
            self.write(line)
        return await asyncio.wait_for(future, timeout)

    async def open(self, host: str, port: int, rooms: list[str], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.create_connection(lambda: self, host, port), timeout)
        nick = f"b{self.gid}".encode()
        await self.expect(b"001", [b"NICK " + nick, b"USER " + nick + b" 0 * :bench"], timeout)
        self.person = nick.decode()
        for room in rooms:
            await self.expect(b"366", [b"JOIN #" + room.encode()], timeout)
        self.setup = False

    def send_text(self, target: str, text: str, local_id: str) -> None:
        self.write(f"PRIVMSG {target} :{text}".encode())

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


# --- the worker ---------------------------------------------------------------------------------


def marked_text(gid: int, stamp_ns: int, size: int) -> str:
    text = f"B{gid}.{stamp_ns}Z "
    return text + "x" * max(0, size - len(text))


class Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.stats = Stats()
        self.clients: dict[int, Client] = {}
        self.specs: dict[int, dict[str, Any]] = {}
        self.system = ""
        self.target: dict[str, Any] = {}
        self.http: aiohttp.ClientSession | None = None
        self.commune = ""
        self.churning: asyncio.Task[None] | None = None
        self.local_ids = itertools.count()
        self.churn_ids = itertools.count(10_000_000 + index * 1_000_000)

    # - connecting

    async def enter(self, name: str) -> str:
        """Enter Causette as a visitor would (``POST /api/session``); the session token."""
        assert self.http is not None
        base = self.target["http"]
        if not self.commune:
            async with self.http.get(f"{base}/api/geo/postal/75001") as response:
                self.commune = (await response.json())["communes"][0]["code"]
        body = {
            "pseudonym": name,
            "gender": random.choice("fmx"),
            "age": random.randint(18, 70),
            "postal_code": "75001",
            "commune": self.commune,
            "accept_rules": True,
            "lang": "fr",
        }
        async with self.http.post(
            f"{base}/api/session", json=body, headers={"Origin": base}
        ) as response:
            if response.status != 201:
                raise RuntimeError(f"entry refused ({response.status}): {await response.text()}")
            cookie = response.cookies.get(self.target["cookie"])
            if cookie is None:
                raise RuntimeError("entry answered without a session cookie")
            return cookie.value

    async def connect_one(
        self, spec: dict[str, Any], timeout: float, stats: Stats | None = None
    ) -> Client:
        gid, rooms, slow = spec["gid"], spec["rooms"], spec.get("slow", False)
        stats = stats or self.stats
        client: Client
        if self.system == "inspircd":
            irc = IrcClient(gid, stats, slow)
            await irc.open(self.target["host"], self.target["port"], rooms, timeout)
            client = irc
        else:
            chat = self.system == "causette"
            ws = WsClient(gid, stats, chat, slow)
            headers = {"Origin": self.target["http"]}
            if chat:
                token = await self.enter(f"b{gid}")
                headers["Cookie"] = f"{self.target['cookie']}={token}"
            await ws.open(self.target["ws"], headers, rooms, timeout)
            client = ws
        return client

    async def setup(self, request: dict[str, Any]) -> dict[str, Any]:
        self.system = request["system"]
        self.target = request["target"]
        if self.http is None:
            self.http = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(),
                connector=aiohttp.TCPConnector(limit=ENTRY_CONCURRENCY),
            )
        timeout = request.get("timeout", 60.0)
        gate = asyncio.Semaphore(
            IRC_CONCURRENCY if self.system == "inspircd" else ENTRY_CONCURRENCY
        )
        failures: list[str] = []
        started = time.perf_counter()

        async def one(spec: dict[str, Any]) -> None:
            async with gate:
                try:
                    self.clients[spec["gid"]] = await self.connect_one(spec, timeout)
                    self.specs[spec["gid"]] = spec
                except Exception as exc:  # reported to the coordinator, which decides
                    failures.append(f"{type(exc).__name__}: {exc}"[:300])

        await asyncio.gather(*(one(spec) for spec in request["clients"]))
        return {
            "connected": len(self.clients),
            "failures": len(failures),
            "failure_samples": failures[:5],
            "seconds": time.perf_counter() - started,
            "ids": {gid: c.person for gid, c in self.clients.items()},
        }

    # - sending

    async def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Open-loop sending: ``rate`` messages per second in all, for ``duration`` seconds (or
        ``count`` messages), each from the next sender in turn to its target. ``burst`` instead
        makes every sender send that many messages back to back, at once."""
        senders: list[tuple[int, str]] = [(int(g), str(t)) for g, t in request["senders"]]
        size = request.get("size", 64)
        counter = self.local_ids  # unique for the worker's life: a reused one is a duplicate send
        stats = self.stats

        def send(gid: int, target: str, stamp: int) -> None:
            client = self.clients.get(gid)
            if client is None:
                return
            client.send_text(target, marked_text(gid, stamp, size), f"l{next(counter)}")
            stats.sent += 1

        if request.get("burst"):
            stamp = time.monotonic_ns()
            for gid, target in senders:
                for _ in range(request["burst"]):
                    send(gid, target, stamp)
            return {"sent": stats.sent}
        rate: float = request["rate"]
        total = request.get("count") or int(rate * request["duration"])
        interval_ns = 1e9 / rate
        start_ns = time.monotonic_ns() + 5_000_000
        turn = itertools.cycle(senders)
        k = 0
        while k < total:
            now_ns = time.monotonic_ns()
            due = min(total, int((now_ns - start_ns) / interval_ns) + 1)
            if due > k:
                stats.max_lag_ms = max(
                    stats.max_lag_ms, (now_ns - (start_ns + (due - 1) * interval_ns)) / 1e6
                )
            while k < due:
                gid, target = next(turn)
                send(gid, target, int(start_ns + k * interval_ns))
                k += 1
            if k < total:
                wake = start_ns + k * interval_ns
                # uvloop's timers count whole milliseconds: a shorter sleep is none, and above
                # 1,000 msg/s the sender would spin, taking a core from the server it measures.
                # What falls due meanwhile goes out together; each message's stamp is its due
                # time, so the wait is part of the latency measured.
                await asyncio.sleep(max(MIN_SLEEP_S, (wake - time.monotonic_ns()) / 1e9))
        return {"sent": stats.sent}

    # - churn (S6): extra clients that come, join, stay a moment and leave

    async def churn(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.churning is not None:
            self.churning.cancel()
            self.churning = None
        if request.get("rate"):
            self.churning = asyncio.get_running_loop().create_task(
                self._churn(request["rate"], request["rooms"], request.get("stay", 2.0))
            )
        return {}

    async def _churn(self, rate: float, rooms: list[list[str]], stay: float) -> None:
        """Every 1/rate s a newcomer enters, joins its rooms, stays ``stay`` s, leaves. Their
        deliveries go to a histogram of their own, not the steady clients'."""
        churn_stats = Stats()
        live: set[asyncio.Task[None]] = set()

        async def visit(gid: int, its_rooms: list[str]) -> None:
            try:
                client = await self.connect_one({"gid": gid, "rooms": its_rooms}, 30.0, churn_stats)
            except Exception:
                return
            await asyncio.sleep(stay)
            client.close()

        try:
            while True:
                task = asyncio.get_running_loop().create_task(
                    visit(next(self.churn_ids), random.choice(rooms))
                )
                live.add(task)
                task.add_done_callback(live.discard)
                await asyncio.sleep(1.0 / rate)
        finally:
            for task in live:
                task.cancel()

    # - results

    def counts(self) -> dict[str, Any]:
        s = self.stats
        return {
            "delivered": s.delivered,
            "slow_delivered": s.slow_delivered,
            "sent": s.sent,
            "acks": s.acks,
            "errors": s.errors,
            "error_samples": s.error_samples,
            "disconnects": s.disconnects,
            "max_lag_ms": s.max_lag_ms,
            "bytes_in": s.bytes_in,
            "clients": len(self.clients),
        }

    def collect(self) -> dict[str, Any]:
        out = self.counts()
        out["hist"] = Stats.histogram(self.stats.values).encode()
        out["slow_hist"] = Stats.histogram(self.stats.slow_values).encode()
        self.stats = fresh = Stats()
        for client in self.clients.values():
            client.stats = fresh
        return out

    async def close(self) -> dict[str, Any]:
        if self.churning is not None:
            self.churning.cancel()
        for client in self.clients.values():
            client.close()
        self.clients.clear()
        if self.http is not None:
            await self.http.close()
            self.http = None
        return {}


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _serve(conn: Connection, index: int) -> None:
    worker = Worker(index)
    loop = asyncio.get_running_loop()
    handlers: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
        "setup": worker.setup,
        "run": worker.run,
        "churn": worker.churn,
    }
    while True:
        kind, request = await loop.run_in_executor(None, conn.recv)
        try:
            if kind == "counts":
                answer = worker.counts()
            elif kind == "collect":
                answer = worker.collect()
            elif kind == "close":
                answer = await worker.close()
            elif kind == "exit":
                await worker.close()
                conn.send(("ok", {}))
                return
            else:
                answer = await handlers[kind](request)
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
            continue
        conn.send(("ok", answer))


def worker_main(conn: Connection, index: int) -> None:
    """Entry point of a worker process."""
    _raise_fd_limit()
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(conn, index))
    else:
        uvloop.run(_serve(conn, index))
