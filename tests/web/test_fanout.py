"""The fan-out's flush: one frame per connection per tick, built once for connections that were
queued the same events."""

from __future__ import annotations

import asyncio
import random
from typing import cast

from causette.bus.local import LocalBus
from causette.core.models import StreamHead
from causette.core.ports import Bus, Envelope, Store
from causette.store.memory import MemoryStore
from causette.web.fanout import WS_PONG, Connection, Hub, Sink, ws_frame, ws_text_frame


class Recorder(Sink):
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.backlog = 0

    def write(self, frame: bytes) -> None:
        self.frames.append(frame)

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return False


def hub(store: Store | None = None, bus: Bus | None = None) -> Hub:
    return Hub(
        cast(Store, store),
        cast(Bus, bus),
        max_queue_bytes=1 << 20,
        history_limit=10,
        max_replay=10,
        now_ms=lambda: 0,
        on_control=lambda _: None,
    )


async def hub_on_bus(store: Store) -> Hub:
    """A hub that gets what is published, for attaching to streams."""
    bus = LocalBus()
    h = hub(store, bus)
    await bus.start(h.deliver)
    return h


def connection(name: str) -> tuple[Connection, Recorder]:
    sink = Recorder()
    return Connection(name, name, sink, on_overflow=lambda _: None), sink


async def test_connections_queued_the_same_events_share_one_frame() -> None:
    h = hub()
    (a, sa), (b, sb), (c, sc), (d, sd) = (connection(n) for n in "abcd")
    msg1, msg2, ack = b'{"type":"msg","seq":1}', b'{"type":"msg","seq":2}', b'{"type":"ack"}'
    for conn in (a, b, c):
        h.send(conn, msg1)
        h.send(conn, msg2)
    h.send(c, ack)  # c has one more event than a and b
    h.send(d, bytes(msg1))  # the same text as msg1, another object: another frame, same bytes
    h.flush()
    assert sa.frames == sb.frames == [ws_text_frame(b"[" + msg1 + b"," + msg2 + b"]")]
    assert sa.frames[0] is sb.frames[0]  # built once
    assert sc.frames == [ws_text_frame(b"[" + msg1 + b"," + msg2 + b"," + ack + b"]")]
    assert sd.frames == [ws_text_frame(b"[" + msg1 + b"]")]
    # The next tick starts afresh.
    h.send(a, ack)
    h.flush()
    assert sa.frames[1] == ws_text_frame(b"[" + ack + b"]")


async def test_each_connection_gets_exactly_its_own_events_whatever_its_neighbours_got() -> None:
    """Connections flushed one after another with one, several, the same or equal events: each
    frame holds that connection's events, in order, and nothing is carried to the next tick."""
    h = hub()
    conns = [connection(str(n)) for n in range(6)]
    one, two, three = b'{"n":1}', b'{"n":2}', b'{"n":3}'
    queued = [[one], [one, two], [one, two, three], [bytes(one), bytes(two)], [one], [two]]
    for (conn, _), events in zip(conns, queued, strict=True):
        for event in events:
            h.send(conn, event)
    h.flush()
    for (_, sink), events in zip(conns, queued, strict=True):
        assert sink.frames == [ws_text_frame(b"[" + b",".join(events) + b"]")]
    h.send(conns[1][0], three)
    h.flush()
    assert conns[1][1].frames[1] == ws_text_frame(b"[" + three + b"]")
    assert all(len(sink.frames) == 1 for _, sink in conns[2:])


async def test_closed_and_overflowing_connections_are_skipped_and_start_afresh() -> None:
    h = hub()
    (closed, s_closed), (full, s_full), (ok, s_ok) = (connection(n) for n in "abc")
    cut: list[Connection] = []
    full.on_overflow = cut.append
    s_full.backlog = 2 << 20  # more than the hub's limit (1 MiB) waiting in the socket
    for conn in (closed, full, ok):
        h.send(conn, b"1")
        h.send(conn, b"2")
    h.remove(closed)
    h.flush()
    assert s_closed.frames == []
    assert s_full.frames == []
    assert cut == [full]
    assert s_ok.frames == [ws_text_frame(b"[1,2]")]
    s_full.backlog = 0
    h.send(full, b"3")  # what was dropped is not written later
    h.flush()
    assert s_full.frames == [ws_text_frame(b"[3]")]


async def test_a_stream_attached_twice_at_once_is_synced_once() -> None:
    """Two people opening their conversation at the same moment each attach both of them: the
    second attach, arriving while the first reads the store, must not repeat the ``sync``."""
    store = MemoryStore()
    await store.ensure_stream("d:a:b", 0)
    inside, gate = asyncio.Event(), asyncio.Event()
    real_head = store.stream_head

    async def slow_head(stream: str) -> StreamHead | None:
        inside.set()
        await gate.wait()
        return await real_head(stream)

    store.stream_head = slow_head  # type: ignore[method-assign]
    h = await hub_on_bus(store)
    conn, sink = connection("a")
    first = asyncio.create_task(h.attach(conn, "d:a:b", None))
    await inside.wait()  # the first attach is reading the store
    async with asyncio.timeout(2):  # (it would wait for the gate if it attached again)
        assert await h.attach(conn, "d:a:b", None) is False
    gate.set()
    assert await first is True
    h.flush()
    assert b"".join(sink.frames).count(b'"type":"sync"') == 1


