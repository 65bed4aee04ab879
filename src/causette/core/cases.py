"""Moderation domain: reports, cases, evidence, decisions (statements of reasons), appeals,
moderator accounts and the audit log. Times are milliseconds since the Unix epoch (UTC).

Vocabulary (docs/glossary.md): a *report* is one person's notice about a message, a person or
a room; reports about the same target join one *case*, which a moderator (or the system) closes
with *decisions*. A decision that affects a person comes with a statement of reasons (DSA art. 17)
and can be *appealed* (art. 20).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class TargetKind(StrEnum):
    MESSAGE = "message"
    PERSON = "person"
    ROOM = "room"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Outcome(StrEnum):
    DISMISSED = "dismissed"  # no rule broken
    ACTIONED = "actioned"  # at least one decision taken


class Action(StrEnum):
    """What a decision does. ``RELEASE``/``REFUSE`` settle a message held by the word lists."""

    WARN = "warn"
    DELETE_MESSAGE = "delete_message"
    MUTE = "mute"
    KICK = "kick"
    BAN = "ban"
    FREEZE_ROOM = "freeze_room"
    CLOSE_ROOM = "close_room"
    REOPEN_ROOM = "reopen_room"
    RELEASE = "release"
    REFUSE = "refuse"
    BLOCK_MESSAGE = "block_message"  # automated: a word list refused a message


#: Actions that restrict a person or their content: they come with a statement of reasons.
PERSONAL_ACTIONS = frozenset(
    {
        Action.WARN,
        Action.DELETE_MESSAGE,
        Action.MUTE,
        Action.KICK,
        Action.BAN,
        Action.REFUSE,
        Action.BLOCK_MESSAGE,
    }
)
ROOM_ACTIONS = frozenset({Action.FREEZE_ROOM, Action.CLOSE_ROOM, Action.REOPEN_ROOM})


class AppealStatus(StrEnum):
    PENDING = "pending"
    GRANTED = "granted"  # the decision is reversed and its effects lifted
    REJECTED = "rejected"


class Role(StrEnum):
    MODERATOR = "moderator"
    ADMIN = "admin"


class RoomState(StrEnum):
    OPEN = "open"
    FROZEN = "frozen"  # readable, nobody can write
    CLOSED = "closed"  # nobody can write or join (still listed, marked closed)


@dataclass(frozen=True, slots=True)
class Case:
    id: str  # the case code given to reporters, e.g. "C-7KQH2XPM"
    created_at: int
    updated_at: int
    status: CaseStatus
    category: str  # the most severe category reported
    severity: int  # 1 = most urgent (see safety.categories)
    target_kind: TargetKind
    #: One open case per target: "message:<id>", "person:<id>", "room:<slug>".
    target_key: str
    subject: str | None  # the person concerned (author of the message, reported person)
    subject_name: str
    room: str | None
    stream: str | None
    message_id: str | None
    reporters: int  # distinct reporters
    automated: bool  # opened by the system (word list, auto-mute), not by a report
    outcome: Outcome | None = None
    decided_by: str | None = None  # moderator id, or "system"
    decided_at: int | None = None


@dataclass(frozen=True, slots=True)
class Report:
    id: str
    case_id: str
    reporter: str  # person id of the reporter
    reporter_key: str  # keyed IP hash of the reporter (for abuse of reporting)
    category: str
    explanation: str
    good_faith: bool
    created_at: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """A frozen copy of what was reported and its context: it survives the message purge."""

    case_id: str
    n: int  # order within the case
    kind: str  # "message", "context", "profile", "room"
    captured_at: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    """A moderation decision. For a person, it is their statement of reasons (DSA art. 17)."""

    id: str  # the decision code shown to the person, e.g. "D-4MX9QK2T"
    case_id: str
    action: Action
    subject: str | None  # person id
    subject_key: str | None  # keyed IP hash of the person (bans match it)
    room: str | None
    stream: str | None
    message_id: str | None
    facts: str  # what happened, as the person will read it
    category: str  # the ground: a category of safety.categories (rule and law)
    automated: bool
    moderator: str | None  # moderator id; None when automated
    created_at: int
    expires_at: int | None  # end of a mute or a temporary ban; None: no end
    lifted_at: int | None = None
    lifted_reason: str = ""

    def active(self, now: int) -> bool:
        return self.lifted_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class Appeal:
    id: str
    decision_id: str
    text: str
    created_at: int
    status: AppealStatus
    decided_by: str | None = None
    decided_at: int | None = None
    answer: str = ""


@dataclass(frozen=True, slots=True)
class Moderator:
    id: str
    login: str
    password_hash: str  # Argon2id
    totp_secret: str  # base32
    role: Role
    created_at: int
    failed_logins: int = 0
    locked_until: int | None = None
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class ModSession:
    token_hash: bytes
    moderator_id: str
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the append-only audit log. ``id`` is assigned by the store (ascending)."""

    id: int
    ts: int
    actor: str  # "mod:<id>", "admin-cli", "system"
    action: str  # e.g. "case.decide", "appeal.decide", "moderator.add", "login.failed"
    case_id: str | None
    target: str  # what was acted on, e.g. "person:<id>", "decision:<id>"
    reason: str
    details: dict[str, Any]
