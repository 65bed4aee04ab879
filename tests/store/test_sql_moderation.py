"""What only the SQL store does for moderation: rules the database itself enforces (append-only
audit log, one open case per target), the migration of existing data, and racing writers on
one SQLite file (several processes or nodes)."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy.engine import Connection

from causette.core.cases import AuditEntry
from causette.store import SqlStore, alembic_config, migrate, open_store
from causette.store.sql.engine import async_url, create_engine
from tests.contracts.test_moderation_contract import report
from tests.contracts.test_store_contract import T0, make_session


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


@asynccontextmanager
async def sql_store(path: Path) -> AsyncIterator[SqlStore]:
    """A store with its own engine (its own connection): what another process would have."""
    store = SqlStore(create_engine(async_url(url_of(path))))
    try:
        yield store
    finally:
        await store.close()


async def _alembic(path: Path, action: str, revision: str) -> None:
    engine = create_engine(async_url(url_of(path)), pooled=False)
    try:

        def run(connection: Connection) -> None:
            config = alembic_config()
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)

        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def _audited(path: Path) -> AuditEntry:
    await migrate(url_of(path))
    async with sql_store(path) as store:
        return await store.audit(
            ts=T0,
            actor="mod:m1",
            action="case.decide",
            case_id=None,
            target="person:bob",
            reason="spam",
            details={"action": "ban"},
        )


# --- rules kept by the database ------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET reason = 'nothing happened'",
        "UPDATE audit_log SET id = id + 100",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = 1",
    ],
)
async def test_the_audit_log_cannot_be_changed_or_emptied(tmp_path: Path, statement: str) -> None:
    path = tmp_path / "c.db"
    entry = await _audited(path)
    raw = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="audit_log is append-only"):
            raw.execute(statement)
        raw.rollback()
        raw.execute(  # appending is what it is for
            "INSERT INTO audit_log (ts, actor, action, target, reason, details) "
            "VALUES (1, 'admin-cli', 'x', 'y', '', '{}')"
        )
        raw.commit()
    finally:
        raw.close()
    async with sql_store(path) as store:
        newest, oldest = await store.audit_log(10)
        assert oldest == entry
        assert newest.id > entry.id


async def test_one_open_case_per_target_is_a_rule_of_the_database(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    await migrate(url_of(path))
    insert = (
        "INSERT INTO cases (id, created_at, updated_at, status, category, severity, target_kind,"
        " target_key, subject_name, reporters, automated) "
        "VALUES (?, 0, 0, ?, 'spam_scam', 5, 'message', 'message:m1', '', 1, 0)"
    )
    raw = sqlite3.connect(path)
    try:
        raw.execute(insert, ("C-1", "closed"))
        raw.execute(insert, ("C-2", "closed"))
        raw.execute(insert, ("C-3", "open"))
        with pytest.raises(sqlite3.IntegrityError, match="target_key"):
            raw.execute(insert, ("C-4", "open"))
    finally:
        raw.close()


async def test_racing_writers_on_one_file_make_one_case(tmp_path: Path) -> None:
    """Two stores with their own connections (two processes): the look-up and the insert of
    ``file_report`` run under the write lock, so neither fails nor opens a second case."""
    path = tmp_path / "c.db"
    await migrate(url_of(path))
    async with sql_store(path) as first, sql_store(path) as second:
        results = await asyncio.gather(
            *(report(first if n % 2 else second, reporter=f"p{n}", at=T0 + n) for n in range(20))
        )
        assert len({case.id for case, _ in results}) == 1
        (case,) = await first.open_cases(10)
        assert case.reporters == 20


# --- migration 0002 ------------------------------------------------------------------------------


async def test_upgrading_keeps_sessions_and_gives_them_no_network(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    await _alembic(path, "upgrade", "0001")
    live = make_session("p1")
    raw = sqlite3.connect(path)
    try:
        columns = (
            "id, token_hash, pseudonym_key, name, gender, age, commune, dep, region,"
            " postal_code, commune_code, lang, pm_policy, created_at, last_seen, ended_at"
        )
        p = live.profile
        raw.execute(
            f"INSERT INTO sessions ({columns}) VALUES ({', '.join('?' * 16)})",
            (
                live.id,
                live.token_hash,
                live.pseudonym_key,
                p.name,
                p.gender.value,
                p.age,
                p.commune,
                p.dep,
                p.region,
                live.postal_code,
                live.commune_code,
                live.lang,
                live.pm_policy.value,
                live.created_at,
                live.last_seen,
                None,
            ),
        )
        raw.commit()
    finally:
        raw.close()
    store = await open_store(url_of(path), migrate=True)
    try:
        assert await store.get_session("p1") == live  # ip_key == ""
        # The rebuilt table still enforces one live pseudonym.
        assert await store.pseudonym_in_use(live.pseudonym_key)
        assert await store.sessions_with_key("", 10) == []
    finally:
        await store.close()


def test_the_postgresql_migration_renders_the_triggers_and_the_partial_index() -> None:
    """Offline (``alembic upgrade --sql``) for a PostgreSQL DBA: the append-only audit log is a
    plpgsql function with its triggers, the open-case rule a partial unique index."""
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", "postgresql://causette@db/causette")
    config.output_buffer = io.StringIO()
    command.upgrade(config, "0001:head", sql=True)
    sql = " ".join(config.output_buffer.getvalue().split())
    assert "ALTER TABLE sessions ADD COLUMN ip_key VARCHAR DEFAULT '' NOT NULL" in sql
    assert (
        "CREATE UNIQUE INDEX uq_cases_open_target_key ON cases (target_key) "
        "WHERE status = 'open'" in sql
    )
    assert "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql" in sql
    assert "BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW" in sql
    assert "BEFORE TRUNCATE ON audit_log" in sql
    assert "CREATE TABLE audit_log ( id BIGSERIAL NOT NULL," in sql
