"""The in-memory store: plain dicts and lists, the same observable behaviour as ``SqlStore``.

For fast core tests and throw-away instances (``memory://``). No method awaits anything, so each
is atomic with respect to the others on one event loop, as the port requires.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from causette.core.cases import (
    Action,
    Appeal,
    AppealStatus,
    AuditEntry,
    Case,
    CaseStatus,
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
from causette.core.ports import AppendDone, AppendResult
from causette.errors import (
    ModeratorExists,
    PersonUnknown,
    PseudonymTaken,
    StoreUnavailable,
    StreamUnknown,
)
from causette.ids import RandomIds


class EpochSource(Protocol):
    """Where new stream epochs come from (``causette.ids.IdSource`` fits)."""

    def epoch(self) -> str: ...


@dataclass(slots=True)
class _Stream:
    epoch: str
    last_seq: int
    created_at: int
    items: list[_Item] = dataclasses.field(default_factory=list)  # ascending seq


@dataclass(frozen=True, slots=True)
class _Item:
    message: Message
    local_id: str | None
    expires_at: int

    @property
    def seq(self) -> int:
        return self.message.seq


def as_json_data(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as it reads back from JSON text (what the SQL store keeps): tuples become
    lists, keys strings, enums their values. Data that JSON cannot hold is refused here too."""
    decoded: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(data), type=dict[str, Any])
    return decoded


def check_case_to_file(case: Case) -> None:
    if case.status != CaseStatus.OPEN or case.outcome is not None:
        raise ValueError("file_report takes a new, open case")


def joined_case(existing: Case, incoming: Case, reporters: int) -> Case:
    """``existing`` after ``incoming`` joined it: the more severe category, the new count."""
    more_severe = incoming.severity < existing.severity
    return dataclasses.replace(
        existing,
        reporters=reporters,
        severity=incoming.severity if more_severe else existing.severity,
        category=incoming.category if more_severe else existing.category,
        updated_at=max(existing.updated_at, incoming.updated_at),
    )


@dataclass(slots=True)
class _Membership:
    joined_at: int
    join_order: int


@dataclass(slots=True)
class _Conversation:
    other: str
    opened_by: str
    read_seq: int
    opened_at: int