class _QuietBus:
    """Enough of a bus for subscriptions to come and go."""

    async def subscribe(self, channel: str) -> None:
        return None

    async def unsubscribe(self, channel: str) -> None:
        return None


def _written(sink: Recorder) -> list[bytes]:
    """What a connection received, event by event (a pong as b"pong:" and its payload)."""
    out: list[bytes] = []
    for frame in sink.frames:
        if frame[0] == WS_PONG:
            out.append(b"pong:" + frame[2:])
        else:
            body = frame[2:] if frame[1] < 126 else frame[4:]
            out += body[1:-1].split(b",")
    return out


async def test_runs_of_one_channel_reach_exactly_the_members_in_order() -> None:
    """Random fan-outs (some leaving people out), replies, pongs, joins, leaves and flushes, in
    any order: every connection receives exactly what a plain per-connection queue would hold,
    in the same order, whatever runs of one channel shared a list."""
    rng = random.Random(3)
    for _ in range(200):
        h = hub()
        h.bus = cast(Bus, _QuietBus())
        conns = [connection(str(n)) for n in range(6)]
        channels = ["r:a", "r:b", "p:x"]
        expected: dict[str, list[bytes]] = {conn.id: [] for conn, _ in conns}
        members: dict[str, set[str]] = {ch: set() for ch in channels}
        for conn, _ in conns:
            for ch in channels:
                if rng.random() < 0.6:
                    await h.subscribe(conn, ch)
                    members[ch].add(conn.id)
        for step in range(60):
            event = b'{"n":%d}' % step
            roll = rng.random()
            conn, _ = rng.choice(conns)
            if roll < 0.55:
                ch = rng.choice(channels[:2]) if rng.random() < 0.8 else channels[2]
                left_out = frozenset(c.id for c, _ in conns if rng.random() < 0.15)
                exclude = left_out if rng.random() < 0.2 else frozenset()
                h.deliver(Envelope(ch, event, exclude=exclude))
                for who in members[ch]:
                    if not exclude or who not in exclude:
                        expected[who].append(event)
            elif roll < 0.7:
                h.send(conn, event)
                expected[conn.id].append(event)
            elif roll < 0.75:
                h.write_after_queued(conn, ws_frame(WS_PONG, b"%d" % step))
                expected[conn.id].append(b"pong:%d" % step)
            elif roll < 0.83:
                ch = rng.choice(channels)
                await h.subscribe(conn, ch)
                members[ch].add(conn.id)
            elif roll < 0.9:
                ch = rng.choice(channels)
                h.unsubscribe(conn, ch)
                members[ch].discard(conn.id)
            else:
                h.flush()
        h.flush()
        for conn, sink in conns:
            assert _written(sink) == expected[conn.id]
        await asyncio.sleep(0)  # the flush scheduled meanwhile finds nothing left


async def test_a_run_builds_one_frame_for_its_members() -> None:
    # The room's members share one list for the tick: one frame, built once, for all of them;
    # the sender's acknowledgements between the messages make its frame its own.
    h = hub()
    h.bus = cast(Bus, _QuietBus())
    (a, sa), (b, sb), (c, sc) = (connection(n) for n in "abc")
    for conn in (a, b, c):
        await h.subscribe(conn, "r:a")
    msg1, msg2, ack = b'{"n":1}', b'{"n":2}', b'{"ack":2}'
    h.deliver(Envelope("r:a", msg1))
    h.send(c, ack)
    h.deliver(Envelope("r:a", msg2))
    h.flush()
    assert sa.frames == sb.frames == [ws_text_frame(b"[" + msg1 + b"," + msg2 + b"]")]
    assert sa.frames[0] is sb.frames[0]
    assert sc.frames == [ws_text_frame(b"[" + msg1 + b"," + ack + b"," + msg2 + b"]")]


async def test_a_connection_attached_during_a_run_gets_the_next_events() -> None:
    store = MemoryStore()
    await store.ensure_stream("r:a", 0)
    h = await hub_on_bus(store)
    (a, sa), (b, sb) = connection("a"), connection("b")
    assert await h.attach(a, "r:a", None)
    h.flush()
    h.deliver(Envelope("r:a", b'{"n":1}', stream="r:a", seq=1))  # a run of r:a starts
    assert await h.attach(b, "r:a", None)
    h.deliver(Envelope("r:a", b'{"n":2}', stream="r:a", seq=2))
    h.flush()
    assert _written(sa)[-2:] == [b'{"n":1}', b'{"n":2}']
    assert _written(sb)[-1] == b'{"n":2}'
