"""The fan-out's flush: one frame per connection per tick, built once for connections that were
queued the same events."""

from __future__ import annotations

import asyncio
from typing import cast

from causette.bus.local import LocalBus
from causette.core.models import StreamHead
from causette.core.ports import Bus, Store
from causette.store.memory import MemoryStore
from causette.web.fanout import Connection, Hub, Sink, ws_text_frame


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


def hub() -> Hub:
    return Hub(
        cast(Store, None),
        cast(Bus, None),
        max_queue_bytes=1 << 20,
        history_limit=10,
        max_replay=10,
        now_ms=lambda: 0,
        on_control=lambda _: None,
    )


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
    bus = LocalBus()
    h = Hub(
        store,
        bus,
        max_queue_bytes=1 << 20,
        history_limit=10,
        max_replay=10,
        now_ms=lambda: 0,
        on_control=lambda _: None,
    )
    await bus.start(h.deliver)
    conn, sink = connection("a")
    first = asyncio.create_task(h.attach(conn, "d:a:b", None))
    await inside.wait()  # the first attach is reading the store
    async with asyncio.timeout(2):  # (it would wait for the gate if it attached again)
        assert await h.attach(conn, "d:a:b", None) is False
    gate.set()
    assert await first is True
    h.flush()
    assert b"".join(sink.frames).count(b'"type":"sync"') == 1
