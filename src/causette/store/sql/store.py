"""``SqlStore``: the ``Store`` and ``ModerationStore`` ports over SQLAlchemy Core, for SQLite and
PostgreSQL.

Every statement is built with SQLAlchemy Core and parameterised. Each method is one
transaction (or one auto-committed statement), so each is atomic on its own as the port asks.
Connection strategy and transaction modes: see ``causette.store.sql.engine``.

Failures of the database service (unreachable, locked too long, connection lost) surface as
``causette.errors.StoreUnavailable`` (the caller may ask the person to retry); anything else —
a bug, a constraint the caller broke — propagates unchanged.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeAlias, TypeVar, cast

import msgspec
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Row,
    Table,
    and_,
    bindparam,
    case,
    delete,
    distinct,
    exc,
    func,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.expression import Executable

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
    Role,
    RoomState,
    TargetKind,
)
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
from causette.core.ports import AppendDone, AppendResult
from causette.errors import (
    ModeratorExists,
    PersonUnknown,
    PseudonymTaken,
    StoreUnavailable,
    StreamUnknown,
)
from causette.ids import RandomIds
from causette.store.memory import EpochSource, check_case_to_file, joined_case
from causette.store.sql.engine import (
    BEGIN_OPTION,
    SQLITE_BUSY_OPTION,
    SQLITE_BUSY_TIMEOUT_MS,
    BeginMode,
    is_unavailable,
)
from causette.store.sql.tables import (
    LIVE_PSEUDONYM_WHERE,
    OPEN_CASE_WHERE,
    appeals,
    audit_log,
    blocks,
    cases,
    conversations,
    decisions,
    memberships,
    messages,
    mod_sessions,
    moderators,
    reports,
    room_states,
    sessions,
    streams,
)
from causette.store.sql.tables import evidence as evidence_table
from causette.store.sql.worker import SqliteWorker

#: Ids per ``IN (…)`` list: well below SQLite's and asyncpg's bound-parameter limits.
CHUNK: Final = 500
#: Rows deleted per statement by the purges, so that appends interleave with a long purge.
PURGE_BATCH: Final = 500

AnyRow: TypeAlias = Row[*tuple[Any, ...]]
Params: TypeAlias = Mapping[str, Any] | None
Statement: TypeAlias = "Executable | _Prepared"
T = TypeVar("T")

log = logging.getLogger(__name__)

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


#: The most appends committed in one transaction.
APPEND_GROUP: Final = 256


class _GroupConflict(Exception):
    """A local_id of the group was stored by someone else between the check and the insert."""


_LIVE = select(sessions.c.id).where(
    sessions.c.id == bindparam("p_id"), sessions.c.ended_at.is_(None)
)


def _live(conn: Connection, person_id: str) -> bool:
    return conn.execute(_LIVE, {"p_id": person_id}).first() is not None


def _read_mark(person_id: str, stream: str, seq: int) -> dict[str, Any]:
    return {"p_person": person_id, "p_stream": stream, "p_seq": seq}


def _item_values(item: NewItem) -> dict[str, Any]:
    return {
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


_SQLITE_KNOWN = (
    "SELECT stream, seq, id, kind, author, name, text, ts FROM messages"
    " WHERE author = ? AND local_id = ?"
)
_SQLITE_BUMP = "UPDATE streams SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq"
_SQLITE_INSERT = (
    "INSERT INTO messages (stream, seq, id, kind, author, name, text, local_id, ts, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_LIVE = "SELECT 1 FROM sessions WHERE id = ? AND ended_at IS NULL"
_SQLITE_MARK_READ = (
    "UPDATE conversations SET read_seq = ? WHERE person_id = ? AND stream = ? AND read_seq < ?"
)


_Result = AppendResult


class _Group:
    """The plan of a group commit, the same on every engine: which items are retries of a stored
    send (``stored`` finds those), which repeat another item of the group, and, per stream, the
    new items that will take consecutive seqs in call order."""

    def __init__(
        self,
        items: list[NewItem],
        stored: Callable[[tuple[str, str]], Message | None],
        live: Callable[[str], bool],
    ) -> None:
        self.items = items
        self.results: list[_Result | None] = [None] * len(items)
        self.same_as: dict[int, int] = {}  # the same send twice in one group: the first counts
        self.by_stream: dict[str, list[int]] = {}
        self.read_marks: list[tuple[str, str, int]] = []  # (author, stream, seq): read_by_author
        claimed: dict[tuple[str, str], int] = {}
        for i, item in enumerate(items):
            if item.recipient is not None and not live(item.recipient):
                self.results[i] = PersonUnknown()
                continue
            if item.local_id is not None:
                key = (item.author, item.local_id)
                if key in claimed:
                    self.same_as[i] = claimed[key]
                    continue
                known = stored(key)
                if known is not None:
                    self.results[i] = (known, True)
                    continue
                claimed[key] = i
            self.by_stream.setdefault(item.stream, []).append(i)

    def numbered(self, stream: str, last_seq: int | None) -> list[tuple[NewItem, int]]:
        """The stream's new items with their seqs, given the stream's last seq after taking a
        block for them (None: no such stream)."""
        indexes = self.by_stream[stream]
        if last_seq is None:
            for i in indexes:
                self.results[i] = StreamUnknown()
            return []
        first = last_seq - len(indexes) + 1
        out = []
        for seq, i in enumerate(indexes, start=first):
            it = self.items[i]
            message = Message(it.stream, seq, it.id, it.kind, it.author, it.name, it.text, it.ts)
            self.results[i] = (message, False)
            out.append((it, seq))
            if it.read_by_author:
                self.read_marks.append((it.author, it.stream, seq))
        return out

    def outcome(self) -> list[_Result]:
        out: list[_Result] = []
        for i, result in enumerate(self.results):
            if i in self.same_as:
                first = self.results[self.same_as[i]]
                assert first is not None
                # the same send twice: a retry of the first, or refused as it was
                out.append((first[0], True) if isinstance(first, tuple) else first)
            else:
                assert result is not None
                out.append(result)
        return out


def _sqlite_append_group(db: sqlite3.Connection, items: list[NewItem]) -> list[_Result]:
    """``SqlStore.append`` for a group, on SQLite, run on the connection's thread. The write lock
    is taken first (``BEGIN IMMEDIATE``), so the local_ids found free stay free until commit."""
    db.execute("BEGIN IMMEDIATE")
    try:
        group = _Group(
            items,
            lambda key: _stored_message(db.execute(_SQLITE_KNOWN, key).fetchone()),
            lambda person: db.execute(_SQLITE_LIVE, (person,)).fetchone() is not None,
        )
        rows: list[tuple[Any, ...]] = []
        for stream, indexes in group.by_stream.items():
            bumped = db.execute(_SQLITE_BUMP, (len(indexes), stream)).fetchone()
            for it, seq in group.numbered(stream, None if bumped is None else bumped[0]):
                rows.append(
                    (
                        it.stream,
                        seq,
                        it.id,
                        it.kind,
                        it.author,
                        it.name,
                        it.text,
                        it.local_id,
                        it.ts,
                        it.expires_at,
                    )
                )
        db.executemany(_SQLITE_INSERT, rows)
        if group.read_marks:
            db.executemany(
                _SQLITE_MARK_READ,
                [(seq, who, stream, seq) for who, stream, seq in group.read_marks],
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return group.outcome()


def _stored_message(row: tuple[Any, ...] | None) -> Message | None:
    return None if row is None else Message(*row)


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
        ip_key=row.ip_key,
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
        "ip_key": session.ip_key,
    }


def _json(data: dict[str, Any]) -> str:
    return msgspec.json.encode(data).decode()


def _from_json(text: str) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(text, type=dict[str, Any])
    return decoded


def _case(row: AnyRow) -> Case:
    return Case(
        id=row.id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        status=CaseStatus(row.status),
        category=row.category,
        severity=row.severity,
        target_kind=TargetKind(row.target_kind),
        target_key=row.target_key,
        subject=row.subject,
        subject_name=row.subject_name,
        room=row.room,
        stream=row.stream,
        message_id=row.message_id,
        reporters=row.reporters,
        automated=bool(row.automated),
        outcome=None if row.outcome is None else Outcome(row.outcome),
        decided_by=row.decided_by,
        decided_at=row.decided_at,
    )


def _case_values(case: Case) -> dict[str, Any]:
    values = {field.name: getattr(case, field.name) for field in dataclasses.fields(case)}
    values["status"] = case.status.value
    values["target_kind"] = case.target_kind.value
    values["outcome"] = None if case.outcome is None else case.outcome.value
    return values


def _report(row: AnyRow) -> Report:
    return Report(
        id=row.id,
        case_id=row.case_id,
        reporter=row.reporter,
        reporter_key=row.reporter_key,
        category=row.category,
        explanation=row.explanation,
        good_faith=bool(row.good_faith),
        created_at=row.created_at,
    )


def _report_values(report: Report, case_id: str) -> dict[str, Any]:
    values = {field.name: getattr(report, field.name) for field in dataclasses.fields(report)}
    values["case_id"] = case_id
    return values


def _evidence(row: AnyRow) -> Evidence:
    return Evidence(
        case_id=row.case_id,
        n=row.n,
        kind=row.kind,
        captured_at=row.captured_at,
        data=_from_json(row.data),
    )


def _decision(row: AnyRow) -> Decision:
    return Decision(
        id=row.id,
        case_id=row.case_id,
        action=Action(row.action),
        subject=row.subject,
        subject_key=row.subject_key,
        room=row.room,
        stream=row.stream,
        message_id=row.message_id,
        facts=row.facts,
        category=row.category,
        automated=bool(row.automated),
        moderator=row.moderator,
        created_at=row.created_at,
        expires_at=row.expires_at,
        lifted_at=row.lifted_at,
        lifted_reason=row.lifted_reason,
    )


def _appeal(row: AnyRow) -> Appeal:
    return Appeal(
        id=row.id,
        decision_id=row.decision_id,
        text=row.text,
        created_at=row.created_at,
        status=AppealStatus(row.status),
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        answer=row.answer,
    )


def _moderator(row: AnyRow) -> Moderator:
    return Moderator(
        id=row.id,
        login=row.login,
        password_hash=row.password_hash,
        totp_secret=row.totp_secret,
        role=Role(row.role),
        created_at=row.created_at,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
        disabled=bool(row.disabled),
    )


def _moderator_values(moderator: Moderator) -> dict[str, Any]:
    values = {field.name: getattr(moderator, field.name) for field in dataclasses.fields(moderator)}
    values["role"] = moderator.role.value
    return values


def _mod_session(row: AnyRow) -> ModSession:
    return ModSession(
        token_hash=bytes(row.token_hash),
        moderator_id=row.moderator_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _audit_entry(row: AnyRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        case_id=row.case_id,
        target=row.target,
        reason=row.reason,
        details=_from_json(row.details),
    )


def _active(now: int | BindParameter[int]) -> ColumnElement[bool]:
    """Decisions in force at ``now``: not lifted, not expired."""
    return and_(
        decisions.c.lifted_at.is_(None),
        or_(decisions.c.expires_at.is_(None), decisions.c.expires_at > now),
    )


_NEWEST_DECISIONS_FIRST: Final = (decisions.c.created_at.desc(), decisions.c.id.desc())


_Pending = tuple[NewItem, AppendDone]


def _failure(error: BaseException) -> BaseException:
    """A failed append as the port says it: a database that cannot serve is ``StoreUnavailable``."""
    if not is_unavailable(error):
        return error
    failure = StoreUnavailable()
    failure.__cause__ = error
    return failure


def _hand_out(group: list[_Pending], results: list[_Result]) -> None:
    for (_, done), result in zip(group, results, strict=True):
        try:
            done(result)
        except Exception:  # one failing caller must not leave the others unanswered
            log.exception("append_callback_failed")


def _resolve(future: asyncio.Future[tuple[Message, bool]], result: AppendResult) -> None:
    if future.done():  # the caller went away; what was stored stays stored
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class _Prepared:
    """A statement of a busy path, built once with bound parameters (building a statement costs
    more than running it). On SQLite it is compiled once too and run straight on the driver:
    SQLAlchemy's execution machinery costs several times what SQLite takes to answer (measured:
    about 130 µs against 15 µs for a look-up by key). Elsewhere SQLAlchemy runs it as usual.
    Only for statements without expanding (``IN``) parameters and with plain column types.
    """

    __slots__ = ("_compiled", "_names", "_row", "sql", "statement")

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        self.statement = statement
        self.sql: str | None = None
        self._row: Callable[[Any], Any] | None = None  # makes a named row of a tuple
        if dialect.name == "sqlite":
            self._compiled = statement.compile(dialect=dialect)
            assert not any(b.expanding for b in self._compiled.binds.values())
            self.sql = str(self._compiled)
            self._names: tuple[str, ...] = tuple(self._compiled.positiontup or ())

    def _cursor(self, conn: Connection, params: Params) -> sqlite3.Cursor:
        values = self._compiled.construct_params(params, _check=False)
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        return driver.execute(cast(str, self.sql), [values[name] for name in self._names])

    def _named(self, cursor: sqlite3.Cursor) -> Callable[[Any], Any]:
        if self._row is None:
            names = [d[0] for d in cursor.description]
            row_type: Any = collections.namedtuple("Row", names, rename=True)  # type: ignore[misc]
            self._row = row_type._make
        return self._row

    def first(self, conn: Connection, params: Params) -> Any:
        if self.sql is None:
            return conn.execute(self.statement, params).first()
        cursor = self._cursor(conn, params)
        row = cursor.fetchone()
        cursor.close()
        return None if row is None else self._named(cursor)(row)

    def all(self, conn: Connection, params: Params) -> list[Any]:
        if self.sql is None:
            return list(conn.execute(self.statement, params).all())
        cursor = self._cursor(conn, params)
        make = self._named(cursor)
        return [make(row) for row in cursor.fetchall()]

    def scalars(self, conn: Connection, params: Params) -> list[Any]:
        if self.sql is None:
            return list(conn.execute(self.statement, params).scalars())
        return [row[0] for row in self._cursor(conn, params).fetchall()]

    def rowcount(self, conn: Connection, params: Params) -> int:
        if self.sql is None:
            return int(conn.execute(self.statement, params).rowcount)
        return self._cursor(conn, params).rowcount


class SqlStore:
    """``Store`` and ``ModerationStore`` over an ``AsyncEngine`` made by
    ``causette.store.sql.engine.create_engine``.

    Every operation is a plain function of a synchronous ``Connection``, run whole: on SQLite by
    the store's worker thread (``causette.store.sql.worker``: one hand-off per operation), on
    PostgreSQL through the async engine (``AsyncConnection.run_sync``). One body of code serves
    both. The statements of the busy paths are built once, with bound parameters.

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
        self._worker: SqliteWorker | None = None
        if self._dialect == "sqlite":
            options = engine.sync_engine.get_execution_options()
            busy = int(options.get(SQLITE_BUSY_OPTION, SQLITE_BUSY_TIMEOUT_MS))
            self._worker = SqliteWorker(engine.url, busy)
        # The busy paths' statements, built once (building one costs more than running it).
        self._bump_seq = (
            update(streams)
            .where(streams.c.id == bindparam("stream_id"))
            .values(last_seq=streams.c.last_seq + 1)
            .returning(streams.c.last_seq)
        )
        self._insert_message = self._insert(messages).on_conflict_do_nothing(
            index_elements=[messages.c.author, messages.c.local_id]
        )
        self._bump_seq_by = (
            update(streams)
            .where(streams.c.id == bindparam("stream_id"))
            .values(last_seq=streams.c.last_seq + bindparam("count"))
            .returning(streams.c.last_seq)
        )
        self._insert_messages = self._insert_message.returning(messages.c.id)

        def prepared(statement: Any) -> _Prepared:
            return _Prepared(statement, engine.dialect)

        self._get_session = prepared(select(sessions).where(sessions.c.id == bindparam("p_id")))
        self._session_by_token = prepared(
            select(sessions).where(
                sessions.c.token_hash == bindparam("p_token"), sessions.c.ended_at.is_(None)
            )
        )
        self._sessions_in = select(sessions).where(
            sessions.c.id.in_(bindparam("p_ids", expanding=True))
        )
        self._insert_session = prepared(
            self._insert(sessions)
            .values({c.name: bindparam("p_" + c.name) for c in sessions.c})
            .on_conflict_do_nothing(
                index_elements=[sessions.c.pseudonym_key], index_where=LIVE_PSEUDONYM_WHERE
            )
        )
        self._pseudonym_in_use = prepared(
            select(sessions.c.id)
            .where(sessions.c.pseudonym_key == bindparam("p_key"), LIVE_PSEUDONYM_WHERE)
            .limit(1)
        )
        self._touch = (
            update(sessions)
            .where(
                sessions.c.id.in_(bindparam("p_ids", expanding=True)), sessions.c.ended_at.is_(None)
            )
            .values(last_seen=bindparam("p_now"))
        )
        self._stream_head = prepared(
            select(streams.c.epoch, streams.c.last_seq).where(streams.c.id == bindparam("p_id"))
        )
        self._insert_stream = prepared(
            self._insert(streams)
            .values(
                id=bindparam("p_id"),
                epoch=bindparam("p_epoch"),
                last_seq=0,
                created_at=bindparam("p_now"),
            )
            .on_conflict_do_nothing(index_elements=[streams.c.id])
        )
        self._insert_conversation = prepared(
            self._insert(conversations)
            .values({c.name: bindparam("p_" + c.name) for c in conversations.c})
            .on_conflict_do_nothing(
                index_elements=[conversations.c.person_id, conversations.c.stream]
            )
        )
        self._conversation = prepared(
            self._conversation_states(
                conversations.c.person_id == bindparam("p_person"),
                conversations.c.stream == bindparam("p_stream"),
            )
        )
        self._conversations_of = prepared(
            self._conversation_states(conversations.c.person_id == bindparam("p_person"))
        )
        self._mark_read = prepared(
            update(conversations)
            .where(
                conversations.c.person_id == bindparam("p_person"),
                conversations.c.stream == bindparam("p_stream"),
                conversations.c.read_seq < bindparam("p_seq"),
            )
            .values(read_seq=bindparam("p_seq"))
        )
        self._blocked_either_way = prepared(
            select(true())
            .select_from(blocks)
            .where(
                or_(
                    and_(
                        blocks.c.blocker == bindparam("p_a"), blocks.c.blocked == bindparam("p_b")
                    ),
                    and_(
                        blocks.c.blocker == bindparam("p_b"), blocks.c.blocked == bindparam("p_a")
                    ),
                )
            )
            .limit(1)
        )
        self._add_member = prepared(
            self._insert(memberships)
            .values(
                room=bindparam("p_room"),
                person_id=bindparam("p_person"),
                joined_at=bindparam("p_now"),
                join_order=(
                    select(func.coalesce(func.max(memberships.c.join_order), 0) + 1)
                    .where(memberships.c.person_id == bindparam("p_person"))
                    .scalar_subquery()
                ),
            )
            .on_conflict_do_nothing(index_elements=[memberships.c.room, memberships.c.person_id])
        )
        self._rooms_of = prepared(
            select(memberships.c.room)
            .where(memberships.c.person_id == bindparam("p_person"))
            .order_by(memberships.c.join_order, memberships.c.joined_at, memberships.c.room)
        )
        self._members_of = prepared(
            select(memberships.c.person_id)
            .where(memberships.c.room == bindparam("p_room"))
            .order_by(memberships.c.joined_at, memberships.c.person_id)
        )
        self._latest = prepared(
            select(*_MESSAGE_COLUMNS)
            .where(
                messages.c.stream == bindparam("p_stream"),
                messages.c.expires_at > bindparam("p_now"),
            )
            .order_by(messages.c.seq.desc())
            .limit(bindparam("p_limit"))
        )
        self._active_decision = prepared(  # at entry and at every connection
            select(decisions)
            .where(
                decisions.c.action == bindparam("p_action"),
                _active(bindparam("p_now")),
                or_(
                    decisions.c.subject == bindparam("p_person"),
                    decisions.c.subject_key == bindparam("p_key"),
                    decisions.c.id == bindparam("p_id"),
                ),
            )
            .order_by(*_NEWEST_DECISIONS_FIRST)
            .limit(1)
        )
        self._blocked_by = prepared(
            select(blocks.c.blocked)
            .where(blocks.c.blocker == bindparam("p_person"))
            .order_by(blocks.c.created_at, blocks.c.blocked)
        )
        self._blockers_of = prepared(
            select(blocks.c.blocker)
            .where(blocks.c.blocked == bindparam("p_person"))
            .order_by(blocks.c.created_at, blocks.c.blocker)
        )
        self._decisions_of_subject = prepared(
            select(decisions)
            .where(
                or_(
                    decisions.c.subject == bindparam("p_person"),
                    decisions.c.subject_key == bindparam("p_key"),
                )
            )
            .order_by(*_NEWEST_DECISIONS_FIRST)
            .limit(bindparam("p_limit"))
        )
        self._posted_in = (
            select(messages.c.stream)
            .distinct()
            .where(
                messages.c.author == bindparam("p_person"),
                messages.c.kind == "text",
                messages.c.ts >= bindparam("p_since"),
                messages.c.stream.in_(bindparam("p_streams", expanding=True)),
            )
        )
        # Group commit: appends waiting for the writer, and the writer task while it runs.
        self._appends: list[_Pending] = []
        self._appender: asyncio.Task[None] | None = None
        # SQLite: the lock guards ``_appends`` and ``_append_queued``, shared with the worker.
        self._append_lock = threading.Lock()
        self._append_queued = False

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

    # --- running operations -----------------------------------------------------------------

    async def run(
        self, fn: Callable[[Connection], T], *, write: bool = False, mode: BeginMode | None = None
    ) -> T:
        """Run ``fn(connection)`` as one operation: a transaction committed when it returns
        (``write``), or a read. ``mode``: how the transaction begins (default: ``IMMEDIATE`` to
        write, ``NONE`` — each statement on its own — to read)."""
        if mode is None:
            mode = "IMMEDIATE" if write else "NONE"
        if self._closed:
            raise StoreUnavailable()
        try:
            if self._worker is not None:
                return await self._worker.run(fn, mode, write)
            view = self._views[mode]
            if write:
                async with view.begin() as conn:
                    return await conn.run_sync(fn)
            async with view.connect() as conn:
                return await conn.run_sync(fn)
        except Exception as error:
            if is_unavailable(error):
                raise StoreUnavailable() from error
            raise

    async def _rows(self, statement: Statement, params: Params = None) -> list[AnyRow]:
        if isinstance(statement, _Prepared):
            return await self.run(lambda conn: statement.all(conn, params))
        return await self.run(lambda conn: list(conn.execute(statement, params).all()))

    async def _first(self, statement: Statement, params: Params = None) -> AnyRow | None:
        if isinstance(statement, _Prepared):
            return await self.run(lambda conn: statement.first(conn, params))
        return await self.run(lambda conn: conn.execute(statement, params).first())

    async def _scalars(self, statement: Statement, params: Params = None) -> list[Any]:
        if isinstance(statement, _Prepared):
            return await self.run(lambda conn: statement.scalars(conn, params))
        return await self.run(lambda conn: list(conn.execute(statement, params).scalars()))

    async def _change(self, statement: Statement, params: Params = None) -> int:
        """One statement that writes, on its own: the number of rows it changed."""
        if isinstance(statement, _Prepared):
            return await self.run(
                lambda conn: statement.rowcount(conn, params), write=True, mode="NONE"
            )
        return await self.run(
            lambda conn: conn.execute(statement, params).rowcount, write=True, mode="NONE"
        )

    async def _change_returning(
        self, statement: Executable, params: Params = None
    ) -> AnyRow | None:
        return await self.run(
            lambda conn: conn.execute(statement, params).first(), write=True, mode="NONE"
        )

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._worker is not None:
                await self._worker.close()
            await self._engine.dispose()

    async def ping(self) -> None:
        await self._rows(select(1))

    # --- sessions ---------------------------------------------------------------------------

    async def create_session(self, session: Session) -> None:
        values = {"p_" + key: value for key, value in _session_values(session).items()}
        if await self._change(self._insert_session, values) == 0:
            raise PseudonymTaken()

    async def pseudonym_in_use(self, pseudonym_key: str) -> bool:
        return await self._first(self._pseudonym_in_use, {"p_key": pseudonym_key}) is not None

    async def sessions_with_key(self, ip_key: str, limit: int) -> list[Session]:
        if not ip_key or limit <= 0:
            return []
        statement = (
            select(sessions)
            .where(sessions.c.ip_key == ip_key)
            .order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
            .limit(limit)
        )
        return [_session(row) for row in await self._rows(statement)]

    async def get_session(self, person_id: str) -> Session | None:
        row = await self._first(self._get_session, {"p_id": person_id})
        return None if row is None else _session(row)

    async def session_by_token(self, token_hash: bytes) -> Session | None:
        row = await self._first(self._session_by_token, {"p_token": token_hash})
        return None if row is None else _session(row)

    async def get_sessions(self, person_ids: Sequence[str]) -> list[Session]:
        chunks = list(_chunks(person_ids))
        if not chunks:
            return []

        def run(conn: Connection) -> list[AnyRow]:
            out: list[AnyRow] = []
            for chunk in chunks:
                out.extend(conn.execute(self._sessions_in, {"p_ids": chunk}))
            return out

        rows = await self.run(run, mode="NONE" if len(chunks) <= 1 else "DEFERRED")
        return [_session(row) for row in rows]

    async def touch_sessions(self, person_ids: Sequence[str], now: int) -> None:
        chunks = list(_chunks(person_ids))
        if not chunks:
            return

        def run(conn: Connection) -> None:
            for chunk in chunks:
                conn.execute(self._touch, {"p_ids": chunk, "p_now": now})

        await self.run(run, write=True, mode="NONE" if len(chunks) == 1 else "IMMEDIATE")

    async def end_session(self, person_id: str, now: int) -> bool:
        statement = (
            update(sessions)
            .where(sessions.c.id == person_id, sessions.c.ended_at.is_(None))
            .values(ended_at=now)
        )
        return await self._change(statement) == 1

    async def idle_sessions(self, seen_before: int, limit: int) -> list[str]:
        if limit <= 0:
            return []
        statement = (
            select(sessions.c.id)
            .where(sessions.c.ended_at.is_(None), sessions.c.last_seen < seen_before)
            .order_by(sessions.c.last_seen, sessions.c.id)
            .limit(limit)
        )
        return await self._scalars(statement)

    async def set_prefs(self, person_id: str, pm_policy: PmPolicy, lang: str) -> None:
        statement = (
            update(sessions)
            .where(sessions.c.id == person_id)
            .values(pm_policy=pm_policy.value, lang=lang)
        )
        await self._change(statement)

    # --- streams and messages ---------------------------------------------------------------

    def _stream_values(self, stream: str, now: int) -> dict[str, Any]:
        return {"p_id": stream, "p_epoch": self._ids.epoch(), "p_now": now}

    async def ensure_stream(self, stream: str, now: int) -> StreamHead:
        head = await self.stream_head(stream)
        if head is not None:
            return head

        def run(conn: Connection) -> AnyRow:
            self._insert_stream.rowcount(conn, self._stream_values(stream, now))
            row = self._stream_head.first(conn, {"p_id": stream})
            assert row is not None
            return cast(AnyRow, row)

        row = await self.run(run, write=True)
        return StreamHead(stream, row.epoch, row.last_seq)

    async def stream_head(self, stream: str) -> StreamHead | None:
        row = await self._first(self._stream_head, {"p_id": stream})
        return None if row is None else StreamHead(stream, row.epoch, row.last_seq)

    async def snapshot(
        self, stream: str, after_seq: int | None, limit: int, now: int
    ) -> tuple[StreamHead | None, list[Message]]:
        def run(conn: Connection) -> tuple[StreamHead | None, list[Message]]:
            row = self._stream_head.first(conn, {"p_id": stream})
            if row is None:
                return None, []
            head = StreamHead(stream, row.epoch, row.last_seq)
            if limit <= 0:
                return head, []
            if after_seq is None:
                params = {"p_stream": stream, "p_now": now, "p_limit": limit}
                rows = self._latest.all(conn, params)
                rows.reverse()
            else:
                rows = list(conn.execute(self._read_statement(stream, after_seq, limit)))
            return head, [_message(row) for row in rows]

        return await self.run(run)

    async def append(self, item: NewItem) -> tuple[Message, bool]:
        future: asyncio.Future[tuple[Message, bool]] = asyncio.get_running_loop().create_future()
        self.append_then(item, functools.partial(_resolve, future))
        return await future

    def append_then(self, item: NewItem, done: AppendDone) -> None:
        """Appends are committed in groups: every append that arrives while a group is being
        written waits for the next one, which takes them all in one transaction (a handful of
        statements, whatever its size). Seqs follow the order of the calls."""
        if self._worker is None:
            self._appends.append((item, done))
            if self._appender is None:
                self._appender = asyncio.get_running_loop().create_task(self._write_appends())
            return
        if self._closed:
            asyncio.get_running_loop().call_soon(done, StoreUnavailable())
            return
        # SQLite: the worker takes every append waiting when it gets to the job, so a group
        # forms while it is busy, and an append made while it idles leaves at once (no loop
        # turn spent gathering).
        with self._append_lock:
            self._appends.append((item, done))
            if self._append_queued:
                return
            self._append_queued = True
        taken: list[_Pending] = []  # what the job took, answered with an error if it fails
        self._worker.submit_then(
            functools.partial(self._take_appends, taken),
            "NONE",
            False,
            functools.partial(self._appends_answered, taken),
        )

    def _take_appends(
        self, taken: list[_Pending], conn: Connection
    ) -> list[tuple[list[_Pending], list[_Result]]]:
        """On the worker's thread: store what is waiting, in groups of at most APPEND_GROUP;
        a failing group fails each of its callers, never the others."""
        with self._append_lock:
            waiting, self._appends = self._appends, []
            self._append_queued = False
        taken.extend(waiting)
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        answers = []
        for start in range(0, len(waiting), APPEND_GROUP):
            group = waiting[start : start + APPEND_GROUP]
            try:
                results = _sqlite_append_group(driver, [item for item, _ in group])
            except sqlite3.Error as error:  # as SQLAlchemy would have raised it
                wrapped = exc.DBAPIError.instance(
                    "append", None, error, sqlite3.Error, dialect=conn.dialect
                )
                results = [_failure(wrapped)] * len(group)
            except Exception as error:
                results = [error] * len(group)
            answers.append((group, results))
        return answers

    def _appends_answered(self, taken: list[_Pending], ok: bool, value: Any) -> None:
        if ok:
            for group, results in value:
                _hand_out(group, results)
            return
        if not taken:
            # The job failed before it took anything (no connection to the file): what waits
            # fails, and the next append queues a new job.
            with self._append_lock:
                taken, self._appends = self._appends, []
                self._append_queued = False
        _hand_out(taken, [_failure(value)] * len(taken))

    async def _write_appends(self) -> None:
        try:
            while self._appends:
                group = self._appends[:APPEND_GROUP]
                del self._appends[:APPEND_GROUP]
                items = [item for item, _ in group]
                try:
                    results = await self._append_group(items)
                except _GroupConflict:
                    # Someone else stored one of these local_ids meanwhile: one at a time.
                    results = []
                    for item in items:
                        try:
                            results.append(await self._append_one(item))
                        except Exception as error:
                            results.append(error)
                except Exception as error:
                    results = [error] * len(items)
                _hand_out(group, results)
        finally:
            self._appender = None

    async def _append_group(self, items: list[NewItem]) -> list[_Result]:
        return await self.run(self._append_group_sql(items), write=True)

    def _append_group_sql(self, items: list[NewItem]) -> Callable[[Connection], list[_Result]]:
        """One transaction: find local_ids already stored, take a block of seqs per stream,
        insert the new messages in one statement."""

        def run(conn: Connection) -> list[_Result]:
            known: dict[tuple[str, str], Message] = {}
            pairs = {(it.author, it.local_id) for it in items if it.local_id is not None}
            if pairs:
                statement = select(*_MESSAGE_COLUMNS, messages.c.local_id).where(
                    tuple_(messages.c.author, messages.c.local_id).in_(list(pairs))
                )
                for row in conn.execute(statement):
                    known[(row.author, row.local_id)] = _message(row)
            group = _Group(items, known.get, lambda person: _live(conn, person))
            rows: list[dict[str, Any]] = []
            for stream, indexes in group.by_stream.items():
                bumped = conn.execute(
                    self._bump_seq_by, {"stream_id": stream, "count": len(indexes)}
                ).first()
                for it, seq in group.numbered(stream, None if bumped is None else bumped[0]):
                    rows.append({**_item_values(it), "seq": seq})
            if rows:
                inserted = conn.execute(self._insert_messages, rows)
                if len(inserted.all()) != len(rows):
                    raise _GroupConflict()
            if group.read_marks:
                conn.execute(
                    self._mark_read.statement,
                    [_read_mark(*mark) for mark in group.read_marks],
                )
            return group.outcome()

        return run

    async def _append_one(self, item: NewItem) -> tuple[Message, bool]:
        values = _item_values(item)

        def run(conn: Connection) -> Message | None:
            """The message stored, or None (and nothing done) if its local_id is taken."""
            if item.recipient is not None and not _live(conn, item.recipient):
                raise PersonUnknown()
            bumped = conn.execute(self._bump_seq, {"stream_id": item.stream}).first()
            if bumped is None:
                raise StreamUnknown()
            seq: int = bumped[0]
            inserted = conn.execute(self._insert_message, {**values, "seq": seq})
            if inserted.rowcount == 1:
                if item.read_by_author:
                    conn.execute(
                        self._mark_read.statement, _read_mark(item.author, item.stream, seq)
                    )
                return Message(
                    item.stream, seq, item.id, item.kind, item.author, item.name, item.text, item.ts
                )
            conn.rollback()  # (author, local_id) already stored: undo the seq increment
            return None

        # A duplicate found, then purged before we could read it, is appended afresh; a few
        # rounds bound the (practically impossible) repetition.
        for _ in range(3):
            message = await self.run(run, write=True)
            if message is not None:
                return message, False
            existing = await self._by_local_id(item.author, cast(str, item.local_id))
            if existing is not None:
                return existing, True
        raise StoreUnavailable()

    async def _by_local_id(self, author: str, local_id: str) -> Message | None:
        statement = select(*_MESSAGE_COLUMNS).where(
            messages.c.author == author, messages.c.local_id == local_id
        )
        row = await self._first(statement)
        return None if row is None else _message(row)

    async def read(
        self, stream: str, after_seq: int, limit: int, now: int | None = None
    ) -> list[Message]:
        """Items with ``seq > after_seq``, ascending, at most ``limit``. Purged items are gone;
        with ``now``, items already expired (``expires_at <= now``) are left out too."""
        if limit <= 0:
            return []
        statement = self._read_statement(stream, after_seq, limit, now)
        return [_message(row) for row in await self._rows(statement)]

    @staticmethod
    def _read_statement(stream: str, after_seq: int, limit: int, now: int | None = None) -> Any:
        statement = (
            select(*_MESSAGE_COLUMNS)
            .where(messages.c.stream == stream, messages.c.seq > after_seq)
            .order_by(messages.c.seq)
            .limit(limit)
        )
        if now is not None:
            statement = statement.where(messages.c.expires_at > now)
        return statement

    async def latest(self, stream: str, limit: int, now: int) -> list[Message]:
        if limit <= 0:
            return []
        params = {"p_stream": stream, "p_now": now, "p_limit": limit}
        newest_first = [_message(row) for row in await self._rows(self._latest, params)]
        newest_first.reverse()
        return newest_first

    async def first_seq(self, stream: str) -> int | None:
        statement = select(func.min(messages.c.seq)).where(messages.c.stream == stream)
        value = await self.run(lambda conn: conn.execute(statement).scalar())
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
            count = await self._change(delete(messages).where(messages.c.id.in_(doomed)))
            total += count
            if count < batch:
                break
        return total

    async def purge_ended_sessions(self, ended_before: int, limit: int) -> int:
        def run(batch: int) -> Callable[[Connection], int]:
            def purge(conn: Connection) -> int:
                ids = list(
                    conn.execute(
                        select(sessions.c.id)
                        .where(
                            sessions.c.ended_at.is_not(None),
                            sessions.c.ended_at < ended_before,
                        )
                        .order_by(sessions.c.ended_at, sessions.c.id)
                        .limit(batch)
                    ).scalars()
                )
                if ids:
                    conn.execute(delete(memberships).where(memberships.c.person_id.in_(ids)))
                    conn.execute(delete(conversations).where(conversations.c.person_id.in_(ids)))
                    conn.execute(
                        delete(blocks).where(
                            or_(blocks.c.blocker.in_(ids), blocks.c.blocked.in_(ids))
                        )
                    )
                    conn.execute(delete(sessions).where(sessions.c.id.in_(ids)))
                return len(ids)

            return purge

        total = 0
        while total < limit:
            batch = min(PURGE_BATCH, limit - total)
            count = await self.run(run(batch), write=True)
            total += count
            if count < batch:
                break
        return total

    # --- rooms ------------------------------------------------------------------------------

    async def add_member(self, room: str, person_id: str, now: int) -> bool:
        params = {"p_room": room, "p_person": person_id, "p_now": now}
        return await self._change(self._add_member, params) == 1

    async def remove_member(self, room: str, person_id: str) -> bool:
        statement = delete(memberships).where(
            memberships.c.room == room, memberships.c.person_id == person_id
        )
        return await self._change(statement) == 1

    async def rooms_of(self, person_id: str) -> list[str]:
        return await self._scalars(self._rooms_of, {"p_person": person_id})

    async def members_of(self, room: str) -> list[str]:
        return await self._scalars(self._members_of, {"p_room": room})

    # --- private conversations --------------------------------------------------------------

    async def open_conversation(
        self, stream: str, opened_by: str, other: str, now: int
    ) -> ConversationState:
        def run(conn: Connection) -> ConversationState:
            self._insert_stream.rowcount(conn, self._stream_values(stream, now))
            for person_id, counterpart in ((opened_by, other), (other, opened_by)):
                values = {
                    "p_person_id": person_id,
                    "p_stream": stream,
                    "p_other": counterpart,
                    "p_opened_by": opened_by,
                    "p_read_seq": 0,
                    "p_opened_at": now,
                }
                self._insert_conversation.rowcount(conn, values)
            row = self._conversation.first(conn, {"p_person": opened_by, "p_stream": stream})
            return self._conversation_state(row)

        return await self.run(run, write=True)

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
    def _conversation_state(row: AnyRow) -> ConversationState:
        return ConversationState(
            stream=row.stream,
            other=row.other,
            opened_by=row.opened_by,
            last_seq=row.last_seq,
            read_seq=row.read_seq,
            last_ts=row.last_ts,
        )

    async def conversations_of(self, person_id: str) -> list[ConversationState]:
        rows = await self._rows(self._conversations_of, {"p_person": person_id})
        return [self._conversation_state(row) for row in rows]

    async def get_conversation(self, person_id: str, stream: str) -> ConversationState | None:
        row = await self._first(self._conversation, {"p_person": person_id, "p_stream": stream})
        return None if row is None else self._conversation_state(row)

    async def mark_read(self, person_id: str, stream: str, seq: int) -> None:
        await self._change(self._mark_read, _read_mark(person_id, stream, seq))

    # --- blocks -----------------------------------------------------------------------------

    async def block(self, blocker: str, blocked: str, now: int) -> bool:
        statement = (
            self._insert(blocks)
            .values(blocker=blocker, blocked=blocked, created_at=now)
            .on_conflict_do_nothing(index_elements=[blocks.c.blocker, blocks.c.blocked])
        )
        return await self._change(statement) == 1

    async def unblock(self, blocker: str, blocked: str) -> bool:
        statement = delete(blocks).where(blocks.c.blocker == blocker, blocks.c.blocked == blocked)
        return await self._change(statement) == 1

    async def blocked_by(self, person_id: str) -> list[str]:
        return await self._scalars(self._blocked_by, {"p_person": person_id})

    async def blockers_of(self, person_id: str) -> list[str]:
        return await self._scalars(self._blockers_of, {"p_person": person_id})

    async def is_blocked_either_way(self, a: str, b: str) -> bool:
        return await self._first(self._blocked_either_way, {"p_a": a, "p_b": b}) is not None

    # --- moderation: messages ---------------------------------------------------------------

    async def get_message(self, message_id: str) -> Message | None:
        row = await self._first(select(*_MESSAGE_COLUMNS).where(messages.c.id == message_id))
        return None if row is None else _message(row)

    async def delete_message(self, message_id: str) -> Message | None:
        # The stream's last_seq is left alone: the seq stays used (clients see a gap they
        # are told about, never a reused seq).
        statement = delete(messages).where(messages.c.id == message_id).returning(*_MESSAGE_COLUMNS)
        row = await self._change_returning(statement)
        return None if row is None else _message(row)

    async def posted_in(self, person_id: str, streams: Sequence[str], since: int) -> set[str]:
        chunks = list(_chunks(streams))
        if not chunks:
            return set()

        def run(conn: Connection) -> set[str]:
            out: set[str] = set()
            for chunk in chunks:
                params = {"p_person": person_id, "p_since": since, "p_streams": chunk}
                out.update(conn.execute(self._posted_in, params).scalars())
            return out

        return await self.run(run, mode="NONE" if len(chunks) == 1 else "DEFERRED")

    # --- moderation: cases ------------------------------------------------------------------

    async def file_report(
        self, case: Case, report: Report | None, evidence: Sequence[Evidence]
    ) -> tuple[Case, bool]:
        """SQLite: the write lock is taken first (``BEGIN IMMEDIATE``), so the look-up and the
        insert cannot interleave with another writer. PostgreSQL (``READ COMMITTED``): two
        racing inserts of an open case for one target meet on the partial unique index; the
        loser's ``ON CONFLICT DO NOTHING`` waits for the winner's commit and inserts nothing,
        and its next look-up (a fresh snapshot, locking the row) finds the winner's case."""
        check_case_to_file(case)
        find_open = (
            select(cases)
            .where(cases.c.target_key == case.target_key, OPEN_CASE_WHERE)
            .with_for_update()
        )
        new_case = dataclasses.replace(case, reporters=0 if report is None else 1)
        insert_case = (
            self._insert(cases)
            .values(_case_values(new_case))
            .on_conflict_do_nothing(
                index_elements=[cases.c.target_key], index_where=OPEN_CASE_WHERE
            )
        )

        def run(conn: Connection) -> tuple[Case, bool] | None:
            for _ in range(3):
                row = conn.execute(find_open).first()
                if row is not None:
                    return self._join_case(conn, _case(row), case, report), True
                if conn.execute(insert_case).rowcount == 1:
                    if report is not None:
                        conn.execute(reports.insert().values(_report_values(report, case.id)))
                    if evidence:
                        conn.execute(
                            evidence_table.insert(),
                            [
                                {
                                    "case_id": case.id,
                                    "n": e.n,
                                    "kind": e.kind,
                                    "captured_at": e.captured_at,
                                    "data": _json(e.data),
                                }
                                for e in evidence
                            ],
                        )
                    return new_case, False
                # Another transaction opened a case for this target first (PostgreSQL): look
                # again; it is found, unless it was closed meanwhile and we may insert.
            return None

        filed = await self.run(run, write=True)
        if filed is None:
            raise StoreUnavailable()
        return filed

    def _join_case(
        self, conn: Connection, existing: Case, incoming: Case, report: Report | None
    ) -> Case:
        if report is not None:
            added = conn.execute(
                self._insert(reports)
                .values(_report_values(report, existing.id))
                .on_conflict_do_nothing(index_elements=[reports.c.case_id, reports.c.reporter])
            )
            if added.rowcount == 0:
                return existing  # one report per reporter and case: nothing changes
        count = select(func.count()).select_from(reports).where(reports.c.case_id == existing.id)
        reporters = int(conn.execute(count).scalar_one())
        joined = joined_case(existing, incoming, reporters)
        conn.execute(
            update(cases)
            .where(cases.c.id == existing.id)
            .values(
                reporters=joined.reporters,
                severity=joined.severity,
                category=joined.category,
                updated_at=joined.updated_at,
            )
        )
        return joined

    async def get_case(self, case_id: str) -> Case | None:
        row = await self._first(select(cases).where(cases.c.id == case_id))
        return None if row is None else _case(row)

    async def open_cases(self, limit: int) -> list[Case]:
        if limit <= 0:
            return []
        statement = (
            select(cases)
            .where(cases.c.status == CaseStatus.OPEN.value)
            .order_by(cases.c.severity, cases.c.created_at, cases.c.id)
            .limit(limit)
        )
        return [_case(row) for row in await self._rows(statement)]

    async def cases_of_subject(self, person_id: str, limit: int) -> list[Case]:
        if limit <= 0:
            return []
        statement = (
            select(cases)
            .where(cases.c.subject == person_id)
            .order_by(cases.c.created_at.desc(), cases.c.id.desc())
            .limit(limit)
        )
        return [_case(row) for row in await self._rows(statement)]

    async def reports_of(self, case_id: str) -> list[Report]:
        statement = (
            select(reports)
            .where(reports.c.case_id == case_id)
            .order_by(reports.c.created_at, reports.c.id)
        )
        return [_report(row) for row in await self._rows(statement)]

    async def evidence_of(self, case_id: str) -> list[Evidence]:
        statement = (
            select(evidence_table)
            .where(evidence_table.c.case_id == case_id)
            .order_by(evidence_table.c.n)
        )
        return [_evidence(row) for row in await self._rows(statement)]

    async def close_case(self, case_id: str, outcome: Outcome, by: str, now: int) -> Case | None:
        statement = (
            update(cases)
            .where(cases.c.id == case_id, cases.c.status == CaseStatus.OPEN.value)
            .values(
                status=CaseStatus.CLOSED.value,
                outcome=outcome.value,
                decided_by=by,
                decided_at=now,
                updated_at=now,
            )
            .returning(*cases.c)
        )
        row = await self._change_returning(statement)
        return None if row is None else _case(row)

    async def reporter_networks_against(self, person_id: str, since: int) -> int:
        statement = (
            select(func.count(distinct(reports.c.reporter_key)))
            .select_from(reports.join(cases, cases.c.id == reports.c.case_id))
            .where(cases.c.subject == person_id, reports.c.created_at >= since)
        )
        return int(await self.run(lambda conn: conn.execute(statement).scalar_one()))

    # --- moderation: decisions --------------------------------------------------------------

    async def add_decision(self, decision: Decision) -> None:
        values = {
            field.name: getattr(decision, field.name) for field in dataclasses.fields(decision)
        }
        values["action"] = decision.action.value
        await self._change(decisions.insert().values(values))

    async def get_decision(self, decision_id: str) -> Decision | None:
        row = await self._first(select(decisions).where(decisions.c.id == decision_id))
        return None if row is None else _decision(row)

    async def decisions_of_case(self, case_id: str) -> list[Decision]:
        statement = (
            select(decisions)
            .where(decisions.c.case_id == case_id)
            .order_by(decisions.c.created_at, decisions.c.id)
        )
        return [_decision(row) for row in await self._rows(statement)]

    async def decisions_of_subject(
        self, person_id: str | None, ip_key: str | None, limit: int
    ) -> list[Decision]:
        if (person_id is None and not ip_key) or limit <= 0:
            return []
        # A criterion left out is NULL, which equals nothing.
        params = {"p_person": person_id, "p_key": ip_key or None, "p_limit": limit}
        return [_decision(row) for row in await self._rows(self._decisions_of_subject, params)]

    async def _newest_active(
        self,
        action: Action,
        now: int,
        person_id: str | None = None,
        ip_key: str | None = None,
        decision_id: str | None = None,
    ) -> Decision | None:
        if person_id is None and not ip_key and decision_id is None:
            return None
        params = {
            "p_action": action.value,
            "p_now": now,
            # A criterion left out is NULL, which equals nothing.
            "p_person": person_id,
            "p_key": ip_key or None,
            "p_id": decision_id,
        }
        row = await self._first(self._active_decision, params)
        return None if row is None else _decision(row)

    async def active_ban(
        self, *, person_id: str | None, ip_key: str | None, decision_id: str | None, now: int
    ) -> Decision | None:
        return await self._newest_active(Action.BAN, now, person_id, ip_key, decision_id)

    async def active_mute(self, person_id: str, now: int) -> Decision | None:
        return await self._newest_active(Action.MUTE, now, person_id)

    async def lift_decision(self, decision_id: str, now: int, reason: str) -> Decision | None:
        statement = (
            update(decisions)
            .where(decisions.c.id == decision_id, decisions.c.lifted_at.is_(None))
            .values(lifted_at=now, lifted_reason=reason)
            .returning(*decisions.c)
        )
        row = await self._change_returning(statement)
        return None if row is None else _decision(row)

    # --- moderation: appeals ----------------------------------------------------------------

    async def add_appeal(self, appeal: Appeal) -> bool:
        values = {field.name: getattr(appeal, field.name) for field in dataclasses.fields(appeal)}
        values["status"] = appeal.status.value
        statement = (
            self._insert(appeals)
            .values(values)
            .on_conflict_do_nothing(index_elements=[appeals.c.decision_id])
        )
        return await self._change(statement) == 1

    async def get_appeal(self, appeal_id: str) -> Appeal | None:
        row = await self._first(select(appeals).where(appeals.c.id == appeal_id))
        return None if row is None else _appeal(row)

    async def appeal_of(self, decision_id: str) -> Appeal | None:
        row = await self._first(select(appeals).where(appeals.c.decision_id == decision_id))
        return None if row is None else _appeal(row)

    async def pending_appeals(self, limit: int) -> list[Appeal]:
        if limit <= 0:
            return []
        statement = (
            select(appeals)
            .where(appeals.c.status == AppealStatus.PENDING.value)
            .order_by(appeals.c.created_at, appeals.c.id)
            .limit(limit)
        )
        return [_appeal(row) for row in await self._rows(statement)]

    async def decide_appeal(
        self, appeal_id: str, status: AppealStatus, by: str, now: int, answer: str
    ) -> Appeal | None:
        if status == AppealStatus.PENDING:
            raise ValueError("an appeal is settled as granted or rejected")
        statement = (
            update(appeals)
            .where(appeals.c.id == appeal_id, appeals.c.status == AppealStatus.PENDING.value)
            .values(status=status.value, decided_by=by, decided_at=now, answer=answer)
            .returning(*appeals.c)
        )
        row = await self._change_returning(statement)
        return None if row is None else _appeal(row)

    # --- moderation: moderator accounts -----------------------------------------------------

    async def add_moderator(self, moderator: Moderator) -> None:
        statement = (
            self._insert(moderators)
            .values(_moderator_values(moderator))
            .on_conflict_do_nothing(index_elements=[moderators.c.login])
        )
        if await self._change(statement) == 0:
            raise ModeratorExists()

    async def get_moderator(self, moderator_id: str) -> Moderator | None:
        row = await self._first(select(moderators).where(moderators.c.id == moderator_id))
        return None if row is None else _moderator(row)

    async def moderator_by_login(self, login: str) -> Moderator | None:
        row = await self._first(select(moderators).where(moderators.c.login == login))
        return None if row is None else _moderator(row)

    async def list_moderators(self) -> list[Moderator]:
        statement = select(moderators).order_by(moderators.c.login, moderators.c.id)
        return [_moderator(row) for row in await self._rows(statement)]

    async def update_moderator(self, moderator: Moderator) -> None:
        values = _moderator_values(moderator)
        del values["id"]
        statement = update(moderators).where(moderators.c.id == moderator.id).values(values)
        try:
            await self._change(statement)
        except exc.IntegrityError as error:  # the only unique column that can change: login
            raise ModeratorExists() from error

    async def create_mod_session(self, session: ModSession) -> None:
        statement = mod_sessions.insert().values(
            token_hash=session.token_hash,
            moderator_id=session.moderator_id,
            created_at=session.created_at,
            expires_at=session.expires_at,
        )
        await self._change(statement)

    async def mod_session(self, token_hash: bytes, now: int) -> ModSession | None:
        statement = select(mod_sessions).where(
            mod_sessions.c.token_hash == token_hash, mod_sessions.c.expires_at > now
        )
        row = await self._first(statement)
        return None if row is None else _mod_session(row)

    async def delete_mod_session(self, token_hash: bytes) -> None:
        await self._change(delete(mod_sessions).where(mod_sessions.c.token_hash == token_hash))

    async def delete_mod_sessions_of(self, moderator_id: str) -> None:
        await self._change(delete(mod_sessions).where(mod_sessions.c.moderator_id == moderator_id))

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
        text = _json(details)
        statement = (
            audit_log.insert()
            .values(
                ts=ts,
                actor=actor,
                action=action,
                case_id=case_id,
                target=target,
                reason=reason,
                details=text,
            )
            .returning(audit_log.c.id)
        )
        row = await self._change_returning(statement)
        assert row is not None
        return AuditEntry(
            id=int(row[0]),
            ts=ts,
            actor=actor,
            action=action,
            case_id=case_id,
            target=target,
            reason=reason,
            details=_from_json(text),
        )

    async def audit_log(self, limit: int, before_id: int | None = None) -> list[AuditEntry]:
        if limit <= 0:
            return []
        statement = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before_id is not None:
            statement = statement.where(audit_log.c.id < before_id)
        return [_audit_entry(row) for row in await self._rows(statement)]

    # --- moderation: rooms ------------------------------------------------------------------

    async def set_room_state(self, slug: str, state: RoomState, reason: str, now: int) -> None:
        statement: Any
        if state == RoomState.OPEN:
            statement = delete(room_states).where(room_states.c.slug == slug)
        else:
            statement = (
                self._insert(room_states)
                .values(slug=slug, state=state.value, reason=reason, changed_at=now)
                .on_conflict_do_update(
                    index_elements=[room_states.c.slug],
                    set_={"state": state.value, "reason": reason, "changed_at": now},
                )
            )
        await self._change(statement)

    async def room_states(self) -> dict[str, tuple[RoomState, str]]:
        statement = select(room_states.c.slug, room_states.c.state, room_states.c.reason).where(
            room_states.c.state != RoomState.OPEN.value
        )
        return {row.slug: (RoomState(row.state), row.reason) for row in await self._rows(statement)}