class MemoryStore:
    """``Store`` and ``ModerationStore`` over process memory. Nothing survives ``close()``."""

    def __init__(self, ids: EpochSource | None = None) -> None:
        self._ids: EpochSource = ids if ids is not None else RandomIds()
        self._closed = False
        self._sessions: dict[str, Session] = {}
        self._streams: dict[str, _Stream] = {}
        # (author, local_id) -> (stream, seq) for idempotent appends.
        self._local_ids: dict[tuple[str, str], tuple[str, int]] = {}
        self._message_ids: dict[str, tuple[str, int]] = {}  # message id -> (stream, seq)
        self._members: dict[str, dict[str, _Membership]] = {}  # room -> person -> membership
        self._rooms: dict[str, dict[str, _Membership]] = {}  # person -> room -> membership
        self._conversations: dict[str, dict[str, _Conversation]] = {}  # person -> stream -> …
        self._blocks: dict[tuple[str, str], int] = {}  # (blocker, blocked) -> created_at
        # Moderation.
        self._cases: dict[str, Case] = {}
        self._open_cases: dict[str, str] = {}  # target_key -> id of its open case
        self._reports: dict[str, list[Report]] = {}  # case id -> reports
        self._report_ids: set[str] = set()
        self._evidence: dict[str, list[Evidence]] = {}  # case id -> evidence, in n order
        self._decisions: dict[str, Decision] = {}
        self._appeals: dict[str, Appeal] = {}
        self._appeal_of: dict[str, str] = {}  # decision id -> appeal id
        self._moderators: dict[str, Moderator] = {}
        self._mod_sessions: dict[bytes, ModSession] = {}
        self._audit: list[AuditEntry] = []
        self._room_states: dict[str, tuple[RoomState, str, int]] = {}  # slug -> state, reason, at

    async def close(self) -> None:
        self._closed = True

    async def ping(self) -> None:
        self._check_open()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable()

    # --- sessions ---------------------------------------------------------------------------

    async def create_session(self, session: Session) -> None:
        self._check_open()
        if session.id in self._sessions:
            raise ValueError("duplicate session id")
        if any(s.token_hash == session.token_hash for s in self._sessions.values()):
            raise ValueError("duplicate token hash")
        if session.ended_at is None and any(
            s.ended_at is None and s.pseudonym_key == session.pseudonym_key
            for s in self._sessions.values()
        ):
            raise PseudonymTaken()
        self._sessions[session.id] = session

    async def pseudonym_in_use(self, pseudonym_key: str) -> bool:
        self._check_open()
        return any(
            s.ended_at is None and s.pseudonym_key == pseudonym_key for s in self._sessions.values()
        )

    async def sessions_with_key(self, ip_key: str, limit: int) -> list[Session]:
        self._check_open()
        if not ip_key:
            return []
        found = [s for s in self._sessions.values() if s.ip_key == ip_key]
        found.sort(key=lambda s: (s.created_at, s.id), reverse=True)
        return found[: max(limit, 0)]

    async def get_session(self, person_id: str) -> Session | None:
        self._check_open()
        return self._sessions.get(person_id)

    async def session_by_token(self, token_hash: bytes) -> Session | None:
        self._check_open()
        for session in self._sessions.values():
            if session.token_hash == token_hash and session.ended_at is None:
                return session
        return None

    async def get_sessions(self, person_ids: Sequence[str]) -> list[Session]:
        self._check_open()
        return [self._sessions[i] for i in dict.fromkeys(person_ids) if i in self._sessions]

    async def touch_sessions(self, person_ids: Sequence[str], now: int) -> None:
        self._check_open()
        for person_id in person_ids:
            session = self._sessions.get(person_id)
            if session is not None and session.ended_at is None:
                self._sessions[person_id] = dataclasses.replace(session, last_seen=now)

    async def end_session(self, person_id: str, now: int) -> bool:
        self._check_open()
        session = self._sessions.get(person_id)
        if session is None or session.ended_at is not None:
            return False
        self._sessions[person_id] = dataclasses.replace(session, ended_at=now)
        return True

    async def idle_sessions(self, seen_before: int, limit: int) -> list[str]:
        self._check_open()
        idle = sorted(
            (s.last_seen, s.id)
            for s in self._sessions.values()
            if s.ended_at is None and s.last_seen < seen_before
        )
        return [person_id for _, person_id in idle[: max(limit, 0)]]

    async def set_prefs(self, person_id: str, pm_policy: PmPolicy, lang: str) -> None:
        self._check_open()
        session = self._sessions.get(person_id)
        if session is not None:
            self._sessions[person_id] = dataclasses.replace(session, pm_policy=pm_policy, lang=lang)

    # --- streams and messages ---------------------------------------------------------------

    def _ensure(self, stream: str, now: int) -> _Stream:
        state = self._streams.get(stream)
        if state is None:
            state = self._streams[stream] = _Stream(self._ids.epoch(), 0, now)
        return state

    async def ensure_stream(self, stream: str, now: int) -> StreamHead:
        self._check_open()
        state = self._ensure(stream, now)
        return StreamHead(stream, state.epoch, state.last_seq)

    async def stream_head(self, stream: str) -> StreamHead | None:
        self._check_open()
        state = self._streams.get(stream)
        return None if state is None else StreamHead(stream, state.epoch, state.last_seq)

    async def append(self, item: NewItem) -> tuple[Message, bool]:
        return self._append(item)

    def append_then(self, item: NewItem, done: AppendDone) -> None:
        result: AppendResult
        try:
            result = self._append(item)
        except Exception as error:
            result = error
        asyncio.get_running_loop().call_soon(done, result)

    def _append(self, item: NewItem) -> tuple[Message, bool]:
        self._check_open()
        state = self._streams.get(item.stream)
        if state is None:
            raise StreamUnknown()
        if item.recipient is not None:
            recipient = self._sessions.get(item.recipient)
            if recipient is None or not recipient.live:
                raise PersonUnknown()
        if item.local_id is not None:
            found = self._local_ids.get((item.author, item.local_id))
            if found is not None:
                existing = self._find(*found)
                assert existing is not None, "idempotency index out of date"
                return existing.message, True
        if item.id in self._message_ids:
            raise ValueError("duplicate message id")
        seq = state.last_seq + 1
        message = Message(
            stream=item.stream,
            seq=seq,
            id=item.id,
            kind=item.kind,
            author=item.author,
            name=item.name,
            text=item.text,
            ts=item.ts,
        )
        state.last_seq = seq
        state.items.append(_Item(message, item.local_id, item.expires_at))
        self._message_ids[item.id] = (item.stream, seq)
        if item.local_id is not None:
            self._local_ids[(item.author, item.local_id)] = (item.stream, seq)
        if item.read_by_author:
            self._mark_read(item.author, item.stream, seq)
        return message, False

    def _find(self, stream: str, seq: int) -> _Item | None:
        state = self._streams.get(stream)
        if state is None:
            return None
        index = bisect.bisect_left(state.items, seq, key=lambda i: i.seq)
        if index < len(state.items) and state.items[index].seq == seq:
            return state.items[index]
        return None

    async def read(
        self, stream: str, after_seq: int, limit: int, now: int | None = None
    ) -> list[Message]:
        """Items with ``seq > after_seq``, ascending, at most ``limit``. Purged items are gone;
        with ``now``, items already expired (``expires_at <= now``) are left out too."""
        self._check_open()
        state = self._streams.get(stream)
        if state is None or limit <= 0:
            return []
        start = bisect.bisect_right(state.items, after_seq, key=lambda i: i.seq)
        out: list[Message] = []
        for item in state.items[start:]:
            if now is not None and item.expires_at <= now:
                continue
            out.append(item.message)
            if len(out) >= limit:
                break
        return out

    async def latest(self, stream: str, limit: int, now: int) -> list[Message]:
        self._check_open()
        state = self._streams.get(stream)
        if state is None or limit <= 0:
            return []
        out: list[Message] = []
        for item in reversed(state.items):
            if item.expires_at > now:
                out.append(item.message)
                if len(out) >= limit:
                    break
        out.reverse()
        return out

    async def snapshot(
        self, stream: str, after_seq: int | None, limit: int, now: int
    ) -> tuple[StreamHead | None, list[Message]]:
        head = await self.stream_head(stream)
        if head is None:
            return None, []
        if after_seq is None:
            return head, await self.latest(stream, limit, now)
        return head, await self.read(stream, after_seq, limit)

    async def first_seq(self, stream: str) -> int | None:
        self._check_open()
        state = self._streams.get(stream)
        if state is None or not state.items:
            return None
        return state.items[0].seq

    async def purge_expired(self, now: int, limit: int) -> int:
        self._check_open()
        expired = sorted(
            (item.expires_at, stream, item.seq)
            for stream, state in self._streams.items()
            for item in state.items
            if item.expires_at <= now
        )[: max(limit, 0)]
        doomed: dict[str, set[int]] = {}
        for _, stream, seq in expired:
            doomed.setdefault(stream, set()).add(seq)
        for stream, seqs in doomed.items():
            state = self._streams[stream]
            kept: list[_Item] = []
            for item in state.items:
                if item.seq not in seqs:
                    kept.append(item)
                    continue
                self._forget(item)
            state.items = kept
        return len(expired)

    def _forget(self, item: _Item) -> None:
        """Drop the indexes of an item removed from its stream."""
        self._message_ids.pop(item.message.id, None)
        if item.local_id is not None:
            self._local_ids.pop((item.message.author, item.local_id), None)

    async def purge_ended_sessions(self, ended_before: int, limit: int) -> int:
        self._check_open()
        ended = sorted(
            (s.ended_at, s.id)
            for s in self._sessions.values()
            if s.ended_at is not None and s.ended_at < ended_before
        )[: max(limit, 0)]
        for _, person_id in ended:
            del self._sessions[person_id]
            for room in self._rooms.pop(person_id, {}):
                self._members[room].pop(person_id, None)
                if not self._members[room]:
                    del self._members[room]
            self._conversations.pop(person_id, None)
            for pair in [p for p in self._blocks if person_id in p]:
                del self._blocks[pair]
        return len(ended)

    # --- rooms ------------------------------------------------------------------------------

    async def add_member(self, room: str, person_id: str, now: int) -> bool:
        self._check_open()
        members = self._members.setdefault(room, {})
        if person_id in members:
            return False
        rooms = self._rooms.setdefault(person_id, {})
        order = 1 + max((m.join_order for m in rooms.values()), default=0)
        membership = _Membership(now, order)
        members[person_id] = membership
        rooms[room] = membership
        return True

    async def remove_member(self, room: str, person_id: str) -> bool:
        self._check_open()
        members = self._members.get(room)
        if members is None or person_id not in members:
            return False
        del members[person_id]
        if not members:
            del self._members[room]
        rooms = self._rooms[person_id]
        del rooms[room]
        if not rooms:
            del self._rooms[person_id]
        return True

    async def rooms_of(self, person_id: str) -> list[str]:
        self._check_open()
        rooms = self._rooms.get(person_id, {})
        return sorted(rooms, key=lambda r: (rooms[r].join_order, rooms[r].joined_at, r))

    async def members_of(self, room: str) -> list[str]:
        self._check_open()
        members = self._members.get(room, {})
        return sorted(members, key=lambda p: (members[p].joined_at, p))

    # --- private conversations --------------------------------------------------------------

    async def open_conversation(
        self, stream: str, opened_by: str, other: str, now: int
    ) -> ConversationState:
        self._check_open()
        self._ensure(stream, now)
        for person_id, counterpart in ((opened_by, other), (other, opened_by)):
            mine = self._conversations.setdefault(person_id, {})
            if stream not in mine:
                mine[stream] = _Conversation(counterpart, opened_by, 0, now)
        return self._state(stream, self._conversations[opened_by][stream])

    def _state(self, stream: str, conversation: _Conversation) -> ConversationState:
        state = self._streams[stream]
        return ConversationState(
            stream=stream,
            other=conversation.other,
            opened_by=conversation.opened_by,
            last_seq=state.last_seq,
            read_seq=conversation.read_seq,
            last_ts=state.items[-1].message.ts if state.items else 0,
        )

    async def conversations_of(self, person_id: str) -> list[ConversationState]:
        self._check_open()
        mine = self._conversations.get(person_id, {})
        states = [(self._state(s, c), c.opened_at) for s, c in mine.items()]
        states.sort(key=lambda sc: (-max(sc[0].last_ts, sc[1]), sc[0].stream))
        return [state for state, _ in states]

    async def get_conversation(self, person_id: str, stream: str) -> ConversationState | None:
        self._check_open()
        conversation = self._conversations.get(person_id, {}).get(stream)
        return None if conversation is None else self._state(stream, conversation)

    async def mark_read(self, person_id: str, stream: str, seq: int) -> None:
        self._check_open()
        self._mark_read(person_id, stream, seq)

    def _mark_read(self, person_id: str, stream: str, seq: int) -> None:
        conversation = self._conversations.get(person_id, {}).get(stream)
        if conversation is not None and seq > conversation.read_seq:
            conversation.read_seq = seq

    # --- blocks -----------------------------------------------------------------------------

    async def block(self, blocker: str, blocked: str, now: int) -> bool:
        self._check_open()
        if (blocker, blocked) in self._blocks:
            return False
        self._blocks[(blocker, blocked)] = now
        return True

    async def unblock(self, blocker: str, blocked: str) -> bool:
        self._check_open()
        return self._blocks.pop((blocker, blocked), None) is not None

    async def blocked_by(self, person_id: str) -> list[str]:
        self._check_open()
        mine = [(t, b) for (a, b), t in self._blocks.items() if a == person_id]
        return [b for _, b in sorted(mine)]

    async def blockers_of(self, person_id: str) -> list[str]:
        self._check_open()
        theirs = [(t, a) for (a, b), t in self._blocks.items() if b == person_id]
        return [a for _, a in sorted(theirs)]

    async def is_blocked_either_way(self, a: str, b: str) -> bool:
        self._check_open()
        return (a, b) in self._blocks or (b, a) in self._blocks

    # --- moderation: messages ---------------------------------------------------------------

    async def get_message(self, message_id: str) -> Message | None:
        self._check_open()
        where = self._message_ids.get(message_id)
        found = None if where is None else self._find(*where)
        return None if found is None else found.message

    async def delete_message(self, message_id: str) -> Message | None:
        self._check_open()
        where = self._message_ids.get(message_id)
        found = None if where is None else self._find(*where)
        if where is None or found is None:
            return None
        state = self._streams[where[0]]
        state.items.remove(found)  # last_seq is unchanged: the seq stays used
        self._forget(found)
        return found.message

    async def posted_in(self, person_id: str, streams: Sequence[str], since: int) -> set[str]:
        self._check_open()
        out: set[str] = set()
        for stream in set(streams):
            state = self._streams.get(stream)
            if state is not None and any(
                i.message.author == person_id and i.message.kind == "text" and i.message.ts >= since
                for i in state.items
            ):
                out.add(stream)
        return out

    # --- moderation: cases ------------------------------------------------------------------

    async def file_report(
        self, case: Case, report: Report | None, evidence: Sequence[Evidence]
    ) -> tuple[Case, bool]:
        self._check_open()
        check_case_to_file(case)
        if report is not None and report.id in self._report_ids:
            raise ValueError("duplicate report id")
        open_id = self._open_cases.get(case.target_key)
        if open_id is not None:
            existing = self._cases[open_id]
            if report is not None:
                reports = self._reports.setdefault(existing.id, [])
                if any(r.reporter == report.reporter for r in reports):
                    return existing, True  # one report per reporter and case: nothing changes
                reports.append(dataclasses.replace(report, case_id=existing.id))
                self._report_ids.add(report.id)
            joined = joined_case(existing, case, len(self._reports.get(existing.id, [])))
            self._cases[existing.id] = joined
            return joined, True
        if case.id in self._cases:
            raise ValueError("duplicate case id")
        frozen = sorted(
            (dataclasses.replace(e, case_id=case.id, data=as_json_data(e.data)) for e in evidence),
            key=lambda e: e.n,
        )
        if len({e.n for e in frozen}) != len(frozen):
            raise ValueError("duplicate evidence number")
        stored = dataclasses.replace(case, reporters=0 if report is None else 1)
        self._cases[case.id] = stored
        self._open_cases[case.target_key] = case.id
        self._reports[case.id] = []
        if report is not None:
            self._reports[case.id].append(dataclasses.replace(report, case_id=case.id))
            self._report_ids.add(report.id)
        self._evidence[case.id] = frozen
        return stored, False

    async def get_case(self, case_id: str) -> Case | None:
        self._check_open()
        return self._cases.get(case_id)

    async def open_cases(self, limit: int) -> list[Case]:
        self._check_open()
        found = [self._cases[i] for i in self._open_cases.values()]
        found.sort(key=lambda c: (c.severity, c.created_at, c.id))
        return found[: max(limit, 0)]

    async def cases_of_subject(self, person_id: str, limit: int) -> list[Case]:
        self._check_open()
        found = [c for c in self._cases.values() if c.subject == person_id]
        found.sort(key=lambda c: (c.created_at, c.id), reverse=True)
        return found[: max(limit, 0)]

    async def reports_of(self, case_id: str) -> list[Report]:
        self._check_open()
        return sorted(self._reports.get(case_id, []), key=lambda r: (r.created_at, r.id))

    async def evidence_of(self, case_id: str) -> list[Evidence]:
        self._check_open()
        return list(self._evidence.get(case_id, []))

    async def close_case(self, case_id: str, outcome: Outcome, by: str, now: int) -> Case | None:
        self._check_open()
        case = self._cases.get(case_id)
        if case is None or case.status != CaseStatus.OPEN:
            return None
        closed = dataclasses.replace(
            case,
            status=CaseStatus.CLOSED,
            outcome=outcome,
            decided_by=by,
            decided_at=now,
            updated_at=now,
        )
        self._cases[case_id] = closed
        del self._open_cases[case.target_key]
        return closed

    async def reporter_networks_against(self, person_id: str, since: int) -> int:
        self._check_open()
        return len(
            {
                r.reporter_key
                for c in self._cases.values()
                if c.subject == person_id
                for r in self._reports.get(c.id, [])
                if r.created_at >= since
            }
        )

    # --- moderation: decisions --------------------------------------------------------------

    async def add_decision(self, decision: Decision) -> None:
        self._check_open()
        if decision.id in self._decisions:
            raise ValueError("duplicate decision id")
        if decision.case_id not in self._cases:
            raise ValueError("unknown case")
        self._decisions[decision.id] = decision

    async def get_decision(self, decision_id: str) -> Decision | None:
        self._check_open()
        return self._decisions.get(decision_id)

    async def decisions_of_case(self, case_id: str) -> list[Decision]:
        self._check_open()
        found = [d for d in self._decisions.values() if d.case_id == case_id]
        return sorted(found, key=lambda d: (d.created_at, d.id))

    def _newest(self, matches: list[Decision]) -> list[Decision]:
        return sorted(matches, key=lambda d: (d.created_at, d.id), reverse=True)

    async def decisions_of_subject(
        self, person_id: str | None, ip_key: str | None, limit: int
    ) -> list[Decision]:
        self._check_open()
        found = [
            d
            for d in self._decisions.values()
            if (person_id is not None and d.subject == person_id)
            or (bool(ip_key) and d.subject_key == ip_key)
        ]
        return self._newest(found)[: max(limit, 0)]

    async def active_ban(
        self, *, person_id: str | None, ip_key: str | None, decision_id: str | None, now: int
    ) -> Decision | None:
        self._check_open()
        found = [
            d
            for d in self._decisions.values()
            if d.action == Action.BAN
            and d.active(now)
            and (
                (person_id is not None and d.subject == person_id)
                or (bool(ip_key) and d.subject_key == ip_key)
                or (decision_id is not None and d.id == decision_id)
            )
        ]
        newest = self._newest(found)
        return newest[0] if newest else None

    async def active_mute(self, person_id: str, now: int) -> Decision | None:
        self._check_open()
        found = [
            d
            for d in self._decisions.values()
            if d.action == Action.MUTE and d.active(now) and d.subject == person_id
        ]
        newest = self._newest(found)
        return newest[0] if newest else None

    async def lift_decision(self, decision_id: str, now: int, reason: str) -> Decision | None:
        self._check_open()
        decision = self._decisions.get(decision_id)
        if decision is None or decision.lifted_at is not None:
            return None
        lifted = dataclasses.replace(decision, lifted_at=now, lifted_reason=reason)
        self._decisions[decision_id] = lifted
        return lifted

    # --- moderation: appeals ----------------------------------------------------------------

    async def add_appeal(self, appeal: Appeal) -> bool:
        self._check_open()
        if appeal.decision_id in self._appeal_of:
            return False
        if appeal.id in self._appeals:
            raise ValueError("duplicate appeal id")
        if appeal.decision_id not in self._decisions:
            raise ValueError("unknown decision")
        self._appeals[appeal.id] = appeal
        self._appeal_of[appeal.decision_id] = appeal.id
        return True

    async def get_appeal(self, appeal_id: str) -> Appeal | None:
        self._check_open()
        return self._appeals.get(appeal_id)

    async def appeal_of(self, decision_id: str) -> Appeal | None:
        self._check_open()
        appeal_id = self._appeal_of.get(decision_id)
        return None if appeal_id is None else self._appeals[appeal_id]

    async def pending_appeals(self, limit: int) -> list[Appeal]:
        self._check_open()
        found = [a for a in self._appeals.values() if a.status == AppealStatus.PENDING]
        found.sort(key=lambda a: (a.created_at, a.id))
        return found[: max(limit, 0)]

    async def decide_appeal(
        self, appeal_id: str, status: AppealStatus, by: str, now: int, answer: str
    ) -> Appeal | None:
        self._check_open()
        if status == AppealStatus.PENDING:
            raise ValueError("an appeal is settled as granted or rejected")
        appeal = self._appeals.get(appeal_id)
        if appeal is None or appeal.status != AppealStatus.PENDING:
            return None
        decided = dataclasses.replace(
            appeal, status=status, decided_by=by, decided_at=now, answer=answer
        )
        self._appeals[appeal_id] = decided
        return decided

    # --- moderation: moderator accounts -----------------------------------------------------

    def _login_taken(self, login: str, by_other_than: str) -> bool:
        return any(m.login == login and m.id != by_other_than for m in self._moderators.values())

    async def add_moderator(self, moderator: Moderator) -> None:
        self._check_open()
        if self._login_taken(moderator.login, ""):
            raise ModeratorExists()
        if moderator.id in self._moderators:
            raise ValueError("duplicate moderator id")
        self._moderators[moderator.id] = moderator

    async def get_moderator(self, moderator_id: str) -> Moderator | None:
        self._check_open()
        return self._moderators.get(moderator_id)

    async def moderator_by_login(self, login: str) -> Moderator | None:
        self._check_open()
        for moderator in self._moderators.values():
            if moderator.login == login:
                return moderator
        return None

    async def list_moderators(self) -> list[Moderator]:
        self._check_open()
        return sorted(self._moderators.values(), key=lambda m: (m.login, m.id))

    async def update_moderator(self, moderator: Moderator) -> None:
        self._check_open()
        if moderator.id not in self._moderators:
            return
        if self._login_taken(moderator.login, moderator.id):
            raise ModeratorExists()
        self._moderators[moderator.id] = moderator

    async def create_mod_session(self, session: ModSession) -> None:
        self._check_open()
        if session.token_hash in self._mod_sessions:
            raise ValueError("duplicate token hash")
        if session.moderator_id not in self._moderators:
            raise ValueError("unknown moderator")
        self._mod_sessions[session.token_hash] = session

    async def mod_session(self, token_hash: bytes, now: int) -> ModSession | None:
        self._check_open()
        session = self._mod_sessions.get(token_hash)
        return session if session is not None and session.expires_at > now else None

    async def delete_mod_session(self, token_hash: bytes) -> None:
        self._check_open()
        self._mod_sessions.pop(token_hash, None)

    async def delete_mod_sessions_of(self, moderator_id: str) -> None:
        self._check_open()
        for token_hash in [
            t for t, s in self._mod_sessions.items() if s.moderator_id == moderator_id
        ]:
            del self._mod_sessions[token_hash]

    # --- moderation: audit log --------------------------------------------------------------

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
        self._check_open()
        entry = AuditEntry(
            id=len(self._audit) + 1,
            ts=ts,
            actor=actor,
            action=action,
            case_id=case_id,
            target=target,
            reason=reason,
            details=as_json_data(details),
        )
        self._audit.append(entry)
        return entry

    async def audit_log(self, limit: int, before_id: int | None = None) -> list[AuditEntry]:
        self._check_open()
        end = (
            len(self._audit) if before_id is None else max(0, min(before_id - 1, len(self._audit)))
        )
        start = max(0, end - max(limit, 0))
        return self._audit[start:end][::-1]

    # --- moderation: rooms ------------------------------------------------------------------

    async def set_room_state(self, slug: str, state: RoomState, reason: str, now: int) -> None:
        self._check_open()
        if state == RoomState.OPEN:
            self._room_states.pop(slug, None)
        else:
            self._room_states[slug] = (state, reason, now)

    async def room_states(self) -> dict[str, tuple[RoomState, str]]:
        self._check_open()
        return {slug: (state, reason) for slug, (state, reason, _) in self._room_states.items()}
