"""Commands a client sends over its WebSocket, one JSON object per frame, tagged by ``type``.

Decoding and validation happen in one step (msgspec); the service receives typed values only.
See ``docs/protocol.md`` for the wire format of each command.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from causette.core.models import Gender, PmPolicy

StreamId = Annotated[str, Meta(min_length=3, max_length=80)]
Slug = Annotated[str, Meta(min_length=1, max_length=40)]
PersonId = Annotated[str, Meta(min_length=1, max_length=40)]
LocalId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Seq = Annotated[int, Meta(ge=0)]
AgeBand = Literal["18-25", "26-35", "36-50", "51+"]

PROTOCOL_VERSION = 1


class Command(Struct, tag_field="type", forbid_unknown_fields=True, frozen=True, kw_only=True):
    #: Optional client reference echoed in any ``error`` this command causes.
    ref: Annotated[str, Meta(max_length=64)] | None = None


class Cursor(Struct, array_like=True, frozen=True):
    """Where a client stands in one stream: ``[epoch, last_seq]``."""

    epoch: Annotated[str, Meta(max_length=40)]
    seq: Seq


class Hello(Command, tag="hello", frozen=True):
    v: int = PROTOCOL_VERSION
    #: Streams the client already shows, to resume without gap or duplicate.
    streams: Annotated[dict[StreamId, Cursor], Meta(max_length=200)] = {}


class Join(Command, tag="join", frozen=True):
    room: Slug


class Leave(Command, tag="leave", frozen=True):
    room: Slug


class Send(Command, tag="send", frozen=True):
    stream: StreamId
    text: str
    local_id: LocalId


class Read(Command, tag="read", frozen=True):
    stream: StreamId
    seq: Seq


class Typing(Command, tag="typing", frozen=True):
    stream: StreamId


class History(Command, tag="history", frozen=True):
    """Older items of a stream, before ``before`` (exclusive), newest last."""

    stream: StreamId
    before: Seq
    limit: Annotated[int, Meta(ge=1, le=200)] = 50


class People(Command, tag="people", frozen=True):
    """List connected people. With ``watch`` the client also receives live changes for that
    scope (``members`` for a room it is in, ``presence`` site-wide) until it asks otherwise."""

    scope: Literal["site", "room"] = "site"
    room: Annotated[str, Meta(max_length=40)] = ""
    gender: Gender | None = None
    age_band: AgeBand | None = None
    dep: Annotated[str, Meta(max_length=3)] = ""
    region: Annotated[str, Meta(max_length=3)] = ""
    #: Sort people of my département first, then my region.
    near: bool = False
    limit: Annotated[int, Meta(ge=1, le=1000)] = 300
    watch: bool = True


class OpenDm(Command, tag="dm", frozen=True):
    """Open (or find) the private conversation with a person."""

    person: PersonId


class Block(Command, tag="block", frozen=True):
    person: PersonId


class Unblock(Command, tag="unblock", frozen=True):
    person: PersonId


class SetPrefs(Command, tag="prefs", frozen=True):
    pm_policy: PmPolicy | None = None
    lang: Literal["fr", "en"] | None = None


class Report(Command, tag="report", frozen=True):
    """Report ("Signaler") a message, a person or a room to the moderators."""

    target: Literal["message", "person", "room"]
    #: The message id, the person id or the room slug.
    id: Annotated[str, Meta(min_length=1, max_length=80)]
    #: One of the categories of docs/moderation.md (e.g. "harassment", "child_safety").
    category: Annotated[str, Meta(max_length=40)]
    explanation: Annotated[str, Meta(max_length=2000)] = ""
    #: "I believe in good faith that what I report is accurate and complete" (DSA art. 16).
    good_faith: bool = False


AnyCommand = (
    Hello
    | Join
    | Leave
    | Send
    | Read
    | Typing
    | History
    | People
    | OpenDm
    | Block
    | Unblock
    | SetPrefs
    | Report
)

COMMAND_TYPES: tuple[str, ...] = (
    "hello",
    "join",
    "leave",
    "send",
    "read",
    "typing",
    "history",
    "people",
    "dm",
    "block",
    "unblock",
    "prefs",
    "report",
)
