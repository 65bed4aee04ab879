"""Delivery: from bus envelopes to bytes on sockets.

The hot path, for one published event: the bytes were encoded once by the publisher; ``deliver``
puts them in order for their stream and appends them to each subscribed connection's queue; once
per event-loop tick ``_flush`` writes each dirty connection **one** WebSocket frame holding a JSON
array of everything queued for it (the same frame object for connections queued the same events).
No per-recipient task, await, encoding or database access. Events for one channel that follow
each other in a tick (a busy room: the store answers a group of appends at once) are appended
once to a list its members share, not once per member (a *run*, below).

Ordering: every stream item carries ``(stream, seq)``. A node keeps, per stream it is subscribed
to, the last seq it delivered; duplicates are dropped, items arriving early wait for the missing
ones, and a gap that does not fill quickly is backfilled from the store.

Attaching a connection to a stream (join, resume, new conversation) reads the store and then
joins the live flow at exactly the seq the node has reached, so the connection sees every item
once: what it missed in the ``sync``, the rest live.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import msgspec

from causette.core import events as ev
from causette.core.commands import Cursor
from causette.core.ports import Bus, Envelope, Store

log = logging.getLogger(__name__)

_PACK_LEN1 = struct.Struct("!BB").pack
_PACK_LEN2 = struct.Struct("!BBH").pack
_PACK_LEN3 = struct.Struct("!BBQ").pack
#: First bytes of final frames: text, and the pong that answers a ping.
WS_TEXT = 0x81
WS_PONG = 0x8A


def ws_frame(first: int, payload: bytes) -> bytes:
    """An unmasked (server-to-client) final frame, RFC 6455 §5.2."""
    n = len(payload)
    if n < 126:
        return _PACK_LEN1(first, n) + payload
    if n < 65536:
        return _PACK_LEN2(first, 126, n) + payload
    return _PACK_LEN3(first, 127, n) + payload


def ws_text_frame(payload: bytes) -> bytes:
    return ws_frame(WS_TEXT, payload)


class Sink(Protocol):
    """Where a connection's frames go: the part of ``asyncio.WriteTransport`` the fan-out uses,
    so that a transport is its own sink (a test double implements these three methods). The
    flush calls them on the transport itself: one object touched per recipient, nothing of ours
    in between."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int:
        """Bytes accepted but not yet sent to the peer."""
        ...

    def is_closing(self) -> bool: ...


class _Shared(list[bytes]):
    """A ``more`` list that every member of a run holds (``Hub._fan_out``): never appended to for
    one connection alone; that connection gets a copy first."""

    __slots__ = ()


class Connection:
    """A connection as the fan-out sees it. Its queue for the current tick is ``head`` (the first
    event, or None) and ``more`` (a list only once a second event is queued): the common case,
    one event per tick, touches no list."""

    __slots__ = ("channels", "closed", "head", "id", "more", "on_overflow", "person_id", "sink")

    def __init__(
        self,
        conn_id: str,
        person_id: str,
        sink: Sink,
        on_overflow: Callable[[Connection], None],
    ) -> None:
        self.id = conn_id
        self.person_id = person_id
        self.sink = sink
        self.head: bytes | None = None
        self.more: list[bytes] | None = None
        self.channels: set[str] = set()
        self.closed = False
        self.on_overflow = on_overflow

    def queue(self, data: bytes) -> bool:
        """Queue one event for the next flush; True if it is the first (the connection is now
        dirty). ``Hub._fan_out`` does the same inline, sparing a call per recipient."""
        if self.head is None:
            self.head = data
            return True
        more = self.more
        if more is None:
            self.more = [data]
        elif type(more) is _Shared:
            self.more = [*more, data]
        else:
            more.append(data)
        return False


@dataclass(slots=True)
class StreamState:
    """A node's position in one stream it is subscribed to."""

    last: int | None = None  # highest seq delivered in order (None: not known yet)
    epoch: str = ""
    pending: dict[int, Envelope] = field(default_factory=dict)
    gap_timer: asyncio.TimerHandle | None = None
    backfilling: bool = False
    resync: bool = False  # the bus lost envelopes: catch up from the store to its head


