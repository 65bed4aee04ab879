"""The migrations and ``tables.py`` describe the same schema (an ``alembic check`` of sorts)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from causette.store import alembic_config, head_revision, migrate
from causette.store.sql.engine import async_url, create_engine
from causette.store.sql.tables import metadata


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _schema_sql(connection: Connection) -> dict[str, str]:
    rows = connection.execute(
        text(
            "SELECT name, sql FROM sqlite_master "
            "WHERE sql IS NOT NULL AND name NOT LIKE 'alembic%' AND name NOT LIKE 'sqlite_%'"
        )
    )
    return {name: " ".join(sql.split()) for name, sql in rows}


async def _inspect_migrated(path: Path) -> tuple[list[object], dict[str, str]]:
    await migrate(f"sqlite:///{path}")
    engine = create_engine(async_url(f"sqlite:///{path}"), pooled=False)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_differences), await conn.run_sync(_schema_sql)
    finally:
        await engine.dispose()


async def _schema_of_create_all(path: Path) -> dict[str, str]:
    engine = create_engine(async_url(f"sqlite:///{path}"), pooled=False)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            return await conn.run_sync(_schema_sql)
    finally:
        await engine.dispose()


async def test_migrations_match_tables(tmp_path: Path) -> None:
    differences, migrated = await _inspect_migrated(tmp_path / "migrated.db")
    assert differences == []
    # compare_metadata does not look at partial-index predicates: compare the DDL itself.
    created = await _schema_of_create_all(tmp_path / "created.db")
    assert migrated == created
    assert "WHERE ended_at IS NULL" in migrated["uq_sessions_live_pseudonym_key"]


def test_there_is_one_head_and_every_revision_can_be_undone() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [head_revision()]
    for revision in script.walk_revisions():
        assert revision.module.downgrade is not None


async def test_downgrade_to_base_then_upgrade_again(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    await migrate(f"sqlite:///{path}")
    engine = create_engine(async_url(f"sqlite:///{path}"), pooled=False)
    try:

        def downgrade(connection: Connection) -> dict[str, str]:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
            return _schema_sql(connection)

        async with engine.begin() as conn:
            assert await conn.run_sync(downgrade) == {}
    finally:
        await engine.dispose()
    assert await migrate(f"sqlite:///{path}") == head_revision()
