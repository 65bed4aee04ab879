"""What only the SQL store (on SQLite) does: files, pragmas, schema checks, failure mapping."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import exc, text
from sqlalchemy.engine import Connection

import causette.store as store_module
from causette.core.models import NewItem
from causette.errors import ConfigError, StoreUnavailable
from causette.store import (
    MemoryStore,
    SchemaBehind,
    SchemaUnknown,
    SqlStore,
    StoreUnreachable,
    alembic_config,
    head_revision,
    migrate,
    open_store,
    schema_status,
)
from causette.store.sql.engine import async_url, create_engine

T0 = 1_767_225_600_000
STREAM = "r:general"


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def new_item(message_id: str, local_id: str | None = None) -> NewItem:
    return NewItem(
        stream=STREAM,
        id=message_id,
        kind="text",
        author="alice",
        name="Alice",
        text="bonjour",
        ts=T0,
        expires_at=T0 + 60_000,
        local_id=local_id,
    )


@asynccontextmanager
async def sql_store(path: Path, *, busy_timeout_ms: int = 5000) -> AsyncIterator[SqlStore]:
    await migrate(url_of(path))
    engine = create_engine(async_url(url_of(path)), sqlite_busy_timeout_ms=busy_timeout_ms)
    store = SqlStore(engine)
    try:
        yield store
    finally:
        await store.close()


@contextmanager
def write_lock_held_elsewhere(path: Path) -> Iterator[None]:
    """Another process (here: another connection) holding SQLite's write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


# --- opening -----------------------------------------------------------------------------------


async def test_memory_url_gives_a_memory_store() -> None:
    store = await open_store("memory://")
    assert isinstance(store, MemoryStore)
    await store.close()


async def test_the_database_file_is_created_with_its_directories(tmp_path: Path) -> None:
    path = tmp_path / "several" / "levels" / "causette.db"
    store = await open_store(url_of(path), migrate=True)
    try:
        assert isinstance(store, SqlStore)
        await store.ping()
        assert path.is_file()
    finally:
        await store.close()


async def test_connections_use_wal_and_enforce_foreign_keys(tmp_path: Path) -> None:
    def pragmas(conn: Connection) -> list[object]:
        names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        return [conn.execute(text(f"PRAGMA {name}")).scalar() for name in names]

    # The store's own connection (its worker's), and one from its engine (migrations, tools).
    async with sql_store(tmp_path / "c.db", busy_timeout_ms=4321) as store:
        assert await store.run(pragmas) == ["wal", 1, 1, 4321]  # synchronous 1: NORMAL
        async with store.engine.connect() as conn:
            assert await conn.run_sync(pragmas) == ["wal", 1, 1, 4321]


async def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    async with sql_store(path) as store:
        head = await store.ensure_stream(STREAM, T0)
        await store.append(new_item("m1"))
    reopened = await open_store(url_of(path))
    try:
        assert await reopened.stream_head(STREAM) == type(head)(STREAM, head.epoch, 1)
        assert [m.id for m in await reopened.read(STREAM, 0, 10)] == ["m1"]
    finally:
        await reopened.close()


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "sqlite:///:memory:", "mysql://db.example/causette", "not a url"],
)
async def test_unsupported_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        await open_store(url)


# --- schema revision checks ------------------------------------------------------------------


