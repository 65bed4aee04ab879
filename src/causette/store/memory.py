"""The in-memory store: plain dicts and lists, the same observable behaviour as ``SqlStore``.

For fast core tests and throw-away instances (``memory://``). No method awaits anything, so each
is atomic with respect to the others on one event loop, as the port requires.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from causette.core.models import (
    ConversationState,
    Message,
    NewItem,
    PmPolicy,
    Session,
    StreamHead,
)
from causette.errors import PseudonymTaken, StoreUnavailable, StreamUnknown
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
    """``Store`` over process memory. Nothing survives ``close()``."""

    def __init__(self, ids: EpochSource | None = None) -> None:
        self._ids: EpochSource = ids if ids is not None else RandomIds()
        self._closed = False
        self._sessions: dict[str, Session] = {}
        self._streams: dict[str, _Stream] = {}
        # (author, local_id) -> (stream, seq) for idempotent appends.
        self._local_ids: dict[tuple[str, str], tuple[str, int]] = {}
        self._message_ids: set[str] = set()
        self._members: dict[str, dict[str, _Membership]] = {}  # room -> person -> membership
        self._rooms: dict[str, dict[str, _Membership]] = {}  # person -> room -> membership
        self._conversations: dict[str, dict[str, _Conversation]] = {}  # person -> stream -> …
        self._blocks: dict[tuple[str, str], int] = {}  # (blocker, blocked) -> created_at

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
        self._check_open()
        state = self._streams.get(item.stream)
        if state is None:
            raise StreamUnknown()
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
        self._message_ids.add(item.id)
        if item.local_id is not None:
            self._local_ids[(item.author, item.local_id)] = (item.stream, seq)
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
                self._message_ids.discard(item.message.id)
                if item.local_id is not None:
                    self._local_ids.pop((item.message.author, item.local_id), None)
            state.items = kept
        return len(expired)

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

    async def open_conversation(self, stream: str, opened_by: str, other: str, now: int) -> bool:
        self._check_open()
        self._ensure(stream, now)
        created = False
        for person_id, counterpart in ((opened_by, other), (other, opened_by)):
            mine = self._conversations.setdefault(person_id, {})
            if stream not in mine:
                mine[stream] = _Conversation(counterpart, opened_by, 0, now)
                created = True
        return created

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