class Hub:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        *,
        max_queue_bytes: int,
        history_limit: int,
        max_replay: int,
        now_ms: Callable[[], int],
        on_control: Callable[[Envelope], None],
        gap_timeout: float = 0.5,
    ) -> None:
        self.store = store
        self.bus = bus
        self.max_queue_bytes = max_queue_bytes
        self.history_limit = history_limit
        self.max_replay = max_replay
        self.now_ms = now_ms
        self.on_control = on_control
        self.gap_timeout = gap_timeout
        self.channels: dict[str, set[Connection]] = {}
        self.streams: dict[str, StreamState] = {}
        self.by_person: dict[str, Connection] = {}
        self._subscribing: dict[str, asyncio.Future[None]] = {}
        self._attaching: set[tuple[str, str]] = set()  # (connection, stream) being attached
        self._dirty: list[Connection] = []
        self._flush_scheduled = False
        # The run: the channel whose last fan-out was the last thing queued, the list its
        # members share since, and the members that had events of their own (their lists).
        self._run_channel: str | None = None
        self._run_list = _Shared()
        self._run_own: list[Connection] = []
        self._run_first: int | None = None  # where its first event's new dirty entries are
        self._run_first_end = 0
        self._encoder = msgspec.json.Encoder()
        self._tasks: set[asyncio.Task[None]] = set()
        # Figures for metrics and benchmarks.
        self.frames_sent = 0
        self.events_queued = 0
        self.slow_disconnects = 0

    # --- connections --------------------------------------------------------------------------

    def add(self, conn: Connection) -> Connection | None:
        """Register a connection; return the one it replaces for the same person, if any."""
        previous = self.by_person.get(conn.person_id)
        self.by_person[conn.person_id] = conn
        return previous

    def remove(self, conn: Connection) -> None:
        conn.closed = True
        if self.by_person.get(conn.person_id) is conn:
            del self.by_person[conn.person_id]
        for channel in list(conn.channels):
            self._leave_channel(conn, channel)

    def connected_people(self) -> set[str]:
        return set(self.by_person)

    # --- subscriptions ------------------------------------------------------------------------

    async def _ensure_node_subscribed(self, channel: str) -> None:
        if channel in self.channels:
            pending = self._subscribing.get(channel)
            if pending is not None:
                await asyncio.shield(pending)
            return
        self.channels[channel] = set()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._subscribing[channel] = future
        try:
            await self.bus.subscribe(channel)
            future.set_result(None)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            if not self.channels.get(channel):
                self.channels.pop(channel, None)
            raise
        finally:
            del self._subscribing[channel]

    async def subscribe(self, conn: Connection, channel: str) -> None:
        """Subscribe a connection to a plain channel (person, lobby): no ordering, no replay."""
        await self._ensure_node_subscribed(channel)
        if conn.closed:
            return
        self._run_channel = None  # a newcomer does not hold the run's list
        self.channels[channel].add(conn)
        conn.channels.add(channel)

    def unsubscribe(self, conn: Connection, channel: str) -> None:
        self._leave_channel(conn, channel)

    def _leave_channel(self, conn: Connection, channel: str) -> None:
        self._run_channel = None  # who leaves still holds the run's list
        conn.channels.discard(channel)
        members = self.channels.get(channel)
        if members is None:
            return
        members.discard(conn)
        if not members and channel not in self._subscribing:
            del self.channels[channel]
            state = self.streams.pop(channel, None)
            if state is not None and state.gap_timer is not None:
                state.gap_timer.cancel()
            self._spawn(self._unsubscribe_if_unused(channel))

    async def _unsubscribe_if_unused(self, channel: str) -> None:
        # A connection may have subscribed the node again since this was scheduled: the
        # bus must not drop a channel the hub uses.
        if channel not in self.channels:
            await self.bus.unsubscribe(channel)

    async def attach(self, conn: Connection, stream: str, cursor: Cursor | None) -> bool:
        """Subscribe ``conn`` to ``stream`` and queue its ``sync``. False if already attached,
        or being attached (two people opening their conversation at the same moment each attach
        both: the second attach would only repeat the ``sync``)."""
        key = (conn.id, stream)
        if stream in conn.channels or key in self._attaching:
            return False
        self._attaching.add(key)
        try:
            return await self._attach(conn, stream, cursor)
        finally:
            self._attaching.discard(key)

    async def _attach(self, conn: Connection, stream: str, cursor: Cursor | None) -> bool:
        await self._ensure_node_subscribed(stream)
        state = self.streams.get(stream)
        if state is None:
            state = self.streams[stream] = StreamState()
        # The head and the items the client most likely needs, in one store operation (on
        # SQLite each is a hand-off to the store's thread and back, decision 14).
        after, limit = (
            (None, self.history_limit) if cursor is None else (cursor.seq, self.max_replay + 1)
        )
        head, items = await self.store.snapshot(stream, after, limit, self.now_ms())
        fresh = head is None
        if head is None:
            head = await self.store.ensure_stream(stream, self.now_ms())
        recovered = (
            cursor is not None
            and not fresh
            and cursor.epoch == head.epoch
            and head.last_seq - cursor.seq <= self.max_replay
            and cursor.seq <= head.last_seq
            and len(items) <= self.max_replay
        )
        if not recovered and (cursor is not None or fresh):
            # The cursor cannot be honoured (or the stream was just made, perhaps by someone
            # else meanwhile): the latest window, read after the head as above.
            items = await self.store.latest(stream, self.history_limit, self.now_ms())
        base = cursor.seq if recovered and cursor is not None else 0
        position = max(head.last_seq, items[-1].seq if items else 0, base)
        # Join the live flow exactly where the node stands.
        while True:
            if conn.closed:
                return False
            if state.last is None:
                state.last = position
                state.epoch = head.epoch
                break
            if state.last <= position:
                items = [m for m in items if m.seq <= state.last]
                break
            more = await self.store.read(stream, position, state.last - position)
            items.extend(more)
            position = max(position, more[-1].seq if more else state.last)
            if not more:
                break
        self._run_channel = None
        members = self.channels.setdefault(stream, set())
        members.add(conn)
        conn.channels.add(stream)
        sync = ev.Sync(
            stream=stream,
            epoch=head.epoch,
            recovered=recovered,
            items=items,
            last_seq=state.last if state.last is not None else position,
        )
        self.send(conn, self._encoder.encode(sync))
        self._drain(stream, state)
        return True

    def detach(self, conn: Connection, stream: str) -> None:
        self._leave_channel(conn, stream)

    # --- delivery (hot path) ------------------------------------------------------------------

    def deliver(self, env: Envelope) -> None:
        """Called by the bus for every envelope of a channel this node subscribes to."""
        if env.control:
            self.on_control(env)
            return
        if not env.seq:
            self._fan_out(env)
            return
        state = self.streams.get(env.stream)
        if state is None:
            return  # not attached anymore
        if state.last is None:
            state.pending[env.seq] = env  # the first attach will tell where we stand
            return
        if env.seq <= state.last:
            return  # duplicate
        if env.seq == state.last + 1:
            state.last = env.seq
            self._fan_out(env)
            if state.pending:
                self._drain(env.stream, state)
            return
        state.pending[env.seq] = env
        if state.gap_timer is None:
            loop = asyncio.get_running_loop()
            state.gap_timer = loop.call_later(self.gap_timeout, self._gap_expired, env.stream)

    def _fan_out(self, env: Envelope) -> None:
        channel = env.channel
        members = self.channels.get(channel)
        if not members:
            return
        data = env.data
        exclude = env.exclude
        self.events_queued += len(members)
        dirty = self._dirty
        if channel == self._run_channel and not exclude:
            # The run goes on: one append for every member that shares its list.
            shared, own = self._run_list, self._run_own
            if self._run_first is not None:
                # Its second event: the members that had nothing queued before the first (put
                # on the dirty list then) share the list from now on, unless a reply came since.
                for conn in dirty[self._run_first : self._run_first_end]:
                    if conn.more is None:
                        conn.more = shared
                    else:
                        own.append(conn)
                self._run_first = None
            shared.append(data)
            for conn in own:
                cast(list[bytes], conn.more).append(data)
            return
        first = len(dirty)
        own = []
        for conn in members:
            if exclude and conn.person_id in exclude:
                continue
            # Connection.queue, inline.
            if conn.head is None:
                conn.head = data
                dirty.append(conn)
                continue
            more = conn.more
            if more is None:
                conn.more = [data]
            elif type(more) is _Shared:
                conn.more = [*more, data]
            else:
                more.append(data)
            own.append(conn)
        if exclude:
            self._run_channel = None  # the next event may go to those left out
        else:
            self._run_channel, self._run_list, self._run_own = channel, _Shared(), own
            self._run_first, self._run_first_end = first, len(dirty)
        if not self._flush_scheduled and dirty:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def send(self, conn: Connection, data: bytes) -> None:
        """Queue one encoded event for one connection (replies, syncs)."""
        if conn.closed:
            return
        if conn.more is self._run_list and self._run_channel is not None:
            # Its own event after the run's: the run's next events are appended to its copy.
            conn.more = list(self._run_list)
            self._run_own.append(conn)
        if conn.queue(data):
            self._dirty.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def write_after_queued(self, conn: Connection, frame: bytes) -> None:
        """Write ``frame`` (a pong, a close) now, after the events queued for ``conn``: those go
        first, in their own frame, so that the order of the answers is the order of the asks."""
        head, more = conn.head, conn.more
        conn.head = conn.more = None  # its entry in the dirty list is then skipped
        self._run_channel = None  # it no longer holds the run's list
        sink = conn.sink
        if conn.closed or sink.is_closing():
            return
        if head is not None:
            events = head if more is None else b",".join((head, *more))
            sink.write(ws_text_frame(b"[" + events + b"]"))
            self.frames_sent += 1
        sink.write(frame)

    def flush(self) -> None:
        """Write what is queued now rather than at the end of this loop tick."""
        self._flush()

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._run_channel = None
        self._run_own = []
        dirty, self._dirty = self._dirty, []
        limit = self.max_queue_bytes
        # Connections that were queued the same events (every member of a busy room) get the
        # same frame, built once: the common case is the same events as the previous connection
        # (compared by identity, or by value for several: equal bytes make an equal frame);
        # otherwise a frame is looked up by the identity of the queued objects. ``keep`` holds
        # the objects of every key until the end, so that no identity is reused meanwhile.
        frames: dict[object, bytes] = {}
        keep: list[object] = []
        last: bytes | None = None  # the previous connection's single event, or first of several
        last_more: list[bytes] | None = None  # and the rest of its events
        frame = b""
        sent = 0
        for conn in dirty:
            head = conn.head
            if head is None:
                continue  # written by an earlier flush this tick
            more = conn.more
            conn.head = conn.more = None
            if conn.closed:
                continue
            sink = conn.sink
            if sink.is_closing():
                continue
            if sink.get_write_buffer_size() > limit:
                # A connection that cannot keep up is cut, never allowed to slow the others;
                # its client resumes from its cursors.
                self.slow_disconnects += 1
                conn.on_overflow(conn)
                continue
            if more is None:
                if head is not last or last_more is not None:
                    known = frames.get(id(head))
                    if known is None:
                        known = frames[id(head)] = ws_text_frame(b"[" + head + b"]")
                        keep.append(head)
                    frame, last, last_more = known, head, None
            elif head is not last or more != last_more:
                key = (id(head), *map(id, more))
                known = frames.get(key)
                if known is None:
                    known = frames[key] = ws_text_frame(b"[" + b",".join((head, *more)) + b"]")
                    keep.append((head, more))
                frame, last, last_more = known, head, more
            sink.write(frame)
            sent += 1
        self.frames_sent += sent

    # --- ordering -----------------------------------------------------------------------------

    def _drain(self, stream: str, state: StreamState) -> None:
        """Deliver pending items that have become contiguous; drop stale ones."""
        if state.last is None or not state.pending:
            return
        for seq in sorted(state.pending):
            if seq <= state.last:
                del state.pending[seq]
            elif seq == state.last + 1:
                env = state.pending.pop(seq)
                state.last = seq
                self._fan_out(env)
            else:
                break
        if not state.pending and state.gap_timer is not None:
            state.gap_timer.cancel()
            state.gap_timer = None
        elif state.pending and state.gap_timer is None:
            loop = asyncio.get_running_loop()
            state.gap_timer = loop.call_later(self.gap_timeout, self._gap_expired, stream)

    def _gap_expired(self, stream: str) -> None:
        state = self.streams.get(stream)
        if state is None:
            return
        state.gap_timer = None
        if state.pending and not state.backfilling:
            self._spawn(self._backfill(stream, state))

    async def _backfill(self, stream: str, state: StreamState) -> None:
        """Fetch from the store what the bus did not bring, in order."""
        state.backfilling = True
        try:
            while state.pending and state.last is not None and self.streams.get(stream) is state:
                upto = min(state.pending)
                if upto <= state.last + 1:
                    self._drain(stream, state)
                    continue
                missing = await self.store.read(stream, state.last, upto - state.last - 1)
                log.info("backfill", extra={"stream_kind": stream[:1], "items": len(missing)})
                for msg in missing:
                    if state.last is not None and msg.seq == state.last + 1:
                        state.last = msg.seq
                        self._fan_out(
                            Envelope(
                                channel=stream,
                                data=self._encoder.encode(msg),
                                stream=stream,
                                seq=msg.seq,
                            )
                        )
                # Whatever is still missing has expired: skip past it.
                if state.last is not None and state.last < upto - 1:
                    state.last = upto - 1
                self._drain(stream, state)
        finally:
            state.backfilling = False
            if state.resync and self.streams.get(stream) is state:
                self._spawn(self._catch_up(stream, state))

    # --- after losing the bus -----------------------------------------------------------------

    def resync(self) -> None:
        """The bus lost envelopes (it reconnected): every stream this node follows catches up
        from the store, in order, before and between what arrives live again."""
        for stream, state in self.streams.items():
            if state.last is None:
                continue  # an attach is reading the store right now: it sees everything
            state.resync = True
            if not state.backfilling:
                self._spawn(self._catch_up(stream, state))

    async def _catch_up(self, stream: str, state: StreamState) -> None:
        state.backfilling = True
        try:
            while state.resync and self.streams.get(stream) is state:
                state.resync = False
                await self._read_to_head(stream, state)
                self._drain(stream, state)
        finally:
            state.backfilling = False

    async def _read_to_head(self, stream: str, state: StreamState) -> None:
        head = await self.store.stream_head(stream)
        if head is None or state.last is None or self.streams.get(stream) is not state:
            return
        missed = head.last_seq - state.last
        log.info("resync", extra={"stream_kind": stream[:1], "items": max(missed, 0)})
        if missed > self.max_replay:
            await self._restart_window(stream, state)
            return
        while state.last is not None and state.last < head.last_seq:
            items = await self.store.read(stream, state.last, head.last_seq - state.last)
            if self.streams.get(stream) is not state or state.last is None:
                return
            for msg in items:
                if msg.seq <= state.last:
                    continue  # arrived live meanwhile
                state.last = msg.seq  # (an expired item's seq is skipped, as in a sync)
                self._fan_out(
                    Envelope(stream, self._encoder.encode(msg), stream=stream, seq=msg.seq)
                )
            if not items or items[-1].seq >= head.last_seq:
                if state.last < head.last_seq:
                    state.last = head.last_seq  # the rest expired meanwhile
                break

    async def _restart_window(self, stream: str, state: StreamState) -> None:
        """Too much was missed to replay live: each connection gets a fresh ``sync``
        (``recovered: false``, the latest window), as after a long disconnection."""
        items = await self.store.latest(stream, self.history_limit, self.now_ms())
        head = await self.store.stream_head(stream)
        if head is None or self.streams.get(stream) is not state:
            return
        position = max(head.last_seq, items[-1].seq if items else 0)
        if state.last is not None and state.last >= position:
            return
        state.last = position
        sync = self._encoder.encode(
            ev.Sync(
                stream=stream, epoch=head.epoch, recovered=False, items=items, last_seq=position
            )
        )
        for conn in list(self.channels.get(stream, ())):
            self.send(conn, sync)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for state in self.streams.values():
            if state.gap_timer is not None:
                state.gap_timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
