"""Domain objects. Times are integers: milliseconds since the Unix epoch (UTC).

Objects that also travel on the wire (``Profile``, ``Message``) are msgspec Structs so that they
are encoded once, without copying into another shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from msgspec import Struct


class Gender(StrEnum):
    WOMAN = "f"  # femme
    MAN = "m"  # homme
    OTHER = "x"  # autre


class PmPolicy(StrEnum):
    """Who may open a private conversation with a person."""

    EVERYONE = "everyone"
    SHARED_ROOM = "shared_room"  # people who share a room with me
    NOBODY = "nobody"


MessageKind = Literal["text", "join", "leave"]

ROOM_PREFIX = "r:"
DM_PREFIX = "d:"


def room_stream(slug: str) -> str:
    return ROOM_PREFIX + slug


def dm_stream(a: str, b: str) -> str:
    """The one stream of a private conversation between two people, whatever its direction."""
    first, second = (a, b) if a < b else (b, a)
    return f"{DM_PREFIX}{first}:{second}"


def dm_parties(stream: str) -> tuple[str, str] | None:
    if not stream.startswith(DM_PREFIX):
        return None
    first, sep, second = stream[len(DM_PREFIX) :].partition(":")
    if not sep or not first or not second or ":" in second:
        return None
    return first, second


def room_slug(stream: str) -> str | None:
    return stream[len(ROOM_PREFIX) :] if stream.startswith(ROOM_PREFIX) else None


class Profile(Struct, frozen=True):
    """What others see of a person: shown in lists and next to messages."""

    id: str
    name: str  # pseudonym as typed (after NFKC)
    gender: Gender
    age: int
    commune: str  # commune name
    dep: str  # département code, e.g. "75", "2A", "971"
    region: str  # INSEE region code, e.g. "11"


class Message(Struct, frozen=True, tag="msg", tag_field="type"):
    """One item of a stream (room or private conversation), exactly as sent to clients."""

    stream: str
    seq: int
    id: str
    kind: MessageKind
    author: str  # person id
    name: str  # author's pseudonym at the time
    text: str
    ts: int


@dataclass(frozen=True, slots=True)
class NewItem:
    """A stream item to append; the store assigns ``seq``."""

    stream: str
    id: str
    kind: MessageKind
    author: str
    name: str
    text: str
    ts: int
    expires_at: int
    local_id: str | None = None
    #: The author has read what they wrote: their read mark on the stream (a private
    #: conversation's) rises to the item's seq in the same write, not in a write of its own.
    read_by_author: bool = False
    #: A private message's other party: stored only while their session lives, checked in the
    #: same write (else ``PersonUnknown``), not in a look-up of its own.
    recipient: str | None = None


@dataclass(frozen=True, slots=True)
class Place:
    postal_code: str
    commune_code: str  # INSEE code
    commune: str
    dep: str
    region: str


@dataclass(frozen=True, slots=True)
class Session:
    """A visitor's session: the person exists only while it lives."""

    id: str  # public person id (never the cookie token)
    token_hash: bytes  # SHA-256 of the cookie token
    profile: Profile
    pseudonym_key: str  # case- and look-alike-folded pseudonym, unique among live sessions
    postal_code: str
    commune_code: str
    lang: str
    pm_policy: PmPolicy
    created_at: int
    last_seen: int
    ended_at: int | None = None
    #: Keyed hash of the network the session was created from (safety.ipkeys); never the IP.
    ip_key: str = ""

    @property
    def live(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class StreamHead:
    stream: str
    epoch: str  # changes if the stream is recreated (e.g. a wiped database): clients reload it
    last_seq: int


@dataclass(frozen=True, slots=True)
class ConversationState:
    """One private conversation seen from one of its two people."""

    stream: str
    other: str  # the other person's id
    opened_by: str
    last_seq: int
    read_seq: int
    last_ts: int

    @property
    def unread(self) -> int:
        return max(0, self.last_seq - self.read_seq)
