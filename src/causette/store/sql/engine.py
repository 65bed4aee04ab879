"""Engines and failure classification for the SQL store.

SQLite (embedded, one node)
    The store runs every operation on one connection owned by one thread
    (``causette.store.sql.worker``): SQLite has a single writer anyway, more connections only
    add lock contention (``database is locked`` waits with sleeps, ``bench/store_append.py``),
    and the async driver costs several thread hand-offs per statement. The async engine made
    here serves migrations and carries the settings (``SQLITE_BUSY_OPTION``) the worker uses.

    The ``sqlite3`` driver's own transaction handling is switched off (``isolation_level =
    None``) and SQLAlchemy's ``begin`` event emits the ``BEGIN``: ``BEGIN IMMEDIATE`` for
    writing transactions (the write lock is taken up front, so a read-then-write transaction
    can never fail half-way on a lock upgrade), nothing at all for single-statement reads and
    writes (SQLite runs each statement atomically). A connection or engine view chooses with
    the ``causette_begin`` execution option: ``"IMMEDIATE"``, ``"DEFERRED"`` or ``"NONE"``.

    Pragmas on every new connection: WAL (readers never wait for the writer), ``synchronous =
    NORMAL`` (durable across application crashes; an OS crash may lose the last commits),
    ``foreign_keys = ON`` and a ``busy_timeout`` for other processes (``causette migrate``,
    admin commands) holding the write lock.

PostgreSQL
    A normal pool over asyncpg (10 + 10 overflow connections per node, pre-pinged so that a
    restarted server's dead connections are replaced), ``READ COMMITTED``; ``append`` is
    serialised per stream by the row lock its ``UPDATE streams`` takes, so nodes appending to
    one stream each get the next seq. Connecting gives up after ``PG_CONNECT_TIMEOUT_S``.
    The schema is never migrated at start: ``causette migrate`` does it, once, under an
    advisory lock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final, Literal

from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from causette.errors import ConfigError

BeginMode = Literal["IMMEDIATE", "DEFERRED", "NONE"]
BEGIN_OPTION: Final = "causette_begin"
#: Execution option of a SQLite engine: its busy timeout, for the store's worker connection.
SQLITE_BUSY_OPTION: Final = "causette_sqlite_busy_timeout_ms"

#: Milliseconds SQLite waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS: Final = 5000
#: Seconds a caller waits for the (single) SQLite connection, or a pooled PostgreSQL one.
POOL_TIMEOUT_S: Final = 10.0
#: Seconds to open a PostgreSQL connection before giving up (the request fails, retryable).
PG_CONNECT_TIMEOUT_S: Final = 5.0


def async_url(url: str) -> URL:
    """The SQLAlchemy async URL for a Causette ``database_url``.

    ``sqlite:///path`` → ``sqlite+aiosqlite:///path``;
    ``postgresql://…`` → ``postgresql+asyncpg://…``.
    """
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise ConfigError(detail=f"database_url is not a database URL ({error})") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise ConfigError(
                detail="database_url: an in-memory SQLite database is not supported; "
                "use memory:// (nothing kept) or sqlite:///path/to/causette.db"
            )
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg")
    raise ConfigError(detail=f"database_url: unsupported scheme {parsed.drivername!r}")


def describe(url: URL) -> str:
    """Where the database is, for messages: a file path, or ``host:port/database`` (never the
    password)."""
    if url.get_backend_name() == "sqlite":
        return url.database or ""
    host = url.host or "localhost"
    port = f":{url.port}" if url.port else ""
    return f"{host}{port}/{url.database or ''}"


def sqlite_path(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    return Path(url.database)


def create_engine(
    url: URL,
    *,
    pooled: bool = True,
    sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
) -> AsyncEngine:
    """An engine for the store (``pooled``) or for a one-off task such as a migration."""
    if url.get_backend_name() == "sqlite":
        options = {SQLITE_BUSY_OPTION: sqlite_busy_timeout_ms}
        if pooled:
            engine = create_async_engine(
                url,
                pool_size=1,
                max_overflow=0,
                pool_timeout=POOL_TIMEOUT_S,
                execution_options=options,
            )
        else:
            engine = create_async_engine(url, poolclass=NullPool, execution_options=options)
        configure_sqlite(engine.sync_engine, sqlite_busy_timeout_ms)
        return engine
    # A server that does not answer must fail fast, not after asyncpg's default minute.
    connect_args = {"timeout": PG_CONNECT_TIMEOUT_S}
    try:
        if pooled:
            return create_async_engine(
                url,
                pool_size=10,
                max_overflow=10,
                pool_timeout=POOL_TIMEOUT_S,
                pool_pre_ping=True,
                connect_args=connect_args,
            )
        return create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
    except ModuleNotFoundError as error:
        raise ConfigError(
            detail=f"database_url: the driver for {url.get_backend_name()} is not installed "
            f"({error.name})"
        ) from None


def configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """Pragmas on every new connection, and the ``BEGIN`` each transaction asks for."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see above)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms):d}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        if mode == "IMMEDIATE":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif mode == "DEFERRED":
            connection.exec_driver_sql("BEGIN")


# --- failures ----------------------------------------------------------------------------------

#: SQLite errors that say "not now" rather than "wrong": locks held too long, the file missing or
#: unreadable, the disk failing or full.
_SQLITE_UNAVAILABLE: Final = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
    "database or disk is full",
    "readonly database",
    "no active connection",
    "connection closed",
    "closed database",
)

#: PostgreSQL SQLSTATEs worth a retry: serialization failure, deadlock, shutting down, too many
#: connections, lock timeout, cannot connect now.
_PG_RETRYABLE: Final = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "53300", "55P03"})


def is_unavailable(error: BaseException) -> bool:
    """True for failures of the database service (unreachable, locked too long, connection
    lost) rather than errors in what was asked of it: the caller may tell the person to retry.
    """
    if isinstance(error, exc.TimeoutError):  # no pooled connection came in time
        return True
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        orig = error.orig
        module = type(orig).__module__ if orig is not None else ""
        if module.startswith(("sqlite3", "aiosqlite")):
            text = str(orig).lower()
            return any(fragment in text for fragment in _SQLITE_UNAVAILABLE)
        # PostgreSQL (asyncpg): the SQLSTATE, or a client-side connection failure.
        sqlstate = getattr(orig, "sqlstate", None)
        if isinstance(sqlstate, str) and (sqlstate in _PG_RETRYABLE or sqlstate[:2] == "08"):
            return True
        return isinstance(error, exc.InterfaceError)
    # Raised as they are by drivers while connecting (refused, DNS, timeout).
    return isinstance(error, (OSError, asyncio.TimeoutError))


def reason(error: BaseException) -> str:
    """A short, password-free description of a failure, for operators."""
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return text[:200]
