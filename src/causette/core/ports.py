"""The narrow ports the core depends on. Every adapter passes the same contract suite
(``tests/contracts``): memory, SQLite and PostgreSQL stores; the in-process and Redis buses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from causette.core.cases import (
    Appeal,
    AppealStatus,
    AuditEntry,
    Case,
    Decision,
    Evidence,
    Moderator,
    ModSession,
    Outcome,
    Report,
    RoomState,
)
from causette.core.models import (
    ConversationState,
    Message,
    NewItem,
    PmPolicy,
    Session,
    StreamHead,
)


class Clock(Protocol):
    def now_ms(self) -> int: ...


#: What ``Store.append_then`` hands its callback: ``append``'s result, or what it raised.
AppendResult = tuple[Message, bool] | BaseException
AppendDone = Callable[[AppendResult], None]


class Store(Protocol):
    """Durable state. Every method is atomic on its own; none is called per recipient."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the store cannot serve (readiness)."""
        ...

    # --- sessions ---------------------------------------------------------------------------
    async def create_session(self, session: Session) -> None:
        """Insert a live session. Raise ``PseudonymTaken`` when another live session has the
        same ``pseudonym_key`` (enforced by the database, so racing nodes cannot both win)."""
        ...

    async def pseudonym_in_use(self, pseudonym_key: str) -> bool:
        """True when a live session holds this key (a read-only early check; the insert in
        ``create_session`` remains the rule)."""
        ...

    async def get_session(self, person_id: str) -> Session | None:
        """The session, live or ended (until purged)."""
        ...

    async def session_by_token(self, token_hash: bytes) -> Session | None:
        """The live session with this token hash, or None (ended sessions are not returned)."""
        ...

    async def get_sessions(self, person_ids: Sequence[str]) -> list[Session]:
        """Several sessions at once (live or ended), in no particular order."""
        ...

    async def touch_sessions(self, person_ids: Sequence[str], now: int) -> None:
        """Set ``last_seen = now`` for these live sessions (one statement, not one per id)."""
        ...

    async def end_session(self, person_id: str, now: int) -> bool:
        """End a live session (frees its pseudonym). True if it was live."""
        ...

    async def idle_sessions(self, seen_before: int, limit: int) -> list[str]:
        """Ids of live sessions with ``last_seen < seen_before``."""
        ...

    async def set_prefs(self, person_id: str, pm_policy: PmPolicy, lang: str) -> None: ...

    # --- streams and messages ---------------------------------------------------------------
    async def ensure_stream(self, stream: str, now: int) -> StreamHead:
        """Create the stream if missing (new random epoch, ``last_seq = 0``); return its head."""
        ...

    async def stream_head(self, stream: str) -> StreamHead | None: ...

    async def append(self, item: NewItem) -> tuple[Message, bool]:
        """Store an item with the stream's next ``seq`` (the stream must exist, else
        ``StreamUnknown``).

        Idempotent: when ``item.local_id`` is set and the same author already stored an item
        with that ``local_id``, nothing is written and ``(existing, True)`` is returned.

        With ``item.read_by_author``, a new item also raises the author's read mark on the
        stream to its seq (as ``mark_read``), in the same write. With ``item.recipient``,
        nothing is written, retry or not, unless that person's session exists and has not
        ended: ``PersonUnknown``.
        """
        ...

    def append_then(self, item: NewItem, done: AppendDone) -> None:
        """``append`` without awaiting it: ``done`` is called on the event loop, never before
        this returns, with what ``append`` would return or the exception it would raise.
        Appends of both kinds are stored in the order of the calls. (The message path: a
        coroutine would resume one event-loop turn after the answer.)"""
        ...

    async def read(
        self, stream: str, after_seq: int, limit: int, now: int | None = None
    ) -> list[Message]:
        """Items with ``seq > after_seq``, ascending, at most ``limit``. Purged items are gone;
        with ``now``, items already expired (``expires_at <= now``) are left out too."""
        ...

    async def latest(self, stream: str, limit: int, now: int) -> list[Message]:
        """The newest ``limit`` unexpired items, ascending."""
        ...

    async def snapshot(
        self, stream: str, after_seq: int | None, limit: int, now: int
    ) -> tuple[StreamHead | None, list[Message]]:
        """In one operation, ``stream_head`` then (read after it, so they reach at least its
        ``last_seq``) the items of ``read(stream, after_seq, limit)``, or with no ``after_seq``
        of ``latest(stream, limit, now)``. ``(None, [])`` when there is no such stream."""
        ...

    async def first_seq(self, stream: str) -> int | None:
        """The lowest ``seq`` still stored for the stream (None when it holds nothing)."""
        ...

    async def purge_expired(self, now: int, limit: int) -> int:
        """Delete up to ``limit`` items whose ``expires_at <= now``; return how many."""
        ...

    async def purge_ended_sessions(self, ended_before: int, limit: int) -> int:
        """Forget sessions ended before this time, with their memberships, blocks and
        conversation states; return how many sessions."""
        ...

    # --- rooms ------------------------------------------------------------------------------
    async def add_member(self, room: str, person_id: str, now: int) -> bool:
        """True if newly added."""
        ...

    async def remove_member(self, room: str, person_id: str) -> bool:
        """True if the person was a member."""
        ...

    async def rooms_of(self, person_id: str) -> list[str]:
        """Room slugs the person has joined, in joining order."""
        ...

    async def members_of(self, room: str) -> list[str]: ...

    # --- private conversations --------------------------------------------------------------
    async def open_conversation(
        self, stream: str, opened_by: str, other: str, now: int
    ) -> ConversationState:
        """Record the conversation for both people (and its stream), unless it exists; the
        opener's view of it afterwards (one round trip where a look-up would be a second)."""
        ...

    async def conversations_of(self, person_id: str) -> list[ConversationState]:
        """The person's conversations, most recent activity first."""
        ...

    async def get_conversation(self, person_id: str, stream: str) -> ConversationState | None: ...

    async def mark_read(self, person_id: str, stream: str, seq: int) -> None:
        """Raise the person's read mark for the stream to ``seq`` (never lowers it)."""
        ...

    # --- blocks -----------------------------------------------------------------------------
    async def block(self, blocker: str, blocked: str, now: int) -> bool:
        """True if newly blocked."""
        ...

    async def unblock(self, blocker: str, blocked: str) -> bool: ...

    async def blocked_by(self, person_id: str) -> list[str]:
        """People this person has blocked."""
        ...

    async def blockers_of(self, person_id: str) -> list[str]:
        """People who have blocked this person."""
        ...

    async def is_blocked_either_way(self, a: str, b: str) -> bool: ...


