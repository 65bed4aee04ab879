"""The Redis bus: fan-out between nodes through Redis pub/sub.

One Redis channel per bus channel (``r:<slug>``, ``d:<a>:<b>``, ``p:<person>``, ``presence``…),
named with a prefix (``causette:`` unless the URL says ``?prefix=…``) because pub/sub channels
are shared by every database of a Redis server. A node subscribes to a channel only while it
has a local member (the hub decides); an envelope is published once and reaches each subscribed
node once, then the hub fans it out to local connections.

Two connections per node, both through redis-py (with hiredis):

Subscriber
    One connection in subscribe mode, read by one task. ``subscribe`` sends ``SUBSCRIBE`` and
    waits for Redis's confirmation (each SUBSCRIBE is confirmed in order: a FIFO of waiters per
    channel). When the connection breaks (Redis restarted, ``CLIENT KILL``, network), the task
    reconnects with backoff, subscribes again to every channel wanted, and once Redis confirmed
    them all calls ``resync``: what was published meanwhile is lost (pub/sub keeps nothing), so
    the node catches up from the store. While disconnected, ``subscribe`` returns at once.

Publisher
    ``publish`` encodes the envelope and appends it to an outbox; one task sends what has
    accumulated as one pipeline (many ``PUBLISH`` in one round trip), in order. If Redis does
    not answer, the batch stays in the outbox and is sent again after a backoff (at least once:
    nodes drop stream items they already have by seq; presence and control operations are
    idempotent). The outbox is bounded (``MAX_OUTBOX``): beyond, the oldest are dropped and
    logged (the subscribers, disconnected too by then, resync from the store anyway).

Wire format: a msgpack array ``[data, stream, seq, exclude, control]`` (``data`` the client
bytes, encoded once by the publisher, carried as they are).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from causette.core.ports import Deliver, Envelope, Resync
from causette.errors import BusUnreachable

log = logging.getLogger(__name__)

DEFAULT_PREFIX: Final = "causette:"
#: Envelopes waiting to be published, at most; beyond, the oldest are dropped.
MAX_OUTBOX: Final = 100_000
#: Envelopes sent in one pipeline, at most.
MAX_BATCH: Final = 1000
#: Reconnection backoff, in seconds: doubles from the first to the last.
BACKOFF: Final = (0.05, 2.0)
#: Seconds to open a connection.
CONNECT_TIMEOUT: Final = 5.0
#: Seconds for Redis to answer a batch of publications before it is sent again.
PUBLISH_TIMEOUT: Final = 2.0


class _Wire(msgspec.Struct, array_like=True, frozen=True):
    data: bytes
    stream: str = ""
    seq: int = 0
    exclude: list[str] = []
    control: bool = False


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Wire).decode


def encode_envelope(env: Envelope) -> bytes:
    return _encode(
        _Wire(
            env.data, env.stream, env.seq, sorted(env.exclude) if env.exclude else [], env.control
        )
    )


def decode_envelope(channel: str, payload: bytes) -> Envelope:
    wire = _decode(payload)
    return Envelope(
        channel=channel,
        data=wire.data,
        stream=wire.stream,
        seq=wire.seq,
        exclude=frozenset(wire.exclude) if wire.exclude else frozenset(),
        control=wire.control,
    )


def split_url(url: str) -> tuple[str, str]:
    """``(redis_url, prefix)``: the ``prefix`` query parameter is ours, not redis-py's."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = DEFAULT_PREFIX
    kept = []
    for key, value in query:
        if key == "prefix":
            prefix = value
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), prefix


