"""One Causette node: the service, the hub, the bus and the periodic jobs, wired together.

The web handlers stay thin: they authenticate, decode, and hand commands to ``Node``, which asks
the service for effects and carries them out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from causette import errors
from causette.config import Config
from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.cases import RoomState
from causette.core.directory import Directory
from causette.core.effects import (
    PRESENCE_CHANNEL,
    AnyControl,
    Attach,
    AttachStream,
    Beat,
    CloseConnection,
    Control,
    Detach,
    Effect,
    Gone,
    Here,
    Publish,
    Reply,
    RoomJoin,
    RoomLeave,
    RoomStateChanged,
    SetHidden,
    SetMute,
    Snapshot,
    Subscribe,
    Unsubscribe,
    WantSnapshot,
    person_channel,
)
from causette.core.ports import Bus, Clock, Envelope, FullStore
from causette.core.service import Actor, ChatService
from causette.safety.ratelimit import Limiter, TokenBucket
from causette.web.cluster import ClusterPresence, gone_held_by, new_node_id
from causette.web.fanout import Connection, Hub, ws_text_frame
from causette.web.frames import PING_FRAME
from causette.web.protocol import encode, error_event

log = logging.getLogger(__name__)

_control_decoder = msgspec.json.Decoder(AnyControl)

# WebSocket close codes (RFC 6455 §7.4.1 and the registry).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013


class Socket(Protocol):
    """The WebSocket as the node closes it (``ws.ChatSocket``)."""

    def close(self, code: int, reason: bytes) -> None:
        """Write a close frame; the connection ends when the peer answers, or after a delay."""
        ...

    async def wait_closed(self) -> None: ...

    def abort(self) -> None:
        """Drop the connection now, without a closing handshake."""
        ...


@dataclass(slots=True)
class Client:
    """A live WebSocket on this node."""

    socket: Socket
    transport: asyncio.Transport
    conn: Connection
    actor: Actor
    bucket: TokenBucket
    greeted: bool = False
    closing: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    #: When a frame (any: text, ping, pong) last came from the peer, and when it was last pinged.
    heard_ms: int = 0
    pinged_ms: int = 0


class Node:
    def __init__(
        self,
        config: Config,
        service: ChatService,
        store: FullStore,
        bus: Bus,
        clock: Clock,
        directory: Directory,
    ) -> None:
        self.config = config
        self.service = service
        self.store = store
        self.bus = bus
        self.clock = clock
        self.directory = directory
        self.hub = Hub(
            store,
            bus,
            max_queue_bytes=config.limits.max_send_queue_bytes,
            history_limit=config.messages.history_limit,
            max_replay=config.limits.resume_max_replay,
            now_ms=clock.now_ms,
            on_control=self._on_control,
        )
        self.clients: dict[str, Client] = {}
        self.shutting_down = False
        self._offline_timers: dict[str, asyncio.TimerHandle] = {}
        # Connected people's ``last_seen``: everyone every quarter of the idle timeout (each
        # touch of 19,000 sessions rewrote their rows and index entries: a quarter of an idle
        # node's CPU, done every 30 s), people who connected since at the next sweep.
        self._touch_every_ms = max(30_000, config.sessions.idle_timeout_minutes * 15_000)
        self._touched_ms: int | None = None
        self._untouched: set[str] = set()
        self._jobs: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_counts: tuple[dict[str, int], int] | None = None
        self._per_network: dict[str, int] = {}
        #: This process's identity among the nodes (new at every start).
        self.node_id = new_node_id()
        self.cluster = ClusterPresence(self, self.node_id)

    @property
    def limiter(self) -> Limiter:
        """The node's rate limiter (shared with the service: one set of buckets)."""
        return self.service.limiter

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start(self.hub.deliver, self._bus_resync)
        await self.bus.subscribe(PRESENCE_CHANNEL)
        self.service.room_states.update(await self.store.room_states())
        for room in self.config.rooms:
            await self.store.ensure_stream("r:" + room.slug, self.clock.now_ms())
        await self.cluster.start()
        self._jobs = [
            asyncio.create_task(
                self._every(self.config.server.node_heartbeat_seconds, self.cluster.tick)
            ),
            asyncio.create_task(self._every(1.0, self._send_counts)),
            asyncio.create_task(
                self._every(self.config.messages.purge_interval_seconds, self._purge)
            ),
            asyncio.create_task(self._every(30.0, self._sweep_sessions)),
            asyncio.create_task(self._every(self.config.limits.heartbeat_seconds / 4, self._ping)),
        ]

    async def shutdown(self) -> None:
        """Tell every client we are going (they reconnect elsewhere or later), then close."""
        self.shutting_down = True
        byes = {
            lang: encode(
                ev.Bye(
                    code=errors.ShuttingDown.code,
                    message=errors.ShuttingDown().message(lang),
                    reconnect=True,
                )
            )
            for lang in errors.LANGS
        }
        clients = list(self.clients.values())
        for client in clients:
            client.closing = True
            self.hub.send(client.conn, byes["en"] if client.actor.lang == "en" else byes["fr"])
        # The notice is written before the close frame: clients read it, then the close.
        self.hub.flush()
        for client in clients:
            client.socket.close(CLOSE_GOING_AWAY, b"shutting_down")
        closing = [asyncio.ensure_future(c.socket.wait_closed()) for c in clients]
        if closing:
            _, late = await asyncio.wait(
                closing, timeout=self.config.server.shutdown_grace_seconds or None
            )
            for task in late:
                task.cancel()
            for client in clients:  # those that did not answer the close in time
                client.socket.abort()
        await self._touch_connected()

    async def close(self) -> None:
        for job in self._jobs:
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        for timer in self._offline_timers.values():
            timer.cancel()
        self.cluster.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.hub.close()
        await self.bus.close()

    # --- connections --------------------------------------------------------------------------

    def network_full(self, ip_key: str) -> bool:
        """True when this network already holds as many connections as allowed (per node)."""
        limit = self.config.safety.max_connections_per_network
        return bool(ip_key) and self._per_network.get(ip_key, 0) >= limit

    def new_client(
        self,
        socket: Socket,
        transport: asyncio.Transport,
        actor_session: Any,
        ip_key: str = "",
    ) -> Client:
        conn_id = secrets.token_urlsafe(9)
        conn = Connection(conn_id, actor_session.id, transport, self._on_overflow)
        actor = Actor(session=actor_session, conn_id=conn_id, ip_key=ip_key)
        if ip_key:
            self._per_network[ip_key] = self._per_network.get(ip_key, 0) + 1
        limits = self.config.limits
        bucket = TokenBucket(limits.commands_per_second, limits.commands_burst, self.clock.now_ms())
        client = Client(
            socket=socket,
            transport=transport,
            conn=conn,
            actor=actor,
            bucket=bucket,
            heard_ms=self.clock.now_ms(),
        )
        self.clients[conn_id] = client
        replaced = self.hub.add(conn)
        if replaced is not None:
            old = self.clients.get(replaced.id)
            if old is not None:
                self.close_client(old, "session_replaced", reconnect=False)
        return client

    async def greet(self, client: Client, hello: cmd.Hello) -> None:
        """Handle ``hello``: subscribe, welcome, attach streams, announce presence."""
        actor = client.actor
        if hello.v != cmd.PROTOCOL_VERSION:  # before taking over the session's other tab
            raise errors.BadField(
                field="v", detail=f"unsupported protocol version {hello.v}, expected 1"
            )
        await self.hub.subscribe(client.conn, person_channel(actor.id))
        # Other nodes close their connections of this session (one connection per session).
        self.publish_control(
            person_channel(actor.id),
            CloseConnection(
                person=actor.id, code="session_replaced", reconnect=False, keep=client.conn.id
            ),
        )
        effects = await self.service.connect(actor, hello)
        client.greeted = True
        self._untouched.add(actor.id)
        await self.run(effects, client)
        timer = self._offline_timers.pop(actor.id, None)
        if timer is not None:
            timer.cancel()
        rooms = sorted(s[2:] for s in actor.streams if s.startswith("r:"))
        if not self.directory.is_here(actor.id):
            await self.run(self.service.came_online(actor, rooms), client)
        elif self.directory.owner(actor.id) != self.node_id:
            # Listed, held by another node (a reconnection there within the grace, or a node
            # that died): this node takes the person over, without announcing a return.
            self.publish_control(PRESENCE_CHANNEL, Here(profile=actor.session.profile, rooms=rooms))

    async def command(self, client: Client, command: cmd.AnyCommand) -> None:
        effects = await self.service.handle(client.actor, command)
        await self.run(effects, client)

    def send_in_room(
        self, client: Client, command: cmd.Send, answered: Callable[[BaseException | None], None]
    ) -> Coroutine[Any, Any, list[Effect]] | None:
        """A room message without a task or an await (decision 8): the checks run now and
        raise as ``command`` would; the ack and the fan-out happen in the loop turn of the
        store's answer, then ``answered`` is called (with what failed, if anything). Returns,
        when the send needs the full path, the coroutine giving its effects
        (``start_room_send``), for ``run``."""

        def done(result: list[Effect] | BaseException) -> None:
            if isinstance(result, BaseException):
                answered(result)
                return
            try:
                self.run_now(result, client)
            except Exception as error:
                answered(error)
                return
            answered(None)

        return self.service.start_room_send(client.actor, command, done)

    def error(self, client: Client, exc: errors.CausetteError, ref: str | None) -> None:
        self.hub.send(client.conn, encode(error_event(exc, client.actor.lang, ref)))

    def disconnected(self, client: Client) -> None:
        self.clients.pop(client.conn.id, None)
        key = client.actor.ip_key
        if key:
            left = self._per_network.get(key, 1) - 1
            if left > 0:
                self._per_network[key] = left
            else:
                self._per_network.pop(key, None)
        for task in client.tasks:
            task.cancel()
        self.hub.remove(client.conn)
        person = client.actor.id
        if (
            client.greeted
            and person not in self.hub.by_person
            and person not in self._offline_timers
        ):
            loop = asyncio.get_running_loop()
            self._offline_timers[person] = loop.call_later(
                self.config.sessions.offline_grace_seconds, self._offline_expired, person
            )
        self._spawn(self.store.touch_sessions([person], self.clock.now_ms()))

    def close_client(self, client: Client, code: str, *, reconnect: bool) -> None:
        """Send ``bye`` and close the WebSocket (in the background)."""
        if client.closing:
            return
        client.closing = True
        message = _bye_message(code, client.actor.lang)
        self.hub.send(client.conn, encode(ev.Bye(code=code, message=message, reconnect=reconnect)))
        close_code = CLOSE_TRY_AGAIN if reconnect else CLOSE_POLICY
        asyncio.get_running_loop().call_soon(self._close_after_flush, client, close_code, code)

    def _close_after_flush(self, client: Client, close_code: int, reason: str) -> None:
        self.hub.flush()  # the bye precedes the close frame
        client.socket.close(close_code, reason.encode())

    def _on_overflow(self, conn: Connection) -> None:
        client = self.clients.get(conn.id)
        conn.closed = True
        if client is not None and not client.closing:
            client.closing = True
            log.info("slow_consumer_disconnected")
            # What was queued is dropped (the client resumes from its cursors), but the
            # goodbye still goes out, after what the socket already holds and before the close.
            bye = ev.Bye(
                code=errors.TooSlow.code,
                message=_bye_message(errors.TooSlow.code, client.actor.lang),
                reconnect=True,
            )
            if not conn.sink.is_closing():
                conn.sink.write(ws_text_frame(b"[" + encode(bye) + b"]"))
            client.socket.close(CLOSE_TRY_AGAIN, b"too_slow")

    def _offline_expired(self, person: str) -> None:
        self._offline_timers.pop(person, None)
        if person not in self.hub.by_person and self.directory.owner(person) == self.node_id:
            self._spawn(self._went_offline(person))

    async def _went_offline(self, person: str) -> None:
        session = await self.store.get_session(person)
        if person in self.hub.by_person or self.directory.owner(person) != self.node_id:
            return  # back during the store read, here or on another node
        if session is not None:
            # The ``Gone`` holds only while this node still holds the person: another node
            # taking them over at the same moment wins, wherever the two cross.
            await self.run(gone_held_by(self.service.went_offline(session), self.node_id))

    def in_grace(self) -> list[str]:
        """People whose connection to this node dropped less than the offline grace ago."""
        return list(self._offline_timers)

    def _bus_resync(self) -> None:
        """The bus is back after losing envelopes: catch up streams from the store, and
        presence with everyone."""
        log.warning("bus_resync", extra={"streams": len(self.hub.streams)})
        self.hub.resync()
        self._spawn(self.cluster.resync())

    # --- effects ------------------------------------------------------------------------------

    async def run(self, effects: Iterable[Effect], client: Client | None = None) -> None:
        """Carry out the service's effects in order. ``Reply``/``Attach``… need a client."""
        for effect in effects:
            match effect:
                case Attach(stream, cursor):
                    if client is not None:
                        client.actor.streams.add(stream)
                        await self.hub.attach(client.conn, stream, cursor)
                case Subscribe(channel):
                    if client is not None:
                        await self.hub.subscribe(client.conn, channel)
                case _:
                    self._carry(effect, client)

    def run_now(self, effects: Iterable[Effect], client: Client | None = None) -> None:
        """``run`` for effects that need no await (those of a stored room message)."""
        for effect in effects:
            self._carry(effect, client)

    def _carry(self, effect: Effect, client: Client | None) -> None:
        match effect:
            case Publish(channel, event, stream, seq, exclude):
                self.bus.publish(
                    Envelope(channel, encode(event), stream=stream, seq=seq, exclude=exclude)
                )
            case Control(channel, op):
                self.publish_control(channel, op)
            case Reply(event):
                if client is not None:
                    self.hub.send(client.conn, encode(event))
            case Detach(stream):
                if client is not None:
                    client.actor.streams.discard(stream)
                    self.hub.detach(client.conn, stream)
            case Unsubscribe(channel):
                if client is not None:
                    self.hub.unsubscribe(client.conn, channel)
            case _:
                raise TypeError(f"{type(effect).__name__} needs Node.run")

    def publish_control(self, channel: str, op: Any) -> None:
        if isinstance(op, Here) and not op.node:
            op = Here(profile=op.profile, rooms=op.rooms, node=self.node_id)
        self.bus.publish(Envelope(channel, msgspec.json.encode(op), control=True))

    def spawn(self, coro: Awaitable[Any]) -> None:
        self._spawn(coro)

    def _on_control(self, env: Envelope) -> None:
        try:
            op = _control_decoder.decode(env.data)
        except msgspec.DecodeError:
            log.error("bad_control_envelope", extra={"channel_kind": env.channel[:2]})
            return
        match op:
            case Here(profile, rooms, node):
                self.directory.here(profile, rooms, node)
                self.cluster.handle(op)
            case Gone(person, node):
                self.directory.gone(person, node)
                self.cluster.handle(op)
            case Beat() | WantSnapshot() | Snapshot():
                self.cluster.handle(op)
            case RoomJoin(person, room):
                self.directory.join(person, room)
            case RoomLeave(person, room):
                self.directory.leave(person, room)
            case CloseConnection(person, code, reconnect, keep):
                conn = self.hub.by_person.get(person)
                if conn is not None and conn.id != keep:
                    client = self.clients.get(conn.id)
                    if client is not None:
                        self.close_client(client, code, reconnect=reconnect)
            case AttachStream(person, stream):
                client = self._client_of(person)
                if client is not None and client.greeted:
                    client.actor.streams.add(stream)
                    self._spawn(self.hub.attach(client.conn, stream, None), client)
            case SetMute(person, until, decision):
                client = self._client_of(person)
                if client is not None:
                    client.actor.muted_until = until
                    client.actor.mute_decision = decision if until else ""
            case RoomStateChanged(room, state, reason):
                if state == RoomState.OPEN.value:
                    self.service.room_states.pop(room, None)
                else:
                    self.service.room_states[room] = (RoomState(state), reason)
                notice = encode(ev.RoomStateNotice(room=room, state=state, reason=reason))
                for client in self.clients.values():
                    if client.greeted:
                        self.hub.send(client.conn, notice)
            case SetHidden(person, other, hidden):
                client = self._client_of(person)
                if client is not None:
                    if hidden:
                        client.actor.hidden |= {other}
                        self.hub.send(client.conn, encode(ev.Presence(remove=[other])))
                    else:
                        client.actor.hidden -= {other}

    def _client_of(self, person: str) -> Client | None:
        conn = self.hub.by_person.get(person)
        return self.clients.get(conn.id) if conn is not None else None

    # --- sessions ended from HTTP ------------------------------------------------------------

    async def quit(self, session: Any) -> None:
        await self.run(await self.service.end_session(session, reason="quit"))

    # --- periodic jobs ------------------------------------------------------------------------

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except errors.StoreUnavailable:
                log.warning("job_store_unavailable", extra={"job": job.__name__})
            except Exception:
                log.exception("job_failed", extra={"job": job.__name__})

    async def _ping(self) -> None:
        """Keep-alive for every WebSocket, one pass for all (aiohttp's own makes a timer per
        connection and a task per ping): a peer silent for ``limits.heartbeat_seconds`` is
        pinged, written straight to its socket; one still silent after twice that is gone, and
        its connection is closed (its person goes offline after the grace period)."""
        now = self.clock.now_ms()
        interval = round(self.config.limits.heartbeat_seconds * 1000)
        for client in list(self.clients.values()):
            silent = now - client.heard_ms
            if client.closing or silent < interval:
                continue
            if silent >= 2 * interval:
                log.info("ws_peer_silent")
                client.closing = True
                client.conn.closed = True
                client.transport.close()
            elif client.pinged_ms <= client.heard_ms and not client.transport.is_closing():
                client.pinged_ms = now
                client.transport.write(PING_FRAME)

    async def _send_counts(self) -> None:
        # Only the rooms whose count changed since the last tick (zeros included: a room that
        # just emptied must show 0): with many rooms and connections, the whole table every
        # second would cost rooms x connections. The welcome carries every count.
        present = self.directory.counts()
        rooms = {room.slug: present.get(room.slug, 0) for room in self.config.rooms}
        counts = (rooms, self.directory.online_count())
        if counts == self._last_counts:
            return
        before = self._last_counts[0] if self._last_counts is not None else {}
        self._last_counts = counts
        changed = {slug: n for slug, n in rooms.items() if before.get(slug) != n}
        data = encode(ev.Counts(rooms=changed, online=counts[1]))
        for client in self.clients.values():
            if client.greeted:
                self.hub.send(client.conn, data)

    async def _purge(self) -> None:
        messages, sessions = await self.service.purge()
        if messages or sessions:
            log.info("purged", extra={"messages": messages, "sessions": sessions})

    async def _sweep_sessions(self) -> None:
        now = self.clock.now_ms()
        if self._touched_ms is None or now - self._touched_ms >= self._touch_every_ms:
            await self._touch_connected()
        else:
            fresh = self._untouched & self.hub.connected_people()
            self._untouched = set()
            if fresh:
                await self.store.touch_sessions(sorted(fresh), now)
        effects = await self.service.end_idle_sessions(self.hub.connected_people())
        await self.run(effects)

    async def _touch_connected(self) -> None:
        people = list(self.hub.connected_people())
        now = self.clock.now_ms()
        self._untouched = set()
        if people:
            await self.store.touch_sessions(people, now)
        self._touched_ms = now

    def _spawn(self, coro: Awaitable[Any], client: Client | None = None) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        if client is not None:
            client.tasks.add(task)
            task.add_done_callback(client.tasks.discard)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, errors.StoreUnavailable | ConnectionError):
                log.warning("background_task_failed", extra={"error": type(exc).__name__})
            else:
                log.error("background_task_failed", exc_info=exc)

    def counts_now(self) -> dict[str, int]:
        return self.directory.counts()


def _bye_message(code: str, lang: str) -> str:
    return errors.by_code(code)().message(lang)


async def suppress_cancel(awaitable: Awaitable[Any]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await awaitable
