"""``SqlStore``: the ``Store`` port over SQLAlchemy Core (async), for SQLite and PostgreSQL.

Every statement is built with SQLAlchemy Core and parameterised. Each method is one
transaction (or one auto-committed statement), so each is atomic on its own as the port asks.
Connection strategy and transaction modes: see ``causette.store.sql.engine``.

Failures of the database service (unreachable, locked too long, connection lost) surface as
``causette.errors.StoreUnavailable`` (the caller may ask the person to retry); anything else —
a bug, a constraint the caller broke — propagates unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, TypeAlias, cast

from sqlalchemy import (
    Row,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from causette.core.models import (
    ConversationState,
    Gender,
    Message,
    MessageKind,
    NewItem,
    PmPolicy,
    Profile,
    Session,
    StreamHead,
)
from causette.errors import PseudonymTaken, StoreUnavailable, StreamUnknown
from causette.ids import RandomIds
from causette.store.memory import EpochSource
from causette.store.sql.engine import BEGIN_OPTION, BeginMode, is_unavailable
from causette.store.sql.tables import (
    LIVE_PSEUDONYM_WHERE,
    blocks,
    conversations,
    memberships,
    messages,
    sessions,
    streams,
)

#: Ids per ``IN (…)`` list: well below SQLite's and asyncpg's bound-parameter limits.
CHUNK: Final = 500
#: Rows deleted per statement by the purges, so that appends interleave with a long purge.
PURGE_BATCH: Final = 500

AnyRow: TypeAlias = Row[*tuple[Any, ...]]

_MESSAGE_COLUMNS: Final = (
    messages.c.stream,
    messages.c.seq,
    messages.c.id,
    messages.c.kind,
    messages.c.author,
    messages.c.name,
    messages.c.text,
    messages.c.ts,
)


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), CHUNK):
        yield unique[start : start + CHUNK]


def _message(row: AnyRow) -> Message:
    return Message(
        stream=row.stream,
        seq=row.seq,
        id=row.id,
        kind=cast(MessageKind, row.kind),
        author=row.author,
        name=row.name,
        text=row.text,
        ts=row.ts,
    )


def _session(row: AnyRow) -> Session:
    return Session(
        id=row.id,
        token_hash=bytes(row.token_hash),
        profile=Profile(
            id=row.id,
            name=row.name,
            gender=Gender(row.gender),
            age=row.age,
            commune=row.commune,
            dep=row.dep,
            region=row.region,
        ),
        pseudonym_key=row.pseudonym_key,
        postal_code=row.postal_code,
        commune_code=row.commune_code,
        lang=row.lang,
        pm_policy=PmPolicy(row.pm_policy),
        created_at=row.created_at,
        last_seen=row.last_seen,
        ended_at=row.ended_at,
    )


def _session_values(session: Session) -> dict[str, Any]:
    profile = session.profile
    return {
        "id": session.id,
        "token_hash": session.token_hash,
        "pseudonym_key": session.pseudonym_key,
        "name": profile.name,
        "gender": profile.gender.value,
        "age": profile.age,
        "commune": profile.commune,
        "dep": profile.dep,
        "region": profile.region,
        "postal_code": session.postal_code,
        "commune_code": session.commune_code,
        "lang": session.lang,
        "pm_policy": session.pm_policy.value,
        "created_at": session.created_at,
        "last_seen": session.last_seen,
        "ended_at": session.ended_at,
    }


class SqlStore:
    """``Store`` over an ``AsyncEngine`` made by ``causette.store.sql.engine.create_engine``.

    The store owns the engine: ``close()`` disposes of it.
    """

    def __init__(self, engine: AsyncEngine, ids: EpochSource | None = None) -> None:
        self._engine = engine
        self._ids: EpochSource = ids if ids is not None else RandomIds()
        self._dialect = engine.dialect.name
        self._closed = False
        # Engine views sharing the pool, differing only in how a transaction begins (SQLite).
        self._views: dict[BeginMode, AsyncEngine] = {
            mode: engine.execution_options(**{BEGIN_OPTION: mode})
            for mode in ("IMMEDIATE", "DEFERRED", "NONE")
        }
        # The hot path's statements, built once.
        self._bump_seq = (
            update(streams)
            .where(streams.c.id == bindparam("stream_id"))
            .values(last_seq=streams.c.last_seq + 1)
            .returning(streams.c.last_seq)
        )
        self._insert_message = self._insert(messages).on_conflict_do_nothing(
            index_elements=[messages.c.author, messages.c.local_id]
        )

    @property
    def engine(self) -> AsyncEngine:
        """The engine (for operators' tools and tests; the store owns it)."""
        return self._engine

    def _insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """``INSERT`` with ``ON CONFLICT`` support for this engine's dialect."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        if self._dialect == "sqlite":
            return sqlite.insert(table)
        raise NotImplementedError(f"no ON CONFLICT support for {self._dialect}")

    # --- connections ------------------------------------------------------------------------

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        if self._closed:
            raise StoreUnavailable()
        try:
            yield
        except Exception as error:
            if is_unavailable(error):
                raise StoreUnavailable() from error
            raise

    @asynccontextmanager
    async def _read(self, mode: BeginMode = "NONE") -> AsyncIterator[AsyncConnection]:
        """A connection for reading (nothing is committed). ``NONE``: a single statement."""
        async with self._guard(), self._views[mode].connect() as conn:
            yield conn

    @asynccontextmanager
    async def _write(self, mode: BeginMode = "IMMEDIATE") -> AsyncIterator[AsyncConnection]:
        """A transaction, committed when the block ends without error. ``NONE`` for a single
        statement (atomic by itself on SQLite; still a transaction on PostgreSQL)."""
        async with self._guard(), self._views[mode].begin() as conn:
            yield conn

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._engine.dispose()

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.execute(select(1))

    # --- sessions ---------------------------------------------------------------------------

    async def create_session(self, session: Session) -> None:
        statement = (
            self._insert(sessions)
            .values(_session_values(session))
            .on_conflict_do_nothing(
                index_elements=[sessions.c.pseudonym_key], index_where=LIVE_PSEUDONYM_WHERE
            )
        )
        async with self._write("NONE") as conn:
            result = await conn.execute(statement)
        if result.rowcount == 0:
            raise PseudonymTaken()

    async def pseudonym_in_use(self, pseudonym_key: str) -> bool:
        statement = select(sessions.c.id).where(
            sessions.c.pseudonym_key == pseudonym_key, sessions.c.ended_at.is_(None)
        )
        async with self._read() as conn:
            return (await conn.execute(statement.limit(1))).first() is not None

    async def get_session(self, person_id: str) -> Session | None:
        async with self._read() as conn:
            result = await conn.execute(select(sessions).where(sessions.c.id == person_id))
            row = result.first()
        return None if row is None else _session(row)

    async def session_by_token(self, token_hash: bytes) -> Session | None:
        statement = select(sessions).where(
            sessions.c.token_hash == token_hash, sessions.c.ended_at.is_(None)
        )
        async with self._read() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _session(row)

    async def get_sessions(self, person_ids: Sequence[str]) -> list[Session]:
        chunks = list(_chunks(person_ids))
        out: list[Session] = []
        async with self._read("NONE" if len(chunks) <= 1 else "DEFERRED") as conn:
            for chunk in chunks:
                result = await conn.execute(select(sessions).where(sessions.c.id.in_(chunk)))
                out.extend(_session(row) for row in result)
        return out

    async def touch_sessions(self, person_ids: Sequence[str], now: int) -> None:
        chunks = list(_chunks(person_ids))
        if not chunks:
            return
        async with self._write("NONE" if len(chunks) == 1 else "IMMEDIATE") as conn:
            for chunk in chunks:
                await conn.execute(
                    update(sessions)
                    .where(sessions.c.id.in_(chunk), sessions.c.ended_at.is_(None))
                    .values(last_seen=now)
                )

    async def end_session(self, person_id: str, now: int) -> bool:
        statement = (
            update(sessions)
            .where(sessions.c.id == person_id, sessions.c.ended_at.is_(None))
            .values(ended_at=now)
        )
        async with self._write("NONE") as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def idle_sessions(self, seen_before: int, limit: int) -> list[str]:
        if limit <= 0:
            return []
        statement = (
            select(sessions.c.id)
            .where(sessions.c.ended_at.is_(None), sessions.c.last_seen < seen_before)
            .order_by(sessions.c.last_seen, sessions.c.id)
            .limit(limit)
        )
        async with self._read() as conn:
            return list((await conn.execute(statement)).scalars())

    async def set_prefs(self, person_id: str, pm_policy: PmPolicy, lang: str) -> None:
        statement = (
            update(sessions)
            .where(sessions.c.id == person_id)
            .values(pm_policy=pm_policy.value, lang=lang)
        )
        async with self._write("NONE") as conn:
            await conn.execute(statement)

    # --- streams and messages ---------------------------------------------------------------

    async def ensure_stream(self, stream: str, now: int) -> StreamHead:
        head = await self.stream_head(stream)
        if head is not None:
            return head
        async with self._write() as conn:
            await conn.execute(self._new_stream(stream, now))
            row = (
                await conn.execute(
                    select(streams.c.epoch, streams.c.last_seq).where(streams.c.id == stream)
                )
            ).one()
        return StreamHead(stream, row.epoch, row.last_seq)

    def _new_stream(self, stream: str, now: int) -> Any:
        return (
            self._insert(streams)
            .values(id=stream, epoch=self._ids.epoch(), last_seq=0, created_at=now)
            .on_conflict_do_nothing(index_elements=[streams.c.id])
        )

    async def stream_head(self, stream: str) -> StreamHead | None:
        statement = select(streams.c.epoch, streams.c.last_seq).where(streams.c.id == stream)
        async with self._read() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else StreamHead(stream, row.epoch, row.last_seq)

    async def append(self, item: NewItem) -> tuple[Message, bool]:
        values = {
            "stream": item.stream,
            "id": item.id,
            "kind": item.kind,
            "author": item.author,
            "name": item.name,
            "text": item.text,
            "local_id": item.local_id,
            "ts": item.ts,
            "expires_at": item.expires_at,
        }
        # A duplicate found, then purged before we could read it, is appended afresh; a few
        # rounds bound the (practically impossible) repetition.
        for _ in range(3):
            async with self._write() as conn:
                bumped = (await conn.execute(self._bump_seq, {"stream_id": item.stream})).first()
                if bumped is None:
                    raise StreamUnknown()
                seq: int = bumped[0]
                inserted = await conn.execute(self._insert_message, {**values, "seq": seq})
                if inserted.rowcount == 1:
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
                    return message, False
                # (author, local_id) already stored: undo the seq increment.
                await conn.rollback()
            existing = await self._by_local_id(item.author, cast(str, item.local_id))
            if existing is not None:
                return existing, True
        raise StoreUnavailable()

    async def _by_local_id(self, author: str, local_id: str) -> Message | None:
        statement = select(*_MESSAGE_COLUMNS).where(
            messages.c.author == author, messages.c.local_id == local_id
        )
        async with self._read() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _message(row)

    async def read(
        self, stream: str, after_seq: int, limit: int, now: int | None = None
    ) -> list[Message]:
        """Items with ``seq > after_seq``, ascending, at most ``limit``. Purged items are gone;
        with ``now``, items already expired (``expires_at <= now``) are left out too."""
        if limit <= 0:
            return []
        statement = (
            select(*_MESSAGE_COLUMNS)
            .where(messages.c.stream == stream, messages.c.seq > after_seq)
            .order_by(messages.c.seq)
            .limit(limit)
        )
        if now is not None:
            statement = statement.where(messages.c.expires_at > now)
        async with self._read() as conn:
            return [_message(row) for row in await conn.execute(statement)]

    async def latest(self, stream: str, limit: int, now: int) -> list[Message]:
        if limit <= 0:
            return []
        statement = (
            select(*_MESSAGE_COLUMNS)
            .where(messages.c.stream == stream, messages.c.expires_at > now)
            .order_by(messages.c.seq.desc())
            .limit(limit)
        )
        async with self._read() as conn:
            newest_first = [_message(row) for row in await conn.execute(statement)]
        newest_first.reverse()
        return newest_first

    async def first_seq(self, stream: str) -> int | None:
        statement = select(func.min(messages.c.seq)).where(messages.c.stream == stream)
        async with self._read() as conn:
            value = (await conn.execute(statement)).scalar()
        return None if value is None else int(value)

    async def purge_expired(self, now: int, limit: int) -> int:
        total = 0
        while total < limit:
            batch = min(PURGE_BATCH, limit - total)
            doomed = (
                select(messages.c.id)
                .where(messages.c.expires_at <= now)
                .order_by(messages.c.expires_at)
                .limit(batch)
            )
            async with self._write("NONE") as conn:
                result = await conn.execute(delete(messages).where(messages.c.id.in_(doomed)))
            total += result.rowcount
            if result.rowcount < batch:
                break
        return total

    async def purge_ended_sessions(self, ended_before: int, limit: int) -> int:
        total = 0
        while total < limit:
            batch = min(PURGE_BATCH, limit - total)
            async with self._write() as conn:
                ids = list(
                    (
                        await conn.execute(
                            select(sessions.c.id)
                            .where(
                                sessions.c.ended_at.is_not(None),
                                sessions.c.ended_at < ended_before,
                            )
                            .order_by(sessions.c.ended_at, sessions.c.id)
                            .limit(batch)
                        )
                    ).scalars()
                )
                if ids:
                    await conn.execute(delete(memberships).where(memberships.c.person_id.in_(ids)))
                    await conn.execute(
                        delete(conversations).where(conversations.c.person_id.in_(ids))
                    )
                    await conn.execute(
                        delete(blocks).where(
                            or_(blocks.c.blocker.in_(ids), blocks.c.blocked.in_(ids))
                        )
                    )
                    await conn.execute(delete(sessions).where(sessions.c.id.in_(ids)))
            total += len(ids)
            if len(ids) < batch:
                break
        return total

    # --- rooms ------------------------------------------------------------------------------

    async def add_member(self, room: str, person_id: str, now: int) -> bool:
        next_order = (
            select(func.coalesce(func.max(memberships.c.join_order), 0) + 1)
            .where(memberships.c.person_id == person_id)
            .scalar_subquery()
        )
        statement = (
            self._insert(memberships)
            .values(room=room, person_id=person_id, joined_at=now, join_order=next_order)
            .on_conflict_do_nothing(index_elements=[memberships.c.room, memberships.c.person_id])
        )
        async with self._write("NONE") as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def remove_member(self, room: str, person_id: str) -> bool:
        statement = delete(memberships).where(
            memberships.c.room == room, memberships.c.person_id == person_id
        )
        async with self._write("NONE") as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def rooms_of(self, person_id: str) -> list[str]:
        statement = (
            select(memberships.c.room)
            .where(memberships.c.person_id == person_id)
            .order_by(memberships.c.join_order, memberships.c.joined_at, memberships.c.room)
        )
        async with self._read() as conn:
            return list((await conn.execute(statement)).scalars())

    async def members_of(self, room: str) -> list[str]:
        statement = (
            select(memberships.c.person_id)
            .where(memberships.c.room == room)
            .order_by(memberships.c.joined_at, memberships.c.person_id)
        )
        async with self._read() as conn:
            return list((await conn.execute(statement)).scalars())

    # --- private conversations --------------------------------------------------------------

    async def open_conversation(self, stream: str, opened_by: str, other: str, now: int) -> bool:
        created = 0
        async with self._write() as conn:
            await conn.execute(self._new_stream(stream, now))
            for person_id, counterpart in ((opened_by, other), (other, opened_by)):
                result = await conn.execute(
                    self._insert(conversations)
                    .values(
                        person_id=person_id,
                        stream=stream,
                        other=counterpart,
                        opened_by=opened_by,
                        read_seq=0,
                        opened_at=now,
                    )
                    .on_conflict_do_nothing(
                        index_elements=[conversations.c.person_id, conversations.c.stream]
                    )
                )
                created += result.rowcount
        return created > 0

    def _conversation_states(self, *where: Any) -> Any:
        newest_ts = (
            select(messages.c.ts)
            .where(messages.c.stream == conversations.c.stream)
            .order_by(messages.c.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        inner = (
            select(
                conversations.c.stream,
                conversations.c.other,
                conversations.c.opened_by,
                conversations.c.read_seq,
                conversations.c.opened_at,
                streams.c.last_seq,
                func.coalesce(newest_ts, 0).label("last_ts"),
            )
            .join_from(conversations, streams, streams.c.id == conversations.c.stream)
            .where(*where)
            .subquery()
        )
        activity = case(
            (inner.c.last_ts > inner.c.opened_at, inner.c.last_ts), else_=inner.c.opened_at
        )
        return select(inner).order_by(activity.desc(), inner.c.stream)

    @staticmethod
    def _conversation(row: AnyRow) -> ConversationState:
        return ConversationState(
            stream=row.stream,
            other=row.other,
            opened_by=row.opened_by,
            last_seq=row.last_seq,
            read_seq=row.read_seq,
            last_ts=row.last_ts,
        )

    async def conversations_of(self, person_id: str) -> list[ConversationState]:
        statement = self._conversation_states(conversations.c.person_id == person_id)
        async with self._read() as conn:
            return [self._conversation(row) for row in await conn.execute(statement)]

    async def get_conversation(self, person_id: str, stream: str) -> ConversationState | None:
        statement = self._conversation_states(
            conversations.c.person_id == person_id, conversations.c.stream == stream
        )
        async with self._read() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else self._conversation(row)

    async def mark_read(self, person_id: str, stream: str, seq: int) -> None:
        statement = (
            update(conversations)
            .where(
                conversations.c.person_id == person_id,
                conversations.c.stream == stream,
                conversations.c.read_seq < seq,
            )
            .values(read_seq=seq)
        )
        async with self._write("NONE") as conn:
            await conn.execute(statement)

    # --- blocks -----------------------------------------------------------------------------

    async def block(self, blocker: str, blocked: str, now: int) -> bool:
        statement = (
            self._insert(blocks)
            .values(blocker=blocker, blocked=blocked, created_at=now)
            .on_conflict_do_nothing(index_elements=[blocks.c.blocker, blocks.c.blocked])
        )
        async with self._write("NONE") as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def unblock(self, blocker: str, blocked: str) -> bool:
        statement = delete(blocks).where(blocks.c.blocker == blocker, blocks.c.blocked == blocked)
        async with self._write("NONE") as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def blocked_by(self, person_id: str) -> list[str]:
        statement = (
            select(blocks.c.blocked)
            .where(blocks.c.blocker == person_id)
            .order_by(blocks.c.created_at, blocks.c.blocked)
        )
        async with self._read() as conn:
            return list((await conn.execute(statement)).scalars())

    async def blockers_of(self, person_id: str) -> list[str]:
        statement = (
            select(blocks.c.blocker)
            .where(blocks.c.blocked == person_id)
            .order_by(blocks.c.created_at, blocks.c.blocker)
        )
        async with self._read() as conn:
            return list((await conn.execute(statement)).scalars())

    async def is_blocked_either_way(self, a: str, b: str) -> bool:
        statement = (
            select(true())
            .select_from(blocks)
            .where(
                or_(
                    and_(blocks.c.blocker == a, blocks.c.blocked == b),
                    and_(blocks.c.blocker == b, blocks.c.blocked == a),
                )
            )
            .limit(1)
        )
        async with self._read() as conn:
            return (await conn.execute(statement)).first() is not None