async def test_an_empty_database_is_refused_without_migrate(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with pytest.raises(SchemaBehind) as refused:
        await open_store(url_of(path))
    error = refused.value
    assert isinstance(error, ConfigError)
    assert error.code == "schema_behind"
    assert "causette migrate" in error.message("fr")
    assert "causette migrate" in error.message("en")
    assert await schema_status(url_of(path)) == (None, head_revision())


async def test_migrate_brings_the_schema_to_head(tmp_path: Path) -> None:
    url = url_of(tmp_path / "c.db")
    assert await migrate(url) == head_revision()
    assert await migrate(url) == head_revision()  # nothing left to do
    assert await schema_status(url) == (head_revision(), head_revision())
    store = await open_store(url)
    await store.close()


async def test_open_with_migrate_upgrades_first(tmp_path: Path) -> None:
    url = url_of(tmp_path / "c.db")
    store = await open_store(url, migrate=True)
    await store.close()
    assert await schema_status(url) == (head_revision(), head_revision())


async def test_a_database_behind_head_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = url_of(tmp_path / "c.db")
    await migrate(url)
    # As if this version of Causette brought a newer migration than the database has.
    monkeypatch.setattr(store_module, "head_revision", lambda: "0002_next")
    with pytest.raises(SchemaBehind) as refused:
        await open_store(url)
    assert "0002_next" in refused.value.message("en")


async def test_a_database_downgraded_to_nothing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    await migrate(url_of(path))
    engine = create_engine(async_url(url_of(path)), pooled=False)
    try:

        def downgrade(connection: object) -> None:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "base")

        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
    finally:
        await engine.dispose()
    with pytest.raises(SchemaBehind):
        await open_store(url_of(path))
    store = await open_store(url_of(path), migrate=True)  # and back up again
    await store.close()


async def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    await migrate(url_of(path))
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
    raw.close()
    with pytest.raises(SchemaUnknown) as refused:
        await open_store(url_of(path))
    assert refused.value.code == "schema_unknown"
    with pytest.raises(SchemaUnknown):
        await open_store(url_of(path), migrate=True)


# --- failures ----------------------------------------------------------------------------------


async def test_an_unopenable_path_is_unavailable_and_named(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory.db"
    directory.mkdir()
    with pytest.raises(StoreUnavailable) as failed:
        await open_store(url_of(directory), migrate=True)
    assert isinstance(failed.value, StoreUnreachable)
    assert failed.value.code == "store_unreachable"
    assert str(directory) in failed.value.message("en")
    assert str(directory) in failed.value.message("fr")


async def test_a_path_under_a_file_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnreachable):
        await open_store(url_of(blocker / "causette.db"))
    with pytest.raises(StoreUnreachable):
        await migrate(url_of(blocker / "causette.db"))
    with pytest.raises(StoreUnreachable):
        await schema_status(url_of(blocker / "causette.db"))


async def test_a_write_lock_held_too_long_is_unavailable_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    async with sql_store(path, busy_timeout_ms=50) as store:
        await store.ensure_stream(STREAM, T0)
        await store.append(new_item("m1"))
        with write_lock_held_elsewhere(path):
            with pytest.raises(StoreUnavailable) as failed:
                await store.append(new_item("m2"))
            assert isinstance(failed.value.__cause__, exc.OperationalError)
            # WAL: reading goes on while someone else writes.
            assert [m.id for m in await store.read(STREAM, 0, 10)] == ["m1"]
        message, _ = await store.append(new_item("m3"))
        assert message.seq == 2  # the failed attempt consumed nothing


async def test_other_database_errors_are_not_disguised(tmp_path: Path) -> None:
    async with sql_store(tmp_path / "c.db") as store:
        await store.ensure_stream(STREAM, T0)
        await store.append(new_item("m1"))
        with pytest.raises(exc.IntegrityError):
            await store.append(new_item("m1"))  # a message id used twice is a bug
        message, _ = await store.append(new_item("m2"))
        assert message.seq == 2


