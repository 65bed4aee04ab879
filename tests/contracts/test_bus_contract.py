"""The Bus contract: every adapter (the in-process bus; Redis for several nodes) passes the same
tests. A *pair* is two nodes' buses on one fabric; for the in-process bus both are the same
object, since there is only one node."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest

from causette.bus import LocalBus, open_bus
from causette.core.ports import Bus, Envelope
from tests.support import services

TIMEOUT = 5.0


@dataclass
class Node:
    bus: Bus
    inbox: asyncio.Queue[Envelope]

    async def next(self) -> Envelope:
        async with asyncio.timeout(TIMEOUT):
            return await self.inbox.get()


@asynccontextmanager
async def local_pair() -> AsyncIterator[tuple[Node, Node]]:
    bus = LocalBus()
    inbox: asyncio.Queue[Envelope] = asyncio.Queue()
    await bus.start(inbox.put_nowait)
    node = Node(bus, inbox)
    try:
        yield node, node
    finally:
        await bus.close()


@dataclass(frozen=True)
class BusAdapter:
    open_pair: Callable[[], AbstractAsyncContextManager[tuple[Node, Node]]]
    marks: tuple[pytest.MarkDecorator, ...] = ()


@asynccontextmanager
async def redis_pair() -> AsyncIterator[tuple[Node, Node]]:
    """Two nodes' buses on one Redis, under a channel prefix of their own."""
    services.need_redis()
    url = f"{services.REDIS_URL}?prefix={services.new_prefix()}"
    nodes = []
    for _ in range(2):
        bus = await open_bus(url)
        inbox: asyncio.Queue[Envelope] = asyncio.Queue()
        await bus.start(inbox.put_nowait)
        nodes.append(Node(bus, inbox))
    try:
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            await node.bus.close()


BUS_ADAPTERS: dict[str, BusAdapter] = {
    "local": BusAdapter(local_pair),
    "redis": BusAdapter(redis_pair, marks=(pytest.mark.redis,)),
}


@pytest.fixture(
    params=[pytest.param(name, marks=adapter.marks) for name, adapter in BUS_ADAPTERS.items()]
)
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Node, Node]]:
    async with BUS_ADAPTERS[request.param].open_pair() as nodes:
        yield nodes


async def test_an_envelope_arrives_whole(pair: tuple[Node, Node]) -> None:
    publisher, subscriber = pair
    await subscriber.bus.subscribe("r:general")
    sent = Envelope(
        channel="r:general",
        data=b'{"type":"msg","text":"caf\xc3\xa9"}\xff\x00',
        stream="r:general",
        seq=42,
        exclude=frozenset({"p1", "p2"}),
        control=False,
    )
    publisher.bus.publish(sent)
    assert await subscriber.next() == sent
    control = Envelope(channel="r:general", data=b'{"op":"gone"}', control=True)
    publisher.bus.publish(control)
    assert await subscriber.next() == control


async def test_only_subscribed_channels_are_delivered(pair: tuple[Node, Node]) -> None:
    publisher, subscriber = pair
    await subscriber.bus.subscribe("r:general")
    publisher.bus.publish(Envelope(channel="r:cuisine", data=b"not for us"))
    publisher.bus.publish(Envelope(channel="r:general", data=b"marker"))
    assert (await subscriber.next()).data == b"marker"
    assert subscriber.inbox.empty()


async def test_unsubscribing_stops_delivery(pair: tuple[Node, Node]) -> None:
    publisher, subscriber = pair
    await subscriber.bus.subscribe("r:general")
    await subscriber.bus.subscribe("p:marker")
    publisher.bus.publish(Envelope(channel="r:general", data=b"1"))
    assert (await subscriber.next()).data == b"1"
    await subscriber.bus.unsubscribe("r:general")
    publisher.bus.publish(Envelope(channel="r:general", data=b"2"))
    publisher.bus.publish(Envelope(channel="p:marker", data=b"marker"))
    assert (await subscriber.next()).data == b"marker"
    assert subscriber.inbox.empty()


async def test_subscribing_twice_delivers_once(pair: tuple[Node, Node]) -> None:
    publisher, subscriber = pair
    await subscriber.bus.subscribe("r:general")
    await subscriber.bus.subscribe("r:general")
    publisher.bus.publish(Envelope(channel="r:general", data=b"once"))
    publisher.bus.publish(Envelope(channel="r:general", data=b"marker"))
    assert [(await subscriber.next()).data for _ in range(2)] == [b"once", b"marker"]
    assert subscriber.inbox.empty()


async def test_publish_order_is_kept_per_channel(pair: tuple[Node, Node]) -> None:
    publisher, subscriber = pair
    for channel in ("r:a", "r:b"):
        await subscriber.bus.subscribe(channel)
    for seq in range(1, 501):
        for channel in ("r:a", "r:b"):
            publisher.bus.publish(Envelope(channel=channel, data=b"x", stream=channel, seq=seq))
    received: dict[str, list[int]] = {"r:a": [], "r:b": []}
    for _ in range(1000):
        env = await subscriber.next()
        received[env.channel].append(env.seq)
    assert received == {"r:a": list(range(1, 501)), "r:b": list(range(1, 501))}


async def test_a_publish_right_after_subscribe_is_delivered(pair: tuple[Node, Node]) -> None:
    # subscribe() returns only once effective: the hub relies on it to read the store after.
    publisher, subscriber = pair
    for i in range(20):
        channel = f"d:p{i}:q{i}"
        await subscriber.bus.subscribe(channel)
        publisher.bus.publish(Envelope(channel=channel, data=str(i).encode()))
        assert (await subscriber.next()).data == str(i).encode()


async def test_large_payloads_pass(pair: tuple[Node, Node]) -> None:
    publisher, subscriber = pair
    await subscriber.bus.subscribe("r:general")
    data = bytes(range(256)) * 4096  # 1 MiB
    publisher.bus.publish(Envelope(channel="r:general", data=data))
    assert (await subscriber.next()).data == data


async def test_delivery_runs_on_the_event_loop_one_at_a_time(pair: tuple[Node, Node]) -> None:
    publisher, subscriber = pair
    loop = asyncio.get_running_loop()
    active = 0
    seen: list[bool] = []

    def deliver(env: Envelope) -> None:
        nonlocal active
        active += 1
        seen.append(asyncio.get_running_loop() is loop and active == 1)
        active -= 1
        subscriber.inbox.put_nowait(env)

    await subscriber.bus.close()
    await subscriber.bus.start(deliver)
    await subscriber.bus.subscribe("r:general")
    for _ in range(50):
        publisher.bus.publish(Envelope(channel="r:general", data=b"x"))
    for _ in range(50):
        await subscriber.next()
    assert seen == [True] * 50


async def test_nothing_is_delivered_after_close(pair: tuple[Node, Node]) -> None:
    publisher, subscriber = pair
    await subscriber.bus.subscribe("r:general")
    await subscriber.bus.close()
    await subscriber.bus.close()  # closing twice is harmless
    # (For the in-process bus the publisher is the closed bus itself: publishing must not fail.)
    publisher.bus.publish(Envelope(channel="r:general", data=b"late"))
    assert subscriber.inbox.empty()
