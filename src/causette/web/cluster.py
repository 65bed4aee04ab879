"""Presence across nodes: heartbeats, snapshots, and releasing the people of a dead node.

Every node keeps a ``Directory`` replica fed by presence operations on the ``presence``
channel. With several nodes, three things are needed besides (see
``docs/decisions/0004-cluster-presence.md``):

- **Ownership.** ``Here`` and ``Gone`` carry the node holding the person's connection; a
  node's offline grace ends with a ``Gone`` only if it still holds the person (they may have
  reconnected elsewhere meanwhile).
- **Snapshots.** A node that starts, or comes back after losing the bus, asks for everyone's
  people (``WantSnapshot``); each node answers with a ``Snapshot`` of those it holds, built from
  its own connections and grace timers (its local truth), which replaces what others knew of it.
- **Liveness.** Each node publishes a ``Beat`` every ``server.node_heartbeat_seconds``; a node
  silent for ``server.node_timeout_seconds`` is dead, and its people are released after the
  offline grace (counted from its last beat) by one live node, the janitor, unless they
  reconnected elsewhere — which makes another node their holder.

With the in-process bus there is one node and all of this is a no-op beyond a beat.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING

from causette.core.effects import (
    PRESENCE_CHANNEL,
    Beat,
    Control,
    ControlOp,
    Effect,
    Gone,
    Here,
    Snapshot,
    WantSnapshot,
)
from causette.core.liveness import Echo, NodeTable
from causette.core.models import room_slug

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from typing import Any

    from causette.web.node import Node

    _Job = Callable[[str], Coroutine[Any, Any, None]]

log = logging.getLogger(__name__)


def new_node_id() -> str:
    return secrets.token_hex(6)


def gone_held_by(effects: Iterable[Effect], node: str) -> list[Effect]:
    """The effects with their ``Gone`` made conditional: only while ``node`` holds the person."""
    out: list[Effect] = []
    for effect in effects:
        if isinstance(effect, Control) and isinstance(effect.op, Gone):
            effect = Control(effect.channel, Gone(person=effect.op.person, node=node))
        out.append(effect)
    return out


class ClusterPresence:
    def __init__(self, node: Node, node_id: str) -> None:
        self.node = node
        self.id = node_id
        server = node.config.server
        self.interval = server.node_heartbeat_seconds
        self.timeout_ms = round(server.node_timeout_seconds * 1000)
        self.grace_ms = node.config.sessions.offline_grace_seconds * 1000
        self.table = NodeTable(node_id, self.timeout_ms)
        self.echo = Echo()
        self._timers: set[asyncio.TimerHandle] = set()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._publish(Beat(node=self.id))
        self._publish(WantSnapshot(node=self.id))

    async def resync(self) -> None:
        """The bus was lost for a while: what we published may not have reached everyone, and
        we missed what others published. Tell ours, ask theirs."""
        self._publish(self.snapshot())
        self._publish(WantSnapshot(node=self.id))

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    async def tick(self) -> None:
        """Every heartbeat interval: beat, and notice nodes that stopped beating, this one's
        bus included."""
        if self.echo.beat_sent():
            log.warning("bus_deaf", extra={"beats_unheard": self.echo.missed_limit})
            self.node.bus.reconnect()
        self._publish(Beat(node=self.id))
        now = self.node.clock.now_ms()
        for dead, last_seen in self.table.newly_dead(now):
            held = len(self.node.directory.held_by(dead))
            log.warning("node_silent", extra={"node": dead, "people": held})
            # Their people stay listed for the offline grace, counted from the last beat.
            delay = max(0.0, (last_seen + self.grace_ms - now) / 1000)
            self._later(delay, dead, self._release)

    # --- operations received ------------------------------------------------------------------

    def handle(self, op: ControlOp) -> None:
        now = self.node.clock.now_ms()
        match op:
            case Beat(node):
                if node == self.id:
                    self.echo.beat_heard()
                if self.table.seen(node, now):
                    # Unknown, or declared dead and back: what we know of it may be stale.
                    self._publish_later(WantSnapshot(node=self.id))
            case WantSnapshot(node):
                self.table.seen(node, now)
                if node != self.id:
                    self._publish_later(self.snapshot())
            case Snapshot(node, people):
                self.table.seen(node, now)
                if node != self.id:
                    self.node.directory.replace_node(node, [(h.profile, h.rooms) for h in people])
            case Here(node=node) | Gone(node=node):
                self.table.seen(node, now)

    # --- what this node holds -----------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Everyone this node holds: its greeted connections (rooms as the connection knows
        them) and the people within its offline grace."""
        people: dict[str, Here] = {}
        for client in self.node.clients.values():
            if client.greeted and not client.closing:
                actor = client.actor
                rooms = sorted(slug for s in actor.streams if (slug := room_slug(s)) is not None)
                people[actor.id] = Here(profile=actor.session.profile, rooms=rooms, node=self.id)
        directory = self.node.directory
        for person in self.node.in_grace():
            profile = directory.get(person)
            if person not in people and profile is not None and directory.owner(person) == self.id:
                rooms = sorted(directory.rooms_of(person))
                people[person] = Here(profile=profile, rooms=rooms, node=self.id)
        return Snapshot(node=self.id, people=list(people.values()))

    # --- releasing a dead node's people -------------------------------------------------------

    async def _release(self, dead: str) -> None:
        if not self.table.is_dead(dead):
            return  # it came back
        directory = self.node.directory
        people = directory.held_by(dead)
        if not self.table.is_janitor():
            # The janitor announces it; if it has not after another timeout, drop them here
            # without announcing (our own clients' lists catch up with the next change).
            self._later(self.timeout_ms / 1000, dead, self._forget)
            return
        log.warning("node_released", extra={"node": dead, "people": len(people)})
        sessions = {s.id: s for s in await self.node.store.get_sessions(people)}
        for person in people:
            session = sessions.get(person)
            if session is None:
                directory.gone(person, dead)
                continue
            await self.node.run(gone_held_by(self.node.service.went_offline(session), dead))
        self.table.forget(dead)

    async def _forget(self, dead: str) -> None:
        if not self.table.is_dead(dead):
            return
        for person in self.node.directory.held_by(dead):
            self.node.directory.gone(person, dead)
        self.table.forget(dead)

    # --- helpers ------------------------------------------------------------------------------

    def _publish(self, op: ControlOp) -> None:
        self.node.publish_control(PRESENCE_CHANNEL, op)

    def _publish_later(self, op: ControlOp) -> None:
        # Answers to what the bus delivered leave after the delivery, never inside it (an
        # in-process bus would deliver them within the delivery).
        asyncio.get_running_loop().call_soon(self._publish, op)

    def _later(self, delay: float, dead: str, job: _Job) -> None:
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def fire() -> None:
            if timer is not None:
                self._timers.discard(timer)
            self.node.spawn(job(dead))

        timer = loop.call_later(delay, fire)
        self._timers.add(timer)