async def test_appends_fail_when_the_file_cannot_be_reached_then_recover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker cannot even connect (its connection was lost, the file is gone): every
    append waiting fails as unavailable, none is left unanswered, and appends work again once
    the file is back."""
    async with sql_store(tmp_path / "c.db") as store:
        await store.ensure_stream(STREAM, T0)
        await store.append(new_item("m1"))
        worker = store._worker
        assert worker is not None
        engine = worker._engine
        real_connect = engine.connect

        def unreachable() -> Connection:
            raise exc.OperationalError("connect", None, sqlite3.OperationalError("disk I/O error"))

        monkeypatch.setattr(engine, "connect", unreachable)
        assert worker._conn is not None
        worker._conn.invalidate()  # the next operation must reconnect
        failed = await asyncio.gather(
            *(store.append(new_item(f"x{i}")) for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(f, StoreUnavailable) for f in failed)
        monkeypatch.setattr(engine, "connect", real_connect)
        message, _ = await store.append(new_item("m2"))
        assert message.seq == 2


async def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    async with sql_store(tmp_path / "c.db") as store:
        await store.close()
        with pytest.raises(StoreUnavailable):
            await store.ensure_stream(STREAM, T0)


# --- the SQLite worker --------------------------------------------------------------------------


async def test_operations_issued_together_run_in_order_and_fail_alone(tmp_path: Path) -> None:
    """Operations queued while the worker is busy run back to back, in the order they were
    issued; one failing (and rolled back) leaves the connection usable for the next."""

    def insert(stream: str) -> Callable[[Connection], None]:
        def run(conn: Connection) -> None:
            conn.execute(
                text(
                    "INSERT INTO streams (id, epoch, last_seq, created_at) VALUES (:id, 'e', 0, 0)"
                ),
                {"id": stream},
            )

        return run

    def failing(conn: Connection) -> None:
        insert("r:half")(conn)
        conn.execute(text("INSERT INTO no_such_table VALUES (1)"))

    def ids(conn: Connection) -> list[str]:
        return list(conn.execute(text("SELECT id FROM streams ORDER BY created_at, id")).scalars())

    async with sql_store(tmp_path / "w.db") as store:
        outcomes = await asyncio.gather(
            store.run(insert("r:a"), write=True),
            store.run(ids),
            store.run(failing, write=True),
            store.run(insert("r:b"), write=True),
            store.run(ids),
            return_exceptions=True,
        )
    assert outcomes[1] == ["r:a"]
    assert isinstance(outcomes[2], exc.OperationalError)
    assert outcomes[4] == ["r:a", "r:b"]  # the failed transaction left nothing


async def test_statements_run_on_the_driver_are_inside_the_transaction(tmp_path: Path) -> None:
    """The busy statements run straight on the sqlite3 driver: in a writing operation they are
    committed or rolled back with it, like those run through SQLAlchemy."""

    def insert_then_fail(conn: Connection) -> None:
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        driver.execute(
            "INSERT INTO streams (id, epoch, last_seq, created_at) VALUES ('r:x', 'e', 0, 0)"
        )
        assert driver.in_transaction
        raise RuntimeError("changed my mind")

    async with sql_store(tmp_path / "t.db") as store:
        with pytest.raises(RuntimeError):
            await store.run(insert_then_fail, write=True)
        assert await store.stream_head("r:x") is None


async def test_a_commit_that_fails_leaves_the_store_usable(tmp_path: Path) -> None:
    """SQLite keeps a transaction open when its COMMIT fails (here a deferred foreign key):
    the worker rolls it back, so the next operation does not inherit it."""

    def orphan_message(conn: Connection) -> None:
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        conn.execute(
            text(
                "INSERT INTO messages (stream, seq, id, kind, author, name, text, ts, expires_at)"
                " VALUES ('r:nowhere', 1, 'm1', 'text', 'a', 'A', 'x', 0, 1)"
            )
        )

    async with sql_store(tmp_path / "f.db") as store:
        with pytest.raises(exc.IntegrityError):
            await store.run(orphan_message, write=True)
        head = await store.ensure_stream(STREAM, T0)
        assert head.last_seq == 0
        assert await store.get_message("m1") is None


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    async with sql_store(tmp_path / "c.db") as store:
        await store.ensure_stream(STREAM, T0)
    with pytest.raises(StoreUnavailable):
        await store.stream_head(STREAM)