def describe(url: str) -> str:
    """Where the bus is, for messages: ``host:port/db`` (never the password)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or ''}"


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


class RedisBus:
    def __init__(self, url: str) -> None:
        redis_url, prefix = split_url(url)
        self.target = describe(redis_url)
        self._pool: ConnectionPool = ConnectionPool.from_url(
            redis_url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            # Replies (handshake, publications) within this; the subscriber's blocking read
            # opts out explicitly.
            socket_timeout=CONNECT_TIMEOUT,
            socket_keepalive=True,
            retry=_no_retry(),
            max_connections=4,
            # RESP2: pub/sub messages come back from ``read_response`` as plain arrays (with
            # RESP3 they are "push" replies, handed to a callback instead).
            protocol=2,
            # Shown by CLIENT LIST: which connections are Causette's, and of which instance.
            client_name=_client_name(prefix),
        )
        self._client = Redis(connection_pool=self._pool)
        self._prefix = prefix
        self._prefix_bytes = prefix.encode()
        self._deliver: Deliver | None = None
        self._resync: Resync | None = None
        self._closed = False
        # Subscriptions: wanted (what the node asked for), and per channel the waiters for
        # each SUBSCRIBE sent and not yet confirmed.
        self._wanted: set[str] = set()
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}
        self._sub: AbstractConnection | None = None
        self._closing: set[asyncio.Future[None]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._resubscribing: set[str] = set()
        self._resync_due = False
        # Publishing.
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # set each time the outbox becomes empty
        self._writer: asyncio.Task[None] | None = None
        self._dropped = 0
        # Figures for tests and operators.
        self.reconnects = 0
        self.publish_failures = 0

    # --- lifecycle --------------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise ``BusUnreachable`` unless Redis answers."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await self._client.ping()
        except (RedisError, OSError, TimeoutError) as error:
            raise BusUnreachable(target=self.target, reason=_reason(error)) from error

    async def start(self, deliver: Deliver, resync: Resync | None = None) -> None:
        self._deliver = deliver
        self._resync = resync
        self._closed = False
        try:
            await self._open_subscriber()
        except (RedisError, OSError, TimeoutError) as error:
            self._drop_subscriber()
            raise BusUnreachable(target=self.target, reason=_reason(error)) from error
        self._resync_due = False  # the first connection needs no resync
        self._reader = asyncio.create_task(self._read_loop())
        self._writer = asyncio.create_task(self._write_loop())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._deliver = None
        if self._writer is not None and self._outbox:
            # A last chance for what is queued (e.g. a shutting-down node's presence).
            self._wake.set()
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._drained.wait()
        for task in (self._reader, self._writer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._reader = self._writer = None
        self._drop_subscriber()
        self._release_waiters()
        self._wanted.clear()
        self._outbox.clear()
        for closing in list(self._closing):
            with contextlib.suppress(Exception):
                await closing
        await self._client.aclose()
        await self._pool.disconnect()

    # --- subscribing ------------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        if self._closed:
            return
        self._wanted.add(channel)
        sub = self._sub
        if sub is None:
            return  # disconnected: subscribed on reconnection, then resync
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, deque()).append(waiter)
        try:
            await sub.send_command("SUBSCRIBE", self._prefix + channel)
        except (RedisError, OSError):
            self._lost(sub)
            return
        await waiter

    async def unsubscribe(self, channel: str) -> None:
        self._wanted.discard(channel)
        sub = self._sub
        if sub is None or self._closed:
            return
        try:
            await sub.send_command("UNSUBSCRIBE", self._prefix + channel)
        except (RedisError, OSError):
            self._lost(sub)

    async def _open_subscriber(self) -> None:
        """Connect the subscriber and subscribe to every wanted channel (confirmations are
        read by the reader, which calls ``resync`` once they all came, if one is due)."""
        sub: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        await sub.connect()  # type: ignore[no-untyped-call]
        # From here on, ``subscribe`` sends on this connection itself: a channel wanted after
        # the snapshot below is subscribed by its own command, none is forgotten.
        self._sub = sub
        wanted = sorted(self._wanted)
        self._resubscribing = set(wanted)
        if wanted:
            await sub.send_command("SUBSCRIBE", *[self._prefix + c for c in wanted])

    def reconnect(self) -> None:
        sub = self._sub
        if self._closed or sub is None:
            return  # already reconnecting
        log.warning("bus_reconnecting", extra={"channels": len(self._wanted)})
        # Closing the connection ends the reader's blocked read; it then connects anew.
        self._lost(sub)

    def _lost(self, sub: AbstractConnection) -> None:
        """The subscriber connection broke: forget it (the reader reconnects)."""
        if self._sub is sub:
            self._drop_subscriber()
            self._release_waiters()
            self._resync_due = True

    def _drop_subscriber(self) -> None:
        sub, self._sub = self._sub, None
        self._resubscribing = set()
        if sub is not None:
            # Without waiting for the close: the reader may still be blocked reading it.
            task = asyncio.ensure_future(sub.disconnect(nowait=True))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _release_waiters(self) -> None:
        """Subscribers waiting for a confirmation that will not come: let them go on (they
        are covered by the resubscription and ``resync``)."""
        waiters, self._waiters = self._waiters, {}
        for queue in waiters.values():
            for waiter in queue:
                if not waiter.done():
                    waiter.set_result(None)

    async def _read_loop(self) -> None:
        delay = BACKOFF[0]
        while not self._closed:
            sub = self._sub
            if sub is None:
                try:
                    # Bounded: a connection accepted while Redis restarts may never answer.
                    async with asyncio.timeout(CONNECT_TIMEOUT):
                        await self._open_subscriber()
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # whatever it is, the node must not stay deaf
                    log.warning("bus_reconnect_failed", extra={"reason": type(error).__name__})
                    self._drop_subscriber()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, BACKOFF[1])
                    continue
                sub = self._sub
                assert sub is not None
                delay = BACKOFF[0]
                self.reconnects += 1
                log.warning("bus_reconnected", extra={"channels": len(self._wanted)})
                if not self._resubscribing:
                    self._resubscribed()
            try:
                response = await sub.read_response(timeout=math.inf, disconnect_on_error=False)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self._sub is sub:
                    log.warning("bus_disconnected", extra={"reason": type(error).__name__})
                self._lost(sub)
                continue
            if response is None:
                continue
            try:
                self._handle(response)
            except Exception:  # a fault of ours in one delivery must not stop the reader
                log.exception("bus_deliver_failed")

    def _handle(self, response: Any) -> None:
        kind = response[0]
        if kind == b"message":
            channel: bytes = response[1]
            deliver = self._deliver
            if deliver is None or not channel.startswith(self._prefix_bytes):
                return
            name = channel[len(self._prefix_bytes) :].decode()
            if name not in self._wanted:
                return  # unsubscribed meanwhile
            try:
                env = decode_envelope(name, response[2])
            except msgspec.DecodeError:
                log.error("bus_bad_envelope", extra={"channel_kind": name[:2]})
                return
            deliver(env)
        elif kind == b"subscribe":
            name = response[1][len(self._prefix_bytes) :].decode()
            queue = self._waiters.get(name)
            if queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                if not queue:
                    del self._waiters[name]
            if self._resubscribing:
                self._resubscribing.discard(name)
                if not self._resubscribing:
                    self._resubscribed()

    def _resubscribed(self) -> None:
        """Every wanted channel is subscribed again after a reconnection: catch up."""
        if self._resync_due:
            self._resync_due = False
            if self._resync is not None:
                self._resync()

    # --- publishing -------------------------------------------------------------------------

    def publish(self, envelope: Envelope) -> None:
        if self._closed:
            return
        outbox = self._outbox
        outbox.append((self._prefix + envelope.channel, encode_envelope(envelope)))
        if len(outbox) > MAX_OUTBOX:
            outbox.popleft()
            self._dropped += 1
            if self._dropped in (1, 10, 100, 1000) or self._dropped % 10000 == 0:
                log.error("bus_outbox_full", extra={"dropped": self._dropped})
        self._wake.set()

    async def _write_loop(self) -> None:
        delay = BACKOFF[0]
        failing_since = 0.0
        outbox = self._outbox
        while True:
            if not outbox:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [outbox[i] for i in range(min(len(outbox), MAX_BATCH))]
            try:
                async with (
                    asyncio.timeout(PUBLISH_TIMEOUT),
                    self._client.pipeline(transaction=False) as pipe,
                ):
                    for channel, payload in batch:
                        pipe.publish(channel, payload)
                    await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # whatever it is, the outbox must keep going
                self.publish_failures += 1
                if not failing_since:
                    failing_since = time.monotonic()
                    log.warning("bus_publish_failed", extra={"reason": type(error).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF[1])
                continue
            # The batch went out: forget it (unless the outbox overflowed meanwhile and
            # dropped some of it already).
            for _ in range(min(len(batch), len(outbox))):
                outbox.popleft()
            if failing_since:
                log.warning(
                    "bus_publish_resumed",
                    extra={"after_ms": round((time.monotonic() - failing_since) * 1000)},
                )
                failing_since = 0.0
            delay = BACKOFF[0]


def _client_name(prefix: str) -> str:
    """A CLIENT SETNAME name (no spaces or newlines) saying which instance a connection is."""
    safe = "".join(c if c.isalnum() or c in "-_.:" else "_" for c in prefix)
    return f"causette-bus.{safe}".rstrip(":")


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200].rstrip(".")