class ModerationStore(Protocol):
    """Durable moderation state: cases, evidence, decisions, appeals, moderator accounts, the
    audit log and room states. Implemented by the same adapters as ``Store``."""

    # --- messages and sessions seen by moderation --------------------------------------------
    async def get_message(self, message_id: str) -> Message | None:
        """A stored message by id (None once purged or deleted)."""
        ...

    async def delete_message(self, message_id: str) -> Message | None:
        """Remove a message from its stream (its seq stays used); return it, or None."""
        ...

    async def posted_in(self, person_id: str, streams: Sequence[str], since: int) -> set[str]:
        """The streams among ``streams`` where the person wrote a text item since ``since``."""
        ...

    async def sessions_with_key(self, ip_key: str, limit: int) -> list[Session]:
        """Sessions (live or ended, until purged) created from this keyed IP hash, newest
        first."""
        ...

    # --- cases --------------------------------------------------------------------------------
    async def file_report(
        self, case: Case, report: Report | None, evidence: Sequence[Evidence]
    ) -> tuple[Case, bool]:
        """Open ``case`` with its report and evidence, or, when an open case already has the
        same ``target_key``, add the report to it instead (at most one report per reporter and
        case; the first evidence stands; the case takes the more severe category). Atomic.
        Returns the case as stored and whether an existing case was joined."""
        ...

    async def get_case(self, case_id: str) -> Case | None: ...

    async def open_cases(self, limit: int) -> list[Case]:
        """Open cases, most severe first, then oldest first."""
        ...

    async def cases_of_subject(self, person_id: str, limit: int) -> list[Case]:
        """Cases about this person, newest first."""
        ...

    async def reports_of(self, case_id: str) -> list[Report]:
        """Oldest first."""
        ...

    async def evidence_of(self, case_id: str) -> list[Evidence]:
        """In ``n`` order."""
        ...

    async def close_case(self, case_id: str, outcome: Outcome, by: str, now: int) -> Case | None:
        """Close an open case; None if it was not open."""
        ...

    async def reporter_networks_against(self, person_id: str, since: int) -> int:
        """How many distinct reporter networks (keyed IP hashes) reported this person (as
        subject) since ``since``: one troll with several sessions counts once."""
        ...

    # --- decisions ----------------------------------------------------------------------------
    async def add_decision(self, decision: Decision) -> None: ...

    async def get_decision(self, decision_id: str) -> Decision | None: ...

    async def decisions_of_case(self, case_id: str) -> list[Decision]:
        """Oldest first."""
        ...

    async def decisions_of_subject(
        self, person_id: str | None, ip_key: str | None, limit: int
    ) -> list[Decision]:
        """Decisions about this person or this keyed IP hash (the sanction history), newest
        first."""
        ...

    async def active_ban(
        self, *, person_id: str | None, ip_key: str | None, decision_id: str | None, now: int
    ) -> Decision | None:
        """An unlifted, unexpired ban matching the person, the network or the decision id."""
        ...

    async def active_mute(self, person_id: str, now: int) -> Decision | None: ...

    async def lift_decision(self, decision_id: str, now: int, reason: str) -> Decision | None:
        """Lift a decision (appeal granted); None if unknown or already lifted."""
        ...

    # --- appeals ------------------------------------------------------------------------------
    async def add_appeal(self, appeal: Appeal) -> bool:
        """False when the decision already has an appeal (one appeal per decision)."""
        ...

    async def get_appeal(self, appeal_id: str) -> Appeal | None: ...

    async def appeal_of(self, decision_id: str) -> Appeal | None: ...

    async def pending_appeals(self, limit: int) -> list[Appeal]:
        """Oldest first."""
        ...

    async def decide_appeal(
        self, appeal_id: str, status: AppealStatus, by: str, now: int, answer: str
    ) -> Appeal | None:
        """Settle a pending appeal; None if it was not pending."""
        ...

    # --- moderator accounts -------------------------------------------------------------------
    async def add_moderator(self, moderator: Moderator) -> None:
        """Raise ``ModeratorExists`` when the login is taken."""
        ...

    async def get_moderator(self, moderator_id: str) -> Moderator | None: ...

    async def moderator_by_login(self, login: str) -> Moderator | None: ...

    async def list_moderators(self) -> list[Moderator]: ...

    async def update_moderator(self, moderator: Moderator) -> None:
        """Replace the stored account (same id) with this one."""
        ...

    async def create_mod_session(self, session: ModSession) -> None: ...

    async def mod_session(self, token_hash: bytes, now: int) -> ModSession | None:
        """The unexpired session with this token hash."""
        ...

    async def delete_mod_session(self, token_hash: bytes) -> None: ...

    async def delete_mod_sessions_of(self, moderator_id: str) -> None: ...

    # --- audit log (append-only) --------------------------------------------------------------
    async def audit(
        self,
        *,
        ts: int,
        actor: str,
        action: str,
        case_id: str | None,
        target: str,
        reason: str,
        details: dict[str, object],
    ) -> AuditEntry:
        """Append an entry; the store assigns its id. There is no way to change or remove one."""
        ...

    async def audit_log(self, limit: int, before_id: int | None = None) -> list[AuditEntry]:
        """Newest first; ``before_id`` pages back."""
        ...

    # --- rooms --------------------------------------------------------------------------------
    async def set_room_state(self, slug: str, state: RoomState, reason: str, now: int) -> None: ...

    async def room_states(self) -> dict[str, tuple[RoomState, str]]:
        """Rooms whose state is not ``open``, with the reason given."""
        ...


