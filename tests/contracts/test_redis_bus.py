"""What only the Redis bus does: prefixes, losing Redis and coming back, refusing to start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from causette.bus import open_bus
from causette.bus.redis import (
    RedisBus,
    _client_name,
    decode_envelope,
    encode_envelope,
    split_url,
)
from causette.core.ports import Envelope
from causette.errors import BusUnreachable
from tests.conftest import require
from tests.support import services

pytestmark = pytest.mark.redis

TIMEOUT = 5.0


class Probe:
    """One node's bus with what it received and how many times it was told to resync."""

    def __init__(self, bus: RedisBus) -> None:
        self.bus = bus
        self.inbox: asyncio.Queue[Envelope] = asyncio.Queue()
        self.resyncs = 0
        self.resynced = asyncio.Event()

    def on_resync(self) -> None:
        self.resyncs += 1
        self.resynced.set()

    async def next(self) -> Envelope:
        async with asyncio.timeout(TIMEOUT):
            return await self.inbox.get()


@asynccontextmanager
async def probes(url: str, n: int = 2) -> AsyncIterator[list[Probe]]:
    made: list[Probe] = []
    try:
        for _ in range(n):
            bus = await open_bus(url)
            assert isinstance(bus, RedisBus)
            probe = Probe(bus)
            await bus.start(probe.inbox.put_nowait, probe.on_resync)
            made.append(probe)
        yield made
    finally:
        for probe in made:
            await probe.bus.close()


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Poll a condition with a deadline (for figures no event announces)."""
    async with asyncio.timeout(TIMEOUT):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def test_envelopes_round_trip_through_the_wire_format() -> None:
    env = Envelope("r:x", b"\x00\xff{}", stream="r:x", seq=7, exclude=frozenset({"b", "a"}))
    assert decode_envelope("r:x", encode_envelope(env)) == env
    control = Envelope("p:1", b"{}", control=True)
    assert decode_envelope("p:1", encode_envelope(control)) == control


def test_the_prefix_is_read_from_the_url_and_not_passed_to_redis() -> None:
    assert split_url("redis://h:1/2?prefix=site-a:") == ("redis://h:1/2", "site-a:")
    assert split_url("redis://h:1/0") == ("redis://h:1/0", "causette:")
    assert split_url("rediss://h/0?prefix=x:&ssl_cert_reqs=none") == (
        "rediss://h/0?ssl_cert_reqs=none",
        "x:",
    )


async def test_two_prefixes_do_not_hear_each_other() -> None:
    services.need_redis()
    async with (
        probes(f"{services.REDIS_URL}?prefix={services.new_prefix()}", 1) as [a],
        probes(f"{services.REDIS_URL}?prefix={services.new_prefix()}", 1) as [b],
    ):
        await a.bus.subscribe("r:general")
        await b.bus.subscribe("r:general")
        b.bus.publish(Envelope("r:general", b"for b"))
        assert (await b.next()).data == b"for b"
        a.bus.publish(Envelope("r:general", b"for a"))
        assert (await a.next()).data == b"for a"
        assert a.inbox.empty()
        assert b.inbox.empty()


async def test_killed_connections_resubscribe_and_ask_for_a_resync() -> None:
    services.need_redis()
    prefix = services.new_prefix()
    async with probes(f"{services.REDIS_URL}?prefix={prefix}") as [publisher, subscriber]:
        await subscriber.bus.subscribe("r:general")
        await subscriber.bus.subscribe("p:someone")
        admin = Redis.from_url(services.REDIS_URL)
        try:
            # Every connection of this test's buses (named after their prefix), like a
            # ``CLIENT KILL`` by an operator or a network cut.
            name = _client_name(prefix)
            ours = [c["id"] for c in await admin.client_list() if c.get("name") == name]
            assert len(ours) >= 3  # two subscribers, at least one publisher
            for client_id in ours:
                await admin.client_kill_filter(_id=client_id)
        finally:
            await admin.aclose()
        async with asyncio.timeout(TIMEOUT):
            await subscriber.resynced.wait()
        async with asyncio.timeout(TIMEOUT):
            await publisher.resynced.wait()
        assert (subscriber.resyncs, publisher.resyncs) == (1, 1)
        for channel in ("r:general", "p:someone"):
            publisher.bus.publish(Envelope(channel, channel.encode()))
            assert (await subscriber.next()).data == channel.encode()


async def test_a_redis_restart_loses_nothing_published_and_resyncs() -> None:
    require(services.private_redis_available(), "redis-server", "apt-get install redis-server")
    import tempfile
    from pathlib import Path

    server = services.PrivateRedis(Path(tempfile.mkdtemp(prefix="causette-redis-")))
    server.start()
    try:
        async with probes(server.url) as [publisher, subscriber]:
            await subscriber.bus.subscribe("r:general")
            publisher.bus.publish(Envelope("r:general", b"before", "r:general", 1))
            assert (await subscriber.next()).seq == 1
            server.stop()
            # Published while Redis is down: queued, in order, and sent once it is back.
            for seq in (2, 3, 4):
                publisher.bus.publish(Envelope("r:general", b"during", "r:general", seq))
            await eventually(lambda: publisher.bus.publish_failures > 0, "a failed publish")
            server.start()
            async with asyncio.timeout(TIMEOUT):
                await subscriber.resynced.wait()
            # Everything queued was sent once Redis was back ...
            await eventually(lambda: not publisher.bus._outbox, "the outbox sent")
            publisher.bus.publish(Envelope("r:general", b"after", "r:general", 5))
            received: list[int] = []
            while not received or received[-1] != 5:
                received.append((await subscriber.next()).seq)
            # ... in order; what went out before the subscriber was back is lost to it (that
            # is what ``resync`` is for: the node catches up from the store).
            assert received == sorted(received)
            assert set(received) <= {2, 3, 4, 5}
    finally:
        server.close()


async def test_an_unreachable_redis_is_named_fast_and_without_password() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BusUnreachable) as failed:
        await open_bus("redis://:s3cret@127.0.0.1:1/0")
    assert loop.time() - started < 5
    message = failed.value.message("en")
    assert "127.0.0.1:1/0" in message
    assert "s3cret" not in message
    assert failed.value.retryable


class FreezableProxy:
    """A TCP relay to Redis whose open connections can be frozen: bytes stop flowing both ways
    and nothing is closed, like a connection left half-open by a broker restart."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.frozen: set[asyncio.StreamWriter] = set()
        self.open: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    def freeze(self) -> None:
        self.frozen |= self.open

    async def _relay(self, down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(*self.upstream)
        self.open.add(down_w)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if down_w not in self.frozen:
                        dst.write(data)
            except OSError:
                pass
            finally:
                dst.close()

        for task in (
            asyncio.ensure_future(pump(down_r, up_w)),
            asyncio.ensure_future(pump(up_r, down_w)),
        ):
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for writer in self.open:
            writer.close()
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def test_a_silent_subscriber_is_replaced_when_the_node_asks() -> None:
    """The node's beat watch (``ClusterPresence``) calls ``reconnect`` when its own beats stop
    coming back; the bus must then connect anew, resubscribe and ask for a resync."""
    services.need_redis()
    prefix = services.new_prefix()
    target = urlsplit(services.REDIS_URL)
    proxy = FreezableProxy(target.hostname or "127.0.0.1", target.port or 6379)
    proxied = f"redis://127.0.0.1:{await proxy.start()}/0?prefix={prefix}"
    publisher = Probe(RedisBus(f"{services.REDIS_URL}?prefix={prefix}"))
    subscriber = Probe(RedisBus(proxied))
    try:
        for probe in (publisher, subscriber):
            await probe.bus.start(probe.inbox.put_nowait, probe.on_resync)
        await subscriber.bus.subscribe("r:general")
        publisher.bus.publish(Envelope("r:general", b"before"))
        assert (await subscriber.next()).data == b"before"
        proxy.freeze()  # from here the subscriber hears nothing, and nothing tells it
        publisher.bus.publish(Envelope("r:general", b"unheard"))
        subscriber.bus.reconnect()
        async with asyncio.timeout(TIMEOUT):
            await subscriber.resynced.wait()
        assert subscriber.bus.reconnects == 1
        publisher.bus.publish(Envelope("r:general", b"after"))
        assert (await subscriber.next()).data == b"after"
    finally:
        for probe in (publisher, subscriber):
            await probe.bus.close()
        await proxy.close()
