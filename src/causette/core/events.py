"""Events the server sends. Each WebSocket frame carries a JSON array of one or more events
(write coalescing); each event is an object tagged by ``type``. ``Message`` (``type: "msg"``)
lives in ``models`` because the store returns it as it is sent.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from causette.core.models import Message, PmPolicy, Profile
from causette.errors import CausetteError


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
    #: "open", "frozen" (readable, nobody writes) or "closed" (nobody writes or joins).
    state: str = "open"
    #: Why the room is frozen or closed (the moderator's words).
    state_reason: str = ""


class PersonRef(Struct, frozen=True):
    id: str
    name: str


class AppealView(Struct, frozen=True):
    status: str  # pending, granted, rejected
    created_at: int
    decided_at: int | None = None
    answer: str = ""


class DecisionView(Struct, frozen=True):
    """A statement of reasons (DSA art. 17), as shown to the person it concerns."""

    id: str  # the decision code
    case: str
    action: str  # warn, delete_message, mute, kick, ban, refuse
    facts: str
    category: str
    category_label: str
    ground: str  # the rule and the law relied on
    automated: bool
    created_at: int
    expires_at: int | None
    appeal_until: int  # an appeal is possible until then (unless already made)
    appeal: AppealView | None = None
    lifted: bool = False


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
    #: Decisions in force for this person (an active mute): their statements of reasons.
    decisions: list[DecisionView] = []


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
    #: Non-personal data to act on, e.g. ``{"decision": "D-…"}`` for ``muted``.
    details: dict[str, Any] | None = None


class Reported(Event, tag="reported", frozen=True):
    """A report was recorded: ``case`` is the code to follow it (also at /case/<code>)."""

    case: str
    target: str
    id: str
    joined: bool  # the report joined a case others had already opened


class Held(Event, tag="held", frozen=True):
    """A message was kept for a moderator's review instead of being published."""

    local_id: str
    stream: str
    case: str
    message: str


class DecisionNotice(Event, tag="decision", frozen=True):
    decision: DecisionView
    #: For a ban, sent only to the person banned: the page hands it to POST /api/ban-cookie,
    #: which stores it as an HttpOnly cookie (a returning banned browser is recognised).
    ban_token: str = ""


class Removed(Event, tag="removed", frozen=True):
    """A moderator removed an item: clients stop showing it."""

    stream: str
    seq: int
    id: str


class RoomStateNotice(Event, tag="room_state", frozen=True):
    room: str
    state: str
    reason: str


class CaseOutcome(Event, tag="case_outcome", frozen=True):
    """What became of a case the person reported (DSA art. 16(5))."""

    case: str
    outcome: str  # dismissed, actioned


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
    | Reported
    | Held
    | DecisionNotice
    | Removed
    | RoomStateNotice
    | CaseOutcome
)


def error_event(exc: CausetteError, lang: str, ref: str | None = None) -> Error:
    """The ``error`` event for a refusal, in the person's language."""
    return Error(
        code=exc.code,
        message=exc.message(lang),
        ref=ref,
        field=exc.field,
        retryable=exc.retryable,
        details=exc.details or None,
    )
