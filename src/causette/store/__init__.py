"""Stores: the adapters of the ``Store`` and ``ModerationStore`` ports (every adapter implements
both: ``FullStore``), chosen by URL, and the schema migrations.

``memory://``
    ``MemoryStore``: nothing is kept (tests, demos).
``sqlite:///path/to/causette.db``
    ``SqlStore`` on SQLite (single node). The parent directory is created.
``postgresql://user:password@host:port/database``
    ``SqlStore`` on PostgreSQL with asyncpg (several nodes).

A SQL store refuses to start on a schema that is not at this version's head
(``SchemaBehind``): nodes never migrate behind each other's back. ``causette migrate`` (that is,
``migrate(url)``) or ``open_store(url, migrate=True)`` (the single-node default) upgrades it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from causette.core.ports import FullStore
from causette.store.errors import SchemaBehind, SchemaUnknown, StoreUnreachable
from causette.store.memory import EpochSource, MemoryStore
from causette.store.sql.engine import (
    BEGIN_OPTION,
    SQLITE_BUSY_TIMEOUT_MS,
    async_url,
    create_engine,
    describe,
    is_unavailable,
    reason,
    sqlite_path,
)
from causette.store.sql.store import SqlStore

__all__ = [
    "EpochSource",
    "FullStore",
    "MemoryStore",
    "SchemaBehind",
    "SchemaUnknown",
    "SqlStore",
    "StoreUnreachable",
    "alembic_config",
    "head_revision",
    "migrate",
    "open_store",
    "schema_status",
]


MEMORY_SCHEME: Final = "memory:"
#: Serialises concurrent ``causette migrate`` runs against one PostgreSQL database.
_PG_MIGRATION_LOCK: Final = 0x6361_7573_6574_7465 >> 1  # "causette", as a bigint


def alembic_config() -> AlembicConfig:
    """Alembic's configuration, built in code: the scripts ship inside the package."""
    config = AlembicConfig()
    config.set_main_option("script_location", "causette.store:migrations")
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations have several heads"
    return head


def _is_memory(url: str) -> bool:
    return url.startswith(MEMORY_SCHEME)


async def _prepare(url: str) -> URL:
    """The async URL. For SQLite, the file's directory is created and the file is opened once
    on a worker thread: an unopenable path is reported here, plainly, rather than through
    aiosqlite (whose connection thread, after a failed connect, may outlive the event loop and
    print a spurious error at exit)."""
    parsed = async_url(url)
    path = sqlite_path(parsed)
    if path is not None:
        try:
            await asyncio.to_thread(_probe_sqlite, path)
        except (OSError, sqlite3.Error) as error:
            raise StoreUnreachable(target=describe(parsed), reason=reason(error)) from error
    return parsed


def _probe_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        connection.execute("PRAGMA schema_version").fetchone()
    finally:
        connection.close()


@contextmanager
def _reaching(parsed: URL) -> Iterator[None]:
    """Turn a failure to reach the database into ``StoreUnreachable``."""
    try:
        yield
    except Exception as error:
        if is_unavailable(error):
            raise StoreUnreachable(target=describe(parsed), reason=reason(error)) from error
        raise


def _current_revision(connection: Connection) -> str | None:
    heads = MigrationContext.configure(connection).get_current_heads()
    return heads[0] if heads else None


def _known_revisions() -> set[str]:
    return {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    current = _current_revision(connection)
    if current is not None and current not in _known_revisions():
        raise SchemaUnknown(current=current, head=head_revision())
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def _status(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current_revision)


async def _migrate(engine: AsyncEngine) -> str | None:
    # SQLite: take the write lock first, so two processes migrating wait for each other.
    async with engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"}).begin() as conn:
        await conn.run_sync(_upgrade)
    return await _status(engine)


def _check_current(current: str | None) -> None:
    head = head_revision()
    if current == head:
        return
    if current is not None and current not in _known_revisions():
        raise SchemaUnknown(current=current, head=head)
    raise SchemaBehind(current=current or "∅", head=head)


async def open_store(
    url: str, *, migrate: bool = False, ids: EpochSource | None = None
) -> FullStore:
    """The store for ``url`` (see the module documentation).

    With ``migrate``, the schema is first upgraded to this version's head; without, a schema
    that is not at head is refused (``SchemaBehind`` / ``SchemaUnknown``, both ``ConfigError``).
    An unreachable or unopenable database raises ``StoreUnreachable`` (a ``StoreUnavailable``)
    naming where it was looked for (never the password).
    """
    if _is_memory(url):
        return MemoryStore(ids)
    parsed = await _prepare(url)
    engine = create_engine(parsed)
    try:
        with _reaching(parsed):
            current = await (_migrate(engine) if migrate else _status(engine))
        _check_current(current)
    except BaseException:
        await engine.dispose()
        raise
    if parsed.get_backend_name() == "sqlite":
        await engine.dispose()  # the store works on its own connection: close the checker's
    return SqlStore(engine, ids)


async def migrate(url: str) -> str:
    """Upgrade the database at ``url`` to this version's head; return the revision now current."""
    if _is_memory(url):
        return head_revision()
    parsed = await _prepare(url)
    engine = create_engine(parsed, pooled=False)
    try:
        with _reaching(parsed):
            current = await _migrate(engine)
    finally:
        await engine.dispose()
    assert current is not None
    return current


async def schema_status(url: str) -> tuple[str | None, str]:
    """``(current, head)``: the database's schema revision (None when empty) and this
    version's. A ``memory://`` store is always at head."""
    head = head_revision()
    if _is_memory(url):
        return head, head
    parsed = await _prepare(url)
    engine = create_engine(parsed, pooled=False)
    try:
        with _reaching(parsed):
            return await _status(engine), head
    finally:
        await engine.dispose()