class FullStore(Store, ModerationStore, Protocol):
    """Both ports: every store adapter implements both."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """What travels on the bus: bytes ready for clients, plus what a node needs to route them.

    ``stream``/``seq`` are set for stream items so a node can put them in order, drop
    duplicates and detect gaps. ``exclude`` lists person ids that must not receive it.
    ``control`` envelopes are instructions for nodes (e.g. disconnect a person), never sent to
    clients as they are.
    """

    channel: str
    data: bytes
    stream: str = ""
    seq: int = 0
    exclude: frozenset[str] = frozenset()
    control: bool = False


Deliver = Callable[[Envelope], None]
#: Called after the bus lost its subscriptions and has them back: whatever was published
#: meanwhile was lost (pub/sub keeps nothing), so the node must catch up from the store.
Resync = Callable[[], None]


class Bus(Protocol):
    """Fan-out between nodes. One channel per stream (``r:…``, ``d:…``), one per person
    (``p:…``) and a few global ones (``presence``). A node subscribes to a channel only while it
    has a local member; each envelope published reaches every subscribed node once, in publish
    order per channel and publisher."""

    async def start(self, deliver: Deliver, resync: Resync | None = None) -> None:
        """Begin delivering envelopes of subscribed channels to ``deliver`` (called on the
        event loop, never concurrently). ``resync`` is called, on the event loop, each time the
        bus comes back after losing its connection (never for the first one)."""
        ...

    async def close(self) -> None: ...

    def publish(self, envelope: Envelope) -> None:
        """Send to every subscribed node. Never waits: a bus queues the envelope, keeping the
        order, and sends it from its own task, retrying while disconnected; never raises for a
        bus that is down: the nodes catch up through ``resync``. (Synchronous so that a stored
        message is fanned out in the same event-loop turn as the store's answer.)"""
        ...

    async def subscribe(self, channel: str) -> None:
        """Returns once envelopes published afterwards are guaranteed to be delivered (while
        the bus is disconnected: at once, the subscription being made on reconnection, followed
        by ``resync``)."""
        ...

    async def unsubscribe(self, channel: str) -> None: ...

    def reconnect(self) -> None:
        """Drop the connection to the broker and make a new one, followed by ``resync``: the
        node stopped hearing its own beats, which the bus itself cannot notice (a connection
        that went silent without an error). Nothing to do for a bus without a broker."""
        ...
