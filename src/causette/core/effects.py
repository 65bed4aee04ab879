"""What the service asks the delivery layer to do after a command: the core decides, the web
layer executes (encode once, publish on the bus, attach a connection to a stream…).

``Control`` operations travel on the bus to the node that holds a person's connection (channel
``p:<id>``) or to every node (channel ``presence``); they are JSON, never sent to clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from msgspec import Struct

from causette.core.commands import Cursor
from causette.core.events import Event
from causette.core.models import Message, Profile

PRESENCE_CHANNEL = "presence"
LOBBY_CHANNEL = "lobby"  # site-wide ``presence`` events for people watching the site list
MOD_CHANNEL = "mod"  # live queue events for connected moderators


def person_channel(person_id: str) -> str:
    return "p:" + person_id


# --- control operations (bus) ----------------------------------------------------------------


class ControlOp(Struct, tag_field="op", frozen=True):
    pass


class CloseConnection(ControlOp, tag="close", frozen=True):
    """Send ``bye`` and close the person's connection(s), except ``keep`` (a connection id)."""

    person: str
    code: str
    reconnect: bool
    keep: str = ""


class AttachStream(ControlOp, tag="attach", frozen=True):
    """Subscribe the person's connection to a stream (a private conversation that started)."""

    person: str
    stream: str


class SetHidden(ControlOp, tag="hide", frozen=True):
    """``other`` blocked the person or was unblocked: hide or show them in the person's lists."""

    person: str
    other: str
    hidden: bool


class Here(ControlOp, tag="here", frozen=True):
    """The person is connected, in these rooms. ``node``: the node holding their connection
    (stamped by the delivery layer when it publishes; the core leaves it empty)."""

    profile: Profile
    rooms: list[str]
    node: str = ""


class Gone(ControlOp, tag="gone", frozen=True):
    """The person is no longer connected. With ``node``, only if that node still holds them
    (another node may have taken the person over meanwhile); without, unconditionally (the
    session ended)."""

    person: str
    node: str = ""


class RoomJoin(ControlOp, tag="join", frozen=True):
    person: str
    room: str


class RoomLeave(ControlOp, tag="leave", frozen=True):
    person: str
    room: str


class SetMute(ControlOp, tag="mute", frozen=True):
    """The person may not write until ``until`` (0: the mute is lifted)."""

    person: str
    until: int
    decision: str = ""


class RoomStateChanged(ControlOp, tag="room_state", frozen=True):
    """A room was frozen, closed or reopened (sent to every node)."""

    room: str
    state: str
    reason: str = ""


# --- cluster liveness (several nodes; see docs/decisions/0004-cluster-presence.md) -----------


class Beat(ControlOp, tag="beat", frozen=True):
    """A node is alive (published on ``presence`` every ``server.node_heartbeat_seconds``)."""

    node: str


class WantSnapshot(ControlOp, tag="want", frozen=True):
    """A node (just started, or back after losing the bus) asks every node for its people."""

    node: str


class Snapshot(ControlOp, tag="snapshot", frozen=True):
    """Everyone a node holds (connected, or within the offline grace), with their rooms: it
    replaces what others knew of that node's people."""

    node: str
    people: list[Here]


AnyControl = (
    CloseConnection
    | AttachStream
    | SetHidden
    | Here
    | Gone
    | RoomJoin
    | RoomLeave
    | SetMute
    | RoomStateChanged
    | Beat
    | WantSnapshot
    | Snapshot
)


# --- effects ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """An event for the acting connection only."""

    event: Event | Message


@dataclass(frozen=True, slots=True)
class Publish:
    """An event for every subscriber of a channel (encoded once). Stream items carry their
    stream and seq so that nodes can order them."""

    channel: str
    event: Event | Message
    stream: str = ""
    seq: int = 0
    exclude: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Control:
    channel: str
    op: ControlOp


@dataclass(frozen=True, slots=True)
class Attach:
    """Subscribe the acting connection to a stream and send it a ``sync`` (replay or window)."""

    stream: str
    cursor: Cursor | None = None


@dataclass(frozen=True, slots=True)
class Detach:
    stream: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Subscribe the acting connection to a plain channel (e.g. the lobby)."""

    channel: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    channel: str


Effect = Reply | Publish | Control | Attach | Detach | Subscribe | Unsubscribe


def publish_message(msg: Message) -> Publish:
    return Publish(channel=msg.stream, event=msg, stream=msg.stream, seq=msg.seq)
