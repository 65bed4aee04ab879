"""Events the server sends. Each WebSocket frame carries a JSON array of one or more events
(write coalescing); each event is an object tagged by ``type``. ``Message`` (``type: "msg"``)
lives in ``models`` because the store returns it as it is sent.
"""

from __future__ import annotations

from msgspec import Struct

from causette.core.models import Message, PmPolicy, Profile


class Event(Struct, tag_field="type", frozen=True, omit_defaults=True):
    pass


class RoomInfo(Struct, frozen=True):
    slug: str
    name: str
    description: str
    rules: str
    min_age: int
    adult: bool
    regions: list[str]
    count: int


class PersonRef(Struct, frozen=True):
    id: str
    name: str


class ConvInfo(Struct, frozen=True):
    stream: str
    other: Profile
    unread: int
    last_seq: int
    last_ts: int
    #: The other person's session has ended: the conversation can be read, not answered.
    gone: bool = False


class Prefs(Event, tag="prefs", frozen=True):
    pm_policy: PmPolicy
    lang: str


class Limits(Struct, frozen=True):
    max_chars: int
    lifetime_ms: int
    max_rooms: int
    max_frame_bytes: int


class Welcome(Event, tag="welcome", frozen=True):
    v: int
    me: Profile
    prefs: Prefs
    rooms: list[RoomInfo]
    joined: list[str]
    conversations: list[ConvInfo]
    blocked: list[PersonRef]
    limits: Limits
    now: int
    #: People connected site-wide (then kept current by ``counts``).
    online: int = 0


class Ack(Event, tag="ack", frozen=True):
    """A ``send`` was stored (``dup``: it had been stored already, nothing new was written)."""

    local_id: str
    stream: str
    seq: int
    id: str
    ts: int
    dup: bool = False


class Sync(Event, tag="sync", frozen=True):
    """The state of one stream after (re)subscribing.

    ``recovered``: the items continue exactly from the cursor the client gave. Otherwise the
    client drops what it shows for the stream and shows ``items`` (the latest window) instead.
    Live ``msg`` events for the stream follow with ``seq`` greater than the last item.
    """

    stream: str
    epoch: str
    recovered: bool
    items: list[Message]
    last_seq: int


class HistoryPage(Event, tag="history", frozen=True):
    stream: str
    items: list[Message]
    more: bool


class Joined(Event, tag="joined", frozen=True):
    room: str


class Left(Event, tag="left", frozen=True):
    room: str


class Counts(Event, tag="counts", frozen=True):
    rooms: dict[str, int]
    online: int


class PeopleList(Event, tag="people", frozen=True):
    scope: str
    room: str
    items: list[Profile]
    total: int


class Members(Event, tag="members", frozen=True):
    """Live change of a room's connected members (sent to the room)."""

    room: str
    add: list[Profile] = []
    remove: list[str] = []


class Presence(Event, tag="presence", frozen=True):
    """Live change of the site-wide list of connected people (sent to watchers)."""

    add: list[Profile] = []
    remove: list[str] = []


class Conversation(Event, tag="conv", frozen=True):
    conv: ConvInfo


class TypingNotice(Event, tag="typing", frozen=True):
    stream: str
    person: str


class Blocked(Event, tag="blocks", frozen=True):
    people: list[PersonRef]


class Error(Event, tag="error", frozen=True):
    code: str
    message: str
    ref: str | None = None
    field: str | None = None
    retryable: bool = False


class Bye(Event, tag="bye", frozen=True):
    """The server is closing this connection; ``reconnect`` says whether the client should."""

    code: str
    message: str
    reconnect: bool


AnyEvent = (
    Message
    | Welcome
    | Ack
    | Sync
    | HistoryPage
    | Joined
    | Left
    | Counts
    | PeopleList
    | Members
    | Presence
    | Conversation
    | TypingNotice
    | Blocked
    | Prefs
    | Error
    | Bye
)
